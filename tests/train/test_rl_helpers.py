"""What acts beside the RL updates, as ML-Agents' configs ask: linear schedules of the learning
rate, clip range and entropy coefficient, BC beside PPO (``cloning.during_rl``, annealed over
``cloning.steps``), and ML-Agents' ``buffer_size`` counted over all agents."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gym_unity_il.demo import demo_to_trajectories, read_demo
from gym_unity_il.errors import ConfigError
from gym_unity_il.train import make_training_env, parse_config, train
from gym_unity_il.train.bc import RolloutCloning
from gym_unity_il.train.config import PPOSettings
from gym_unity_il.train.schedules import FLOORS, Fixed, scheduled
from train_helpers import BALL, tiny


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_a_linear_schedule_falls_to_its_floor_at_max_steps_and_stays() -> None:
    assert scheduled(3e-4, "constant", FLOORS["learning_rate"], 900, 1000) == 3e-4
    assert scheduled(0.2, "linear", 0.1, 0, 1000) == 0.2
    assert scheduled(0.2, "linear", 0.1, 500, 1000) == pytest.approx(0.15)
    assert scheduled(0.2, "linear", 0.1, 1000, 1000) == pytest.approx(0.1) == scheduled(0.2, "linear", 0.1, 5000, 1000)
    assert scheduled(0.05, "linear", 0.1, 500, 1000) == 0.05  # below the floor already: never raised


def test_ml_agents_buffer_size_is_shared_by_the_agents() -> None:
    assert PPOSettings(n_steps=100).steps_per_agent(12) == 100
    assert PPOSettings(buffer_size=12000).steps_per_agent(12) == 1000
    assert PPOSettings(buffer_size=100).steps_per_agent(12) == 9  # rounded up: at least the buffer ML-Agents fills
    assert PPOSettings(buffer_size=5).steps_per_agent(12) == 1


def test_a_ppo_run_applies_and_logs_its_linear_schedules(tmp_path: Path) -> None:
    section = {"trainer": "ppo", "max_steps": 1024, "summary_freq": 512, "eval_episodes": 1, "hidden_units": 16,
               "ppo": {"buffer_size": 256, "batch_size": 64, "n_epochs": 1, "learning_rate": 1.0e-3, "clip_range": 0.3, "ent_coef": 0.01,
                       "learning_rate_schedule": "linear", "clip_range_schedule": "linear", "ent_coef_schedule": "linear"}}  # fmt: skip
    config = parse_config({"default": section}, source="s.yaml")
    train(config, run_id="s", results_dir=tmp_path, scene="ball", scene_kwargs={**BALL, "num_agents": 4}, seed=0, progress=False)
    run = tmp_path / "s"
    assert json.loads((run / "evaluation.json").read_text())["env_steps"] == 1024  # 4 rollouts of 256 steps: 64 per agent
    for tag, start, floor in (("learning_rate", 1.0e-3, FLOORS["learning_rate"]), ("clip_range", 0.3, 0.1), ("ent_coef", 0.01, 1.0e-5)):
        values = dict(_scalars(run, f"schedule/{tag}"))  # written when each update's figures are, 256 steps after its rollout began
        expected = {step + 256: floor + (start - floor) * (1 - step / 1024) for step in (0, 256, 512, 768)}
        assert sorted(values) == sorted(expected)
        for step, value in expected.items():
            assert values[step] == pytest.approx(value, rel=1e-5), (tag, step)
    # SB3 applied them: the learning rate of the last update is the schedule's at its rollout's start
    assert _scalars(run, "train/learning_rate")[-1][1] == pytest.approx(1.0e-3 * (1 - 768 / 1024), rel=1e-4)


def _demo_log_likelihood(model: PPO, trajectories: list[Any]) -> float:
    obs = np.concatenate([t.obs[:-1] for t in trajectories])
    acts = np.concatenate([t.acts for t in trajectories])
    with torch.no_grad():
        tensor, _ = model.policy.obs_to_tensor(obs)
        _, log_prob, _ = model.policy.evaluate_actions(tensor, torch.as_tensor(acts))
    return float(log_prob.mean())


@pytest.fixture()
def ball_ppo(ball_demo: Path) -> Any:
    venv, _ = make_training_env(scene="ball", scene_kwargs={**BALL, "num_agents": 2})
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    yield model, demo_to_trajectories(read_demo(ball_demo))
    venv.close()


def test_cloning_beside_ppo_raises_the_demos_likelihood_and_stops_once_annealed(ball_ppo: Any) -> None:
    model, trajectories = ball_ppo
    settings = parse_config({"default": {"learning_rate": 3.0e-3, "batch_size": 64, "num_epoch": 4, "cloning": {"during_rl": True, "steps": 128}}})
    cloning = RolloutCloning(policy=model.policy, trajectories=trajectories, settings=settings.default, rng=np.random.default_rng(0))
    assert cloning.batches == 4 * (1800 // 64)
    assert cloning.learning_rate(0) == 3.0e-3 and cloning.learning_rate(64) == pytest.approx(1.5e-3, rel=1e-6)
    before = _demo_log_likelihood(model, trajectories)
    model.learn(64, callback=cloning)  # one rollout of 2 x 32 steps: BC at step 64, half the learning rate
    after = _demo_log_likelihood(model, trajectories)
    assert after > before + 0.2, (before, after)  # PPO's own update alone moves it by about 0.001 here
    model.lr_schedule = Fixed(0.0)  # PPO's own updates change nothing from here on
    weights = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(128, callback=cloning, reset_num_timesteps=False)  # rollouts end at 128 (annealed to nothing) and 192
    assert all(torch.equal(a, b) for a, b in zip(weights, model.policy.parameters()))


def test_a_ppo_run_with_cloning_beside_it_logs_bc_and_learns_from_the_demos(tmp_path: Path, ball_demo: Path) -> None:
    section = tiny(ball_demo, trainer="ppo", max_steps=512, num_epoch=1, cloning={"during_rl": True, "steps": 0}, ppo={"n_steps": 16})  # 12 agents
    train(parse_config({"default": section}, source="c.yaml"), run_id="c", results_dir=tmp_path, scene="ball", scene_kwargs=BALL, seed=0,
          progress=False)  # fmt: skip
    run = tmp_path / "c"
    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["phases"] == ["ppo"] and summary["demo_transitions"] == 1800  # no pretraining phase: BC is beside PPO
    losses = [value for _, value in _scalars(run, "bc/loss")]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    state = torch.load(run / "checkpoint" / "phases.pt", weights_only=True)[-1]
    assert len(state["helpers"]) == 1 and "optimizer" in state["helpers"][0]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"trainer": "sac", "cloning": {"during_rl": True}}, r"'default'\.cloning\.during_rl: true, but trainer 'sac' has no PPO updates"),
        ({"trainer": "bc_then_ppo", "cloning": {"during_rl": True}}, r"bc_then_\* trainers clone before the RL"),
        ({"trainer": "ppo", "cloning": {"during_rl": True}}, r"'default'\.demo_path: cloning\.during_rl clones demonstrations"),
        ({"trainer": "ppo", "cloning": {"steps": -1}}, r"'default'\.cloning\.steps: -1 is out of range"),
        ({"trainer": "ppo", "ppo": {"learning_rate_schedule": "cosine"}}, r"ppo\.learning_rate_schedule: expected one of 'constant' \| 'linear'"),
        ({"trainer": "sac", "curiosity": {"strength": 0.1}}, r"'default'\.curiosity\.strength: 0\.1, but trainer 'sac' cannot add intrinsic rewards"),
    ],
)
def test_helpers_refuse_what_they_cannot_do_before_anything_starts(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train(parse_config({"default": section}, source="rl.yaml"), run_id="rl", results_dir=tmp_path, scene="ball", progress=False)
    assert not (tmp_path / "rl").exists()


def test_runs_print_mlagents_learn_progress_lines_every_summary_freq(tmp_path: Path, ball_demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    section = tiny(ball_demo, trainer="bc_then_ppo", num_epoch=1, batches_per_epoch=8, max_steps=768, summary_freq=256, ppo={"n_steps": 16})
    train(parse_config({"default": section}, source="p.yaml"), run_id="p", results_dir=tmp_path, scene="ball", scene_kwargs=BALL, seed=0)
    lines = [line for line in capsys.readouterr().err.splitlines() if "Time Elapsed" in line]
    number = r"-?\d+\.\d{3}"
    bc = rf"3DBall\. Step: (\d+) samples \(bc\)\. Time Elapsed: {number} s\. Mean Reward: {number}\. Std of Reward: {number}\. Evaluation of 12 episodes\. Training\."
    ppo = rf"3DBall\. Step: (\d+)\. Time Elapsed: {number} s\. (Mean Reward: {number}\. Std of Reward: {number}\.|No episode was completed since last summary\.) Training\."
    assert [int(re.fullmatch(bc, line).group(1)) for line in lines[:1]] == [512]  # 8 batches of 64 demo samples: too few for a row before the last
    assert [int(re.fullmatch(ppo, line).group(1)) for line in lines[1:]] == [264, 516, 768]  # the first step of 12 agents past each 256
    assert "Mean Reward" in lines[-1]  # 300-step episodes of 12 agents have ended by then


def test_a_ppo_run_with_curiosity_trains_its_models_logs_them_and_keeps_them_in_the_checkpoint(tmp_path: Path) -> None:
    sparse = {"sparse": True, "grid_size": 5, "max_steps": 20, "camera": False, "num_agents": 4}
    section = {"trainer": "ppo", "max_steps": 512, "summary_freq": 256, "eval_episodes": 2, "hidden_units": 16,
               "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1}, "curiosity": {"strength": 0.05}}  # fmt: skip
    train(parse_config({"default": section}, source="c.yaml"), run_id="c", results_dir=tmp_path, scene="grid", scene_kwargs=sparse, progress=False)
    run = tmp_path / "c"
    assert len(_scalars(run, "curiosity/forward_loss")) == 4 and len(_scalars(run, "curiosity/inverse_loss")) == 4  # one update per rollout
    assert all(0 < value <= 1 for _, value in _scalars(run, "curiosity/mean_reward")[1:])  # strength x reward, capped at 1
    summary = json.loads((run / "evaluation.json").read_text())
    assert all(r in (0.0, 1.0) for r in summary["returns"])  # evaluated on the env's own reward: the target pays 1, nothing else pays
    state = torch.load(run / "checkpoint" / "phases.pt", weights_only=True)[-1]
    assert set(state["helpers"][0]["models"]) == {"curiosity"}
