"""Fixtures for the built-in scene tests: a tiny in-process gymnasium adapter over a Scene.

The real env talks to a scene over gRPC and is tested with the link; these tests drive the
simulation directly, one agent, so they can train and roll out quickly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from gym_unity_il.scenes import make_scene
from gym_unity_il.scenes.academy import SEED_PARAMETER
from gym_unity_il.scenes.base import AgentBatch
from gym_unity_il.scenes.evaluate import env_observation


class InProcessSceneEnv(gym.Env):
    """One agent of a built-in scene as a gymnasium env, without the gRPC link."""

    def __init__(self, scene_name: str, *, seed: int = 0, image_format: str = "hwc_uint8", **scene_kwargs: Any) -> None:
        self.scene = make_scene(scene_name, num_agents=1, seed=seed, **scene_kwargs)
        (self.behavior, self.spec), = self.scene.behavior_specs().items()
        self.image_format = image_format
        self.observation_space = self.spec.observation_space(image_format)
        self.action_space = self.spec.action_space()

    def _observation(self, batch: AgentBatch, row: int) -> Any:
        obs = env_observation(self.spec, [o[row : row + 1] for o in batch.observations], self.image_format)
        return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.scene.set_parameter(SEED_PARAMETER, seed)
            self.scene.reset()
        # After an episode end the scene has already started the next one: its decision
        # record is the last record of the last message.
        batch = self.scene.observe()[self.behavior]
        return self._observation(batch, len(batch) - 1), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        continuous, discrete = self.spec.action_spec.split(action)
        self.scene.act({self.behavior: (continuous[None], discrete[None])})
        batch = self.scene.observe()[self.behavior]
        done, cut = bool(batch.done[0]), bool(batch.max_step_reached[0])
        return self._observation(batch, 0), float(batch.rewards[0]), done and not cut, cut, {}


@pytest.fixture
def in_process_env() -> type[InProcessSceneEnv]:
    """The adapter class: ``in_process_env("ball", seed=0, max_steps=300)``."""
    return InProcessSceneEnv
