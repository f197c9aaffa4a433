"""The "hybrid" scene: move to a target continuously and choose discretely when to grab it.

Each agent moves in the square [-1, 1] x [-1, 1] towards a target placed at random. Its
actions are hybrid: two continuous values in [-1, 1] move it by up to 0.1 per Academy step
along x and y, and one discrete branch of two (0 wait, 1 grab) tries to grab the target,
which works within 0.15 of it.

* Behavior ``Hybrid?team=0``, ``num_agents`` agents (default 1).
* Observation: one sensor ``VectorSensor_size6``, float32 ``[agent_x, agent_y, target_x,
  target_y, target_x - agent_x, target_y - agent_y]``.
* Actions: continuous 2 + discrete ``[2]`` (gymnasium ``Dict(continuous, discrete)``).
* Reward: -0.01 per step, -0.1 more for a grab that misses; a grab within reach ends the
  episode with +1 instead. ``max_steps`` (default 100) cuts the episode.
* Environment parameters: ``gym_unity_il.seed``.
* Picture (:meth:`~gym_unity_il.scenes.base.Scene.render`): the square seen from above
  (x to the right, y up), the target as a green disc inside a ring showing how near a
  grab must be, and the agent as a blue disc.

Returns with one agent and the defaults (mean +- std over 20 episodes,
:func:`gym_unity_il.scenes.evaluate.evaluate_in_process`, seed 0):
expert 0.929 +- 0.040 (8.1 steps), random -4.959 +- 2.267.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes import drawing
from gym_unity_il.scenes.academy import AcademyScene
from gym_unity_il.scenes.expert import ScriptedPolicy
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ImageFormat, ObservationSpec

SPEED = 0.1
REACH = 0.15
ARENA = 1.0
START = 0.9
STEP_REWARD = -0.01
MISS_REWARD = -0.1
GRAB_REWARD = 1.0

#: Radius of the discs the picture draws for the agent and the target.
MARKER = 0.06
FLOOR_COLOUR = (220, 225, 230)
AGENT_COLOUR = (50, 110, 230)
TARGET_COLOUR = (40, 180, 80)

SENSOR_NAME = "VectorSensor_size6"
ACTION_SPEC = ActionSpec(2, (2,))


class HybridScene(AcademyScene):
    """Agents moving to a target and grabbing it (see the module docstring).

    Args:
        num_agents: number of agents, each with its own target.
        max_steps: Academy steps per episode before it is cut (0: no limit).
        decision_period: Academy steps between decisions.
        seed: seed of the scene's random generator.
    """

    name = "hybrid"

    def __init__(self, *, num_agents: int = 1, max_steps: int = 100, decision_period: int = 1, seed: int = 0) -> None:
        super().__init__(num_agents=num_agents, max_steps=max_steps, decision_period=decision_period, seed=seed)

    def _behavior_layout(self) -> list[tuple[BehaviorSpec, int]]:
        sensor = ObservationSpec((6,), (DimensionProperty.NONE,), name=SENSOR_NAME)
        return [(BehaviorSpec("Hybrid?team=0", (sensor,), ACTION_SPEC), self.num_agents)]

    def _create_state(self) -> None:
        self._agent = np.zeros((self.num_agents, 2))
        self._target = np.zeros((self.num_agents, 2))

    def _begin_episodes(self, agents: np.ndarray) -> None:
        self._agent[agents] = self._rng.uniform(-START, START, (len(agents), 2))
        self._target[agents] = self._rng.uniform(-START, START, (len(agents), 2))

    def _physics_step(self, continuous: np.ndarray, discrete: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        moved = np.clip(self._agent + SPEED * continuous, -ARENA, ARENA)
        self._agent = np.where(live[:, None], moved, self._agent)
        grab = discrete[:, 0] == 1
        caught = grab & (np.linalg.norm(self._target - self._agent, axis=1) <= REACH)
        reward = np.where(caught, GRAB_REWARD, STEP_REWARD + np.where(grab, MISS_REWARD, 0.0))
        return reward.astype(np.float32), caught

    def _picture(self, agent: int, height: int, width: int) -> np.ndarray:
        image = drawing.canvas(height, width)
        x, y = drawing.world_grid(height, width, ARENA + 2 * MARKER)
        drawing.paint(image, (np.abs(x) <= ARENA) & (np.abs(y) <= ARENA), FLOOR_COLOUR)
        target, me = tuple(self._target[agent].tolist()), tuple(self._agent[agent].tolist())
        drawing.paint(image, drawing.ring(x, y, target, REACH, 0.03), TARGET_COLOUR)
        drawing.paint(image, drawing.disc(x, y, target, MARKER), TARGET_COLOUR)
        drawing.paint(image, drawing.disc(x, y, me, MARKER), AGENT_COLOUR)
        return image

    def _observations(self, agents: np.ndarray) -> list[np.ndarray]:
        agent, target = self._agent[agents], self._target[agents]
        return [np.concatenate([agent, target, target - agent], axis=1).astype(np.float32)]


class HybridExpert(ScriptedPolicy):
    """Heads straight for the target and grabs once this step's move brings it within reach.

    Args:
        image_format: unused (the scene has no image); accepted like every expert.
    """

    def __init__(self, *, image_format: ImageFormat = "hwc_uint8") -> None:
        super().__init__(action_spec=ACTION_SPEC, observation_ranks={SENSOR_NAME: 1}, image_format=image_format)

    def _decide(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        offset = observations[SENSOR_NAME][:, 4:6].astype(np.float64)
        move = np.clip(offset / SPEED, -1.0, 1.0)
        left = np.linalg.norm(offset - SPEED * move, axis=1)
        grab = (left <= 0.8 * REACH).astype(np.int64)
        return move.astype(np.float32), grab[:, None]
