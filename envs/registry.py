"""Task registry: ``get_task``, ``make`` and ``list_tasks``.

Task modules register a factory per name with :func:`register_task`; the factory takes the
task's keyword arguments (e.g. the matrices of a linear system) and returns a :class:`Task`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from envs.task import Task

_FACTORIES: dict[str, Callable[..., Task]] = {}
_ALIASES: dict[str, str] = {}


def register_task(name: str, factory: Callable[..., Task], aliases: tuple[str, ...] = ()) -> None:
    """Register ``factory(**kwargs) -> Task`` under ``name`` (and optional alias names)."""
    taken = set(_FACTORIES) | set(_ALIASES)
    for key in (name, *aliases):
        if key in taken:
            raise ValueError(f"task name or alias {key!r} is already registered")
    _FACTORIES[name] = factory
    for alias in aliases:
        _ALIASES[alias] = name


def _resolve(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name: expected a task name (str), got {type(name).__name__}")
    if name in _FACTORIES:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    available = ", ".join(list_tasks())
    raise KeyError(f"unknown task {name!r}; available tasks: {available}")


def get_task(name: str, **kwargs: Any) -> Task:
    """Return the :class:`Task` registered as ``name`` (or an alias), built with ``kwargs``."""
    return _FACTORIES[_resolve(name)](**kwargs)


def make(name: str, **kwargs: Any) -> gym.Env:
    """Build the Gymnasium environment of task ``name``; ``kwargs`` configure the task."""
    return get_task(name, **kwargs).make_env()


def list_tasks() -> list[str]:
    """Sorted names of all registered tasks (aliases excluded)."""
    return sorted(_FACTORIES)
