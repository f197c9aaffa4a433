"""Stable-Baselines3 PPO learns to balance on the "ball" scene at a small budget (in-process)."""

from __future__ import annotations

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_unity_il.scenes.evaluate import evaluate_in_process


class _Deterministic:
    def __init__(self, model: PPO) -> None:
        self.model = model

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.model.predict(observation, deterministic=True)


def test_ppo_beats_random_on_ball_in_12k_steps(in_process_env):
    torch.set_num_threads(1)
    venv = DummyVecEnv([lambda i=i: in_process_env("ball", seed=i, max_steps=300) for i in range(8)])
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=128,
        batch_size=256,
        n_epochs=10,
        learning_rate=1e-3,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        device="cpu",
    )
    model.learn(12_000)
    trained = evaluate_in_process("ball", _Deterministic(model), episodes=10, seed=123, max_steps=300)
    random = evaluate_in_process("ball", "random", episodes=10, seed=123, max_steps=300)
    # Random play keeps the ball up for about 100 steps (return ~10 of at most 30).
    assert random.mean_return < 15.0
    assert trained.mean_return > 2.0 * random.mean_return
