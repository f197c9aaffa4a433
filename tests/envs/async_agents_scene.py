"""A scene for VecEnv tests whose agents decide at different times, end at different times,
vanish and appear.

Behavior ``Async?team=0``, one continuous action. Agent ``i`` asks for a decision at the
Academy steps ``t`` with ``t % periods[i] == offsets[i]`` (and every agent at the reset).
Every live agent earns 1 per Academy step, sent with its next record. Agent ``i``'s
episode ends after ``lengths[i]`` Academy steps (0: never): by the step limit
(``max_step_reached``) for odd ids, on its own for even ids; it starts the next episode at
once and asks for its first decision at its next decision step. Agents listed in
``vanish`` never come back after their first episode end (until the reset).
``spawn_count`` new agents (ids 100, 101, ...; period 1, endless episodes) appear at
Academy step ``spawn_step``. Messages are sent only at Academy steps where some agent
has a record, like Unity.

Observation (5 floats): the Academy step, the agent id, the last action the agent received,
its step within the episode, and the number of episodes it has started.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

BEHAVIOR = "Async?team=0"
SPAWN_ID = 100


class AsyncAgentsScene(Scene):
    """See the module docstring."""

    name = "async_agents"

    def __init__(
        self,
        *,
        periods: list[int] = (1,),
        offsets: list[int] | None = None,
        lengths: list[int] | None = None,
        vanish: list[int] = (),
        spawn_step: int = 0,
        spawn_count: int = 0,
        seed: int = 0,
    ) -> None:
        n = len(periods)
        self.base_periods = np.asarray(periods, np.int64)
        self.base_offsets = np.asarray(offsets if offsets is not None else [0] * n, np.int64)
        self.base_lengths = np.asarray(lengths if lengths is not None else [0] * n, np.int64)
        self.vanish = set(vanish)
        self.spawn_step = spawn_step
        self.spawn_count = spawn_count
        self.reset()

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: BehaviorSpec(BEHAVIOR, (ObservationSpec((5,), name="VectorSensor_size5"),), ActionSpec(1))}

    def reset(self) -> None:
        n = len(self.base_periods)
        self.t = 0
        self.ids = np.arange(n, dtype=np.int32)
        self.periods = self.base_periods.copy()
        self.offsets = self.base_offsets.copy()
        self.lengths = self.base_lengths.copy()
        self.present = np.ones(n, bool)
        self.action = np.zeros(n, np.float32)
        self.pending = np.zeros(n, np.float32)
        self.episode_step = np.zeros(n, np.int64)
        self.episodes = np.ones(n, np.int64)
        self._publish(np.zeros(n, bool), np.ones(n, bool))

    def observe(self) -> dict[str, AgentBatch]:
        return {BEHAVIOR: self._batch}

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        batch = self._batch
        deciding = np.flatnonzero(np.isin(self.ids, batch.agent_ids[~batch.done]))
        if BEHAVIOR in actions and len(deciding):
            # Records list agents in id order, like the decision rows of the last message.
            self.action[deciding] = actions[BEHAVIOR][0][:, 0]
        while True:
            self.t += 1
            if self.spawn_count and self.t == self.spawn_step:
                self._spawn()
            live = self.present
            self.pending[live] += 1.0
            self.episode_step[live] += 1
            ended = live & (self.lengths > 0) & (self.episode_step >= self.lengths)
            deciding = live & (self.t % self.periods == self.offsets)
            if ended.any() or deciding.any():
                self._publish(ended, deciding)
                return

    def _spawn(self) -> None:
        k = self.spawn_count
        self.ids = np.concatenate([self.ids, SPAWN_ID + np.arange(k, dtype=np.int32)])
        self.periods = np.concatenate([self.periods, np.ones(k, np.int64)])
        self.offsets = np.concatenate([self.offsets, np.zeros(k, np.int64)])
        self.lengths = np.concatenate([self.lengths, np.zeros(k, np.int64)])
        self.present = np.concatenate([self.present, np.ones(k, bool)])
        self.action = np.concatenate([self.action, np.zeros(k, np.float32)])
        self.pending = np.concatenate([self.pending, np.zeros(k, np.float32)])
        self.episode_step = np.concatenate([self.episode_step, np.zeros(k, np.int64)])
        self.episodes = np.concatenate([self.episodes, np.ones(k, np.int64)])

    def _obs(self, rows: np.ndarray) -> np.ndarray:
        return np.stack(
            [np.full(len(rows), self.t), self.ids[rows], self.action[rows], self.episode_step[rows], self.episodes[rows]], axis=1
        ).astype(np.float32)

    def _publish(self, ended: np.ndarray, deciding: np.ndarray) -> None:
        """Terminal records (then the new episode begins), then decision records."""
        finished = np.flatnonzero(ended)
        terminal_obs = self._obs(finished)
        terminal_reward = self.pending[finished].copy()
        if finished.size:
            self.pending[finished] = 0.0
            self.episode_step[finished] = 0
            self.episodes[finished] += 1
            gone = np.isin(self.ids[finished], list(self.vanish))
            self.present[finished[gone]] = False
        rows = np.flatnonzero(deciding & self.present)
        decision_obs = self._obs(rows)
        decision_reward = self.pending[rows].copy()
        self.pending[rows] = 0.0
        self._batch = AgentBatch(
            agent_ids=np.concatenate([self.ids[finished], self.ids[rows]]),
            observations=[np.concatenate([terminal_obs, decision_obs])],
            rewards=np.concatenate([terminal_reward, decision_reward]),
            done=np.concatenate([np.ones(len(finished), bool), np.zeros(len(rows), bool)]),
            max_step_reached=np.concatenate([self.ids[finished] % 2 == 1, np.zeros(len(rows), bool)]),
        )
