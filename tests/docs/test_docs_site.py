"""The documentation site (``mkdocs.yml``, ``mkdocs_hooks.py``): every guide and every public
module is in it, every docstring parses without a warning, and (slow) the strict build passes.

The docstring check parses what the strict build parses (Griffe, Google style) in a few
seconds, so a docstring that would break ``make docs`` fails the default suite too.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

pytest.importorskip("mkdocs", reason="the docs tools: pip install -e '.[docs]'")
griffe = pytest.importorskip("griffe", reason="the docs tools: pip install -e '.[docs]'")
hooks = importlib.import_module("mkdocs_hooks")  # at the repository root (pythonpath = .)


def _walk_modules(package: str, path: Path) -> set[str]:
    """Public modules of ``package`` as Python's import system sees the folder ``path`` (only
    folders with ``__init__.py`` are packages), without importing them."""
    found = {package}
    for info in pkgutil.iter_modules([str(path)]):
        if info.name.startswith("_"):
            continue
        name = f"{package}.{info.name}"
        found |= _walk_modules(name, path / info.name) if info.ispkg else {name}
    return found


def test_every_public_module_has_a_reference_page():
    expected = set().union(*(_walk_modules(p, ROOT / p) for p in hooks.PACKAGES))
    listed = {name for name, _ in hooks.public_modules()}
    assert listed == expected
    assert {"mbrl.util.video", "mbrl.algorithms.playback", "control.ilqr"} <= listed


def test_every_guide_is_in_the_nav_with_its_title():
    nav = hooks.build_nav(DOCS, hooks.public_modules())
    sections = {next(iter(entry)): next(iter(entry.values())) for entry in nav}
    assert sections["Home"] == "index.md"
    guides = {next(iter(e.values())): next(iter(e)) for e in sections["Guides"]}
    on_disk = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert set(guides) == on_disk and len(on_disk) >= 10
    for name, title in guides.items():
        assert title != Path(name).stem, f"docs/{name}: no '# ' title heading"
    reference = [next(iter(e.values())) for e in sections["API reference"]]
    assert reference[0] == "reference/index.md"
    assert len(reference) == 1 + len(hooks.public_modules())


def test_a_guide_added_later_is_listed(tmp_path):
    (tmp_path / "index.md").write_text("# Home\n")
    (tmp_path / "sweeps.md").write_text("intro\n\n# Sweeps on Ray Tune\n")
    (tmp_path / "zeta.md").write_text("no heading\n")
    nav = hooks.build_nav(tmp_path, [])
    assert nav[1] == {"Guides": [{"Sweeps on Ray Tune": "sweeps.md"}, {"zeta": "zeta.md"}]}


def test_package_pages_link_their_modules_and_do_not_repeat_members():
    modules = hooks.public_modules()
    page = hooks.page_markdown("mbrl.util", True, modules)
    assert "members: false" in page and "- [`mbrl.util.video`](mbrl.util.video.md)" in page
    assert "mbrl.util.video.md" in page and "mbrl.models" not in page
    assert hooks.page_markdown("mbrl.util.video", False, modules) == "::: mbrl.util.video\n"


def test_sphinx_roles_become_inline_code():
    text = "See :func:`lqr`, :class:`~envs.task.Task` and :py:meth:`Planner.plan`; :math:`x`."
    assert hooks.strip_roles(text) == ("See ``lqr``, ``Task`` and ``Planner.plan``; :math:`x`.")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _parse_all(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        _ = obj.docstring.parsed
    for member in obj.members.values():
        if not member.is_alias:
            _parse_all(member)


@pytest.mark.parametrize("package", hooks.PACKAGES)
def test_docstrings_parse_without_warnings(package):
    """What ``mkdocs build --strict`` would reject: e.g. ``a, b: ...`` in an ``Args:`` block
    ("parameter 'a, b' does not appear in the function signature")."""
    handler = _Collect()
    logger = logging.getLogger("griffe")
    logger.addHandler(handler)
    try:
        module = griffe.load(
            package,
            search_paths=[str(ROOT)],
            docstring_parser="google",
            extensions=griffe.load_extensions(hooks.SphinxRoles),
            allow_inspection=False,
        )
        _parse_all(module)
    finally:
        logger.removeHandler(handler)
    assert handler.messages == []


def test_readme_mentions_make_docs():
    assert "make docs" in (ROOT / "README.md").read_text()


@pytest.mark.slow
def test_mkdocs_strict_build(tmp_path):
    """The whole site, as ``make docs`` builds it (about 50 s on a loaded 2-core machine)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr
    site = tmp_path / "site"
    for guide in DOCS.glob("*.md"):
        assert (site / guide.with_suffix(".html").name).is_file()
    for name, _ in hooks.public_modules():
        assert (site / "reference" / f"{name}.html").is_file()
    video_page = (site / "reference" / "mbrl.util.video.html").read_text()
    assert "select_gl_backend" in video_page and ":func:" not in video_page
