"""Demos recorded from the "ball" expert through the command line, behavioral cloning
through the command line, and a policy whose return is far above random play's."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gym_unity_il.cli import main
from gym_unity_il.train import RandomPolicy, evaluate, make_training_env
from gym_unity_il.train.evaluation import HELD_OUT_SEEDS
from train_helpers import BALL, tiny


def test_expert_demos_to_bc_policy_far_above_random(tmp_path: Path, capsys) -> None:
    demo = tmp_path / "ball_expert.demo"
    kwargs = json.dumps(BALL)
    assert main(["demo", "record", str(demo), "--scene", "ball", "--scene-kwargs", kwargs, "--episodes", "8", "--seed", "500"]) == 0
    config = tmp_path / "bc.yaml"
    config.write_text(yaml.safe_dump({"default": tiny(demo, trainer="offline_bc", num_epoch=10, hidden_units=64, eval_episodes=4, summary_freq=8192)}))
    assert main(["train", str(config), "--run-id", "bc", "--results-dir", str(tmp_path / "results"), "--scene", "ball", "--scene-kwargs", kwargs, "--seed", "1"]) == 0
    assert "trained offline_bc on 3DBall?team=0" in capsys.readouterr().out
    bc = json.loads((tmp_path / "results" / "bc" / "evaluation.json").read_text())

    venv, _ = make_training_env(scene="ball", scene_kwargs=BALL)
    try:
        random = evaluate(RandomPolicy(venv.action_space, seed=1), venv, episodes=4, seed=HELD_OUT_SEEDS + 1)
    finally:
        venv.close()
    assert bc["seed"] == HELD_OUT_SEEDS + 1 and bc["episodes"] == 4  # never the demos' seeds
    assert random.mean_return < 15.0  # the ball falls after about 100 steps
    assert bc["mean_return"] > random.mean_return + 12.0  # expert: 30 (0.1 per step, 300 steps)
