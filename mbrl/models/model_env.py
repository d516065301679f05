"""Batched imagined rollouts through a dynamics model: the one rollout code planners and MBPO share.

A *model* is either

* a plain callable ``f(obs (B, obs_dim), act (B, act_dim)) -> next_obs (B, obs_dim)``: a task's
  analytic ``dynamics_fn``, a user's own ``torch.nn.Module``, or any deterministic model; or
* an ensemble satisfying :class:`EnsembleModel` (``num_members``, ``predict``, ``sample``), such
  as :class:`mbrl.models.DynamicsModel`; it is propagated with one of the PETS schemes below.

Propagation schemes for ensembles (Chua et al., 2018):

* ``"tsinf"`` (TS∞): particle ``b`` keeps member ``b % E`` for the whole rollout.
* ``"ts1"`` (TS1): every step, particles are shuffled over members (each member gets ``B / E``).
* ``"expectation"``: next state is the mean over members of each member's mean prediction.
* ``"random_model"``: every step, one member drawn at random moves all particles (costs ``E``
  times a single member's forward pass, since all members are evaluated).

Particles that terminate stay terminated: their state is frozen and their reward is zero from the
step after termination on.

Particles that *diverge* (a predicted state with a NaN or infinite entry, e.g. from an ensemble
member that blew up) do not stop the rollout: from the step on which they diverged their states
and rewards read NaN (so their returns are NaN and planners score them ``-inf``), the model is fed
their last finite state instead (so ``DynamicsModel.predict`` never sees NaN input from a
rollout), and ``diverged`` flags them. The other particles are not affected.

A plain callable model may also offer ``rollout_open_loop(obs0 (B, obs_dim), actions (B, H,
act_dim)) -> (B, H + 1, obs_dim)`` (e.g. :class:`mbrl.models.simulator_model.SimulatorModel`:
one ``mujoco.rollout`` call for the whole horizon). Open-loop rollouts then take it once instead
of calling the model every step; rewards, termination and divergence are handled as on the
step-by-step path (tested equal).

A plain callable model's output is checked every step (a tensor of floating dtype and shape
``(B, obs_dim)``, the shape of ``obs``); so are the reward and termination functions' (``(B,)``)
and an ensemble's ``sample`` (``(E, N, obs_dim)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, runtime_checkable

import torch

from envs.task import RewardFn, Task, TerminationFn, never_terminates

Tensor = torch.Tensor
Propagation = Literal["tsinf", "ts1", "expectation", "random_model"]
PROPAGATIONS: tuple[str, ...] = ("tsinf", "ts1", "expectation", "random_model")
Policy = Callable[[Tensor], Tensor]


class Prediction(NamedTuple):
    """Per-member Gaussian prediction; every field has shape ``(E, N, ·)`` or ``(E, N)``."""

    next_obs_mean: Tensor
    next_obs_var: Tensor
    reward_mean: Tensor | None = None
    reward_var: Tensor | None = None


@runtime_checkable
class EnsembleModel(Protocol):
    """What :class:`ModelEnv` needs from an ensemble of ``E`` probabilistic members.

    ``obs``/``act`` may be ``(N, d)`` (every member sees the same batch) or ``(E, N, d)`` (member
    ``e`` sees row ``e``). Outputs are always ``(E, N, ·)``.
    """

    num_members: int

    def predict(self, obs: Tensor, act: Tensor) -> Prediction:
        """Mean and variance of next observation (and reward, if learned) per member."""
        ...

    def sample(
        self, obs: Tensor, act: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Draw ``next_obs (E, N, obs_dim)`` and ``reward (E, N)`` (``None`` if not learned)."""
        ...


@dataclass
class Rollout:
    """Batched imagined trajectories.

    Attributes:
        obs: ``(B, H + 1, obs_dim)`` observations, ``obs[:, 0]`` the start states.
        actions: ``(B, H, act_dim)`` actions taken.
        rewards: ``(B, H)`` rewards (zero after termination).
        terminated: ``(B, H)`` bool, True at and after the step on which a particle terminated.
        member: ``(B,)`` ensemble member of each particle under TS∞, else ``None``.
        diverged: ``(B,)`` bool, True where a predicted state (before termination) held a NaN
            or infinite entry; that particle's ``obs`` and ``rewards`` are NaN from the step on
            which it diverged.

    With ``H = 0`` (``actions (B, 0, act_dim)``) the rollout is empty: ``obs`` holds only the
    start states, ``rewards``/``terminated`` are ``(B, 0)`` and the returns are zero.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    terminated: Tensor
    member: Tensor | None = None
    diverged: Tensor | None = None

    def returns(self, discount: float = 1.0) -> Tensor:
        """``(B,)`` discounted sum of rewards."""
        return discounted_returns(self.rewards, discount)


def discounted_returns(rewards: Tensor, discount: float = 1.0) -> Tensor:
    """``sum_t discount**t * rewards[..., t]`` for ``rewards (..., H)``: shape ``(...)``."""
    if discount == 1.0:
        return rewards.sum(-1)
    h = rewards.shape[-1]
    weights = discount ** torch.arange(h, dtype=rewards.dtype, device=rewards.device)
    return (rewards * weights).sum(-1)


class ModelEnv:
    """A batched environment over a model: start states and actions in, imagined rollouts out.

    Args:
        model: a callable ``(obs, act) -> next_obs`` or an :class:`EnsembleModel`.
        task: supplies ``reward_fn`` and ``termination_fn`` (either may be overridden below).
        reward_fn: batched reward ``(obs, act, next_obs) -> (...)``; overrides the task's.
        termination_fn: batched termination; overrides the task's. Default: never terminates.
        propagation: ensemble propagation scheme (see module docs); ignored for plain callables.
        use_learned_reward: take rewards from the ensemble's learned reward head instead of
            ``reward_fn``. Default: True exactly when no reward function is available.
    """

    def __init__(
        self,
        model: Callable[[Tensor, Tensor], Tensor] | EnsembleModel,
        task: Task | None = None,
        *,
        reward_fn: RewardFn | None = None,
        termination_fn: TerminationFn | None = None,
        propagation: Propagation = "tsinf",
        use_learned_reward: bool | None = None,
    ) -> None:
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation: expected one of {PROPAGATIONS}, got {propagation!r}")
        self.model = model
        self.is_ensemble = isinstance(model, EnsembleModel)
        if not self.is_ensemble and not callable(model):
            raise TypeError("model: expected a callable (obs, act) -> next_obs or an ensemble")
        self.reward_fn = reward_fn or (task.reward_fn if task is not None else None)
        self.termination_fn = termination_fn or (
            task.termination_fn if task is not None else never_terminates
        )
        if use_learned_reward is None:
            use_learned_reward = self.reward_fn is None
        if use_learned_reward and not self.is_ensemble:
            raise ValueError("use_learned_reward: a plain callable model has no reward output")
        if not use_learned_reward and self.reward_fn is None:
            raise ValueError("reward_fn: no reward function given (pass task= or reward_fn=)")
        self.use_learned_reward = use_learned_reward
        self.propagation = propagation

    # ------------------------------------------------------------------ one step
    def step(
        self,
        obs: Tensor,
        act: Tensor,
        generator: torch.Generator | None = None,
        member: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One imagined step for a batch: ``obs (B, obs_dim)``, ``act (B, act_dim)``.

        ``member`` (``(B,)``) is only used with TS∞ and must equal ``arange(B) % E``.
        Returns ``next_obs (B, obs_dim)`` and ``reward (B,)``.
        """
        learned_reward: Tensor | None = None
        if not self.is_ensemble:
            next_obs = self.model(obs, act)
            if not (
                isinstance(next_obs, Tensor)
                and next_obs.shape == obs.shape
                and next_obs.is_floating_point()
            ):
                raise _bad_output("model", next_obs, "(B, obs_dim)", obs.shape)
        else:
            next_obs, learned_reward = self._ensemble_step(obs, act, generator)
        return next_obs, self._reward(obs, act, next_obs, learned_reward)

    def _reward(
        self, obs: Tensor, act: Tensor, next_obs: Tensor, learned_reward: Tensor | None
    ) -> Tensor:
        if self.use_learned_reward:
            if learned_reward is None:
                raise ValueError("use_learned_reward: the model has no learned reward output")
            return learned_reward
        reward = self.reward_fn(obs, act, next_obs)
        if not (isinstance(reward, Tensor) and reward.shape == obs.shape[:1]):
            raise _bad_output("reward_fn", reward, "(B,)", obs.shape[:1])
        return reward

    def _grouped_step(
        self, obs: Tensor, act: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor | None]:
        """TS∞ step on rows already grouped by member: row ``e * N + i`` belongs to member ``e``.

        ``obs (E * N, obs_dim)``, ``act (E * N, act_dim)``; returns ``next_obs`` in the same row
        order and the learned reward ``(E * N,)`` or ``None``.
        """
        e = self.model.num_members
        n = obs.shape[0] // e
        nxt, rew = self.model.sample(obs.view(e, n, -1), act.view(e, n, -1), generator)
        _check_sample(nxt, rew, (e, n, obs.shape[1]))
        return nxt.reshape(e * n, -1), None if rew is None else rew.reshape(-1)

    def _ensemble_step(
        self, obs: Tensor, act: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor | None]:
        model: EnsembleModel = self.model  # type: ignore[assignment]
        e = model.num_members
        b = obs.shape[0]
        if self.propagation == "expectation":
            pred = model.predict(obs, act)
            reward = None if pred.reward_mean is None else pred.reward_mean.mean(0)
            return pred.next_obs_mean.mean(0), reward
        if self.propagation == "random_model":
            idx = int(torch.randint(e, (1,), generator=generator, device=_gen_device(generator)))
            nxt, rew = model.sample(obs, act, generator)
            _check_sample(nxt, rew, (e, *obs.shape))
            return nxt[idx], None if rew is None else rew[idx]
        # TS1 / TS∞: group the B particles into E groups of N = ceil(B / E) (pad by repeating).
        n = -(-b // e)
        pad = n * e - b
        if pad:
            obs, act = _pad_rows(obs, pad), _pad_rows(act, pad)
        if self.propagation == "ts1":
            perm = torch.randperm(n * e, generator=generator, device=_gen_device(generator))
            perm = perm.to(obs.device)
        else:  # tsinf: row b -> member b % E, i.e. rows (n*E + e) go to member e
            perm = _tsinf_grouping(b, e, obs.device)
        grouped_obs = obs[perm].view(e, n, -1)
        grouped_act = act[perm].view(e, n, -1)
        nxt, rew = model.sample(grouped_obs, grouped_act, generator)
        _check_sample(nxt, rew, grouped_obs.shape)
        next_obs = torch.empty_like(obs)
        next_obs[perm] = nxt.reshape(n * e, -1)
        reward = None
        if rew is not None:
            reward = torch.empty(n * e, dtype=rew.dtype, device=rew.device)
            reward[perm] = rew.reshape(-1)
            reward = reward[:b]
        return next_obs[:b], reward

    # ------------------------------------------------------------------ rollouts
    def rollout(
        self,
        obs0: Tensor,
        actions: Tensor | None = None,
        *,
        policy: Policy | None = None,
        horizon: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        """Roll out from ``obs0 (B, obs_dim)``.

        Give either ``actions (B, H, act_dim)`` (open loop, ``H >= 0``; ``H = 0`` gives an
        empty rollout) or ``policy(obs (B, obs_dim)) -> act (B, act_dim)`` together with
        ``horizon >= 1`` (closed loop). Diverging particles are flagged (see module docs).
        """
        run = self._start(obs0, actions, policy, horizon)
        if run.horizon == 0:
            assert actions is not None
            return _empty_rollout(obs0, actions, run.member)
        obs_seq = [run.obs0]
        act_seq, rew_seq, term_seq = [], [], []
        diverged = run.no_divergence()
        for act, next_obs, reward, done, flags in self._steps(run, actions, policy, generator):
            obs_seq.append(next_obs)
            act_seq.append(act)
            rew_seq.append(reward)
            term_seq.append(done)
            diverged = flags
        seqs = (obs_seq, act_seq, rew_seq, term_seq)
        return Rollout(
            *(run.collect(seq) for seq in seqs),
            member=run.member,
            diverged=run.collect([diverged])[:, 0],
        )

    def rollout_returns(
        self,
        obs0: Tensor,
        actions: Tensor,
        *,
        discount: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> RolloutReturns:
        """Open-loop returns without keeping the trajectories (what planners score).

        Same rollout (and the same random draws) as :meth:`rollout` with ``actions (B, H,
        act_dim)``, but only the ``(B, H)`` rewards are kept, so the memory is ``O(B H)``
        instead of ``O(B H obs_dim)``. ``returns`` equals ``rollout(...).returns(discount)``.
        """
        run = self._start(obs0, actions, None, None)
        if run.horizon == 0:
            zeros = torch.zeros(run.batch, dtype=obs0.dtype, device=obs0.device)
            return RolloutReturns(zeros, torch.zeros_like(zeros, dtype=torch.bool), run.member)
        rew_seq = []
        diverged = run.no_divergence()
        for _, _, reward, _, flags in self._steps(run, actions, None, generator):
            rew_seq.append(reward)
            diverged = flags
        returns = discounted_returns(run.collect(rew_seq), discount)
        return RolloutReturns(returns, run.collect([diverged])[:, 0], run.member)

    def _start(
        self,
        obs0: Tensor,
        actions: Tensor | None,
        policy: Policy | None,
        horizon: int | None,
    ) -> _Run:
        if obs0.ndim != 2:
            raise ValueError(f"obs0: expected shape (B, obs_dim), got {tuple(obs0.shape)}")
        if (actions is None) == (policy is None):
            raise ValueError("rollout: give exactly one of actions= or policy=")
        b = obs0.shape[0]
        if actions is not None:
            if actions.ndim != 3 or actions.shape[0] != b:
                raise ValueError(
                    f"actions: expected shape ({b}, H, act_dim), got {tuple(actions.shape)}"
                )
            horizon = actions.shape[1]
        elif isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon: expected a positive int with policy=, got {horizon!r}")
        member = None
        if self.is_ensemble and self.propagation == "tsinf":
            member = torch.arange(b, device=obs0.device) % self.model.num_members
        # Open-loop TS∞ keeps the particles grouped by member for the whole rollout (one gather
        # before, one after) instead of regrouping them every step; the values are the same.
        perm = None
        if member is not None and actions is not None:
            perm = _tsinf_grouping(b, self.model.num_members, obs0.device)
            pad = perm.numel() - b
            if pad:
                obs0 = _pad_rows(obs0, pad)
            obs0 = obs0[perm]
        groups = self.model.num_members if perm is not None else 1
        return _Run(obs0, int(horizon), b, perm, groups, member)

    def _open_loop(self, run: _Run, actions: Tensor | None) -> Tensor | None:
        """States ``(B, H + 1, obs_dim)`` from the model's own open-loop rollout, or None.

        A plain callable model with a ``rollout_open_loop(obs0 (B, obs_dim), actions (B, H,
        act_dim)) -> (B, H + 1, obs_dim)`` method (e.g. :class:`SimulatorModel`, one
        ``mujoco.rollout`` call) is rolled out once for the whole horizon; the step loop then
        reads its states instead of calling the model. So is a deterministic ensemble with
        ``rollout_open_loop_members(obs0 (E, N, obs_dim), actions (E, N, H, act_dim)) -> (E, N,
        H + 1, obs_dim)`` (:class:`~mbrl.models.multi_model.MultiModel`) under open-loop TS∞,
        whose rows are grouped by member. Termination freezing, divergence masking and rewards
        are applied exactly as on the step-by-step path, so the rollout is the same (a
        terminated or diverged row's model output is discarded on both paths).
        """
        obs0 = run.obs0
        if actions is None:
            return None
        if self.is_ensemble:
            fast = getattr(self.model, "rollout_open_loop_members", None)
            if fast is None or run.perm is None:
                return None
            e, h = run.groups, actions.shape[1]
            n = run.rows // e
            out = fast(obs0.view(e, n, -1), actions.view(e, n, h, -1))
            want = (e, n, h + 1, obs0.shape[1])
            if not (isinstance(out, Tensor) and out.shape == want and out.is_floating_point()):
                raise _bad_output(
                    "model.rollout_open_loop_members", out, "(E, N, H + 1, obs_dim)", want
                )
            return out.reshape(e * n, h + 1, -1)
        fast = getattr(self.model, "rollout_open_loop", None)
        if fast is None:
            return None
        out = fast(obs0, actions)
        want = (obs0.shape[0], actions.shape[1] + 1, obs0.shape[1])
        if not (isinstance(out, Tensor) and out.shape == want and out.is_floating_point()):
            raise _bad_output("model.rollout_open_loop", out, "(B, H + 1, obs_dim)", want)
        return out

    def _steps(
        self,
        run: _Run,
        actions: Tensor | None,
        policy: Policy | None,
        generator: torch.Generator | None,
    ) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]:
        """Yield ``(act, next_obs, reward, done, diverged)`` per step, rows in the run's order.

        ``next_obs`` and ``reward`` are NaN on rows that have diverged; the model and the policy
        are fed those rows' last finite state instead.
        """
        rows = run.rows
        if actions is not None and run.perm is not None:
            pad = rows - actions.shape[0]
            if pad:
                actions = _pad_rows(actions, pad)
            actions = actions[run.perm]
        done = torch.zeros(rows, dtype=torch.bool, device=run.obs0.device)
        diverged = run.no_divergence()
        # on CPU the masking below is skipped while no particle has terminated (diverged) - it
        # would change nothing; on an accelerator the check would cost a synchronisation
        on_cpu = not _branch_free(run.obs0.device)
        any_diverged = False
        obs = run.obs0
        nan = torch.tensor(float("nan"), dtype=obs.dtype, device=obs.device)
        planned = self._open_loop(run, actions)
        for t in range(run.horizon):
            act = actions[:, t] if actions is not None else policy(obs)  # type: ignore[misc]
            if planned is not None:
                next_obs = planned[:, t + 1]
                reward = self._reward(obs, act, next_obs, None)
            elif run.perm is not None:
                next_obs, learned = self._grouped_step(obs, act, generator)
                reward = self._reward(obs, act, next_obs, learned)
            else:
                next_obs, reward = self.step(obs, act, generator)
            term = self.termination_fn(obs, act, next_obs)
            if not (isinstance(term, Tensor) and term.numel() == rows):
                raise _bad_output("termination_fn", term, "(B,)", (rows,))
            term = term.reshape(rows).to(torch.bool)
            if not on_cpu or bool(done.any()):
                reward = torch.where(done, torch.zeros_like(reward), reward)
                next_obs = torch.where(done[:, None], obs, next_obs)
            done = done | term  # a new tensor: the one yielded is never modified
            bad, any_bad = _nonfinite_rows(next_obs)
            if not on_cpu or any_bad or any_diverged:
                any_diverged = True
                diverged = diverged | bad
                reward = torch.where(diverged, nan.to(reward.dtype), reward)
                state = torch.where(diverged[:, None], obs, next_obs)  # last finite state
                next_obs = torch.where(diverged[:, None], nan.to(next_obs.dtype), next_obs)
            else:
                state = next_obs
            yield act, next_obs, reward, done, diverged
            obs = state


class RolloutReturns(NamedTuple):
    """Result of :meth:`ModelEnv.rollout_returns`.

    Attributes:
        returns: ``(B,)`` discounted sums of rewards.
        diverged: ``(B,)`` bool, True where a predicted state (before termination) held a NaN
            or infinite entry.
        member: ``(B,)`` ensemble member of each particle under TS∞, else ``None``.
    """

    returns: Tensor
    diverged: Tensor
    member: Tensor | None


@dataclass
class _Run:
    """Internal row layout of one rollout: ``rows`` rows (``B`` padded) in ``groups`` blocks.

    With open-loop TS∞, grouped row ``e * N + i`` holds particle ``i * E + e`` (``perm`` maps
    grouped rows to padded particles); otherwise rows are the particles and ``perm`` is None.
    """

    obs0: Tensor
    horizon: int
    batch: int
    perm: Tensor | None
    groups: int
    member: Tensor | None

    @property
    def rows(self) -> int:
        return self.obs0.shape[0]

    def no_divergence(self) -> Tensor:
        """``(rows,)`` all-False divergence flags."""
        return torch.zeros(self.rows, dtype=torch.bool, device=self.obs0.device)

    def collect(self, seq: list[Tensor]) -> Tensor:
        """``T`` tensors ``(rows, ...)`` in the internal order -> ``(B, T, ...)`` by particle."""
        if self.perm is None:
            return torch.stack(seq, 1)
        # grouped row e * N + i is particle i * E + e: undo the grouping and make time the
        # second dimension in one copy
        x = torch.stack(seq, 0)  # (T, E * N, ...)
        e = self.groups
        x = x.view(x.shape[0], e, self.rows // e, *x.shape[2:]).transpose(0, 2)  # (N, E, T, ...)
        return x.reshape(self.rows, *x.shape[2:])[: self.batch]


def nonfinite_rows(x: Tensor) -> Tensor:
    """``(B,)`` bool: which rows of ``x (B, ...)`` hold a NaN or infinite entry.

    On CPU, one summing pass over ``x``: a NaN or inf makes a row's sum non-finite, so only
    rows whose sum is non-finite (which includes finite rows whose sum overflowed) are checked
    entry-wise. On an accelerator every entry is checked (branching would cost a synchronisation).
    """
    return _nonfinite_rows(x)[0]


def _nonfinite_rows(x: Tensor) -> tuple[Tensor, bool]:
    """:func:`nonfinite_rows` of ``x (B, d)`` and, on CPU, whether any row is non-finite.

    Off CPU the flag is False (knowing it would cost a synchronisation); callers then mask
    unconditionally.
    """
    flat = x.reshape(x.shape[0], -1)
    if _branch_free(x.device):
        return ~torch.isfinite(flat).all(dim=1), False
    bad = ~torch.isfinite(flat.sum(dim=1))
    if not bool(bad.any()):
        return bad, False
    rows = bad.nonzero().squeeze(1)
    bad[rows] = ~torch.isfinite(flat[rows]).all(dim=1)
    return bad, bool(bad.any())


def _branch_free(device: torch.device) -> bool:
    """Mask unconditionally on ``device`` instead of testing first (True off CPU, where reading
    a flag back would cost a synchronisation)."""
    return device.type != "cpu"


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"a {type(x).__module__}.{type(x).__name__} of shape {tuple(x.shape)}"
    if isinstance(x, tuple | list):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"a {type(x).__name__}"


def _bad_output(name: str, out: object, want: str, shape: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"{name}: returned {_describe(out)}, expected a floating-point torch.Tensor of shape "
        f"{want} = {tuple(shape)}"
    )


def _check_sample(nxt: object, rew: object, shape: tuple[int, ...]) -> None:
    """Check an ensemble's ``sample`` output: ``next_obs (E, N, obs_dim)``, ``reward (E, N)``."""
    if not (isinstance(nxt, Tensor) and nxt.shape == shape):
        raise _bad_output("model.sample", nxt, "(E, N, obs_dim) as next_obs", shape)
    if rew is not None and not (isinstance(rew, Tensor) and rew.shape == shape[:2]):
        raise _bad_output("model.sample", rew, "(E, N) as reward", shape[:2])


def _empty_rollout(obs0: Tensor, actions: Tensor, member: Tensor | None) -> Rollout:
    """The rollout of ``H = 0`` steps from ``obs0 (B, obs_dim)``, ``actions (B, 0, act_dim)``."""
    b = obs0.shape[0]
    empty = torch.zeros(b, 0, dtype=obs0.dtype, device=obs0.device)
    return Rollout(
        obs=obs0.unsqueeze(1).clone(),
        actions=actions.clone(),
        rewards=empty,
        terminated=empty.to(torch.bool),
        member=member,
        diverged=torch.zeros(b, dtype=torch.bool, device=obs0.device),
    )


def _pad_rows(x: Tensor, pad: int) -> Tensor:
    """``x (B, ...)`` followed by ``pad`` copies of its rows, cycling (``pad`` may exceed B)."""
    if pad <= x.shape[0]:
        return torch.cat([x, x[:pad]], 0)
    return torch.cat([x, x[torch.arange(pad, device=x.device) % x.shape[0]]], 0)


def _tsinf_grouping(b: int, e: int, device: torch.device) -> Tensor:
    """Row order that groups ``B`` TS∞ particles (padded to ``E * ceil(B / E)``) by member.

    Particle ``b`` belongs to member ``b % E``; returns ``perm (E * N,)``, grouped position ->
    padded particle index, so that grouped row ``e * N + i`` holds particle ``i * E + e``.
    """
    n = -(-b // e)
    return torch.arange(n * e, device=device).view(n, e).t().reshape(-1)


def _gen_device(generator: torch.Generator | None) -> torch.device | None:
    return None if generator is None else generator.device
