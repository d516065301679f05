"""Every script in examples/ runs in its quick mode, so no example drifts from the API.

Each script runs in a subprocess (as a user runs it), on one thread, in a temporary working
directory (run directories go there). A new example is picked up by the glob and must accept
``--quick``; extra cases (other modes of one script) go in :data:`EXTRA_CASES`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
EXTRA_CASES = {"mcts_discrete.py": [["--quick", "--learned"]]}
"""Further flag sets per script, beside the plain ``--quick`` run every script gets."""
TIMEOUT_S = 180  # a quick run takes seconds; the margin is for a loaded 2-core machine


def _cases() -> list:
    cases = []
    for script in EXAMPLES:
        for flags in [["--quick"], *EXTRA_CASES.get(script.name, [])]:
            cases.append(pytest.param(script, flags, id=" ".join([script.stem, *flags[1:]])))
    return cases


def test_every_extra_case_names_an_example():
    assert {p.name for p in EXAMPLES} >= set(EXTRA_CASES)
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("script", "flags"), _cases())
def test_example_runs_quick(script, flags, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH")] if p)
    proc = subprocess.run(
        [sys.executable, str(script), *flags],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{script.name} {' '.join(flags)}:\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in proc.stderr
