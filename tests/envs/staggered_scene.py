"""A scene for env tests whose two agents decide at different rates.

Behavior ``Staggered?team=0``, one continuous action. Agent 0 asks for a decision every
second Academy step, agent 1 every step, so some messages carry agent 1 only. Both earn
1 per Academy step, sent with their next record. Observation (4 floats): the Academy
step, the agent's last action, the parameter ``"level"`` and the agent id. Agent 0's
episode is cut (``max_step_reached``) after ``max_steps`` Academy steps; with
``end_on_negative`` an action below -0.5 ends it as a true terminal state. Reports the
stat ``staggered/step``.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

BEHAVIOR = "Staggered?team=0"


class StaggeredScene(Scene):
    """See the module docstring."""

    name = "staggered"

    def __init__(self, *, max_steps: int = 100, end_on_negative: bool = False, seed: int = 0) -> None:
        self.max_steps = max_steps
        self.end_on_negative = end_on_negative
        self._level = 0.0
        self.reset()

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: BehaviorSpec(BEHAVIOR, (ObservationSpec((4,), name="VectorSensor_size4"),), ActionSpec(1))}

    def set_parameter(self, key: str, value: float) -> None:
        if key == "level":
            self._level = value

    def reset(self) -> None:
        self._t = 0
        self._actions = np.zeros(2, np.float32)
        self._pending = np.zeros(2, np.float32)
        self._batch = self._records(np.array([True, True]), np.array([False, False]), interrupted=False)

    def _records(self, present: np.ndarray, done: np.ndarray, *, interrupted: bool) -> AgentBatch:
        ids = np.flatnonzero(present).astype(np.int32)
        obs = np.stack([[self._t, self._actions[i], self._level, i] for i in ids]).astype(np.float32)
        rewards = self._pending[ids].copy()
        self._pending[ids] = 0.0
        return AgentBatch(ids, [obs], rewards, done[ids], done[ids] & interrupted)

    def observe(self) -> dict[str, AgentBatch]:
        return {BEHAVIOR: self._batch}

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        deciding = self._batch.agent_ids[~self._batch.done]
        if BEHAVIOR in actions:
            self._actions[deciding] = actions[BEHAVIOR][0][:, 0]
        self._t += 1
        self._pending += 1.0
        ended = bool(self.end_on_negative and self._actions[0] < -0.5)
        cut = self._t >= self.max_steps
        done = np.array([ended or cut, False])
        present = np.array([self._t % 2 == 0 or done[0], True])
        self._batch = self._records(present, done, interrupted=cut and not ended)

    def take_stats(self) -> dict[str, float]:
        return {"staggered/step": float(self._t)}
