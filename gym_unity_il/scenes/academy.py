"""The Academy loop shared by the built-in scenes: decisions, episode ends and records.

:class:`AcademyScene` holds every agent of a scene in numpy arrays and runs Unity's
Academy cycle over them, so a scene only writes its physics, its observations and how one
agent's episode begins:

* every agent asks for a decision every ``decision_period`` Academy steps and repeats its
  last action in between; rewards of the steps in between add up;
* an agent whose episode ends (its own terminal condition, or ``max_steps`` Academy steps:
  ``max_step_reached``) stops moving until the period is over; then it sends its terminal
  record, starts a new episode at once and asks for its first decision in the same message;
* a message lists the terminal records first (by agent id), then one decision record per
  agent (by agent id), per behavior.

Because all agents decide at the same Academy steps, every message carries every agent,
which is what a vectorised env over the agents wants. Randomness comes from one
``numpy.random.Generator``, seeded by the constructor's ``seed`` and re-seeded by the
environment parameter ``gym_unity_il.seed`` at the next :meth:`reset`.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.protocol.channels import SEED_PARAMETER
from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import BehaviorSpec



def require_int(scene: str, label: str, value: object, low: int | None) -> int:
    """``value`` as an int, or a ``ValueError`` naming the scene argument when it is not a
    whole number at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise ValueError(f"scene {scene!r}: argument {label} must be an integer{bound}, got {value!r}")
    return int(value)


class AcademyScene(Scene):
    """A scene whose agents live in numpy arrays and decide in lockstep.

    Subclasses define :meth:`_behavior_layout` and the four simulation hooks; every
    behavior of a scene shares one action spec and one set of agent arrays, each behavior
    owning a contiguous range of agent indices.

    Args:
        num_agents: number of agents (all behaviors together).
        max_steps: Academy steps after which an episode is cut (``max_step_reached``);
            0 means no limit.
        decision_period: Academy steps between two decisions of an agent.
        seed: seed of the scene's random generator.
    """

    #: Environment parameters the scene understands, with their defaults.
    parameter_defaults: ClassVar[dict[str, float]] = {}

    def __init__(self, *, num_agents: int, max_steps: int, decision_period: int, seed: int) -> None:
        self.num_agents = require_int(self.name, "num_agents", num_agents, 1)
        self.max_steps = require_int(self.name, "max_steps", max_steps, 0)
        self.decision_period = require_int(self.name, "decision_period", decision_period, 1)
        seed = require_int(self.name, "seed", seed, None)
        self.parameters: dict[str, float] = dict(self.parameter_defaults)
        self._pending_seed: int | None = seed
        self._rng = np.random.default_rng(seed % 2**32)  # replaced at once by reset()
        self._layout = self._behavior_layout()
        if sum(count for _, count in self._layout) != self.num_agents:
            raise ValueError(f"scene {self.name!r}: behavior layout does not cover the {self.num_agents} agents")
        action_specs = {spec.action_spec for spec, _ in self._layout}
        if len(action_specs) != 1:
            raise ValueError(f"scene {self.name!r}: all behaviors must share one action spec")
        self.action_spec = action_specs.pop()
        self._ranges: dict[str, slice] = {}
        start = 0
        for spec, count in self._layout:
            self._ranges[spec.name] = slice(start, start + count)
            start += count
        n = self.num_agents
        self._agent_ids = np.arange(n, dtype=np.int32)
        self._everyone = np.arange(n)
        self._branches = np.asarray(self.action_spec.discrete_branches, np.int64)
        self._continuous = np.zeros((n, self.action_spec.continuous_size), np.float32)
        self._discrete = np.zeros((n, self.action_spec.discrete_size), np.int32)
        self._steps = np.zeros(n, np.int64)
        self._batches: dict[str, AgentBatch] = {}
        self._create_state()
        self.reset()

    # ----------------------------------------------------------------- subclass hooks

    @abc.abstractmethod
    def _behavior_layout(self) -> list[tuple[BehaviorSpec, int]]:
        """The behaviors in agent-index order, each with its number of agents."""

    @abc.abstractmethod
    def _create_state(self) -> None:
        """Allocates the per-agent state arrays (``self.num_agents`` rows)."""

    @abc.abstractmethod
    def _begin_episodes(self, agents: np.ndarray) -> None:
        """Starts a new episode for the agents at these indices, drawing from ``self._rng``."""

    @abc.abstractmethod
    def _physics_step(self, continuous: np.ndarray, discrete: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Simulates one Academy step for the ``live`` agents (the others must not change).

        Args:
            continuous: ``float32 [n, c]`` actions, clipped to [-1, 1].
            discrete: ``int32 [n, d]`` actions, within the branch sizes.
            live: ``bool [n]`` agents still in their episode.

        Returns:
            ``(reward float32 [n], ended bool [n])`` for this step; entries of agents that
            are not live are ignored.
        """

    @abc.abstractmethod
    def _observations(self, agents: np.ndarray) -> list[np.ndarray]:
        """The observations of the agents at these indices, one ``[k, *shape]`` array per sensor."""

    def _action_mask(self, agents: np.ndarray) -> np.ndarray | None:
        """``bool [k, sum(branches)]`` with True = allowed, or None when everything is allowed."""
        return None

    def _picture(self, agent: int, height: int, width: int) -> np.ndarray | None:
        """A picture of the area of the agent at this index (see :meth:`Scene.render`); None by default."""
        return None

    # ------------------------------------------------------------------ Scene contract

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {spec.name: spec for spec, _ in self._layout}

    def set_parameter(self, key: str, value: float) -> None:
        """Stores an environment parameter; ``gym_unity_il.seed`` re-seeds at the next reset.

        Other known keys (see :attr:`parameter_defaults`) act from the next Academy step;
        unknown keys are ignored, as a Unity scene ignores parameters it never reads.
        """
        if key == SEED_PARAMETER:
            self._pending_seed = int(value)
        elif key in self.parameters:
            self.parameters[key] = float(value)

    def render(self, agent_id: int, height: int, width: int) -> np.ndarray | None:
        """A picture of the agent's area (agent ids are agent indices); None for an unknown agent."""
        if not 0 <= agent_id < self.num_agents:
            return None
        return self._picture(agent_id, height, width)

    def reset(self) -> None:
        if self._pending_seed is not None:
            self._rng = np.random.default_rng(self._pending_seed % 2**32)  # Unity seeds may be negative
            self._pending_seed = None
        everyone = np.arange(self.num_agents)
        self._begin_episodes(everyone)
        self._steps[:] = 0
        self._continuous[:] = 0.0
        self._discrete[:] = 0
        none = np.zeros(self.num_agents, bool)
        self._publish(np.zeros(self.num_agents, np.float32), none, none)

    def observe(self) -> dict[str, AgentBatch]:
        return dict(self._batches)

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        for behavior, (continuous, discrete) in actions.items():
            self._store_actions(behavior, continuous, discrete)
        n = self.num_agents
        reward = np.zeros(n, np.float32)
        ended = np.zeros(n, bool)
        interrupted = np.zeros(n, bool)
        for _ in range(self.decision_period):
            live = ~ended
            step_reward, step_ended = self._physics_step(self._continuous, self._discrete, live)
            np.add(reward, np.asarray(step_reward, np.float32), out=reward, where=live)
            self._steps += live
            if self.max_steps:
                cut = live & ~step_ended & (self._steps >= self.max_steps)
                interrupted |= cut
                step_ended = step_ended | cut
            ended |= live & step_ended
            if ended.all():
                break
        self._publish(reward, ended, interrupted)

    # --------------------------------------------------------------------- internals

    def _store_actions(self, behavior: str, continuous: np.ndarray, discrete: np.ndarray) -> None:
        """Checks one behavior's actions and keeps them until the next decision."""
        if behavior not in self._ranges:
            raise UnityProtocolError(f"scene {self.name!r} has no behavior {behavior!r}; its behaviors are {sorted(self._ranges)}")
        agents = self._ranges[behavior]
        count = agents.stop - agents.start
        spec = self.action_spec
        continuous = np.asarray(continuous, np.float32)
        discrete = np.asarray(discrete)
        if continuous.size == 0 and discrete.size == 0 and (spec.continuous_size or spec.discrete_size):
            return  # an empty action list leaves the agents with their previous actions
        want_continuous, want_discrete = (count, spec.continuous_size), (count, spec.discrete_size)
        if not spec.continuous_size and continuous.size == 0:
            continuous = np.zeros(want_continuous, np.float32)
        if not spec.discrete_size and discrete.size == 0:
            discrete = np.zeros(want_discrete, np.int32)
        if continuous.shape != want_continuous or discrete.shape != want_discrete:
            raise UnityProtocolError(
                f"behavior {behavior!r}: got continuous actions {continuous.shape} and discrete {discrete.shape}; "
                f"expected {want_continuous} and {want_discrete}, one per decision record of the last message"
            )
        if discrete.size and ((discrete < 0).any() or (discrete >= self._branches).any()):
            raise UnityProtocolError(f"behavior {behavior!r}: discrete actions outside the branch sizes {spec.discrete_branches}")
        stored = self._continuous[agents]  # a view: each behavior owns a slice of the agents
        continuous.clip(-1.0, 1.0, out=stored)
        stored[np.isnan(stored)] = 0.0  # NaN counts as no action; infinities were clipped to +-1
        self._discrete[agents] = discrete

    def _publish(self, reward: np.ndarray, ended: np.ndarray, interrupted: np.ndarray) -> None:
        """Builds the records of this message: terminal ones, then a decision for every agent."""
        finished = ended.nonzero()[0]
        if finished.size:
            terminal_obs = self._observations(finished)
            self._begin_episodes(finished)
            self._steps[finished] = 0
        decision_obs = self._observations(self._everyone)
        mask = self._action_mask(self._everyone)
        decision_reward = np.where(ended, np.float32(0.0), reward)
        batches = {}
        for behavior, agents in self._ranges.items():
            count = agents.stop - agents.start
            decisions = AgentBatch(
                agent_ids=self._agent_ids[agents],
                observations=[o[agents] for o in decision_obs],
                rewards=decision_reward[agents],
                done=np.zeros(count, bool),
                max_step_reached=np.zeros(count, bool),
                action_mask=None if mask is None else mask[agents],
            )
            mine = (finished >= agents.start) & (finished < agents.stop) if finished.size else None
            if mine is not None and mine.any():
                rows = finished[mine]
                decisions = AgentBatch(
                    agent_ids=np.concatenate([self._agent_ids[rows], decisions.agent_ids]),
                    observations=[np.concatenate([t[mine], d]) for t, d in zip(terminal_obs, decisions.observations)],
                    rewards=np.concatenate([reward[rows], decisions.rewards]),
                    done=np.concatenate([np.ones(len(rows), bool), decisions.done]),
                    max_step_reached=np.concatenate([interrupted[rows], decisions.max_step_reached]),
                    action_mask=None if mask is None else np.concatenate([np.ones((len(rows), mask.shape[1]), bool), decisions.action_mask]),
                )
            batches[behavior] = decisions
        self._batches = batches
