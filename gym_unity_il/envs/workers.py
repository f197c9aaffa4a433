"""Where the Unity processes of a VecEnv run: the per-process worker and its two backends.

* :class:`AgentSlots`: the fixed slots of one behavior in one process (numpy bookkeeping:
  which agent is in which slot, whose decision is awaited, rewards, episode ends);
* :class:`ProcessWorker`: one :class:`~gym_unity_il.link.session.UnitySession` and the
  slots of one behavior in it; takes and returns numpy arrays only;
* :class:`LocalBackend`: the workers on threads of the learner's process, all in flight
  at once (gRPC waits release the GIL);
* :class:`RayBackend`: each worker in a Ray actor (:class:`WorkerHost`) on whichever node
  Ray places it, so a Ray cluster runs the Unity builds and the learner stays where it is.
  Needs ``pip install gym_unity_il[ray]``; uses the cluster ``ray.init()`` connected to, or
  starts a local one. Builds must exist at ``file_name`` on every node that may host an
  actor (place actors with options such as ``{"resources": {"unity": 1}}``).

Both backends offer the same calls: ``start`` (every worker; closes all and raises if one
fails), ``call`` (one method on every worker at once; a failed worker's place in the
result holds its exception, and the caller decides), ``restart`` (one worker closed and
started again, then reset) and ``close``.

This module imports neither Stable-Baselines3 nor torch, so Ray actors start quickly;
:mod:`gym_unity_il.envs.vec_env` builds the SB3 VecEnv on top of it, and
:mod:`gym_unity_il.envs.pettingzoo_env` uses :class:`AgentSlots` too. The rules that map
Unity's agents onto slots are described in :mod:`gym_unity_il.envs.vec_env`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gym_unity_il.errors import ConfigError, GymUnityILError
from gym_unity_il.link.codec import StepBatch
from gym_unity_il.link.session import UnitySession
from gym_unity_il.link.side_channels import StatsAggregationMethod
from gym_unity_il.spec import BehaviorSpec, ImageFormat

logger = logging.getLogger(__name__)

#: Messages a step may take before the env gives up on an agent that never decides.
MAX_MESSAGES = 10_000
#: Default number of messages a slot waits for its agent after an episode end or a reset.
VACANT_AFTER = 100

Stats = dict[str, list[tuple[float, StatsAggregationMethod]]]


def resolve_behavior(specs: Mapping[str, BehaviorSpec], behavior_name: str | None) -> str:
    """The fully qualified name of the behavior to control: ``behavior_name`` (with or
    without ``?team=N``), or the first behavior Unity announced.

    Raises:
        ConfigError: no behavior was announced, or ``behavior_name`` is not among them.
    """
    names = list(specs)
    if not names:
        raise ConfigError("Unity announced no behavior after the reset: does the scene contain an Agent?")
    if behavior_name is None:
        return names[0]
    for name in names:
        if behavior_name in (name, specs[name].behavior_name):
            return name
    raise ConfigError(f"behavior_name={behavior_name!r} is not in the scene; its behaviors are {names}")


# ---------------------------------------------------------------------------- slots


@dataclass(frozen=True)
class SlotBatch:
    """What the slots of one process report after a reset or a step (arrays over slots).

    Attributes:
        obs: one array per sensor, ``[n, *output_shape]``: each slot's latest observation.
        reward: ``float32 [n]`` rewards since the previous step.
        done: ``bool [n]`` the slot's episode ended during the step.
        truncated: ``bool [n]`` with ``done``: the episode was cut (``max_step_reached``).
        terminal_rows: ``int [k]`` the slots with ``done``.
        terminal_obs: one array per sensor, ``[k, *output_shape]``: their last observations.
        action_mask: ``bool [n, sum(branches)]`` (True = allowed), or None without discrete actions.
        agent_id: ``int64 [n]`` the agent in each slot (-1: vacant).
        stats: what Unity's StatsRecorder sent during the step.
    """

    obs: tuple[np.ndarray, ...]
    reward: np.ndarray
    done: np.ndarray
    truncated: np.ndarray
    terminal_rows: np.ndarray
    terminal_obs: tuple[np.ndarray, ...]
    action_mask: np.ndarray | None
    agent_id: np.ndarray
    stats: Stats = field(default_factory=dict)


class AgentSlots:
    """The fixed slots of one behavior in one process: numpy bookkeeping, no I/O.

    A reset or a step is: :meth:`begin_reset` / :meth:`begin_step`, then, for every
    message from Unity, :meth:`absorb` (and :meth:`actions` for the answer) until
    :meth:`ready` says every slot has its decision. See the module docstring for the rules.

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
        self.reward = np.zeros(n, np.float32)
        self.done = np.zeros(n, bool)
        self.truncated = np.zeros(n, bool)
        self.decided = np.zeros(n, bool)  # asked for a decision since the slot's action was delivered
        self.pending = np.zeros(n, bool)  # holds an action not delivered yet
        self.waiting = np.zeros(n, bool)  # waits for the first decision of an episode
        self.fresh = np.zeros(n, bool)  # began a new episode (or agent) in this step: rewards dropped
        self.waited = np.zeros(n, np.int64)  # messages spent waiting
        self._rows = np.zeros(0, np.intp)  # slot of each decision row of the last message (-1: none)
        self._cache_ids: np.ndarray | None = None
        self._cache_rows = self._rows
        self._sorted_ids = np.zeros(0, np.int64)
        self._sorted_slots = np.zeros(0, np.intp)
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
        self.pending[:] = self.agent >= 0

    def actions(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The answer for the agents deciding in the last absorbed message (None if none):
        their slot's action, all-zero for agents without a slot. Marks them delivered."""
        rows = self._rows
        if not rows.size:
            return None
        slots = rows[rows >= 0]
        self.pending[slots] = False
        return self.continuous[rows], self.discrete[rows]

    def absorb(self, decision: StepBatch, terminal: StepBatch) -> None:
        """Takes one message's decision and terminal steps of the behavior."""
        if len(terminal):
            self._absorb_terminal(terminal)
        rows = self._slots_of(decision.agent_id)
        if self.adopt and len(rows) and rows.min() < 0:
            rows = self._take_over(decision.agent_id, rows)
        self._rows = rows
        if len(rows):
            hit = rows >= 0
            slots = rows if hit.all() else rows[hit]
            pick = slice(None) if len(slots) == len(rows) else hit
            fresh = self.fresh[slots]
            reward = decision.reward[pick]
            self.reward[slots] += reward if not fresh.any() else np.where(fresh, np.float32(0.0), reward)
            for out, values in zip(self.obs, decision.obs):
                out[slots] = values[pick]
            if self.mask is not None and decision.action_mask is not None:
                self.mask[slots] = decision.action_mask[pick]
            self.waiting[slots] = False
            self.decided[slots] |= ~self.pending[slots]
        if self.waiting.any():
            self.waited[self.waiting] += 1
            gone = self.waiting & (self.waited > self.vacant_after)
            if gone.any():
                self._vacate(np.flatnonzero(gone))

    def ready(self) -> bool:
        """Whether every slot with an agent has its decision (vacant slots count as ready)."""
        return bool(np.all(self.decided | (self.agent < 0)))

    def unready_agents(self) -> list[int]:
        """The agents the slots still wait for (for error messages)."""
        return self.agent[~self.decided & (self.agent >= 0)].tolist()

    def result(self, stats: Stats | None = None) -> SlotBatch:
        """A copy of what the slots report now."""
        rows = np.flatnonzero(self.done)
        return SlotBatch(
            obs=tuple(o.copy() for o in self.obs),
            reward=self.reward.copy(),
            done=self.done.copy(),
            truncated=self.truncated.copy(),
            terminal_rows=rows,
            terminal_obs=tuple(t[rows] for t in self.terminal_obs),
            action_mask=None if self.mask is None else self.mask.copy(),
            agent_id=self.agent.copy(),
            stats=stats or {},
        )

    # ------------------------------------------------------------------ internals

    def _clear_step(self) -> None:
        self.reward[:] = 0.0
        self.done[:] = False
        self.truncated[:] = False
        self.decided[:] = False

    def _absorb_terminal(self, terminal: StepBatch) -> None:
        rows = self._slots_of(terminal.agent_id, cache=False)
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
        bound = np.flatnonzero(self.agent >= 0)
        order = np.argsort(self.agent[bound], kind="stable")
        self._sorted_ids = self.agent[bound][order]
        self._sorted_slots = bound[order]
        self._cache_ids = None

    def _slots_of(self, ids: np.ndarray, *, cache: bool = True) -> np.ndarray:
        """The slot of each agent id (-1 for agents without a slot)."""
        if cache and self._cache_ids is not None and np.array_equal(ids, self._cache_ids):
            return self._cache_rows
        if not len(self._sorted_ids):
            rows = np.full(len(ids), -1, np.intp)
        else:
            pos = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
            rows = np.where(self._sorted_ids[pos] == ids, self._sorted_slots[pos], -1).astype(np.intp)
        if cache:
            self._cache_ids, self._cache_rows = np.array(ids), rows
        return rows


def exchange_until_ready(session: UnitySession, slots: Mapping[str, AgentSlots], *, max_messages: int = MAX_MESSAGES) -> None:
    """Answers Unity's last message with the slots' actions and absorbs the next one, until
    every slot is ready (at least one exchange).

    Raises:
        GymUnityILError: some slot's agent did not decide within ``max_messages`` messages.
    """
    for _ in range(max_messages):
        actions = {name: a for name, s in slots.items() if (a := s.actions()) is not None}
        steps = session.step(actions)
        for name, s in slots.items():
            s.absorb(*steps[name])
        if all(s.ready() for s in slots.values()):
            return
    waiting = {name: s.unready_agents() for name, s in slots.items() if not s.ready()}
    raise GymUnityILError(
        f"agents {waiting} sent no decision in {max_messages} messages from Unity: were they disabled without ending "
        "their episode? Call reset()."
    )


def wait_for_ready(session: UnitySession, slots: Mapping[str, AgentSlots], *, max_messages: int = MAX_MESSAGES) -> None:
    """Like :func:`exchange_until_ready`, without an exchange when the slots are ready already."""
    if not all(s.ready() for s in slots.values()):
        exchange_until_ready(session, slots, max_messages=max_messages)


def first_decisions(session: UnitySession, steps: Mapping[str, tuple[StepBatch, StepBatch]], *, max_messages: int = MAX_MESSAGES) -> dict[str, tuple[StepBatch, StepBatch]]:
    """After a reset, lets the scene run (zero actions) until some agent asks for a decision;
    returns that message."""
    for _ in range(max_messages):
        if any(len(decision) for decision, _ in steps.values()):
            return dict(steps)
        steps = session.step()
    raise GymUnityILError(f"no agent asked for a decision in {max_messages} messages after the reset")


# ---------------------------------------------------------------------------- one process


@dataclass(frozen=True)
class WorkerInfo:
    """What a :class:`ProcessWorker` found at its first reset."""

    behavior_name: str
    spec: BehaviorSpec
    num_slots: int
    port: int
    process_id: int | None


class ProcessWorker:
    """One Unity process and the slots of one behavior in it.

    Runs where the process runs: on a thread of the learner, or in a Ray actor. Its
    methods take and return numpy arrays only.

    Args:
        session_kwargs: keyword arguments of :class:`~gym_unity_il.link.session.UnitySession`.
        behavior_name: the behavior to control (None: the first one announced).
        vacant_after: see :class:`AgentSlots`.
        max_messages: the most messages one step may take.
    """

    def __init__(
        self,
        *,
        session_kwargs: Mapping[str, Any],
        behavior_name: str | None = None,
        vacant_after: int = VACANT_AFTER,
        max_messages: int = MAX_MESSAGES,
    ) -> None:
        self.max_messages = max_messages
        self.session = UnitySession(**session_kwargs)
        try:
            steps = first_decisions(self.session, self.session.reset(), max_messages=max_messages)
            self.behavior = resolve_behavior(self.session.behavior_specs, behavior_name)
            spec = self.session.behavior_specs[self.behavior]
            decision, _ = steps[self.behavior]
            if not len(decision):
                raise GymUnityILError(f"no agent of {self.behavior!r} asked for a decision after the reset, so the env has no slot for it")
            self.slots = AgentSlots(
                spec=spec, agent_ids=decision.agent_id, image_format=self.session.image_format, vacant_after=vacant_after
            )
        except BaseException:
            self.session.close()
            raise

    def describe(self) -> WorkerInfo:
        return WorkerInfo(self.behavior, self.slots.spec, len(self.slots), self.session.port, self.session.process_id)

    def reset(self, seed: int | None = None, env_parameters: Mapping[str, float] | None = None) -> SlotBatch:
        """Resets every agent of the process and waits for every slot's first decision."""
        steps = self.session.reset(seed=seed, env_parameters=env_parameters)
        self.slots.begin_reset()
        self.slots.absorb(*steps[self.behavior])
        wait_for_ready(self.session, {self.behavior: self.slots}, max_messages=self.max_messages)
        return self.slots.result(self.session.take_stats())

    def step(self, continuous: np.ndarray, discrete: np.ndarray) -> SlotBatch:
        """Applies one action per slot and runs until every slot has its next decision."""
        self.slots.begin_step(continuous, discrete)
        exchange_until_ready(self.session, {self.behavior: self.slots}, max_messages=self.max_messages)
        return self.slots.result(self.session.take_stats())

    def close(self) -> None:
        self.session.close()


def restart_worker(
    old: ProcessWorker | None, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]
) -> tuple[ProcessWorker, SlotBatch]:
    """Closes ``old`` (its process may be gone already), starts a new worker with ``kwargs``
    and resets it with ``reset_args`` (``(seed, env_parameters)``); returns it and the
    reset's result. A new worker that fails is closed before the error propagates."""
    if old is not None:
        old.close()
    worker = ProcessWorker(**kwargs)
    try:
        return worker, worker.reset(*reset_args)
    except BaseException:
        worker.close()
        raise


# ---------------------------------------------------------------------------- local backend


class _WorkerThread:
    """A daemon thread that runs submitted calls in order until :meth:`stop`.

    A process started from this thread lives as long as the thread (Linux's parent-death
    signal follows the starting thread), so the thread lives as long as its worker.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        self._jobs.put((future, fn, args))
        return future

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

    def stop(self, timeout: float) -> None:
        self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class LocalBackend:
    """Runs the workers in this process: the first on the calling thread, each other one
    on a thread of its own, so that all processes are in flight at once."""

    def __init__(self) -> None:
        self._workers: list[ProcessWorker | None] = []  # None: failed to start
        self._threads: list[_WorkerThread | None] = []
        self._timeout = 60.0

    def start(self, worker_kwargs: Sequence[Mapping[str, Any]]) -> list[WorkerInfo]:
        """Starts every worker at once; if one fails, closes them all and raises its error."""
        self._timeout = max(float(k["session_kwargs"].get("timeout_wait", 60.0)) for k in worker_kwargs) + 10.0
        self._threads = [None] + [_WorkerThread(f"unity-worker-{i}") for i in range(1, len(worker_kwargs))]
        outcomes = self._run_all([(_make_worker, (kwargs,)) for kwargs in worker_kwargs])
        self._workers = [w if isinstance(w, ProcessWorker) else None for w in outcomes]
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            self.close()
            raise errors[0]
        return [w.describe() for w in self._workers if w is not None]

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Runs ``method`` on every worker at once; returns each worker's result, or the
        exception it raised (nothing is closed: the caller decides)."""
        if not self._workers:
            raise GymUnityILError("the Unity processes are closed")
        return self._run_all([(getattr(worker, method), a) for worker, a in zip(self._workers, args)])

    def restart(self, index: int, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, SlotBatch]:
        """Replaces worker ``index`` by a new one started with ``kwargs`` on the same thread
        (:func:`restart_worker`); returns its description and its first reset's result."""
        old, self._workers[index] = self._workers[index], None
        thread = self._threads[index]
        if thread is None:
            worker, batch = restart_worker(old, kwargs, reset_args)
        else:
            worker, batch = thread.submit(restart_worker, old, kwargs, reset_args).result()
        self._workers[index] = worker
        return worker.describe(), batch

    @property
    def sessions(self) -> list[UnitySession]:
        return [w.session for w in self._workers if w is not None]

    def close(self) -> None:
        """Closes every worker on its own thread (after any call in flight), then stops the threads."""
        workers, self._workers = self._workers, []
        threads, self._threads = self._threads, []
        pending = [thread.submit(worker.close) for worker, thread in zip(workers, threads) if worker is not None and thread is not None]
        if workers and workers[0] is not None:
            workers[0].close()  # worker 0 runs on the calling thread
        for future in pending:
            try:
                future.result(self._timeout)
            except BaseException:  # closing goes on: a failed session has ended its process already
                pass
        for thread in threads:
            if thread is not None:
                thread.stop(self._timeout)

    def _run_all(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Runs call i on worker i's thread (call 0 here), all at once; returns results or exceptions."""
        submitted = [thread.submit(fn, *args) if thread is not None else None for thread, (fn, args) in zip(self._threads, calls)]
        outcomes: list[Any] = []
        for future, (fn, args) in zip(submitted, calls):
            if future is None:
                try:
                    outcomes.append(fn(*args))
                except BaseException as exc:  # raised by the caller once every worker is done
                    outcomes.append(exc)
        for future in submitted[1:]:
            assert future is not None
            try:
                outcomes.append(future.result())
            except BaseException as exc:  # likewise
                outcomes.append(exc)
        return outcomes


def _make_worker(kwargs: Mapping[str, Any]) -> ProcessWorker:
    return ProcessWorker(**kwargs)


# ---------------------------------------------------------------------------- Ray backend


#: Seconds ``close()`` waits for an actor to close its Unity process before killing the actor.
CLOSE_TIMEOUT = 30.0


class WorkerHost:
    """The actor class: holds one :class:`ProcessWorker`.

    The worker is built by :meth:`start` rather than the constructor, so that its errors
    (a missing build, a timeout) reach the learner as themselves.
    """

    def __init__(self) -> None:
        self._worker: ProcessWorker | None = None

    def start(self, kwargs: Mapping[str, Any]) -> WorkerInfo:
        self._worker = ProcessWorker(**kwargs)
        return self._worker.describe()

    def reset(self, seed: int | None, env_parameters: Mapping[str, float] | None) -> SlotBatch:
        return self._require().reset(seed, env_parameters)

    def step(self, continuous: np.ndarray, discrete: np.ndarray) -> SlotBatch:
        return self._require().step(continuous, discrete)

    def restart(self, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, SlotBatch]:
        """Replaces the worker by a new one (:func:`restart_worker`), in this actor."""
        old, self._worker = self._worker, None
        self._worker, batch = restart_worker(old, kwargs, reset_args)
        return self._worker.describe(), batch

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _require(self) -> ProcessWorker:
        if self._worker is None:
            raise GymUnityILError("this Ray actor holds no Unity process (closed, or it failed to start)")
        return self._worker


class RayBackend:
    """Runs each worker in its own Ray actor (the interface of ``LocalBackend``).

    Args:
        actor_options: options for ``ActorClass.options(...)``, e.g. ``{"num_cpus": 1}``.

    Raises:
        ConfigError: Ray is not installed.
    """

    def __init__(self, *, actor_options: Mapping[str, Any] | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("ray=True needs Ray: pip install 'gym_unity_il[ray]'") from exc
        self._ray = ray
        self._actor_class = ray.remote(WorkerHost).options(**dict(actor_options or {}))
        self._actors: list[Any] = []

    def start(self, worker_kwargs: Sequence[Mapping[str, Any]]) -> list[WorkerInfo]:
        """Starts every worker at once; if one fails, closes them all and raises its error."""
        self._actors = [self._actor_class.remote() for _ in worker_kwargs]
        try:
            outcomes = self.call("start", [(kwargs,) for kwargs in worker_kwargs])
        except BaseException:
            self.close()
            raise
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            self.close()  # each actor closes after its call in flight: actors run calls in order
            raise errors[0]
        return outcomes

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Calls ``method`` on every actor at once; returns each actor's result, or the
        exception its call raised (nothing is closed: the caller decides). Ray re-raises
        an actor's exception as an instance of the original class too, so
        ``isinstance(outcome, UnityProcessExitedError)`` holds for a crashed process."""
        if not self._actors:
            raise GymUnityILError("the Unity processes are closed")
        refs = [getattr(actor, method).remote(*a) for actor, a in zip(self._actors, args)]
        outcomes: list[Any] = []
        for ref in refs:
            try:
                outcomes.append(self._ray.get(ref))
            except Exception as exc:  # handed to the caller, which closes everything or restarts the worker
                outcomes.append(exc)
        return outcomes

    def restart(self, index: int, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, SlotBatch]:
        """Replaces the worker of actor ``index`` (in the same actor) by a new one started
        with ``kwargs``; returns its description and its first reset's result."""
        return self._ray.get(self._actors[index].restart.remote(kwargs, reset_args))

    def close(self) -> None:
        """Asks every actor to close its Unity process, then ends the actors (idempotent)."""
        actors, self._actors = self._actors, []
        ray = self._ray
        if not actors or not ray.is_initialized():
            return  # with the cluster gone, its actors and their processes are gone too
        refs = [actor.close.remote() for actor in actors]
        try:
            ray.wait(refs, num_returns=len(refs), timeout=CLOSE_TIMEOUT)
        finally:
            for actor in actors:
                ray.kill(actor)
