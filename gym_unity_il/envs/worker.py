"""One Unity session driving the agent slots of N of its behaviors.

* :class:`SessionWorker`: one :class:`~gym_unity_il.link.session.UnitySession` and the
  :class:`~gym_unity_il.envs.slots.AgentSlots` of the behaviors it drives; takes and returns
  numpy arrays only, so it runs where its Unity process runs: on a thread of the learner
  or in a Ray actor (:mod:`gym_unity_il.envs.local_backend`, :mod:`gym_unity_il.envs.ray_backend`).
  The VecEnv drives one behavior per process with it, the PettingZoo env every behavior
  of its process, a teacher and its students two;
* :func:`resolve_behavior`: the behavior a user names, as Unity announced it;
* :func:`first_decisions`, :func:`exchange_until_ready`: the exchange loop with Unity.

This module imports neither Stable-Baselines3 nor torch, so Ray actors start quickly.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gym_unity_il.envs.slots import VACANT_AFTER, AgentSlots, SlotBatch
from gym_unity_il.envs.source import open_session
from gym_unity_il.errors import AgentNeverDecidesError, ConfigError
from gym_unity_il.link.session import Steps, UnitySession
from gym_unity_il.protocol.channels import Sampler, StatsAggregationMethod
from gym_unity_il.spec import BehaviorSpec
from gym_unity_il.timers import phase

#: Messages a step may take before the env gives up on an agent that never decides.
MAX_MESSAGES = 10_000

Stats = dict[str, list[tuple[float, StatsAggregationMethod]]]
#: Environment parameters: a number, or a sampler the scene draws a value from at each reset.
EnvParameters = Mapping[str, float | Sampler]


def resolve_behavior(
    specs: Mapping[str, BehaviorSpec], behavior_name: str | None, *, exclude: Collection[str] = (), unity_decides: Collection[str] = ()
) -> str:
    """The fully qualified name of the behavior to control: ``behavior_name`` (with or
    without ``?team=N``), or the first behavior Unity announced that is in neither ``exclude``
    nor ``unity_decides`` (behaviors the build decides itself: :func:`decided_by_unity`).

    Raises:
        ConfigError: no behavior was announced, ``behavior_name`` is not among them or is one
            the build decides itself, or every one is excluded.
    """
    names = list(specs)
    if not names:
        raise ConfigError("Unity announced no behavior after the reset: does the scene contain an Agent?")
    if behavior_name is None:
        free = [name for name in names if name not in exclude and name not in unity_decides]
        if not free:
            taken = f"; the build decides {sorted(unity_decides)} itself" if unity_decides else ""
            raise ConfigError(f"every behavior of the scene ({names}) is taken already{taken}; the scene needs one more behavior")
        return free[0]
    for name in names:
        if behavior_name in (name, specs[name].behavior_name):
            if name in unity_decides:
                raise ConfigError(
                    f"behavior {name!r} is decided by the build itself (a Player or other brain Python does not control): its "
                    f"agents take no actions from here. Drive one of {[n for n in names if n not in unity_decides]}, or learn from "
                    "it with online BC (brain_to_imitate)"
                )
            return name
    raise ConfigError(f"behavior_name={behavior_name!r} is not in the scene; its behaviors are {names}")


def decided_by_unity(session: UnitySession) -> list[str]:
    """The behaviors announced so far that the build decides itself (0.x Player brains), in order."""
    return [name for name in session.behavior_specs if not session.takes_actions(name)]


def first_decisions(session: UnitySession, steps: Steps, *, max_messages: int = MAX_MESSAGES) -> Steps:
    """After a reset, lets the scene run (zero actions) until some agent asks for a decision;
    returns that message.

    Raises:
        AgentNeverDecidesError: no agent asked within ``max_messages`` messages.
    """
    for _ in range(max_messages):
        if any(len(decision) for decision, _ in steps.values()):
            return dict(steps)
        steps = session.step()
    raise AgentNeverDecidesError(f"no agent asked for a decision in {max_messages} messages after the reset")


def exchange_until_ready(session: UnitySession, slots: Mapping[str, AgentSlots], *, max_messages: int = MAX_MESSAGES) -> None:
    """Answers Unity's last message with the slots' actions and absorbs the next one, until
    every slot is ready (at least one exchange).

    Raises:
        AgentNeverDecidesError: some slot's agent did not decide within ``max_messages`` messages.
    """
    for _ in range(max_messages):
        with phase("slots"):
            actions = {name: a for name, s in slots.items() if (a := s.actions()) is not None}
        steps = session.step(actions)
        with phase("slots"):
            ready = True
            for name, s in slots.items():
                s.absorb(*steps[name])
                ready = ready and s.ready()
        if ready:
            return
    waiting = {name: s.unready_agents() for name, s in slots.items() if not s.ready()}
    raise AgentNeverDecidesError(
        f"agents {waiting} sent no decision in {max_messages} messages from Unity: were they disabled without ending "
        "their episode? Call reset()."
    )


@dataclass(frozen=True)
class WorkerInfo:
    """What a :class:`SessionWorker` drives: its behaviors' specs and slots (in the order
    of ``behaviors``), and its process."""

    specs: dict[str, BehaviorSpec]
    num_agents: dict[str, int]
    port: int
    process_id: int | None


@dataclass(frozen=True)
class WorkerResult:
    """What a :class:`SessionWorker` reports after a reset or a step.

    Attributes:
        batches: behavior -> what its slots report.
        stats: what Unity's StatsRecorder sent during the call (empty without ``take_stats``).
    """

    batches: dict[str, SlotBatch]
    stats: Stats


class SessionWorker:
    """One Unity session and the agent slots of the behaviors it drives.

    Args:
        session: a live session; the worker owns it (closes it, also when the constructor fails).
        behaviors: the behaviors to drive, each with or without ``?team=N``; ``None`` in
            the list: the first behavior Unity announced that is not driven already.
            ``behaviors=None``: every behavior with a deciding agent after each reset.
            A function instead gets the behaviors Unity announced after the first reset
            and returns that list: for a caller that chooses, or refuses in its own terms
            (a teacher and its students), by what the scene announced.
        fixed_slots: True (VecEnv, teacher and students): the agents deciding after the
            first reset get the slots for the worker's life, an agent that ends an episode
            goes on in its slot and newcomers take over freed slots. False (PettingZoo):
            every reset gives the slots anew to the agents deciding first, and an agent
            leaves its slot at its episode end.
        vacant_after: see :class:`~gym_unity_il.envs.slots.AgentSlots`.
        max_messages: the most messages one reset or step may take.
        take_stats: True: each result carries what the scene's StatsRecorder sent during
            the call (taken from the session); False: it stays for ``session.take_stats()``.
        observe_unity_decided: whether ``behaviors`` may name a behavior the build decides
            itself (a 0.x Player brain): its slots observe, and the actions given for them are
            not sent (the teacher of online BC). ``None`` entries and ``behaviors=None`` never
            choose one.

    Raises:
        ConfigError: a behavior is not in the scene, named twice, or none is free for a ``None``.
        AgentNeverDecidesError: no agent of a behavior asked for a decision after the reset.
    """

    def __init__(
        self,
        session: UnitySession,
        *,
        behaviors: Sequence[str | None] | Callable[[Mapping[str, BehaviorSpec]], Sequence[str | None]] | None = (None,),
        fixed_slots: bool = True,
        vacant_after: int = VACANT_AFTER,
        max_messages: int = MAX_MESSAGES,
        take_stats: bool = True,
        observe_unity_decided: bool = False,
    ) -> None:
        self._slot_options: dict[str, Any] = {"auto_reset": fixed_slots, "adopt": fixed_slots, "vacant_after": vacant_after}
        self.session = session
        self.fixed_slots = fixed_slots
        self.max_messages = max_messages
        self.take_stats = take_stats
        self._observe_unity_decided = observe_unity_decided
        self._reset_parameters: dict[str, float] = {}  # a 0.x build's, for its next reset
        try:
            steps = first_decisions(session, session.reset(), max_messages=max_messages)
            if callable(behaviors):
                behaviors = behaviors(session.behavior_specs)
            self._behaviors = None if behaviors is None else self._resolve(behaviors)
            self.slots = self._slots_for(steps)
            if not fixed_slots:
                self._absorb_reset(steps)
        except BaseException:
            session.close()
            raise

    @classmethod
    def open(cls, session_kwargs: Mapping[str, Any], **options: Any) -> SessionWorker:
        """Starts a session with ``session_kwargs`` (the arguments of
        :func:`~gym_unity_il.envs.source.open_session`) and a worker on it with ``options``."""
        return cls(open_session(**session_kwargs), **options)

    @property
    def behaviors(self) -> list[str]:
        """The behaviors driven now (fully qualified), in order."""
        return list(self.slots)

    def describe(self) -> WorkerInfo:
        return WorkerInfo(
            specs={name: s.spec for name, s in self.slots.items()},
            num_agents={name: len(s) for name, s in self.slots.items()},
            port=self.session.port,
            process_id=self.session.process_id,
        )

    def set_env_parameters(self, parameters: EnvParameters) -> None:
        """Sets environment parameters of the process. A build of communication API 1.x gets
        them on the environment parameters channel with the next step or reset (in the order
        set); a 0.x build takes numbers only, as reset parameters of its next reset.

        Raises:
            ConfigError: a sampler for a 0.x build (nothing is set).
        """
        if self.session.has_side_channels:
            for key, value in parameters.items():
                self.session.environment_parameters.set_parameter(key, value)
            return
        samplers = sorted(key for key, value in parameters.items() if isinstance(value, Sampler))
        if samplers:
            version = self.session.unity_info.package_version if self.session.unity_info is not None else "0.x"
            raise ConfigError(
                f"environment parameter(s) {samplers}: samplers, but the build is ML-Agents {version}, whose reset parameters are "
                "numbers (samplers travel on the environment parameters side channel, which it has not): give each a constant value"
            )
        self._reset_parameters.update(parameters)  # type: ignore[arg-type]  # numbers only, checked above

    def reset(self, seed: int | None = None, env_parameters: EnvParameters | None = None) -> WorkerResult:
        """Resets every agent of the process and waits for every slot's first decision;
        ``env_parameters`` are set first (:meth:`set_env_parameters`)."""
        self.set_env_parameters(env_parameters or {})
        parameters, self._reset_parameters = self._reset_parameters, {}  # dropped if the build refuses one
        steps = self.session.reset(seed=seed, env_parameters=parameters)
        if not self.fixed_slots:
            steps = first_decisions(self.session, steps, max_messages=self.max_messages)
            self.slots = self._slots_for(steps)
        self._absorb_reset(steps)
        if not all(s.ready() for s in self.slots.values()):
            exchange_until_ready(self.session, self.slots, max_messages=self.max_messages)
        return self._result()

    def step(self, actions: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> WorkerResult:
        """Applies ``(continuous [n, c], discrete [n, d])`` per slot of every driven behavior
        and runs until every slot has its next decision."""
        for name, slots in self.slots.items():
            slots.begin_step(*actions[name])
        exchange_until_ready(self.session, self.slots, max_messages=self.max_messages)
        return self._result()

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ internals

    def _resolve(self, behaviors: Sequence[str | None]) -> list[str]:
        chosen: list[str] = []
        unity = decided_by_unity(self.session)
        for wanted in behaviors:
            refused = () if self._observe_unity_decided and wanted is not None else unity
            name = resolve_behavior(self.session.behavior_specs, wanted, exclude=chosen, unity_decides=refused)
            if name in chosen:
                raise ConfigError(f"behavior {name!r} is named twice; each behavior is driven once")
            chosen.append(name)
        return chosen

    def _slots_for(self, steps: Steps) -> dict[str, AgentSlots]:
        """Slots for the agents deciding in ``steps``, per driven behavior."""
        if self._behaviors is not None:
            names = self._behaviors
        else:
            names = [name for name, (decision, _) in steps.items() if len(decision) and self.session.takes_actions(name)]
        slots = {}
        for name in names:
            decision, _ = steps[name]
            if not len(decision):
                raise AgentNeverDecidesError(f"no agent of {name!r} asked for a decision after the reset, so the env has no slot for it")
            slots[name] = AgentSlots(
                spec=self.session.behavior_specs[name], agent_ids=decision.agent_id, image_format=self.session.image_format, **self._slot_options
            )
        return slots

    def _absorb_reset(self, steps: Steps) -> None:
        for name, slots in self.slots.items():
            slots.begin_reset()
            slots.absorb(*steps[name])

    def _result(self) -> WorkerResult:
        return WorkerResult({name: s.result() for name, s in self.slots.items()}, self.session.take_stats() if self.take_stats else {})


def restart_worker(old: SessionWorker | None, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[SessionWorker, WorkerResult]:
    """Closes ``old`` (its process may be gone already), starts a new worker with
    :meth:`SessionWorker.open` ``(**kwargs)`` and resets it with ``reset_args``
    (``(seed, env_parameters)``); returns it and the reset's result. A new worker that
    fails is closed before the error propagates."""
    if old is not None:
        old.close()
    worker = SessionWorker.open(**kwargs)
    try:
        return worker, worker.reset(*reset_args)
    except BaseException:
        worker.close()
        raise
