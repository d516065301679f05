"""python-control side of ``bench_lqr.py`` (run it through that script, not directly).

python-control's top-level package is also called ``control``, so this file runs in its own
virtual environment (``python3 -m venv /tmp/venv-ctrl && /tmp/venv-ctrl/bin/pip install numpy
scipy control slycot``), in its own process, with this repository off ``sys.path``. It loads the
DARE problems written by the orchestrator, times ``control.dlqr`` (slycot's ``sg02ad`` when slycot
is installed) and ``scipy.linalg.solve_discrete_are`` on each, and prints one JSON line
(``RESULT {...}``). The timing helper is duplicated from the orchestrator on purpose: this process
cannot import this project.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import scipy
import scipy.linalg


def best_ms(fn: Callable[[], object], repeats: int, inner: int) -> float:
    """Best over ``repeats`` of the mean time (ms) of ``inner`` back-to-back calls."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return 1e3 * best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help=".npz written by the orchestrator")
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--inner", required=True, help="comma-separated calls per timing, per n")
    parser.add_argument("--sizes", required=True, help="comma-separated n of the problems")
    args = parser.parse_args()

    import control  # python-control, from this venv's site-packages

    if "site-packages" not in control.__file__ or not hasattr(control, "StateSpace"):
        raise RuntimeError(f"expected python-control from site-packages, got {control.__file__}")
    try:
        import slycot

        slycot_version = slycot.__version__
    except ImportError:
        slycot_version = None

    data = np.load(args.data)
    out: dict[str, object] = {
        "control": control.__version__,
        "slycot": slycot_version,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "times": {},
    }
    inners = [int(i) for i in args.inner.split(",")]
    for n, inner in zip(args.sizes.split(","), inners, strict=True):
        A, B, Q, R, N = (data[f"{k}{n}"] for k in "ABQRN")
        _, S, _ = control.dlqr(A, B, Q, R, N)
        np.save(args.data.replace(".npz", f"_S{n}.npy"), np.asarray(S))
        out["times"][n] = {
            "python_control_ms": best_ms(
                lambda p=(A, B, Q, R, N): control.dlqr(*p), args.repeats, inner
            ),  # fmt: skip
            "scipy_ms": best_ms(
                lambda p=(A, B, Q, R, N): scipy.linalg.solve_discrete_are(*p[:4], s=p[4]),
                args.repeats,
                inner,
            ),
        }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
