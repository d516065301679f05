"""Tasks: Gymnasium MuJoCo tasks with exact batched rewards, and small analytic systems.

>>> import envs
>>> task = envs.get_task("halfcheetah")
>>> env = envs.make("pendulum-swingup")
"""

# Task modules register themselves on import.
from envs import analytic as _analytic  # noqa: E402,F401  (registers analytic tasks)
from envs import mujoco_tasks as _mujoco_tasks  # noqa: E402,F401  (registers MuJoCo tasks)
from envs.registry import get_task, list_tasks, make, register_task
from envs.task import Task

__all__ = ["Task", "get_task", "list_tasks", "make", "register_task"]
