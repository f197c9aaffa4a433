"""A scene whose sensors and action spec are chosen by its arguments, for conformance tests.

One agent of behavior ``Conformance?team=0``. Sensors (any of, in this order):
``"image"`` (8x6 colour), ``"gray"`` (8x6 grayscale), ``"buffer"`` (rank 2, 3x2),
``"vector"`` (4 floats). The vector holds the Academy step and the last action received
(continuous values, then discrete indices), so tests can see what reached the scene;
images are filled with ``(10 * step) % 256``. Actions: ``"continuous"`` (2),
``"discrete"`` ([5]), ``"multi_discrete"`` ([3, 2]) or ``"hybrid"`` (2 + [3]). Reward 1
per step; the episode ends after ``length`` steps, on its own when ``length`` is even and
by the step limit when odd.
"""

from __future__ import annotations

import numpy as np

from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

BEHAVIOR = "Conformance?team=0"
SENSORS = {
    "image": ObservationSpec((8, 6, 3), name="CameraSensor"),
    "gray": ObservationSpec((8, 6, 1), name="GrayCameraSensor"),
    "buffer": ObservationSpec((3, 2), name="BufferSensor_size2"),
    "vector": ObservationSpec((4,), name="VectorSensor_size4"),
}
ACTIONS = {
    "continuous": ActionSpec(2),
    "discrete": ActionSpec(0, (5,)),
    "multi_discrete": ActionSpec(0, (3, 2)),
    "hybrid": ActionSpec(2, (3,)),
}


class ConformanceScene(Scene):
    """See the module docstring."""

    name = "conformance"

    def __init__(self, *, sensors: list[str] = ("vector",), actions: str = "continuous", length: int = 4, seed: int = 0) -> None:
        self.sensors = [s for s in SENSORS if s in sensors]
        self.spec = BehaviorSpec(BEHAVIOR, tuple(SENSORS[s] for s in self.sensors), ACTIONS[actions])
        self.length = length
        self.step = 0
        self.last = np.zeros(3, np.float32)

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BEHAVIOR: self.spec}

    def reset(self) -> None:
        self.step = 0
        self.last[:] = 0

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        if self.step >= self.length:
            self.reset()
        if BEHAVIOR in actions:
            cont, disc = actions[BEHAVIOR]
            values = np.concatenate([cont[0], disc[0].astype(np.float32)])
            self.last[:] = 0
            self.last[: values.size] = values
        self.step += 1

    def observe(self) -> dict[str, AgentBatch]:
        arrays = []
        for name in self.sensors:
            shape = SENSORS[name].shape
            if name in ("image", "gray"):
                arrays.append(np.full((1, *shape), (10 * self.step) % 256, np.uint8))
            elif name == "buffer":
                arrays.append(np.full((1, *shape), self.step, np.float32))
            else:
                arrays.append(np.concatenate([[self.step], self.last]).astype(np.float32)[None])
        done = self.step >= self.length
        branches = self.spec.action_spec.discrete_branches
        mask = None
        if branches and not done:
            mask = np.ones((1, sum(branches)), bool)
            mask[0, 0] = False  # the first option of the first branch is never allowed
        return {
            BEHAVIOR: AgentBatch(
                agent_ids=np.zeros(1, np.int32),
                observations=arrays,
                rewards=np.full(1, 1.0 if self.step else 0.0, np.float32),
                done=np.full(1, done),
                max_step_reached=np.full(1, done and self.length % 2 == 1),
                action_mask=mask,
            )
        }
