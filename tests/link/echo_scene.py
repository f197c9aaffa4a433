"""A tiny scene for link tests: it shows in its observation what reached it over the wire.

One behavior ``Echo?team=0`` with hybrid actions (continuous 2, discrete [3]) and
``num_agents`` agents. Observation of agent ``i`` (7 floats): the last continuous action
(2), the last discrete action, the parameter ``"level"``, a number drawn from the scene's
seeded generator at reset, the Academy step count and ``i``. Reward 1 per step; episodes
end with ``max_step_reached`` after ``max_steps`` steps. Agent 0 may not choose discrete
option 2 (masked). Reports the stat ``echo/steps``.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

BEHAVIOR = "Echo?team=0"
SPEC = BehaviorSpec(BEHAVIOR, (ObservationSpec((7,), name="VectorSensor_size7"),), ActionSpec(2, (3,)))


class EchoScene(Scene):
    """See the module docstring."""

    name = "echo"

    def __init__(self, *, num_agents: int = 1, max_steps: int = 1000, seed: int = 0) -> None:
        self.num_agents = num_agents
        self.max_steps = max_steps
        self._rng = np.random.default_rng(seed)
        self._level = 0.0
        self._continuous = np.zeros((num_agents, 2), np.float32)
        self._discrete = np.zeros((num_agents, 1), np.int32)
        self._steps = 0
        self._draw = 0.0
        self._ended = False

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: SPEC}

    def set_parameter(self, key: str, value: float) -> None:
        if key == "level":
            self._level = value

    def reset(self) -> None:
        self._steps = 0
        self._draw = float(self._rng.random())
        self._continuous[:] = 0
        self._discrete[:] = 0
        self._ended = False

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        if BEHAVIOR in actions:
            self._continuous[:], self._discrete[:] = actions[BEHAVIOR]
        if self._ended:
            self.reset()
        self._steps += 1
        self._ended = self._steps >= self.max_steps

    def observe(self) -> dict[str, AgentBatch]:
        n = self.num_agents
        obs = np.zeros((n, 7), np.float32)
        obs[:, :2] = self._continuous
        obs[:, 2] = self._discrete[:, 0]
        obs[:, 3] = self._level
        obs[:, 4] = self._draw
        obs[:, 5] = self._steps
        obs[:, 6] = np.arange(n)
        mask = np.ones((n, 3), bool)
        mask[0, 2] = False
        return {
            BEHAVIOR: AgentBatch(
                agent_ids=np.arange(n, dtype=np.int32),
                observations=[obs],
                rewards=np.full(n, 1.0 if self._steps else 0.0, np.float32),
                done=np.full(n, self._ended),
                max_step_reached=np.full(n, self._ended),
                action_mask=None if self._ended else mask,
            )
        }

    def take_stats(self) -> dict[str, float]:
        return {"echo/steps": float(self._steps)}
