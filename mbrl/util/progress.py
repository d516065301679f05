"""Progress bars (tqdm) with live metrics.

>>> bar = progress(num_episodes, "PETS")
>>> for episode in bar:
...     bar.set_postfix(ret=episode_return, loss=model_loss)

Set the environment variable ``MBRL_NO_PROGRESS=1`` to turn every bar off (e.g. in CI logs).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

__all__ = ["progress", "progress_disabled"]


def progress_disabled() -> bool:
    """True when ``MBRL_NO_PROGRESS`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("MBRL_NO_PROGRESS", "").strip().lower() in ("1", "true", "yes", "on")


def progress(
    iterable_or_total: Iterable[Any] | int | None = None, desc: str | None = None, **kw: Any
) -> tqdm:
    """A tqdm bar over an iterable, or over ``range(n)`` when given an int ``n``.

    For manual updates, pass ``None`` and ``total=n``, then call ``bar.update(k)``.
    Extra keyword arguments go to :class:`tqdm.tqdm` (``disable=``, ``leave=``, ``unit=`` ...);
    ``MBRL_NO_PROGRESS=1`` forces ``disable=True``.
    """
    if isinstance(iterable_or_total, bool):
        raise TypeError("iterable_or_total: expected an iterable, an int or None, got a bool")
    if isinstance(iterable_or_total, int):
        if iterable_or_total < 0:
            raise ValueError(
                f"iterable_or_total: expected a non-negative int, got {iterable_or_total}"
            )
        iterable_or_total = range(iterable_or_total)
    if progress_disabled():
        kw["disable"] = True
    kw.setdefault("dynamic_ncols", True)
    return tqdm(iterable_or_total, desc=desc, **kw)
