"""Curiosity (ICM) and RND rewards (:mod:`gym_unity_il.train.intrinsic`): the models learn what
they see often, the wrapper adds exactly strength x reward to the env's reward (terminal
observations at episode ends) and leaves the VecMonitor's episode returns alone, trains once
per PPO rollout, and its state round-trips through a checkpoint."""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from gym_unity_il.errors import ConfigError
from gym_unity_il.train import make_training_env, parse_config
from gym_unity_il.train.config import IntrinsicSettings
from gym_unity_il.train.intrinsic import CuriosityModel, IntrinsicRewards, RNDModel, to_transitions
from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs

VECTOR = spaces.Box(-np.inf, np.inf, (6,), np.float32)
IMAGE_AND_VECTOR = spaces.Dict({"camera": spaces.Box(0, 255, (8, 8, 1), np.uint8), "vector": spaces.Box(-np.inf, np.inf, (3,), np.float32)})
#: Episodes of a few steps, so that terminal observations come up often.
GRID = {"num_agents": 2, "grid_size": 3, "camera_height": 5, "camera_width": 5, "grayscale": True, "max_steps": 6}
BALL = {"num_agents": 2, "max_steps": 10}
SIGNALS = {"curiosity": IntrinsicSettings(strength=0.5, encoding_size=16), "rnd": IntrinsicSettings(strength=2.0, encoding_size=16)}


def _observations(space: spaces.Space, rng: np.random.Generator, n: int, shift: float) -> Any:
    """``n`` env observations of ``space``; ``shift`` moves them away from those of another shift."""
    if isinstance(space, spaces.Dict):
        return {"camera": (rng.integers(0, 128, (n, 8, 8, 1)) + 40 * shift).astype(np.uint8), "vector": rng.normal(shift, 1, (n, 3)).astype(np.float32)}
    return rng.normal(shift, 1, (n, 6)).astype(np.float32)


@pytest.mark.parametrize(
    ("signal", "env_space", "action_space"),
    [
        ("curiosity", VECTOR, spaces.Discrete(3)),
        ("curiosity", IMAGE_AND_VECTOR, spaces.MultiDiscrete([3, 2])),
        ("curiosity", VECTOR, spaces.Box(-1, 1, (2,), np.float32)),
        ("rnd", IMAGE_AND_VECTOR, spaces.Discrete(3)),
        ("rnd", VECTOR, spaces.Box(-1, 1, (2,), np.float32)),
    ],
    ids=["curiosity-vector-discrete", "curiosity-image-multidiscrete", "curiosity-vector-continuous", "rnd-image", "rnd-vector"],
)
def test_models_learn_what_they_see_often(signal: str, env_space: spaces.Space, action_space: spaces.Space) -> None:
    """After training on some transitions, their reward falls well below that of transitions never seen."""
    rng = np.random.default_rng(0)
    action_space.seed(0)
    adapter = ObservationAdapter(env_space)

    def transitions(shift: float) -> Any:
        actions = np.stack([action_space.sample() for _ in range(64)])
        obs, next_obs = (adapter(_observations(env_space, rng, 64, shift)) for _ in range(2))
        return to_transitions(adapter.space, obs, actions, next_obs)

    seen, novel = transitions(0.0), transitions(2.0)
    th.manual_seed(0)
    if signal == "curiosity":
        model: CuriosityModel | RNDModel = CuriosityModel(adapter, action_space, IntrinsicSettings(strength=0.01))
    else:
        model = RNDModel(adapter, IntrinsicSettings(strength=0.01, learning_rate=1.0e-3))
    for _ in range(150):
        model.update(seen)
    assert model.reward(novel).mean() > 3 * model.reward(seen).mean()


def test_curiosity_pays_nothing_before_its_first_update_and_at_most_one_after_strength() -> None:
    """As in ML-Agents: 0 before the first update, and strength x reward capped at 1."""
    adapter = ObservationAdapter(VECTOR)
    rng = np.random.default_rng(1)
    batch = to_transitions(adapter.space, _observations(VECTOR, rng, 32, 0), np.zeros(32, np.int64), _observations(VECTOR, rng, 32, 30))
    model = CuriosityModel(adapter, spaces.Discrete(2), IntrinsicSettings(strength=50.0))
    assert (model.reward(batch) == 0).all()
    model.update(batch)
    assert model.reward(batch).max() == pytest.approx(1 / 50.0)  # far-apart observations: the cap


class _EnvTap(VecEnvWrapper):
    """Passes everything through and keeps what the env below gave last."""

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        self.last = self.venv.step_wait()
        return self.last


def _policy_env(scene: str, scene_kwargs: dict[str, Any]) -> tuple[VecEnv, ObservationAdapter]:
    venv, _ = make_training_env(scene=scene, scene_kwargs=scene_kwargs, seed=3)
    adapter = ObservationAdapter(venv.observation_space)
    return adapter.wrap(venv), adapter


def _with_terminal(obs: Any, dones: np.ndarray, infos: list[dict]) -> Any:
    """The observations each step reached: the terminal one where an episode ended."""
    reached = copy.deepcopy(obs)
    for i in np.flatnonzero(dones):
        if isinstance(reached, dict):
            for key in reached:
                reached[key][i] = infos[i]["terminal_observation"][key]
        else:
            reached[i] = infos[i]["terminal_observation"]
    return reached


@pytest.mark.parametrize(("scene", "scene_kwargs"), [("grid", GRID), ("ball", BALL)], ids=["grid-images-discrete", "ball-vector-continuous"])
def test_wrapper_adds_strength_times_each_reward_and_keeps_the_episode_returns(scene: str, scene_kwargs: dict[str, Any]) -> None:
    policy_env, adapter = _policy_env(scene, scene_kwargs)
    tap = _EnvTap(policy_env)
    logger = Logger(folder=None, output_formats=[])
    venv = IntrinsicRewards(tap, adapter, **SIGNALS, update_every=4, batch_size=4, epochs=2, seed=0, logger=logger)
    venv.action_space.seed(0)
    try:
        obs = venv.reset()
        env_returns, returns = np.zeros(venv.num_envs), np.zeros(venv.num_envs)
        window: dict[str, list[np.ndarray]] = {"curiosity": [], "rnd": []}
        terminal_mattered = episodes = 0
        for step in range(1, 25):
            actions = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
            models = copy.deepcopy(venv.models)  # as they are before the step (it may update them)
            next_obs, rewards, dones, infos = venv.step(actions)
            _, env_rewards, env_dones, env_infos = tap.last
            np.testing.assert_array_equal(dones, env_dones)
            assert infos is env_infos
            reached = _with_terminal(next_obs, dones, infos)
            expected = {name: venv.strengths[name] * model.reward(to_transitions(adapter.space, obs, actions, reached)).numpy() for name, model in models.items()}
            np.testing.assert_allclose(rewards, env_rewards + expected["curiosity"] + expected["rnd"], rtol=1e-5, atol=1e-7)
            if dones.any():  # the next observation of an ended episode is its terminal one, not the next episode's first
                first = {name: model.reward(to_transitions(adapter.space, obs, actions, next_obs)).numpy() for name, model in models.items()}
                terminal_mattered += int(any((first[name][dones] != expected[name][dones] / venv.strengths[name]).any() for name in models))
            for name in window:
                window[name].append(expected[name])
            if step % 4 == 0:  # an update: its records are the mean rewards of its transitions
                for name in window:
                    assert logger.name_to_value[f"{name}/mean_reward"] == pytest.approx(np.mean(window[name]), rel=1e-5)
                    window[name] = []
                assert {"curiosity/forward_loss", "curiosity/inverse_loss", "rnd/loss"} <= set(logger.name_to_value)
            env_returns += env_rewards
            returns += rewards
            for i in np.flatnonzero(dones):  # VecMonitor's episode return is the env's alone
                assert infos[i]["episode"]["r"] == pytest.approx(env_returns[i], abs=1e-5)
                assert returns[i] != pytest.approx(env_returns[i], abs=1e-5)
                env_returns[i] = returns[i] = 0.0
                episodes += 1
            obs = next_obs
        assert episodes >= 2 and terminal_mattered >= 1
    finally:
        venv.close()


def test_state_round_trip_gives_identical_rewards() -> None:
    policy_env, adapter = _policy_env("grid", GRID)
    venv = IntrinsicRewards(policy_env, adapter, **SIGNALS, update_every=4, batch_size=4, seed=0)
    venv.action_space.seed(1)
    try:
        next_obs = venv.reset()
        for _ in range(8):  # two updates
            obs, actions = next_obs, np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
            next_obs, _, _, _ = venv.step(actions)
        saved = io.BytesIO()
        th.save(venv.state(), saved)  # as the run's checkpoint does
        saved.seek(0)
        restored = IntrinsicRewards(policy_env, adapter, **SIGNALS, update_every=4, batch_size=4, seed=7)
        before = restored.rewards(obs, actions, next_obs)
        restored.load_state(th.load(saved, weights_only=True))
        after, original = restored.rewards(obs, actions, next_obs), venv.rewards(obs, actions, next_obs)
        for name in SIGNALS:
            np.testing.assert_array_equal(after[name], original[name])
            assert not np.array_equal(before[name], original[name])
        with pytest.raises(ValueError, match=r"holds the signals \['curiosity', 'rnd'\], this run has \['rnd'\]"):
            IntrinsicRewards(policy_env, adapter, rnd=SIGNALS["rnd"], update_every=4).load_state(venv.state())
    finally:
        venv.close()


class _Dumps(KVWriter):
    """Keeps the keys of every dump of a logger."""

    def __init__(self) -> None:
        self.keys: list[set[str]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.keys.append(set(key_values))


def test_ppo_trains_the_models_once_per_rollout() -> None:
    policy_env, adapter = _policy_env("grid", GRID)
    venv = IntrinsicRewards(policy_env, adapter, **SIGNALS, update_every=8, batch_size=8, seed=0)
    try:
        model = PPO(ActorCriticPolicy, venv, n_steps=8, batch_size=8, n_epochs=1, policy_kwargs={"net_arch": [16], **extractor_kwargs(adapter, None)},
                    seed=0, device="cpu")  # fmt: skip
        dumps = _Dumps()
        model.set_logger(Logger(folder=None, output_formats=[dumps]))
        venv.logger = model.logger
        model.learn(3 * 8 * venv.num_envs)
        assert len(dumps.keys) == 3 and all({"curiosity/forward_loss", "curiosity/mean_reward", "rnd/loss", "rnd/mean_reward"} <= keys for keys in dumps.keys)
    finally:
        venv.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"curiosity": {"strength": -0.1}}, r"'default'\.curiosity\.strength: -0\.1 is out of range"),
        ({"curiosity": {"gamma": 1.5}}, r"'default'\.curiosity\.gamma: 1\.5 is out of range"),
        ({"rnd": {"encoding_size": 0}}, r"'default'\.rnd\.encoding_size: 0 is out of range; accepted: an integer from 1"),
        ({"rnd": {"learning_rate": 0}}, r"'default'\.rnd\.learning_rate: 0\.0 is out of range; accepted: a finite number > 0"),
        ({"rnd": {"beta": 0.1}}, r"'default'\.rnd: unknown key 'beta'"),
    ],
)
def test_bad_settings_are_config_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"default": section})


def test_settings_read_from_our_dialect_and_what_the_wrapper_refuses() -> None:
    config = parse_config({"default": {"curiosity": {"strength": 0.02}}, "GridWorld": {"rnd": {"strength": 0.01, "encoding_size": 32}}})
    assert config.default.curiosity == IntrinsicSettings(strength=0.02) and config.default.rnd == IntrinsicSettings(learning_rate=1.0e-4)
    assert config.for_behavior("GridWorld").rnd == IntrinsicSettings(strength=0.01, encoding_size=32, learning_rate=1.0e-4)
    assert config.for_behavior("GridWorld").curiosity.strength == 0.02
    with pytest.raises(ConfigError, match=r"needs continuous \(Box\) or discrete \(Discrete, MultiDiscrete\) actions"):
        CuriosityModel(ObservationAdapter(VECTOR), spaces.Dict({"continuous": spaces.Box(-1, 1, (2,)), "discrete": spaces.MultiDiscrete([2])}), IntrinsicSettings(strength=0.1))
    policy_env, adapter = _policy_env("grid", GRID)
    try:
        with pytest.raises(ConfigError, match="curiosity.strength and rnd.strength are both 0"):
            IntrinsicRewards(policy_env, adapter, curiosity=IntrinsicSettings(), rnd=None, update_every=8)
    finally:
        policy_env.close()
