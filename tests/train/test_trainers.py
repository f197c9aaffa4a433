"""Every trainer type for a tiny budget on the "ball" scene: the run folder holds a model SB3
loads, TensorBoard events, metrics, a learning curve, the resolved config and an evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from stable_baselines3 import PPO, SAC

from gym_unity_il.train import load_policy, make_training_env, parse_config, train
from train_helpers import BALL, tiny

CASES = {
    "offline_bc": ({"trainer": "offline_bc", "num_epoch": 2}, PPO, ["bc"]),
    "gail": ({"trainer": "gail", "max_steps": 512}, PPO, ["gail"]),
    "bc_then_ppo": ({"trainer": "bc_then_ppo", "num_epoch": 1, "max_steps": 512, "gail": {"strength": 0.1}}, PPO, ["bc", "ppo"]),
    "bc_then_sac": ({"trainer": "bc_then_sac", "num_epoch": 1, "max_steps": 300}, SAC, ["bc", "sac"]),
}


@pytest.mark.parametrize("trainer", list(CASES))
def test_trainer_writes_every_output(tmp_path: Path, ball_demo: Path, trainer: str) -> None:
    section, algorithm, phases = CASES[trainer]
    config = parse_config({"default": tiny(ball_demo, **section)}, source="test.yaml")
    result = train(config, run_id="run", results_dir=tmp_path, scene="ball", scene_kwargs=BALL, seed=3, progress=False)
    run = tmp_path / "run"
    assert result.run_dir == run and not result.interrupted and result.trainer == trainer

    model = algorithm.load(run / "model.zip", device="cpu")
    obs = np.zeros((1, 8), np.float32)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (1, 2) and np.all(np.abs(action) <= 1.0)

    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [p for p in dict.fromkeys(r["phase"] for r in rows)] == phases
    assert all(r["return"] != "" and float(r["return"]) > -2 for r in rows if r["phase"] == "bc")
    steps = [int(r["step"]) for r in rows if r["phase"] == phases[-1]]
    assert steps == sorted(steps) and steps[-1] > 0

    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    with Image.open(run / "learning_curve.png") as image:
        assert image.size[0] >= 400 * len(phases)
    assert yaml.safe_load((run / "config.yaml").read_text())["default"]["trainer"] == trainer

    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["trainer"] == trainer and summary["algorithm"] == algorithm.__name__ and summary["phases"] == phases
    assert summary["episodes"] == 2 == len(summary["returns"]) and summary["mean_return"] == pytest.approx(np.mean(summary["returns"]))
    assert summary["mean_return"] == pytest.approx(result.evaluation.mean_return)

    venv, _ = make_training_env(scene="ball", scene_kwargs=BALL)
    try:
        policy = load_policy(run / "model.zip", venv.observation_space)
        assert isinstance(policy.model, algorithm)
        assert policy.predict(venv.reset())[0].shape == (venv.num_envs, 2)
    finally:
        venv.close()
