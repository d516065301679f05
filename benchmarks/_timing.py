"""Timing helpers shared by the benchmark scripts (torch only, so any venv can import them), and
:func:`launch`, which runs one side of a side-by-side benchmark in its own process."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(
    fn: Callable[[], object],
    repeats: int = 5,
    inner: int = 1,
    *,
    warmup: int = 1,
    device: torch.device | None = None,
) -> float:
    """Best wall time in seconds of one ``fn()`` call.

    ``warmup`` untimed calls, then ``repeats`` timings of ``inner`` back-to-back calls each
    (CUDA work is synchronised before the clock is read).
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        times.append((time.perf_counter() - start) / inner)
    return min(times)


def matmul_flops(
    dtype: torch.dtype = torch.float32,
    n: int = 2048,
    *,
    device: torch.device | None = None,
    repeats: int = 5,
    inner: int = 2,
) -> float:
    """Dense ``n x n`` matmul throughput in FLOP/s for ``dtype`` (best of ``repeats``)."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    out = torch.empty(n, n, dtype=dtype, device=device)
    t = best_time(lambda: torch.matmul(a, b, out=out), repeats, inner, device=device)
    return 2.0 * n**3 / t


def launch(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict:
    """Run one side; return the JSON it prints on its ``RESULT`` line (raise with its stderr)."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])
