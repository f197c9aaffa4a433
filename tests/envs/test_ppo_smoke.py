"""Stable-Baselines3 PPO learns the "ball" scene through UnityIL-v0 (real player processes)."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_unity_il.envs.unity_env import UnityILEnv

MAX_STEPS = 300  # per episode: at most 0.1 * 300 = 30; random play keeps the ball up ~100 steps


def _make(seed: int):
    return lambda: UnityILEnv(scene="ball", scene_kwargs={"max_steps": MAX_STEPS}, seed=seed, timeout_wait=30)


def test_ppo_beats_random_on_ball_through_the_env(assert_released) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    venv = DummyVecEnv([_make(i) for i in range(4)])
    ports = [env.session.port for env in venv.envs]
    try:
        venv.seed(0)
        random_returns = []
        rng = np.random.default_rng(0)
        for _ in range(5):
            obs, _ = venv.envs[0].reset()
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = venv.envs[0].step(rng.uniform(-1, 1, 2).astype(np.float32))
                total, done = total + reward, terminated or truncated
            random_returns.append(total)
        model = PPO("MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=10, learning_rate=1e-3,
                    policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")  # fmt: skip
        model.learn(12_000)
        trained, _ = evaluate_policy(model, venv, n_eval_episodes=8, deterministic=True)
    finally:
        venv.close()
        torch.set_num_threads(threads)
    for port in ports:
        assert_released(port)
    assert np.mean(random_returns) < 15.0
    assert trained > 2.0 * np.mean(random_returns)
