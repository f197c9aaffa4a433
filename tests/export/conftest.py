"""Fixtures of the export tests: policies trained briefly on each built-in scene, through UnityIL-v0.

Every fixture trains once per session at a tiny budget with one torch thread; the tests
only need real trained weights, not good policies.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from export_helpers import BALL_KWARGS, GRID_KWARGS, HYBRID_KWARGS, Trained, expert_transitions, make_env, train_bc


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ball_ppo() -> Trained:
    """PPO (MLP) on "ball" behind VecNormalize: continuous actions, normalised observations."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = VecNormalize(DummyVecEnv([lambda: make_env("ball", BALL_KWARGS)]), norm_reward=False, clip_obs=5.0)
    spec = venv.venv.envs[0].behavior_spec
    try:
        model = PPO("MlpPolicy", venv, n_steps=128, batch_size=64, n_epochs=2, policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
        model.learn(256)
    finally:
        venv.close()
    return Trained(model, spec, "ball", BALL_KWARGS, vec_normalize=venv)


@pytest.fixture(scope="session")
def ball_sac() -> Trained:
    """SAC on "ball": a squashed Gaussian actor."""
    from stable_baselines3 import SAC

    env = make_env("ball", BALL_KWARGS)
    spec = env.behavior_spec
    try:
        model = SAC("MlpPolicy", env, learning_starts=64, buffer_size=1_000, batch_size=32, policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu")
        model.learn(160)
    finally:
        env.close()
    return Trained(model, spec, "ball", BALL_KWARGS)


@pytest.fixture(scope="session")
def grid_ppo() -> Trained:
    """PPO (MultiInput: NatureCNN on the camera + the goal signal) on "grid": discrete with masks."""
    from stable_baselines3 import PPO

    env = make_env("grid", GRID_KWARGS)
    spec = env.behavior_spec
    try:
        model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
        model.learn(64)
    finally:
        env.close()
    return Trained(model, spec, "grid", GRID_KWARGS)


@pytest.fixture(scope="session")
def grid_dqn() -> Trained:
    """DQN (MultiInput) on "grid": greedy Q-values with masks."""
    from stable_baselines3 import DQN

    env = make_env("grid", GRID_KWARGS)
    spec = env.behavior_spec
    try:
        model = DQN("MultiInputPolicy", env, learning_starts=32, buffer_size=500, batch_size=16, train_freq=4, seed=0, device="cpu")
        model.learn(64)
    finally:
        env.close()
    return Trained(model, spec, "grid", GRID_KWARGS)


@pytest.fixture(scope="session")
def grid_bc_chw() -> Trained:
    """imitation's BC on "grid" expert episodes with ``image_format="chw_float"`` (float CHW images)."""
    kwargs = {**GRID_KWARGS, "grayscale": True}
    env = make_env("grid", kwargs, image_format="chw_float")
    spec, obs_space, act_space = env.behavior_spec, env.observation_space, env.action_space
    env.close()
    observations, actions = expert_transitions("grid", kwargs, episodes=24, image_format="chw_float")
    policy = train_bc(obs_space, act_space, observations, np.asarray(actions), batches=150)
    return Trained(policy, spec, "grid", kwargs, image_format="chw_float")


@pytest.fixture(scope="session")
def hybrid_bc() -> Trained:
    """Two BC policies on "hybrid" expert episodes, one per action part."""
    env = make_env("hybrid", HYBRID_KWARGS)
    spec, obs_space, act_space = env.behavior_spec, env.observation_space, env.action_space
    env.close()
    observations, actions = expert_transitions("hybrid", HYBRID_KWARGS, episodes=10)
    continuous = train_bc(obs_space, act_space["continuous"], observations, np.stack([a["continuous"] for a in actions]), batches=100)
    discrete = train_bc(obs_space, act_space["discrete"], observations, np.stack([a["discrete"] for a in actions]), batches=100)
    return Trained({"continuous": continuous, "discrete": discrete}, spec, "hybrid", HYBRID_KWARGS)
