"""DAgger over ``UnityIL-v0`` with the built-in scenes' scripted experts as teachers:
continuous ("ball"), discrete (a camera + vector scene; "grid", images + goal signal packed for `imitation`)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv

import gym_unity_il  # noqa: F401
from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, evaluate, parse_config
from gym_unity_il.train.dagger import AdaptedTeacher, run_dagger
from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs

GRID = {"grid_size": 3, "camera_height": 5, "camera_width": 5}
SHAPES = "shapes_scene:ShapesScene"
SHAPES_KWARGS = {"sensors": ["small_image", "vector"], "actions": "discrete", "length": 10}
VECTOR = "VectorSensor_size3"


def _venv(scene: str, scene_kwargs: dict, n: int) -> DummyVecEnv:
    return DummyVecEnv([lambda i=i: gym.make("UnityIL-v0", scene=scene, scene_kwargs=scene_kwargs, seed=i) for i in range(n)])


def _dagger(tmp_path: Path, scene: str, scene_kwargs: dict, teacher=None, **settings) -> tuple[dict, float, float]:
    from imitation.util import logger as imitation_logger
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(0)  # the policy's initial weights
    venv = _venv(scene, scene_kwargs, 2)
    try:
        adapter = ObservationAdapter(venv.observation_space, pack=True)
        policy_venv = adapter.wrap(venv)
        policy = ActorCriticPolicy(policy_venv.observation_space, venv.action_space, lambda _: 1e-3, net_arch=[64, 64], **extractor_kwargs(adapter, None))
        config = parse_config({"default": {"trainer": "dagger", "learning_rate": 1.0e-3, **settings}}).default
        logger = imitation_logger.configure(tmp_path / "tb", ["tensorboard"])
        outcome = run_dagger(venv=policy_venv, teacher=teacher or expert_policy(scene), policy=policy, adapter=adapter, settings=config,
                             scratch_dir=tmp_path / "scratch", logger=logger, seed=0)  # fmt: skip
        student = evaluate(policy, policy_venv, episodes=4, seed=100).mean_return
        random = evaluate(RandomPolicy(venv.action_space, seed=0), venv, episodes=4, seed=100).mean_return
    finally:
        venv.close()
    return outcome, student, random


def test_dagger_continuous_ball_beats_random(tmp_path: Path) -> None:
    outcome, student, random = _dagger(tmp_path, "ball", {"max_steps": 200}, max_steps=1200, dagger_round_steps=400, num_epoch=4)
    assert outcome["labels"] >= 1200 and outcome["rounds"] >= 3
    assert outcome["round_returns"][0] == pytest.approx(20.0, abs=0.5)  # round 0: the teacher drives
    assert student > random + 5 and student >= 0.9 * 20.0
    assert any((tmp_path / "tb").iterdir())  # the trainers logged (custom_logger)


@pytest.mark.parametrize("era", ["0.10", "0.11"])
def test_dagger_on_a_seed_era_build(tmp_path: Path, era: str) -> None:
    scene_kwargs = {"protocol": era, "max_steps": 200}
    outcome, student, random = _dagger(tmp_path, "ball", scene_kwargs, max_steps=1200, dagger_round_steps=400, num_epoch=4)
    assert outcome["round_returns"][0] == pytest.approx(20.0, abs=0.5)
    assert student > random + 5 and student >= 0.9 * 20.0


class _ShapesTeacher:
    """Names the target the one-hot vector sensor shows (the scripted teacher of the shapes scene)."""

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.asarray(obs[VECTOR]).argmax(axis=-1), None


def test_dagger_discrete_beats_random(tmp_path: Path) -> None:
    """Discrete actions, a camera and a vector sensor (packed for `imitation`)."""
    outcome, student, random = _dagger(tmp_path, SHAPES, SHAPES_KWARGS, max_steps=400, dagger_round_steps=100, num_epoch=4, teacher=_ShapesTeacher())
    assert outcome["labels"] >= 400 and outcome["round_returns"][0] == 10.0  # the teacher is always right
    assert student >= 9.0 and student > random + 4  # random: about 10 / 3


def test_dagger_runs_on_grid_images(tmp_path: Path) -> None:
    """The grid's camera and goal signal reach the teacher as the env gives them, round after round."""
    outcome, student, random = _dagger(tmp_path, "grid", GRID, max_steps=300, dagger_round_steps=150, num_epoch=2)
    assert outcome["labels"] >= 300 and outcome["rounds"] >= 2
    assert outcome["round_returns"][0] > 0.9  # the expert, reading the adapted observations back, reaches the target
    assert -1.0 - 1e-6 <= student <= 1.0 and -1.0 - 1e-6 <= random <= 1.0


def test_the_teacher_sees_env_observations_again() -> None:
    venv = _venv("grid", GRID, 1)
    try:
        obs = venv.reset()
        adapter = ObservationAdapter(venv.observation_space, pack=True)
        teacher = AdaptedTeacher(expert_policy("grid"), adapter, venv.action_space)
        back = teacher.to_env(adapter(obs))
        assert back.keys() == obs.keys() and all(np.array_equal(back[k], obs[k]) for k in obs)
        assert np.array_equal(teacher.predict(adapter(obs))[0], expert_policy("grid").predict(obs)[0])
    finally:
        venv.close()


def test_round_smaller_than_a_batch_is_refused(tmp_path: Path) -> None:
    venv = _venv("ball", {"max_steps": 50}, 1)
    try:
        adapter = ObservationAdapter(venv.observation_space)
        policy = ActorCriticPolicy(venv.observation_space, venv.action_space, lambda _: 1e-3)
        config = parse_config({"default": {"trainer": "dagger", "dagger_round_steps": 32, "batch_size": 64}}).default
        with pytest.raises(ConfigError, match="dagger_round_steps 32 is smaller than batch_size 64"):
            run_dagger(venv=venv, teacher=expert_policy("ball"), policy=policy, adapter=adapter, settings=config, scratch_dir=tmp_path, logger=None)
    finally:
        venv.close()
