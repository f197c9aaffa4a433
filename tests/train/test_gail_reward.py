"""The reward GAIL's generator trains on: the discriminator's ``-log(1 - D)`` at every step,
and, at a step that ends its episode for good, that reward for ever (``r / (1 - gamma)``: the
absorbing state), but not at a step that Unity's step limit cuts. With ``strength``, the env's
reward plus ``strength`` times the same. Real grid scene processes, real demos, real PPO."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from imitation.util import logger as imitation_logger
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import demo_to_trajectories, read_demo, record_episodes
from gym_unity_il.train import make_training_env, parse_config
from gym_unity_il.train.gail import GAILPhase
from gym_unity_il.train.policies import ObservationAdapter, make_model
from train_helpers import tiny

#: A 3 x 3 field from positions, 6 agents, cut after 3 steps: ends at a goal and cuts both come often.
GRID = {"grid_size": 3, "camera": False, "num_agents": 6, "max_steps": 3}
GAMMA = 0.9


class _LastStep(VecEnvWrapper):
    """Passes everything through and keeps the latest step's env rewards, dones and infos."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.rewards = self.dones = np.zeros(venv.num_envs)
        self.infos: list[dict[str, Any]] = []

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        obs, self.rewards, self.dones, self.infos = self.venv.step_wait()
        return obs, self.rewards, self.dones, self.infos


@pytest.fixture(scope="module")
def grid_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demos of random play (the scripted expert needs the camera; what the discriminator
    learns does not matter here)."""
    path = tmp_path_factory.mktemp("demos") / "grid_play.demo"
    rng = np.random.default_rng(1)
    env = gym.make("UnityIL-v0", scene="grid", scene_kwargs={**GRID, "num_agents": 1, "max_steps": 20})
    record_episodes(env, lambda obs: rng.integers(0, 5, size=1), path, episodes=8, seed=0)
    return path


@pytest.mark.parametrize("strength", [None, 0.5], ids=["gail", "mixed"])
def test_an_episodes_true_end_pays_its_gail_reward_for_ever_and_a_cut_does_not(tmp_path: Path, grid_demo: Path, strength: float | None) -> None:
    settings = parse_config({"default": tiny(grid_demo, trainer="gail", ppo={"gamma": GAMMA})}, source="gail.yaml").default
    venv, _ = make_training_env(scene="grid", scene_kwargs=GRID, seed=0)
    try:
        last = _LastStep(venv)
        adapter = ObservationAdapter(last.observation_space, pack=True)
        policy_venv = adapter.wrap(last)
        logger = imitation_logger.configure(str(tmp_path), [])
        model = make_model(settings, policy_venv, adapter, seed=0, logger=logger)
        demos = adapter.trajectories(demo_to_trajectories(read_demo(grid_demo)))
        phase = GAILPhase(name="gail", model=model, venv=policy_venv, trajectories=demos, settings=settings, adapter=adapter,
                          normalization=None, total_steps=10**6, logger=logger, strength=strength)  # fmt: skip
        discriminator = phase.trainer.reward_train.predict_processed
        train_venv = phase.trainer.venv_train
        rng = np.random.default_rng(0)
        obs = train_venv.reset()
        kinds = {"ended": 0, "cut": 0, "going on": 0}
        for _ in range(30):
            actions = rng.integers(0, 5, size=train_venv.num_envs)
            next_obs, rewards, dones, _ = train_venv.step(actions)
            # The discriminator reads the observation and the action only (next_obs, done unused).
            judged = discriminator(obs, actions, obs, dones)
            cut = np.array([info.get("TimeLimit.truncated", False) for info in last.infos])
            ended = last.dones.astype(bool) & ~cut
            expected = np.where(ended, judged / (1 - GAMMA), judged)
            if strength is not None:
                expected = last.rewards + strength * expected
            np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-6)
            kinds["ended"] += int(ended.sum())
            kinds["cut"] += int(cut.sum())
            kinds["going on"] += int((~last.dones.astype(bool)).sum())
            obs = next_obs
    finally:
        venv.close()
    assert min(kinds.values()) > 5, kinds  # every kind of step was checked
    assert np.all(judged > 0)  # -log(1 - D): the factor shows
