"""Fixtures of the training tests: one torch thread, expert demos of the "ball" scene."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train_helpers import BALL


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Training tests run on one torch thread (the machine's cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ball_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 expert episodes of "ball" (1,800 transitions), recorded through the env."""
    import gymnasium as gym

    import gym_unity_il  # noqa: F401
    from gym_unity_il.demo import record_episodes
    from gym_unity_il.scenes import expert_policy

    path = tmp_path_factory.mktemp("demos") / "ball_expert.demo"
    expert = expert_policy("ball")
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs=BALL)
    record_episodes(env, lambda obs: expert.predict(obs)[0], path, episodes=6, seed=1000)
    return path
