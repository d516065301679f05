"""Every script in examples/ runs in its quick mode, so no example drifts from the API.

Each script runs in a subprocess (as a user runs it), on one thread, in a temporary working
directory (run directories go there). A new example is picked up by the glob and runs with
``--quick`` unless :data:`CASES` gives it other flag sets (e.g. a second mode of one script).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DEFAULT_FLAGS = ["--quick"]
CASES = {
    "gps_pendulum.py": [["--quick"]],
    "mcts_discrete.py": [["--quick"], ["--quick", "--learned"]],
    "mpc_true_simulator.py": [["--steps", "5", "--episodes", "1", "--population", "16"]],
}
"""The flag sets a script runs with, one test each, where not just :data:`DEFAULT_FLAGS`."""
TIMEOUT_S = 180  # a quick run takes seconds; the margin is for a loaded 2-core machine


def _cases() -> list:
    cases = []
    for script in EXAMPLES:
        for flags in CASES.get(script.name, [DEFAULT_FLAGS]):
            cases.append(pytest.param(script, flags, id=" ".join([script.stem, *flags])))
    return cases


def test_every_case_names_an_example():
    assert {p.name for p in EXAMPLES} >= set(CASES)
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
