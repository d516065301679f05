"""Monte Carlo tree search (UCT) over a deterministic model, for discrete and continuous actions.

Every tree node holds a model-predicted state. One *simulation* is:

1. **selection**: from the root, descend by the UCT score
   ``Qn(child) + c_uct * sqrt(ln N(parent) / N(child))``, where ``Qn`` is the child's mean
   return ``W / N`` min-max normalised over the tree (as in MuZero), so that ``c_uct`` does not
   depend on the reward scale;
2. **expansion**: discrete actions: the first visit of a node expands *all* ``num_actions``
   children in one batched model step. Continuous actions: *progressive widening*: a node with
   ``N`` visits may have at most ``ceil(widening_k * N ** widening_alpha)`` children; while
   below that, one new child is added, its action drawn uniformly within the bounds (the warm
   start's action first, on the warm-start path);
3. **evaluation**: each new leaf's value is ``r + discount * G`` where ``G`` is the mean return of
   ``rollouts_per_leaf`` random default-policy rollouts of ``rollout_horizon`` steps from the
   leaf's state, all leaves of the simulation in *one* :meth:`ModelEnv.rollout` call (``G = 0``
   if the transition into the leaf terminated);
4. **backup**: the discounted return is added to ``W`` and ``N`` of every node on the path.

Simulations run in batches of ``leaf_batch``: leaves are selected one after another with
*virtual visits* on their paths (each counted as the worst value in the tree, so later selections
of the batch spread out), then all their expansions go through one batched model step and all
new leaves through one batched rollout. ``leaf_batch=1`` is plain sequential UCT.

The tree is at most ``horizon`` deep. The plan is the path of most-visited children; where the
tree is shallower than ``horizon`` it is padded with the middle of the bounds (discrete: action
0). A model producing non-finite states or values makes that child invalid (never selected).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from envs.task import Task
from mbrl.models.model_env import ModelEnv
from mbrl.planning.base import Planner, PlanResult, check_positive_int, rand
from mbrl.planning.config import Model, PlannerConfig
from mbrl.util.config import default_of

Tensor = torch.Tensor


class _Node:
    """A tree node: state reached by ``action`` from the parent, with reward and statistics."""

    __slots__ = (
        "state",
        "action",
        "reward",
        "terminal",
        "parent",
        "children",
        "n",
        "w",
        "vn",
        "pending",
        "depth",
        "invalid",
        "on_warm_path",
    )

    def __init__(
        self,
        state: Tensor,
        action: Tensor | None,
        reward: float,
        terminal: bool,
        parent: _Node | None,
        depth: int,
    ) -> None:
        self.state = state
        self.action = action
        self.reward = reward
        self.terminal = terminal
        self.parent = parent
        self.children: list[_Node] = []
        self.n = 0
        self.w = 0.0
        self.vn = 0  # virtual visits of the current batch of selections
        self.pending = 0  # children requested in the current batch, not yet created
        self.depth = depth
        self.invalid = False
        self.on_warm_path = False


class MCTSPlanner(Planner):
    """UCT tree search with random-rollout leaf values.

    Args:
        model_env: rollout engine over a *deterministic* model (a plain callable, or an ensemble
            with ``propagation="expectation"``).
        horizon: maximum tree depth and length of the returned plan.
        action_low: ``(act_dim,)`` lower bounds (for a discrete task ``0``).
        action_high: ``(act_dim,)`` upper bounds (for a discrete task ``n - 1``).
        num_actions: ``n`` for a discrete task (then ``act_dim`` must be 1), else ``None``.
        simulations: leaf evaluations per :meth:`plan` call (a discrete expansion evaluates all
            its children, so the last one may add up to ``num_actions - 1`` more).
        c_uct: exploration constant ``c``.
        rollout_horizon: default-policy rollout length from a leaf (0: leaves valued by their
            reward only).
        rollouts_per_leaf: random rollouts averaged per leaf (batched).
        widening_k: progressive widening factor ``k`` (continuous actions only).
        widening_alpha: progressive widening exponent ``alpha`` (continuous actions only).
        discount: per-step discount.
        leaf_batch: leaves selected per batch (with virtual visits, "virtual loss"), expanded in
            one model step and evaluated in one rollout call; 1 gives sequential UCT.
    """

    def __init__(
        self,
        model_env: ModelEnv,
        horizon: int,
        action_low: Tensor | np.ndarray | float,
        action_high: Tensor | np.ndarray | float,
        *,
        num_actions: int | None = None,
        simulations: int = 200,
        c_uct: float = 1.0,
        rollout_horizon: int = 20,
        rollouts_per_leaf: int = 8,
        widening_k: float = 1.0,
        widening_alpha: float = 0.5,
        discount: float = 1.0,
        leaf_batch: int = 8,
    ) -> None:
        super().__init__(horizon, action_low, action_high)
        if not isinstance(model_env, ModelEnv):
            raise TypeError(f"model_env: expected a ModelEnv, got {type(model_env).__name__}")
        if model_env.is_ensemble and model_env.propagation != "expectation":
            raise ValueError(
                "model_env: MCTS needs a deterministic model; use propagation='expectation' "
                f"for an ensemble (got {model_env.propagation!r})"
            )
        if num_actions is not None:
            if isinstance(num_actions, bool) or not isinstance(num_actions, int) or num_actions < 1:
                raise ValueError(
                    f"num_actions: expected a positive int or None, got {num_actions!r}"
                )
            if self.act_dim != 1:
                raise ValueError(
                    f"num_actions: discrete actions need act_dim 1, got {self.act_dim}"
                )
        counts = (
            ("simulations", simulations),
            ("rollouts_per_leaf", rollouts_per_leaf),
            ("leaf_batch", leaf_batch),
        )
        for name, v in counts:
            check_positive_int(name, v)
        if (
            isinstance(rollout_horizon, bool)
            or not isinstance(rollout_horizon, int)
            or rollout_horizon < 0
        ):
            raise ValueError(f"rollout_horizon: expected an int >= 0, got {rollout_horizon!r}")
        if not c_uct >= 0:
            raise ValueError(f"c_uct: expected >= 0, got {c_uct}")
        if not widening_k > 0 or not 0 <= widening_alpha <= 1:
            raise ValueError(
                f"widening_k, widening_alpha: expected k > 0 and 0 <= alpha <= 1, got "
                f"{widening_k}, {widening_alpha}"
            )
        if not 0 < discount <= 1:
            raise ValueError(f"discount: expected 0 < discount <= 1, got {discount}")
        self.model_env = model_env
        self.num_actions = num_actions
        self.simulations = simulations
        self.c_uct = float(c_uct)
        self.rollout_horizon = rollout_horizon
        self.rollouts_per_leaf = rollouts_per_leaf
        self.widening_k = float(widening_k)
        self.widening_alpha = float(widening_alpha)
        self.discount = float(discount)
        self.leaf_batch = leaf_batch

    # ------------------------------------------------------------------ public
    def plan(
        self,
        obs: Tensor,
        init_actions: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Search from ``obs (obs_dim,)``; see :meth:`Planner.plan`.

        ``init_actions`` marks a warm-start path whose actions are tried first when expanding
        (continuous) or whose children are preferred on ties (discrete).
        """
        t0 = time.perf_counter()
        obs, low, high = self.prepare(obs)
        warm = self.warm_start(obs, init_actions, self.num_actions)
        self._low, self._high, self._gen, self._warm = low, high, generator, warm
        self._qmin, self._qmax = math.inf, -math.inf
        self._steps = 0
        root = _Node(obs, None, 0.0, False, None, 0)
        root.on_warm_path = warm is not None
        evaluated = 0
        while evaluated < self.simulations:
            # Select up to leaf_batch leaves with virtual visits, expand them in one model
            # step, evaluate all new leaves in one rollout, then back up.
            expansions: list[tuple[_Node, Tensor]] = []
            reevaluate: list[_Node] = []
            budget = self.simulations - evaluated
            while len(expansions) + len(reevaluate) < min(self.leaf_batch, budget):
                leaf = self._select(root)
                if leaf is None:
                    break
                path_node: _Node | None = leaf
                while path_node is not None:
                    path_node.vn += 1
                    path_node = path_node.parent
                if leaf.terminal or leaf.depth >= self.horizon:
                    reevaluate.append(leaf)
                    continue
                acts = self._new_actions(leaf)
                leaf.pending += acts.shape[0]
                expansions.extend((leaf, a) for a in acts)
            if not expansions and not reevaluate:
                break  # every branch is invalid
            new = self._expand(expansions) + reevaluate
            self._clear_virtual(root)
            if new:
                self._evaluate_and_backup(new)
            evaluated += len(new) if new else len(expansions)
        valid = [c for c in root.children if not c.invalid and c.n > 0]
        if not valid:
            raise RuntimeError(
                "planning failed: every root action led to a non-finite model prediction"
            )
        actions, value = self._extract(root)
        info = {
            "simulations": float(evaluated),
            "model_steps": float(self._steps),
            "tree_size": float(self._count(root)),
            "root_children": float(len(root.children)),
            "time_s": time.perf_counter() - t0,
        }
        return PlanResult(actions=actions, value=value, info=info)

    # ------------------------------------------------------------------ search
    def _score(self, parent: _Node, child: _Node) -> float:
        # Virtual visits count as the worst value seen (normalised 0): "virtual loss".
        n = max(child.n + child.vn, 1)
        span = self._qmax - self._qmin
        if child.n == 0:
            qn = 0.0
        elif span > 0:
            qn = child.n * (child.w / child.n - self._qmin) / span / n
        else:
            qn = 0.5 * child.n / n
        return qn + self.c_uct * math.sqrt(math.log(max(parent.n + parent.vn, 1)) / n)

    def _may_widen(self, node: _Node) -> bool:
        if self.num_actions is not None:
            return not node.children and not node.pending
        limit = math.ceil(self.widening_k * max(node.n + node.vn, 1) ** self.widening_alpha)
        valid = sum(1 for c in node.children if not c.invalid)  # invalid ones are replaced
        return valid + node.pending < limit

    def _select(self, root: _Node) -> _Node | None:
        """Descend by UCT to a node to expand or re-evaluate; None if nothing is selectable."""
        node = root
        while True:
            if node.terminal or node.depth >= self.horizon or self._may_widen(node):
                return node
            valid = [c for c in node.children if not c.invalid]
            if not valid:
                if node.pending:
                    return None  # its children are being created in this batch
                node.invalid = True
                if node.parent is None:
                    return None
                node = root  # restart the descent without the dead branch
                continue
            node = max(valid, key=lambda c: (self._score(node, c), c.on_warm_path))

    def _new_actions(self, node: _Node) -> Tensor:
        """Actions ``(M, act_dim)`` of the children to add to ``node``."""
        like = self._low
        if self.num_actions is not None:
            return torch.arange(self.num_actions, dtype=like.dtype, device=like.device)[:, None]
        if node.on_warm_path and not node.children and not node.pending:
            return self._warm[node.depth].unsqueeze(0)
        u = rand((1, self.act_dim), self._gen, like)
        return self._low + u * (self._high - self._low)

    def _expand(self, expansions: list[tuple[_Node, Tensor]]) -> list[_Node]:
        """Create the requested children with one batched model step; return the valid ones."""
        if not expansions:
            return []
        states = torch.stack([node.state for node, _ in expansions])
        acts = torch.stack([a for _, a in expansions])
        with torch.no_grad():
            nxt, rew = self.model_env.step(states, acts, self._gen)
            term = self.model_env.termination_fn(states, acts, nxt).reshape(-1).to(torch.bool)
        self._steps += acts.shape[0]
        ok = (torch.isfinite(nxt).all(dim=1) & torch.isfinite(rew)).tolist()
        rew_l, term_l = rew.tolist(), term.tolist()
        created = []
        for i, (node, a) in enumerate(expansions):
            child = _Node(nxt[i], a, float(rew_l[i]), bool(term_l[i]), node, node.depth + 1)
            if node.on_warm_path:
                child.on_warm_path = bool(torch.equal(a, self._warm[node.depth]))
            child.invalid = not ok[i]
            node.pending -= 1
            node.children.append(child)
            if not child.invalid:
                created.append(child)
        return created

    def _clear_virtual(self, root: _Node) -> None:
        stack = [root]
        while stack:
            n = stack.pop()
            if n.vn:
                n.vn = 0
                stack.extend(n.children)

    def _random_policy(self, obs: Tensor) -> Tensor:
        u = rand((obs.shape[0], self.act_dim), self._gen, obs)
        if self.num_actions is not None:
            return torch.floor(u * self.num_actions).clamp(max=self.num_actions - 1)
        return self._low + u * (self._high - self._low)

    def _evaluate_and_backup(self, leaves: list[_Node]) -> None:
        values = [0.0] * len(leaves)
        live = [i for i, n in enumerate(leaves) if not n.terminal]
        if live and self.rollout_horizon > 0:
            r = self.rollouts_per_leaf
            starts = torch.stack([leaves[i].state for i in live]).repeat_interleave(r, dim=0)
            with torch.no_grad():
                ro = self.model_env.rollout(
                    starts,
                    policy=self._random_policy,
                    horizon=self.rollout_horizon,
                    generator=self._gen,
                )
            self._steps += starts.shape[0] * self.rollout_horizon
            g = ro.returns(self.discount).reshape(len(live), r).mean(1)
            for j, i in enumerate(live):
                values[i] = float(g[j])
        for leaf, v in zip(leaves, values, strict=True):
            ret = leaf.reward + self.discount * v
            if not math.isfinite(ret):
                leaf.invalid = True
                continue
            node: _Node | None = leaf
            while node is not None:
                node.n += 1
                if node.parent is not None:
                    node.w += ret
                    q = node.w / node.n
                    self._qmin, self._qmax = min(self._qmin, q), max(self._qmax, q)
                    ret = node.parent.reward + self.discount * ret
                node = node.parent

    # ------------------------------------------------------------------ result
    def _extract(self, root: _Node) -> tuple[Tensor, float]:
        low, high = self._low, self._high
        if self.num_actions is not None:
            pad = torch.zeros(self.act_dim, dtype=low.dtype, device=low.device)
        else:
            pad = (low + high) / 2
        actions = pad.expand(self.horizon, self.act_dim).clone()
        node, value = root, float("nan")
        for t in range(self.horizon):
            valid = [c for c in node.children if not c.invalid and c.n > 0]
            if not valid:
                break
            best = max(valid, key=lambda c: (c.n, c.w / c.n))
            if t == 0:
                value = best.w / best.n
            actions[t] = best.action
            node = best
        return actions, value

    def _count(self, root: _Node) -> int:
        stack, total = [root], 0
        while stack:
            n = stack.pop()
            total += 1
            stack.extend(n.children)
        return total


@dataclass
class MCTSConfig(PlannerConfig):
    """:class:`MCTSPlanner` settings (defaults from its signature). MCTS plans through the
    model's deterministic mean (``"expectation"`` propagation).

    Attributes:
        discount: per-step discount of returns in the tree.
        simulations: tree simulations (selection-expansion-evaluation-backup) per plan.
        c_uct: exploration constant ``c`` of ``Q/N + c sqrt(ln N_parent / N)``.
        rollout_horizon: steps of the random default-policy rollout from a leaf.
        rollouts_per_leaf: random rollouts averaged per leaf evaluation (batched).
        widening_k, widening_alpha: progressive widening (continuous actions): at most
            ``ceil(k * N ** alpha)`` children after ``N`` visits.
        leaf_batch: leaves selected (with virtual loss) and evaluated per batched model call.
    """

    name: str = "mcts"
    discount: float = default_of(MCTSPlanner, "discount")
    simulations: int = default_of(MCTSPlanner, "simulations")
    c_uct: float = default_of(MCTSPlanner, "c_uct")
    rollout_horizon: int = default_of(MCTSPlanner, "rollout_horizon")
    rollouts_per_leaf: int = default_of(MCTSPlanner, "rollouts_per_leaf")
    widening_k: float = default_of(MCTSPlanner, "widening_k")
    widening_alpha: float = default_of(MCTSPlanner, "widening_alpha")
    leaf_batch: int = default_of(MCTSPlanner, "leaf_batch")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("simulations", "rollouts_per_leaf", "leaf_batch")

    def create(self, model: Model, task: Task, use_learned_reward: bool) -> MCTSPlanner:
        env = ModelEnv(
            model, task, propagation="expectation", use_learned_reward=use_learned_reward
        )
        return MCTSPlanner(
            env,
            self.horizon,
            task.action_low,
            task.action_high,
            num_actions=task.num_actions,
            simulations=self.simulations,
            c_uct=self.c_uct,
            rollout_horizon=self.rollout_horizon,
            rollouts_per_leaf=self.rollouts_per_leaf,
            widening_k=self.widening_k,
            widening_alpha=self.widening_alpha,
            discount=self.discount,
            leaf_batch=self.leaf_batch,
        )
