"""``UnityParallelEnv``: every agent of every behavior of one Unity process as a PettingZoo ParallelEnv.

For scenes with several behaviors (teams, a teacher and its students) over one
:class:`~gym_unity_il.link.session.UnitySession`::

    from gym_unity_il.envs.pettingzoo_env import UnityParallelEnv

    env = UnityParallelEnv(scene="ball", scene_kwargs={"teacher_student": True, "num_agents": 3})
    observations, infos = env.reset(seed=0)        # agents "Teacher_0", "Student_1", ...
    while env.agents:
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)

Agents are named ``<behavior>_<agent id>`` (the behavior without ``?team=N``; Unity's
agent ids are unique over the scene). PettingZoo's episode is the span between two
resets:

* the agents are those that ask for a decision in the first message after the reset;
* an agent whose Unity episode ends is reported ``terminated`` (or ``truncated`` when
  Unity cut it, ``max_step_reached``) with its final observation and then leaves
  ``agents``; Unity restarts it at once, but it gets all-zero actions and is not
  reported until the next :meth:`UnityParallelEnv.reset`, because a PettingZoo agent
  cannot come back. Agents that appear mid-episode are treated the same way;
* a step runs until every live agent has asked for a decision (agents deciding at
  different times are handled as in :class:`~gym_unity_il.envs.vec_env.UnityVecEnv`);
* ``possible_agents`` grows with the agents seen at each reset.

``infos`` hold ``behavior_name`` (fully qualified), ``agent_id`` and, for discrete
actions, ``action_mask`` in PettingZoo's convention (``int8``, 1 = allowed), shaped as the
agent's action space's ``sample(mask)`` takes it, so that
``env.action_space(agent).sample(infos[agent]["action_mask"])`` draws an allowed action:

* ``Discrete(n)``: an ``int8 [n]`` array;
* ``MultiDiscrete``: a tuple of ``int8`` arrays, one per branch;
* ``Dict(continuous, discrete)`` (hybrid): ``{"continuous": None, "discrete": <that tuple>}``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from gym_unity_il.envs.slots import SlotBatch
from gym_unity_il.envs.source import open_session
from gym_unity_il.envs.worker import MAX_MESSAGES, SessionWorker
from gym_unity_il.errors import EnvClosedError, ResetNeededError, SpecMismatchError
from gym_unity_il.link.session import UnitySession
from gym_unity_il.spec import ImageFormat


class UnityParallelEnv(ParallelEnv):
    """All agents of all behaviors of one Unity process (build, Editor or built-in scene).

    See the module docstring for how Unity's agents become PettingZoo agents.

    Args:
        scene: a built-in scene: name, ``"module:Class"`` or Scene subclass (default
            ``"ball"`` when the launch settings name neither a build nor the Editor).
        scene_kwargs: constructor arguments of the built-in scene.
        seed: the seed sent to Unity at the handshake.
        image_format: ``"hwc_uint8"`` or ``"chw_float"`` for image observations.
        max_messages: the most messages one step may take before an error.
        **session_kwargs: ``launch=LaunchSettings(...)`` and/or its fields
            (:class:`~gym_unity_il.link.launch.LaunchSettings`: ``file_name``,
            ``editor``, ``worker_id``, ``timeout_wait``, ...), and the other arguments
            of :class:`~gym_unity_il.link.session.UnitySession` (``num_areas``,
            ``env_parameters``, ``side_channels``).

    Raises:
        the errors of :class:`~gym_unity_il.link.session.UnitySession`.
    """

    metadata = {"name": "gym_unity_il_parallel_v0", "render_modes": [], "render_fps": 50}

    def __init__(
        self,
        *,
        scene: str | type | None = None,
        scene_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        image_format: ImageFormat = "hwc_uint8",
        max_messages: int = MAX_MESSAGES,
        **session_kwargs: Any,
    ) -> None:
        self._worker: SessionWorker | None = None
        self.render_mode = None
        self.image_format: ImageFormat = image_format
        self.max_messages = max_messages
        self.possible_agents: list[str] = []
        self.agents: list[str] = []
        self._batches: dict[str, SlotBatch] = {}  # behavior -> what its slots reported last
        self._where: dict[str, tuple[str, int]] = {}  # agent -> (behavior, slot) in this episode
        self._agent_ids: dict[str, np.ndarray] = {}  # behavior -> the agent id of each slot in this episode
        self._behavior_of: dict[str, str] = {}  # every agent seen -> behavior
        self._observation_spaces: dict[str, gym.Space] = {}  # per behavior: one object for all its agents
        self._action_spaces: dict[str, gym.Space] = {}
        session = open_session(scene=scene, scene_kwargs=scene_kwargs, seed=seed, image_format=image_format, **session_kwargs)
        self._worker = SessionWorker(session, behaviors=None, fixed_slots=False, max_messages=max_messages, take_stats=False)
        self._begin_episode({name: slots.result() for name, slots in self._worker.slots.items()})

    @property
    def session(self) -> UnitySession:
        """The live connection (environment parameters, engine settings, stats)."""
        return self._live().session

    def observation_space(self, agent: str) -> gym.Space:
        return self._observation_spaces[self._behavior(agent)]

    def action_space(self, agent: str) -> gym.Space:
        return self._action_spaces[self._behavior(agent)]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Resets every agent (Unity's RESET) and starts a PettingZoo episode.

        Args:
            seed: reseeds the scene (see :meth:`UnitySession.reset`).
            options: ``{"env_parameters": {key: float}}`` sets environment parameters
                first; other keys are ignored.
        """
        env_parameters = (options or {}).get("env_parameters")
        self._begin_episode(self._live().reset(seed, env_parameters).batches)
        return {a: self._observation(*self._where[a]) for a in self.agents}, {a: self._info(*self._where[a]) for a in self.agents}

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]:
        """Applies one action per live agent (missing ones: all zeros) and runs until every
        live agent has asked for its next decision.

        Raises:
            SpecMismatchError: an action for an agent this env never had, or one outside its space.
            ResetNeededError: no agent is left: call :meth:`reset`.
        """
        worker = self._live()
        if not self.agents:
            raise ResetNeededError("every agent's episode has ended: call reset()")
        batches = {name: slots.zero_actions() for name, slots in worker.slots.items()}
        for agent, action in actions.items():
            if agent not in self._behavior_of:
                raise SpecMismatchError(f"action for unknown agent {agent!r}; the agents are {self.agents}")
            if agent not in self._where or self._batches[self._where[agent][0]].agent_id[self._where[agent][1]] < 0:
                continue  # an agent that is done: nothing to apply
            behavior, slot = self._where[agent]
            try:
                continuous, discrete = worker.slots[behavior].spec.action_spec.split(action)
            except ValueError as exc:
                raise SpecMismatchError(f"agent {agent!r}: {exc}") from exc
            batches[behavior][0][slot] = continuous
            batches[behavior][1][slot] = discrete
        self._batches = worker.step(batches).batches
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        for agent in self.agents:
            behavior, slot = self._where[agent]
            batch = self._batches[behavior]
            observations[agent] = self._observation(behavior, slot)
            rewards[agent] = float(batch.reward[slot])
            done, cut = bool(batch.done[slot]), bool(batch.truncated[slot])
            terminations[agent] = done and not cut
            truncations[agent] = cut
            infos[agent] = self._info(behavior, slot)
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        """Nothing to render (``render_mode`` is None)."""
        return None

    def close(self) -> None:
        """Ends the Unity process and frees the port (idempotent)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def __repr__(self) -> str:
        return f"UnityParallelEnv({repr(self._worker.session) if self._worker is not None else 'closed'})"

    # ------------------------------------------------------------------ internals

    def _live(self) -> SessionWorker:
        if self._worker is None:
            raise EnvClosedError("the env is closed")
        return self._worker

    def _begin_episode(self, batches: dict[str, SlotBatch]) -> None:
        """Names the agents that got the slots at a reset (the first deciding ones)."""
        slots = self._live().slots
        self._batches, self._where, self._agent_ids = batches, {}, {}
        agents: list[str] = []
        for behavior, batch in batches.items():
            spec = slots[behavior].spec
            self._agent_ids[behavior] = batch.agent_id.copy()
            if behavior not in self._observation_spaces:
                self._observation_spaces[behavior] = spec.observation_space(self.image_format)
                self._action_spaces[behavior] = spec.action_space()
            for slot, agent_id in enumerate(batch.agent_id.tolist()):
                agent = f"{spec.behavior_name}_{agent_id}"
                self._where[agent] = (behavior, slot)
                self._behavior_of[agent] = behavior
                agents.append(agent)
        self.agents = agents
        known = set(self.possible_agents)
        self.possible_agents = self.possible_agents + [a for a in agents if a not in known]

    def _behavior(self, agent: str) -> str:
        try:
            return self._behavior_of[agent]
        except KeyError:
            raise SpecMismatchError(f"unknown agent {agent!r}; the possible agents are {self.possible_agents}") from None

    def _observation(self, behavior: str, slot: int) -> Any:
        batch = self._batches[behavior]
        arrays: Sequence[np.ndarray] = [o[slot] for o in batch.obs]
        if len(arrays) == 1:
            return arrays[0]
        return OrderedDict(zip(self._live().slots[behavior].spec.observation_keys, arrays))

    def _info(self, behavior: str, slot: int) -> dict[str, Any]:
        batch = self._batches[behavior]
        info: dict[str, Any] = {"behavior_name": behavior, "agent_id": int(self._agent_ids[behavior][slot])}
        if batch.action_mask is not None:
            action = self._live().slots[behavior].spec.action_spec
            info["action_mask"] = sample_mask(batch.action_mask[slot], action.discrete_branches, hybrid=action.is_hybrid)
        return info


def sample_mask(flat: np.ndarray, branches: Sequence[int], *, hybrid: bool) -> Any:
    """A flat ``bool`` mask over the branches (True = allowed) in the form the action space's
    ``sample(mask)`` takes: ``int8``, 1 = allowed, per branch (see the module docstring)."""
    per_branch = tuple(np.split(np.asarray(flat, np.int8), np.cumsum(branches)[:-1]))
    if hybrid:
        return {"continuous": None, "discrete": per_branch}
    return per_branch[0] if len(per_branch) == 1 else per_branch
