"""Config files read as they are, whatever their dialect: ours, ML-Agents 0.10 / 0.11's, today's ML-Agents'."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError
from gym_unity_il.train import load_config
from gym_unity_il.train.dialects import dialect_of
from train_helpers import BALL

FIXTURES = Path(__file__).parent / "mlagents_configs"
EXAMPLES = Path(__file__).parents[2] / "examples" / "configs"


@pytest.mark.parametrize("path", sorted((FIXTURES / "seed").glob("*.yaml")) + sorted((FIXTURES / "modern").glob("*.yaml")), ids=lambda p: p.name)
def test_each_ml_agents_file_is_recognised(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert dialect_of(raw) == path.parent.name
    try:
        config = load_config(path)
    except ConfigError as exc:  # a file whose sections are refused says which and why
        assert path.name in str(exc) and "section" in str(exc)
    else:
        assert config.source == str(path)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_our_own_examples_stay_ours(path: Path) -> None:
    assert dialect_of(yaml.safe_load(path.read_text())) == "ours"


def test_a_typo_in_our_own_file_is_still_an_unknown_key() -> None:
    assert dialect_of({"default": {"trainer": "offline_bc", "hiden_units": 4}}) == "ours"


def test_a_seed_file_as_it_is_trains_through_the_cli(tmp_path: Path, ball_demo: Path, capsys, caplog) -> None:
    raw = yaml.safe_load((FIXTURES / "seed" / "offline_bc_config.yaml").read_text())
    raw["3DBall"].update(demo_path=str(ball_demo), max_steps=10, summary_freq=10)
    config = tmp_path / "offline_bc_config.yaml"
    config.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.INFO):
        code = main(["train", str(config), "--run-id", "seed", "--results-dir", str(tmp_path / "results"), "--scene", "ball",
                     "--scene-kwargs", json.dumps(BALL)])  # fmt: skip
    assert code == 0 and "trained offline_bc on 3DBall?team=0" in capsys.readouterr().out
    assert "read as an ML-Agents 0.10 / 0.11 config" in caplog.text
    assert "use_recurrent: ignored" in caplog.text or "use_recurrent" in caplog.text  # an ignored key says why
    assert json.loads((tmp_path / "results" / "seed" / "evaluation.json").read_text())["trainer"] == "offline_bc"


def test_run_sections_of_a_modern_file_become_run_settings_and_environment_parameters_say_not_applied_yet(tmp_path: Path, caplog) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"behaviors": {"3DBall": {"trainer_type": "ppo"}}, "env_settings": {"num_envs": 2},
                                      "environment_parameters": {"gravity": 9.81}}))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        loaded = load_config(config)
    assert loaded.run.num_envs == 2
    assert "env_settings" not in caplog.text
    assert "environment_parameters is read but not applied" in caplog.text
