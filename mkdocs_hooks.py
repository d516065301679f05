"""MkDocs hooks of the documentation site (``mkdocs.yml``): the navigation and the API
reference pages.

The navigation is built at every build (:func:`on_config`): Home (``docs/index.md``), Guides
(every other ``docs/*.md``, titled by its first ``# `` heading, sorted by file name), API
reference. A guide added to ``docs/`` is therefore listed without editing ``mkdocs.yml``.

One page per public module of :data:`PACKAGES` is generated at build time as
``reference/<dotted.name>.md`` holding ``::: dotted.name`` (rendered by mkdocstrings), so a new
module gets its page without editing anything. A package's page shows its docstring and links
to its modules (its members are documented on the modules that define them). Private modules
(a leading underscore) and ``__main__`` are skipped. ``reference/index.md`` lists every page.

The docstrings use Sphinx roles (``:func:`lqr```, ``:class:`~envs.task.Task```), which
mkdocstrings does not read; :class:`SphinxRoles` (a Griffe extension named in ``mkdocs.yml``)
shows them as inline code (``lqr``, ``Task``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
PACKAGES = ("mbrl", "control", "envs")
"""The packages whose modules get reference pages."""


def public_modules(root: Path = ROOT) -> list[tuple[str, bool]]:
    """``(dotted name, is_package)`` of every public module under :data:`PACKAGES`, sorted."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if any(p.startswith("_") and p != "__init__" for p in parts):
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found.append((".".join(parts), is_package))
    return sorted(found)


def page_markdown(name: str, is_package: bool, modules: list[tuple[str, bool]]) -> str:
    """The markdown of module ``name``'s reference page."""
    if not is_package:
        return f"::: {name}\n"
    children = [m for m, _ in modules if m.startswith(name + ".") and "." not in m[len(name) + 1 :]]
    lines = [f"::: {name}", "    options:", "      members: false", ""]
    if children:
        lines += ["Modules:", ""] + [f"- [`{m}`]({m}.md)" for m in children] + [""]
    return "\n".join(lines)


def guides(docs_dir: Path) -> list[Path]:
    """The guides: every ``docs/*.md`` except ``index.md``, sorted by file name."""
    return sorted(p for p in docs_dir.glob("*.md") if p.name != "index.md")


def title_of(path: Path) -> str:
    """The text of the first ``# `` heading of markdown file ``path`` (else its stem)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def build_nav(docs_dir: Path, modules: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """The site navigation: Home, Guides (all of them), API reference (every module)."""
    nav: list[dict[str, Any]] = []
    if (docs_dir / "index.md").is_file():
        nav.append({"Home": "index.md"})
    nav.append({"Guides": [{title_of(p): p.name} for p in guides(docs_dir)]})
    reference = [{"Overview": "reference/index.md"}]
    reference += [{name: f"reference/{name}.md"} for name, _ in modules]
    nav.append({"API reference": reference})
    return nav


def on_config(config: Any) -> Any:
    """Set ``nav`` from the files (see the module docstring)."""
    config["nav"] = build_nav(Path(config["docs_dir"]), public_modules())
    return config


def on_files(files: Files, config: Any) -> Files:
    """Add ``reference/index.md`` and one ``reference/<module>.md`` per public module."""
    modules = public_modules()
    index = ["# API reference", "", "Generated from the docstrings, one page per module.", ""]
    index += [f"- [`{name}`]({name}.md)" for name, _ in modules]
    files.append(File.generated(config, "reference/index.md", content="\n".join(index) + "\n"))
    for name, is_package in modules:
        content = page_markdown(name, is_package, modules)
        files.append(File.generated(config, f"reference/{name}.md", content=content))
    return files


_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")


def strip_roles(text: str) -> str:
    """Sphinx roles in ``text`` as inline code: ``:func:`x``` -> ```x```; a ``~`` target
    keeps its last dotted part."""

    def code(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        if match.group(1):
            target = target.rsplit(".", 1)[-1]
        return f"``{target}``"

    return _ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    """Griffe extension: rewrite Sphinx roles in every docstring (:func:`strip_roles`)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, if it has one."""
        if obj.docstring is not None:
            obj.docstring.value = strip_roles(obj.docstring.value)
