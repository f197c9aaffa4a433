"""A scene whose sensors and actions are chosen by its arguments, for training tests.

One agent of behavior ``Shapes?team=0``. Every step a target ``k`` in {0, 1, 2} is drawn;
the sensors show it: ``"vector"`` (one-hot, 3 floats), ``"small_image"`` (10x8 colour,
brightness ``80 * k + 40``), ``"gray_image"`` (36x40 grayscale, the same brightness).
Actions: ``"continuous"`` (2), ``"discrete"`` ([3]), ``"multi_discrete"`` ([3, 2]) or
``"hybrid"`` (2 + [3]). Reward 1 when the action names the target (the first discrete
branch, or the first continuous value's third of [-1, 1]), else 0. ``length`` steps cut
the episode.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

BEHAVIOR = "Shapes?team=0"
SENSORS = {
    "small_image": ObservationSpec((10, 8, 3), name="SmallCamera"),
    "gray_image": ObservationSpec((36, 40, 1), name="GrayCamera"),
    "vector": ObservationSpec((3,), name="VectorSensor_size3"),
}
ACTIONS = {
    "continuous": ActionSpec(2),
    "discrete": ActionSpec(0, (3,)),
    "multi_discrete": ActionSpec(0, (3, 2)),
    "hybrid": ActionSpec(2, (3,)),
}


def chosen_target(continuous: np.ndarray, discrete: np.ndarray) -> int:
    """The target an action names."""
    if discrete.size:
        return int(discrete[0])
    return int(np.clip(np.floor((continuous[0] + 1.0) * 1.5), 0, 2))


class ShapesScene(Scene):
    """See the module docstring."""

    name = "shapes"

    def __init__(self, *, sensors: list[str] = ("vector",), actions: str = "discrete", length: int = 10, seed: int = 0) -> None:
        self.sensors = [s for s in SENSORS if s in sensors]
        self.spec = BehaviorSpec(BEHAVIOR, tuple(SENSORS[s] for s in self.sensors), ACTIONS[actions])
        self.length = length
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.target = 0
        self.reward = 0.0

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: self.spec}

    def set_parameter(self, key: str, value: float) -> None:
        if key == "gym_unity_il.seed":
            self.rng = np.random.default_rng(int(value))

    def reset(self) -> None:
        self.step = 0
        self.reward = 0.0
        self.target = int(self.rng.integers(3))

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        if self.step >= self.length:
            self.reset()
            return
        continuous, discrete = actions.get(BEHAVIOR, (np.zeros((1, 2), np.float32), np.zeros((1, 2), np.int32)))
        self.reward = 1.0 if chosen_target(continuous[0], discrete[0]) == self.target else 0.0
        self.step += 1
        self.target = int(self.rng.integers(3))

    def observe(self) -> dict[str, AgentBatch]:
        arrays = []
        for name in self.sensors:
            shape = SENSORS[name].shape
            if name == "vector":
                arrays.append(np.eye(3, dtype=np.float32)[self.target][None])
            else:
                arrays.append(np.full((1, *shape), 80 * self.target + 40, np.uint8))
        done = self.step >= self.length
        return {
            BEHAVIOR: AgentBatch(
                agent_ids=np.zeros(1, np.int32),
                observations=arrays,
                rewards=np.full(1, self.reward, np.float32),
                done=np.full(1, done),
                max_step_reached=np.full(1, done),
            )
        }
