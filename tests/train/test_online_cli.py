"""``gym-unity-il train`` with the ``online_bc`` and ``dagger`` example configs at a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from stable_baselines3 import PPO

from gym_unity_il.cli import main
from gym_unity_il.train import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"
TINY = {"max_steps": 240, "summary_freq": 120, "eval_episodes": 1, "dagger_round_steps": 120}


@pytest.mark.parametrize(
    ("name", "scene_kwargs", "behavior"),
    [
        ("online_bc", {"teacher_student": True, "num_agents": 2, "max_steps": 60}, "Student?team=0"),
        ("dagger", {"num_agents": 2, "max_steps": 60}, "3DBall?team=0"),
    ],
)
def test_example_config_trains_through_the_cli(tmp_path: Path, name: str, scene_kwargs: dict, behavior: str, capsys) -> None:
    shipped = load_config(EXAMPLES / f"{name}.yaml")  # valid as shipped
    assert shipped.default.trainer == name
    example = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    example["default"].update({k: v for k, v in TINY.items() if k != "dagger_round_steps" or name == "dagger"})
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(example))
    args = ["train", str(config), "--run-id", name, "--results-dir", str(tmp_path / "results"), "--scene", "ball", "--scene-kwargs", json.dumps(scene_kwargs)]
    assert main(args) == 0
    assert f"trained {name} on {behavior}" in capsys.readouterr().out
    run = tmp_path / "results" / name
    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["trainer"] == name and summary["episodes"] == 1 and summary["behavior"] == behavior
    labels = summary["teacher_pairs"] if name == "online_bc" else summary["teacher_labels"]
    assert labels >= 240
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert rows and all(r.split(",")[0] == name for r in rows)
    assert (run / "learning_curve.png").stat().st_size > 0 and any((run / "tensorboard").iterdir())
    assert PPO.load(run / "model.zip", device="cpu").policy is not None
