"""A scripted expert of the "shapes" test scene, and the scene as a teacher and students.

:class:`ShapesExpert` names the target every sensor of ``shapes_scene`` shows (argmax of
the one-hot vector, or an image's brightness ``80 * k + 40``), in the action form the
scene's actions take. :class:`ShapesPairScene` serves two behaviors, ``Teacher`` and
``Student`` (one agent each), each an independent :class:`shapes_scene.ShapesScene` with
the same sensors and actions, for online behavioral cloning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.spec import BehaviorSpec
from shapes_scene import BEHAVIOR, ShapesScene

TEACHER = "Teacher?team=0"
STUDENT = "Student?team=0"


def target_of(observation: Any) -> np.ndarray:
    """The targets shown by a batch of observations (array or mapping of sensors)."""
    first = next(iter(observation.values())) if isinstance(observation, Mapping) else observation
    first = np.asarray(first)
    if first.ndim == 2:  # the one-hot vector
        return first.argmax(axis=1)
    brightness = first.reshape(len(first), -1).astype(np.float64).mean(axis=1)
    return np.clip(np.rint((brightness - 40.0) / 80.0), 0, 2).astype(np.int64)


class ShapesExpert:
    """Always names the target (SB3's ``predict`` on a batch of env observations)."""

    def __init__(self, actions: str) -> None:
        self.actions = actions

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[Any, None]:
        k = target_of(observation)
        if self.actions == "continuous":
            return np.stack([(2.0 * k + 1.0) / 3.0 - 1.0, np.zeros(len(k))], axis=1).astype(np.float32), None
        if self.actions == "discrete":
            return k, None
        return np.stack([k, np.zeros(len(k), np.int64)], axis=1), None


class ShapesPairScene(Scene):
    """``Teacher`` and ``Student``, each a :class:`ShapesScene` of the same arguments."""

    name = "shapes_pair"

    def __init__(self, *, sensors: list[str] = ("vector",), actions: str = "discrete", length: int = 10, seed: int = 0) -> None:
        self.scenes = {
            TEACHER: ShapesScene(sensors=sensors, actions=actions, length=length, seed=seed),
            STUDENT: ShapesScene(sensors=sensors, actions=actions, length=length, seed=seed + 1),
        }

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {name: BehaviorSpec(name, scene.spec.observation_specs, scene.spec.action_spec) for name, scene in self.scenes.items()}

    def set_parameter(self, key: str, value: float) -> None:
        for i, scene in enumerate(self.scenes.values()):
            scene.set_parameter(key, value + i)

    def reset(self) -> None:
        for scene in self.scenes.values():
            scene.reset()

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        for name, scene in self.scenes.items():
            scene.act({BEHAVIOR: actions[name]} if name in actions else {})

    def observe(self) -> dict[str, AgentBatch]:
        return {name: scene.observe()[BEHAVIOR] for name, scene in self.scenes.items()}
