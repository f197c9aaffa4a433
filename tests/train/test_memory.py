"""Memory: LSTM policies from both eras' configs, behavioral cloning over whole episodes with the
state carried from window to window, BC then RecurrentPPO and GAIL with a recurrent generator,
on the "hallway" scene (whose cue is seen only at an episode's start) and the others."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.cli import main
from gym_unity_il.demo import demo_to_trajectories, read_demo, record_episodes
from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import load_config, load_policy, parse_config, train
from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.memory import SequenceCloning, is_recurrent, recurrent_model
from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs
from train_helpers import BALL, tiny

pytestmark = pytest.mark.imitation

FIXTURES = Path(__file__).parent / "mlagents_configs"
#: The hallway's expert return (11 steps forward, the right colour): what BC with memory reaches.
EXPERT = 0.89
#: Above what any policy without memory can expect (half the choices right: 0.34).
REMEMBERS = 0.8
MEMORY = {"memory_size": 32, "sequence_length": 16}


@pytest.fixture(scope="module")
def hallway_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``demos/hallway_expert.demo`` holds 60 expert episodes of "hallway"."""
    root = tmp_path_factory.mktemp("hallway")
    (root / "demos").mkdir()
    env = gym.make("UnityIL-v0", scene="hallway")
    record_episodes(env, expert_policy("hallway"), root / "demos" / "hallway_expert.demo", episodes=60, seed=0)
    return root


# ---------------------------------------------------------------------------------- configs


def test_the_seed_era_hallway_section_as_written_turns_memory_on(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        config = load_config(FIXTURES / "seed" / "offline_bc_config.yaml")
    hallway = config.for_behavior("Hallway")
    assert (hallway.memory.memory_size, hallway.memory.sequence_length, hallway.memory.hidden_size) == (256, 32, 128)
    assert not config.for_behavior("3DBall").memory.enabled  # use_recurrent: false
    assert "'sequence_length' is given twice" in caplog.text and "the later value '32' is used" in caplog.text


def test_todays_memory_section_turns_memory_on() -> None:
    config = load_config(FIXTURES / "modern" / "imitation_Hallway_GridWorld.yaml")
    memory = config.for_behavior("GridWorld").memory
    assert (memory.memory_size, memory.sequence_length) == (256, 64)


def test_an_odd_memory_size_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"section 'default'\.memory\.memory_size: 33 is odd; .* use an even number, e\.g\. 34"):
        parse_config({"default": {"memory": {"memory_size": 33}}})


def test_sac_with_memory_is_refused_before_anything_starts(tmp_path: Path, ball_demo: Path) -> None:
    config = parse_config({"default": tiny(ball_demo, trainer="sac", memory=MEMORY)})
    with pytest.raises(ConfigError, match=r"\.memory: memory_size 32, but 'sac' has no recurrent policy .* use 'ppo' / 'bc_then_ppo'"):
        train(config, run_id="sac", results_dir=tmp_path, scene="ball", scene_kwargs=BALL, progress=False)


# ---------------------------------------------------------------------------------- BC over whole episodes


def _policy(settings: TrainerSettings, trajectories: list[Any], observation_space: gym.Space, action_space: gym.Space) -> Any:
    """A fresh RecurrentPPO policy for ``settings``' memory over the env's spaces."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    class Stub(gym.Env):  # only its spaces are read: the model never steps it
        def __init__(self) -> None:
            self.observation_space, self.action_space = observation_space, action_space

    adapter = ObservationAdapter(observation_space)
    kwargs = {"net_arch": settings.net_arch(), **extractor_kwargs(adapter, None)}
    th.manual_seed(0)
    return recurrent_model(settings, DummyVecEnv([Stub]), kwargs, seed=0).policy, adapter


def _neglogp(policy: Any, trajectory: Any, *, window: int | None = None) -> np.ndarray:
    """The policy's -log p of the demo's actions at each step of one episode: in one pass from
    its first step, or in windows of ``window`` steps each starting from zeros."""
    from imitation.data import types

    obs = trajectory.obs.unwrap() if isinstance(trajectory.obs, types.DictObs) else trajectory.obs
    n = len(trajectory.acts)
    out = []
    for start in range(0, n, window or n):
        stop = min(n, start + (window or n))
        part = {k: v[start:stop] for k, v in obs.items()} if isinstance(obs, dict) else obs[start:stop]
        hidden = policy.lstm_actor.hidden_size
        state = (th.zeros(1, 1, hidden), th.zeros(1, 1, hidden))
        with th.no_grad():
            distribution, _ = policy.get_distribution(policy.obs_to_tensor(part)[0], state, th.zeros(stop - start))
            out.append(-distribution.log_prob(th.as_tensor(trajectory.acts[start:stop])).numpy())
    return np.concatenate(out)


class Figures:
    """An `imitation`-style logger that keeps what is recorded."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.current: dict[str, float] = {}

    def record(self, key: str, value: float) -> None:
        self.current[key] = value

    def dump(self, step: int) -> None:
        self.rows.append(self.current)
        self.current = {}


def test_cloning_carries_the_state_from_window_to_window_of_an_episode(hallway_demos: Path) -> None:
    demo = read_demo(hallway_demos / "demos" / "hallway_expert.demo")
    episode = demo_to_trajectories(demo)[0]  # 12 steps: windows of 4 cut it in three
    settings = TrainerSettings(batch_size=4, learning_rate=1e-12, hidden_units=16, memory=type(TrainerSettings().memory)(memory_size=16, sequence_length=4))
    policy, adapter = _policy(settings, [episode], demo.behavior_spec.observation_space(), demo.behavior_spec.action_space())
    with th.no_grad():  # an LSTM whose state matters: the first observation (the cue) sways every later step
        policy.lstm_actor.weight_hh_l0.mul_(4.0)
        policy.lstm_actor.weight_ih_l0.mul_(4.0)
    whole, windowed = _neglogp(policy, episode), _neglogp(policy, episode, window=4)
    assert np.max(np.abs(whole[4:] - windowed[4:])) > 1e-4  # the test can tell carried from restarted state
    figures = Figures()
    cloning = SequenceCloning(policy=policy, trajectories=[episode], settings=settings, rng=np.random.default_rng(0), logger=figures)
    assert len(cloning) == 3
    cloning.train(n_batches=3, log_interval=1)
    assert [row["bc/neglogp"] for row in figures.rows] == pytest.approx([whole[i : i + 4].mean() for i in (0, 4, 8)], abs=1e-5)


@pytest.mark.parametrize(
    ("scene", "scene_kwargs", "episodes"),
    [
        ("ball", BALL, 2),  # continuous actions, a vector
        ("grid", {"camera_height": 20, "camera_width": 20, "max_steps": 30}, 12),  # discrete with masks, an image and a vector (Dict)
        ("hallway", {"camera": True}, 8),  # an image alone
    ],
)
def test_cloning_learns_every_observation_and_action_kind(tmp_path: Path, scene: str, scene_kwargs: dict[str, Any], episodes: int) -> None:
    path = tmp_path / f"{scene}.demo"
    record_episodes(gym.make("UnityIL-v0", scene=scene, scene_kwargs=scene_kwargs), expert_policy(scene), path, episodes=episodes, seed=0)
    demo = read_demo(path)
    settings = TrainerSettings(batch_size=32, learning_rate=3e-3, hidden_units=32, memory=type(TrainerSettings().memory)(**MEMORY))
    policy, adapter = _policy(settings, [], demo.behavior_spec.observation_space(), demo.behavior_spec.action_space())
    trajectories = adapter.trajectories(demo_to_trajectories(demo))
    before = np.mean([_neglogp(policy, t).mean() for t in trajectories])
    cloning = SequenceCloning(policy=policy, trajectories=trajectories, settings=settings, rng=np.random.default_rng(0))
    cloning.train(n_batches=60)
    after = np.mean([_neglogp(policy, t).mean() for t in trajectories])
    assert after < before - 0.3, (before, after)


# ---------------------------------------------------------------------------------- through the trainers


#: A brain section in ML-Agents 0.10's offline_bc_config.yaml shape, as its Hallway section is written
#: (``sequence_length`` twice), sized to learn in seconds.
SEED_ERA_HALLWAY = """
default:
    trainer: offline_bc
    batch_size: 64
    summary_freq: 1000000
    max_steps: 5.0e4
    use_recurrent: false
    hidden_units: 128
    learning_rate: 3.0e-4
    num_layers: 2
    sequence_length: 32
    memory_size: 256
    demo_path: ./UnitySDK/Assets/Demonstrations/<Your_Demo_File>.demo

Hallway:
    trainer: offline_bc
    max_steps: 4.8e4
    batch_size: 64
    num_layers: 2
    hidden_units: 64
    learning_rate: 1.0e-3
    sequence_length: 8
    use_recurrent: true
    memory_size: 64
    sequence_length: 16
    demo_path: ./demos/hallway_expert.demo
"""


def test_recurrent_bc_from_a_demo_through_the_cli_with_a_seed_era_config(hallway_demos: Path, capsys) -> None:
    config = hallway_demos / "offline_bc_config.yaml"
    config.write_text(SEED_ERA_HALLWAY)  # beside demos/: ./demos/hallway_expert.demo resolves
    results = hallway_demos / "results"
    code = main(["train", str(config), "--run-id", "seed_hallway", "--results-dir", str(results), "--behavior", "Hallway", "--scene", "hallway"])
    assert code == 0 and "trained offline_bc on Hallway?team=0" in capsys.readouterr().out
    summary = json.loads((results / "seed_hallway" / "evaluation.json").read_text())
    assert summary["algorithm"] == "RecurrentPPO" and summary["mean_return"] >= REMEMBERS, summary
    policy = load_policy(results / "seed_hallway" / "model.zip")
    assert is_recurrent(policy.model) and policy.model.policy.lstm_actor.hidden_size == 32  # memory_size 64


def test_bc_then_recurrent_ppo_starts_from_the_bc_weights(hallway_demos: Path, tmp_path: Path) -> None:
    section = tiny(hallway_demos / "demos" / "hallway_expert.demo", trainer="bc_then_ppo", num_epoch=40, learning_rate=3e-3, max_steps=256,
                   eval_episodes=10, memory=MEMORY, ppo={"learning_rate": 1e-6})  # fmt: skip
    run = train(parse_config({"default": section}), run_id="bc_ppo", results_dir=tmp_path, scene="hallway", progress=False)
    model = load_policy(run.model_path).model
    assert type(model).__name__ == "RecurrentPPO" and model.num_timesteps >= 256
    rows = (tmp_path / "bc_ppo" / "metrics.csv").read_text().splitlines()
    assert any(r.startswith("bc,") for r in rows) and any(r.startswith("ppo,") for r in rows)
    assert run.evaluation is not None and run.evaluation.mean_return >= REMEMBERS  # the PPO phase acts with what BC taught


def test_gail_trains_a_recurrent_generator(hallway_demos: Path, tmp_path: Path) -> None:
    section = tiny(hallway_demos / "demos" / "hallway_expert.demo", trainer="gail", max_steps=512, memory=MEMORY)
    run = train(parse_config({"default": section}), run_id="gail", results_dir=tmp_path, scene="hallway", progress=False)
    model = load_policy(run.model_path).model
    assert type(model).__name__ == "RecurrentPPO" and model.num_timesteps >= 512
    events = list((tmp_path / "gail" / "tensorboard").rglob("events.*"))
    assert events and any(b"disc/disc_loss" in e.read_bytes() for e in events)  # the discriminator was trained on its rollouts
