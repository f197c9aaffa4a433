"""SB3's PPO and sb3-contrib's MaskablePPO learn built-in scenes through UnityVecEnv, with
every agent of the scene contributing experience (real player processes, small budgets)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.evaluation import evaluate_policy as evaluate_masked
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

from gym_unity_il.envs import make_unity_vec_env


class RandomPolicy:
    """Uniformly random actions (among the allowed ones when masks are given), SB3's predict interface."""

    def __init__(self, action_space, seed: int) -> None:
        self.space = action_space
        self.rng = np.random.default_rng(seed)

    def predict(self, obs, state=None, episode_start=None, deterministic=False, action_masks=None):
        n = len(next(iter(obs.values())) if isinstance(obs, dict) else obs)
        if action_masks is not None:
            return np.array([self.rng.choice(np.flatnonzero(m)) for m in action_masks]), None
        return self.rng.uniform(self.space.low, self.space.high, (n, *self.space.shape)).astype(np.float32), None


@pytest.fixture
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_ppo_learns_ball_from_every_agent_of_two_processes(assert_released, one_torch_thread) -> None:
    venv = VecMonitor(make_unity_vec_env(scene="ball", n_envs=2, scene_kwargs={"num_agents": 8, "max_steps": 300}, seed=0, timeout_wait=30))
    ports = list(venv.unwrapped.ports)
    try:
        assert venv.num_envs == 16
        random_return, _ = evaluate_policy(RandomPolicy(venv.action_space, 0), venv, n_eval_episodes=16)
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=256, n_epochs=10, learning_rate=1e-3,
                    policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")  # fmt: skip
        model.learn(12_288)
        trained, _ = evaluate_policy(model, venv, n_eval_episodes=16, deterministic=True)
    finally:
        venv.close()
    for port in ports:
        assert_released(port)
    assert random_return < 16.0  # at most 30 (0.1 per step for 300 steps)
    assert trained > 1.4 * random_return, (trained, random_return)


def test_maskable_ppo_learns_grid_with_action_masks(assert_released, one_torch_thread) -> None:
    kwargs = {"num_agents": 32, "grid_size": 3, "camera_height": 5, "camera_width": 5, "max_steps": 20}
    venv = VecMonitor(make_unity_vec_env(scene="grid", scene_kwargs=kwargs, image_format="chw_float", seed=0, timeout_wait=30))
    ports = list(venv.unwrapped.ports)
    try:
        random_return, _ = evaluate_masked(RandomPolicy(venv.action_space, 0), venv, n_eval_episodes=64)  # type: ignore[arg-type]
        model = MaskablePPO("MultiInputPolicy", venv, n_steps=32, batch_size=256, n_epochs=10, learning_rate=2e-3, gamma=0.95,
                            policy_kwargs={"net_arch": [128, 128]}, seed=0, device="cpu")  # fmt: skip
        model.learn(16_384)
        trained, _ = evaluate_masked(model, venv, n_eval_episodes=64, deterministic=True)
    finally:
        venv.close()
    for port in ports:
        assert_released(port)
    assert random_return < 0.3  # +1 for the goal the signal names, -1 for the other, -0.01 per step
    assert trained > random_return + 0.3, (trained, random_return)
