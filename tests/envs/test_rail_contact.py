"""InvertedPendulum-v5's ``model_data_fn``: it drops exactly the rail-stop transitions, judged
by MuJoCo's own joint-limit constraint, and ``train_on_buffer`` leaves them out of training."""

import mujoco
import numpy as np
import torch

from envs import get_task
from envs.mujoco_tasks.balance import IP_RAIL
from mbrl.data import buffer_for_task
from mbrl.models import ModelConfig, build_model, build_trainer, train_on_buffer


def rail_rollout(steps=40):
    """Transitions of the cart pushed at full force from x = 0.2 towards the rail end, and for
    each whether MuJoCo's slider joint-limit constraint is active after the step."""
    task = get_task("inverted-pendulum")
    env = task.make_env()
    env.reset(seed=0)
    u = env.unwrapped
    u.set_state(np.array([0.2, 0.0]), np.array([0.0, 0.0]))
    obs = u._get_obs()
    rows, limited = [], []
    for _ in range(steps):
        nxt, *_ = env.step(np.array([3.0]))
        rows.append((obs, np.array([3.0]), nxt))
        types = u.data.efc_type[: u.data.nefc]
        limited.append(bool((types == mujoco.mjtConstraint.mjCNSTR_LIMIT_JOINT).any()))
        obs = nxt
    env.close()
    o, a, n = (np.array(x, dtype=np.float32) for x in zip(*rows, strict=True))
    return task, o, a, n, np.array(limited)


def test_rail_is_the_slider_joint_range():
    env = get_task("inverted-pendulum").make_env()
    lo, hi = env.unwrapped.model.jnt_range[0]
    env.close()
    assert (lo, hi) == (-IP_RAIL, IP_RAIL)


def test_model_data_fn_drops_the_rail_stop_transitions():
    task, o, a, n, limited = rail_rollout()
    keep = task.model_data_fn(*(torch.from_numpy(x) for x in (o, a, n))).numpy()
    assert limited.any() and (~limited).any()  # the rollout reaches the rail end
    assert not keep[limited].any()  # every step ending against the stop is dropped
    free = np.maximum(np.abs(o[:, 0]), np.abs(n[:, 0])) < 0.95
    assert free.any() and keep[free].all()  # free motion away from the rail is kept


def test_train_on_buffer_leaves_the_dropped_transitions_out():
    task, o, a, n, _ = rail_rollout()
    buf = buffer_for_task(task, 100)
    z = np.zeros(len(o))
    buf.add_batch(o, a, n, z, z.astype(bool), z.astype(bool))
    cfg = ModelConfig(num_members=2, hidden=8, num_layers=1, holdout_ratio=0.2, epochs=1)
    model = build_model(cfg, task, generator=torch.Generator().manual_seed(0))
    trainer = build_trainer(
        cfg, model, generator=torch.Generator().manual_seed(0), progress_bar=False
    )
    train_on_buffer(cfg, trainer, buf, task)
    used = trainer.train_indices.numel() + trainer.holdout_indices.numel()
    expected = int(((np.abs(o[:, 0]) < 0.999) & (np.abs(n[:, 0]) < 0.999)).sum())
    assert 0 < expected < len(o)
    assert used == expected
    train_on_buffer(cfg, trainer, buf)  # without the task: every transition
    assert trainer.train_indices.numel() + trainer.holdout_indices.numel() == len(o)
