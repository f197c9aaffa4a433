"""Agent slots: which Unity agent of a behavior sits in which fixed place of an env, and its episode.

Pure bookkeeping over numpy arrays, no I/O: the worker (:mod:`gym_unity_il.envs.worker`)
hands every message of Unity to :meth:`AgentSlots.absorb` and sends back what
:meth:`AgentSlots.actions` says. The rules (which agents get slots, what an episode end,
a newcomer or a vanished agent does to a slot) are described in
:mod:`gym_unity_il.envs.vec_env`; the PettingZoo env uses the same slots, with agents
that leave at their episode end.

* :class:`AgentSlots`: the slots of one behavior in one Unity process;
* :class:`SlotBatch`: what they report after a reset or a step;
* :func:`join_batches`: the batches of several processes as one over all their slots;
* :func:`cut_episodes`: the batch of slots whose process was restarted in a step;
* :func:`split_batch_actions`: one batch of gymnasium actions as the slots' arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gym_unity_il.errors import SpecMismatchError
from gym_unity_il.spec import BehaviorSpec, ImageFormat

if TYPE_CHECKING:
    from gym_unity_il.protocol.agents import StepBatch

logger = logging.getLogger(__name__)

#: Default number of messages a slot waits for its agent after an episode end or a reset.
VACANT_AFTER = 100


@dataclass(slots=True)
class SlotBatch:
    """What the slots of one behavior in one process report after a reset or a step (arrays
    over slots). Read-only by convention.

    Attributes:
        obs: one array per sensor, ``[n, *output_shape]``: each slot's latest observation.
        reward: ``float32 [n]`` rewards since the previous step.
        done: ``bool [n]`` the slot's episode ended during the step.
        truncated: ``bool [n]`` with ``done``: the episode was cut (``max_step_reached``).
        terminal_rows: ``int [k]`` the slots with ``done``.
        terminal_obs: one array per sensor, ``[k, *output_shape]``: their last observations.
        action_mask: ``bool [n, sum(branches)]`` (True = allowed), or None without discrete actions.
        agent_id: ``int64 [n]`` the agent in each slot (-1: vacant).
        stored_actions: ``(continuous [n, c], discrete [n, d])``: the action each slot's agent
            carried out last, as the build reported it (0.x builds; for a behavior the build
            decides itself, the teacher's actions), else None.
    """

    obs: tuple[np.ndarray, ...]
    reward: np.ndarray
    done: np.ndarray
    truncated: np.ndarray
    terminal_rows: np.ndarray
    terminal_obs: tuple[np.ndarray, ...]
    action_mask: np.ndarray | None
    agent_id: np.ndarray
    stored_actions: tuple[np.ndarray, np.ndarray] | None = None


class AgentSlots:
    """The fixed slots of one behavior in one process: numpy bookkeeping, no I/O.

    A reset or a step is: :meth:`begin_reset` / :meth:`begin_step`, then, for every
    message from Unity, :meth:`absorb` (and :meth:`actions` for the answer) until
    :meth:`ready` says every slot has its decision.

    Args:
        spec: the behavior's spec.
        agent_ids: the agents that start in the slots, one per slot.
        image_format: the layout of image observations.
        auto_reset: True (VecEnv): a slot's agent that ends an episode continues in its
            slot with its next episode. False (PettingZoo): it leaves its slot for good.
        adopt: let agents without a slot take over freed or vacant slots.
        vacant_after: messages a slot waits for its agent after an episode end or a reset.
    """

    def __init__(
        self,
        *,
        spec: BehaviorSpec,
        agent_ids: np.ndarray,
        image_format: ImageFormat = "hwc_uint8",
        auto_reset: bool = True,
        adopt: bool = True,
        vacant_after: int = VACANT_AFTER,
    ) -> None:
        n = len(agent_ids)
        act = spec.action_spec
        self.spec = spec
        self.auto_reset = auto_reset
        self.adopt = adopt
        self.vacant_after = vacant_after
        self.agent = np.asarray(agent_ids, np.int64).copy()
        # One extra last row of zeros: the action of agents without a slot (row index -1).
        self.continuous = np.zeros((n + 1, act.continuous_size), np.float32)
        self.discrete = np.zeros((n + 1, act.discrete_size), np.int32)
        self.obs = [np.zeros((n, *o.output_shape(image_format)), o.output_dtype(image_format)) for o in spec.observation_specs]
        self.terminal_obs = [np.zeros_like(o) for o in self.obs]
        self.mask = np.ones((n, sum(act.discrete_branches)), bool) if act.discrete_branches else None
        self.stored: tuple[np.ndarray, np.ndarray] | None = None  # the actions the build reports, once it does
        self.reward = np.zeros(n, np.float32)
        self.done = np.zeros(n, bool)
        self.truncated = np.zeros(n, bool)
        self.decided = np.zeros(n, bool)  # asked for a decision since the slot's action was delivered
        self.pending = np.zeros(n, bool)  # holds an action not delivered yet
        self.waiting = np.zeros(n, bool)  # waits for the first decision of an episode
        self.fresh = np.zeros(n, bool)  # began a new episode (or agent) in this step: rewards dropped
        self.waited = np.zeros(n, np.int64)  # messages spent waiting
        self._rows = np.zeros(0, np.intp)  # slot of each decision row of the last message (-1: none)
        self._delivered: np.ndarray | slice = self._rows  # the slots among them (a slice: all, in order)
        self._known: dict[tuple[str, bytes], tuple[np.ndarray, np.ndarray | slice, np.ndarray | slice]] = {}  # see _deciding
        self._sorted_ids = np.zeros(0, np.int64)
        self._sorted_slots = np.zeros(0, np.intp)
        self._vacant = np.zeros(n, bool)
        self._no_terminal = (np.zeros(0, np.intp), tuple(t[:0] for t in self.terminal_obs))
        self._rebind()
        self._warned_extra = False

    def __len__(self) -> int:
        return len(self.agent)

    # ------------------------------------------------------------------ protocol

    def begin_reset(self) -> None:
        """Every slot waits for the first decision of its agent's new episode."""
        self._clear_step()
        self.pending[:] = False
        self.fresh[:] = True
        self.waiting[:] = self.agent >= 0
        self.waited[:] = 0
        self.continuous[:] = 0.0
        self.discrete[:] = 0

    def begin_step(self, continuous: np.ndarray, discrete: np.ndarray) -> None:
        """Takes one action per slot (``[n, c]`` and ``[n, d]``) for the agents' next decisions."""
        self._clear_step()
        self.fresh[:] = False
        self.continuous[:-1] = continuous
        self.discrete[:-1] = discrete
        np.logical_not(self._vacant, out=self.pending)

    def zero_actions(self) -> tuple[np.ndarray, np.ndarray]:
        """All-zero actions for every slot, ``(float32 [n, c], int32 [n, d])``, to fill in."""
        return np.zeros_like(self.continuous[:-1]), np.zeros_like(self.discrete[:-1])

    def actions(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The answer for the agents deciding in the last absorbed message (None if none):
        their slot's action, all-zero for agents without a slot. Marks them delivered."""
        rows = self._rows
        if not rows.size:
            return None
        self.pending[self._delivered] = False
        if isinstance(self._delivered, slice):  # every slot in order: the actions as they are
            return self.continuous[:-1], self.discrete[:-1]
        return self.continuous[rows], self.discrete[rows]

    def absorb(self, decision: StepBatch, terminal: StepBatch) -> None:
        """Takes one message's decision and terminal steps of the behavior."""
        if len(terminal):
            self._absorb_terminal(terminal)
        rows, slots, pick = self._deciding(decision.agent_id)
        self._rows, self._delivered = rows, slots
        if len(rows):
            fresh = self.fresh[slots]
            reward = decision.reward[pick]
            self.reward[slots] += np.where(fresh, np.float32(0.0), reward) if np.count_nonzero(fresh) else reward
            for out, values in zip(self.obs, decision.obs):
                out[slots] = values[pick]
            if self.mask is not None and decision.action_mask is not None:
                self.mask[slots] = decision.action_mask[pick]
            if decision.stored_actions is not None:
                if self.stored is None:
                    self.stored = self.zero_actions()
                for out, values in zip(self.stored, decision.stored_actions):
                    out[slots] = values[pick]
            self.waiting[slots] = False
            self.decided[slots] |= ~self.pending[slots]
        if np.count_nonzero(self.waiting):  # (count_nonzero: a few times quicker than any() on small arrays)
            self.waited[self.waiting] += 1
            gone = self.waiting & (self.waited > self.vacant_after)
            if np.count_nonzero(gone):
                self._vacate(np.flatnonzero(gone))

    def ready(self) -> bool:
        """Whether every slot with an agent has its decision (vacant slots count as ready)."""
        n = len(self.decided)
        return bool(np.count_nonzero(self.decided) == n or np.count_nonzero(self.decided | self._vacant) == n)

    def unready_agents(self) -> list[int]:
        """The agents the slots still wait for (for error messages)."""
        return self.agent[~self.decided & (self.agent >= 0)].tolist()

    def result(self) -> SlotBatch:
        """A copy of what the slots report now."""
        if np.count_nonzero(self.done):
            rows = np.flatnonzero(self.done)
            terminal_obs = tuple(t[rows] for t in self.terminal_obs)
        else:
            rows, terminal_obs = self._no_terminal
        return SlotBatch(
            obs=tuple(o.copy() for o in self.obs),
            reward=self.reward.copy(),
            done=self.done.copy(),
            truncated=self.truncated.copy(),
            terminal_rows=rows,
            terminal_obs=terminal_obs,
            action_mask=None if self.mask is None else self.mask.copy(),
            agent_id=self.agent.copy(),
            stored_actions=None if self.stored is None else (self.stored[0].copy(), self.stored[1].copy()),
        )

    # ------------------------------------------------------------------ internals

    def _clear_step(self) -> None:
        self.reward[:] = 0.0
        self.done[:] = False
        self.truncated[:] = False
        self.decided[:] = False

    def _absorb_terminal(self, terminal: StepBatch) -> None:
        rows = self._slots_of(terminal.agent_id)
        hit = rows >= 0
        if not hit.any():
            return
        slots = rows[hit]
        first = ~self.fresh[slots]  # the first end in this step; a later one is left out
        ends = slots[first]
        pick = np.flatnonzero(hit)[first]
        self.reward[ends] += terminal.reward[pick]
        self.done[ends] = True
        self.truncated[ends] = terminal.interrupted[pick]
        for out, values in zip(self.terminal_obs, terminal.obs):
            out[ends] = values[pick]
        self.decided[slots] = False
        self.pending[slots] = False
        if self.auto_reset:
            self.waiting[slots] = True
            self.fresh[slots] = True
            self.waited[slots] = 0
        else:  # the agent leaves: its slot reports the final observation from now on
            for out, values in zip(self.obs, terminal.obs):
                out[slots] = values[hit]
            self.agent[slots] = -1
            self._rebind()

    def _vacate(self, slots: np.ndarray) -> None:
        ended = slots[self.done[slots]]
        for out, last in zip(self.obs, self.terminal_obs):
            out[ended] = last[ended]
        self.agent[slots] = -1
        self.waiting[slots] = False
        self._rebind()

    def _take_over(self, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Gives slots that lost their agent to deciding agents without a slot."""
        newcomers = np.flatnonzero(rows < 0)
        freed = self.waiting & self.done & (self.agent >= 0)  # ended, and not back in this message
        freed[rows[rows >= 0]] = False
        free = np.concatenate([np.flatnonzero(self.agent < 0), np.flatnonzero(freed)])
        k = min(len(newcomers), len(free))
        if k < len(newcomers) and not self._warned_extra:
            self._warned_extra = True
            logger.warning(
                "behavior %r has more agents than slots (%d); agents without a slot get zero actions until a slot frees",
                self.spec.name,
                len(self),
            )
        if k == 0:
            return rows
        rows = rows.copy()
        taken = free[:k]
        self.agent[taken] = ids[newcomers[:k]]
        self.waiting[taken] = True
        self.fresh[taken] = True
        rows[newcomers[:k]] = taken
        self._rebind()
        return rows

    def _rebind(self) -> None:
        """Rebuilds the id lookup after the agents of the slots changed."""
        np.less(self.agent, 0, out=self._vacant)
        bound = np.flatnonzero(~self._vacant)
        order = np.argsort(self.agent[bound], kind="stable")
        self._sorted_ids = self.agent[bound][order]
        self._sorted_slots = bound[order]
        self._known.clear()

    def _deciding(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | slice, np.ndarray | slice]:
        """For the deciding agents ``ids`` of a message: their slots' rows (-1: none, after
        newcomers took over free slots), the slots among them and which of ``ids`` those are
        (slices when all are there in order). Remembered for lists of agents that all have a
        slot, until the slots' agents change (a message repeats its agents' order)."""
        key = (ids.dtype.char, ids.tobytes())
        known = self._known.get(key)
        if known is not None:
            return known
        rows = self._slots_of(ids)
        if self.adopt and len(rows) and rows.min() < 0:
            rows = self._take_over(ids, rows)
        hit = rows >= 0
        if hit.all():
            everyone = len(rows) == len(self) and bool((rows == np.arange(len(rows))).all())
            known = (rows, slice(None) if everyone else rows, slice(None))
            if len(self._known) < 8:
                self._known[key] = known
            return known
        return rows, rows[hit], hit

    def _slots_of(self, ids: np.ndarray) -> np.ndarray:
        """The slot of each agent id (-1 for agents without a slot)."""
        if not len(self._sorted_ids):
            return np.full(len(ids), -1, np.intp)
        pos = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
        return np.where(self._sorted_ids[pos] == ids, self._sorted_slots[pos], -1).astype(np.intp)


def join_batches(parts: Sequence[SlotBatch], offsets: np.ndarray) -> SlotBatch:
    """The batches of several processes as one over all their slots; process ``p``'s slots
    start at row ``offsets[p]``."""
    if len(parts) == 1:
        return parts[0]
    masks = [p.action_mask for p in parts]
    stored = [p.stored_actions for p in parts]
    return SlotBatch(
        obs=tuple(np.concatenate(arrays) for arrays in zip(*(p.obs for p in parts))),
        reward=np.concatenate([p.reward for p in parts]),
        done=np.concatenate([p.done for p in parts]),
        truncated=np.concatenate([p.truncated for p in parts]),
        terminal_rows=np.concatenate([p.terminal_rows + lo for p, lo in zip(parts, offsets)]),
        terminal_obs=tuple(np.concatenate(arrays) for arrays in zip(*(p.terminal_obs for p in parts))),
        action_mask=None if masks[0] is None else np.concatenate(masks),  # type: ignore[arg-type]
        agent_id=np.concatenate([p.agent_id for p in parts]),
        stored_actions=None if any(s is None for s in stored) else tuple(np.concatenate(a) for a in zip(*stored)),  # type: ignore[arg-type]
    )


def cut_episodes(first: SlotBatch, last_obs: Sequence[np.ndarray]) -> SlotBatch:
    """What the slots of a process restarted during a step report: every episode ends there,
    cut (``truncated``), with reward 0 and ``last_obs`` (the slots' observations before the
    failure) as terminal observations; ``first`` (the new process's reset) gives the rest."""
    n = len(first.agent_id)
    return SlotBatch(
        obs=first.obs,
        reward=np.zeros(n, np.float32),
        done=np.ones(n, bool),
        truncated=np.ones(n, bool),
        terminal_rows=np.arange(n),
        terminal_obs=tuple(np.array(o) for o in last_obs),
        action_mask=first.action_mask,
        agent_id=first.agent_id,
        stored_actions=first.stored_actions,
    )


def split_batch_actions(actions: Any, spec: BehaviorSpec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(continuous float32 [n, c], discrete int32 [n, d])`` from a batch of ``n`` actions in
    the gymnasium form of ``spec`` (hybrid: ``{"continuous": ..., "discrete": ...}`` or ``n`` such dicts).

    Raises:
        SpecMismatchError: wrong shapes, discrete actions that are not whole numbers or
            outside the branch sizes.
    """
    act = spec.action_spec
    c, d = act.continuous_size, act.discrete_size
    if act.is_hybrid:
        if isinstance(actions, Mapping):
            cont, disc = actions.get("continuous"), actions.get("discrete")
        else:
            rows = list(actions)
            whole = len(rows) == n and all(isinstance(r, Mapping) and {"continuous", "discrete"} <= set(r) for r in rows)
            cont = [r["continuous"] for r in rows] if whole else None
            disc = [r["discrete"] for r in rows] if whole else None
        if cont is None or disc is None:
            raise SpecMismatchError(f"hybrid actions must be {{'continuous': [{n}, {c}], 'discrete': [{n}, {d}]}} or {n} dicts with those keys")
    elif c:
        cont, disc = actions, np.zeros((n, 0), np.int32)
    else:
        cont, disc = np.zeros((n, 0), np.float32), actions
    cont = np.asarray(cont, np.float32)
    disc = np.asarray(disc)
    if cont.size != n * c or disc.size != n * d:
        raise SpecMismatchError(
            f"actions of shapes {cont.shape} and {disc.shape} for {n} slots; {spec.describe()} needs {c} continuous and {d} discrete value(s) per slot"
        )
    disc = disc.reshape(n, d)
    if d:
        if disc.dtype.kind == "f" and not np.all(np.mod(disc, 1) == 0):
            raise SpecMismatchError("discrete actions must hold whole numbers")
        disc = disc.astype(np.int32)
        if (disc < 0).any() or (disc >= np.asarray(act.discrete_branches)).any():
            raise SpecMismatchError(f"discrete actions outside the branch sizes {act.discrete_branches}")
    return cont.reshape(n, c), disc.astype(np.int32, copy=False)
