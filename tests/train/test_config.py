"""Training configs: merging of sections and every validation error path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gym_unity_il.errors import ConfigError
from gym_unity_il.train.config import TrainerSettings, load_config, parse_config


def test_behavior_sections_overlay_default_and_nested_sections_merge() -> None:
    config = parse_config(
        {
            "default": {"trainer": "offline_bc", "batch_size": 32, "gail": {"demo_batch_size": 128}},
            "3DBall": {"trainer": "gail", "max_steps": 5.0e4, "gail": {"strength": 0.5}},
        }
    )
    ball = config.for_behavior("3DBall?team=0")
    assert ball.trainer == "gail" and ball.batch_size == 32 and ball.max_steps == 50_000
    assert ball.gail.demo_batch_size == 128 and ball.gail.strength == 0.5
    assert config.for_behavior("Other?team=0") == config.default
    assert config.default.net_arch() == [128, 128]
    assert yaml.safe_load(yaml.safe_dump(config.to_dict()))["3DBall"]["gail"]["strength"] == 0.5


def test_empty_config_gives_defaults() -> None:
    assert parse_config(None).default == TrainerSettings()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"default": {"batch_sise": 3}}, r"section 'default': unknown key 'batch_sise'"),
        ({"Ball": {"gail": {"strenght": 1}}}, r"section 'Ball'\.gail: unknown key 'strenght'"),
        ({"default": {"trainer": "ppo"}}, r"section 'default'\.trainer: expected one of 'offline_bc'"),
        ({"default": {"batch_size": "many"}}, r"\.batch_size: expected int, got 'many'"),
        ({"default": {"batch_size": 1.5}}, r"\.batch_size: expected int"),
        ({"default": {"normalize": "yes please"}}, r"\.normalize: expected bool"),
        ({"default": {"learning_rate": [1]}}, r"\.learning_rate: expected float"),
        ({"default": {"demo_path": 3}}, r"\.demo_path: expected str or null"),
        ({"default": {"batch_size": 0}}, r"\.batch_size: must be positive"),
        ({"default": {"learning_rate": -1.0}}, r"\.learning_rate: must be positive"),
        ({"default": {"gail": 5}}, r"\.gail: expected a mapping"),
        ({"default": {"max_steps": True}}, r"\.max_steps: expected int"),
        ({"default": {"num_envs": 0}}, r"section 'default'\.num_envs: must be positive, got 0"),
        ({"default": {"eval_episodes": -2}}, r"\.eval_episodes: must be positive"),
        ({"default": {"num_envs": 1.5}}, r"\.num_envs: expected int"),
        ({"Ball": {"gail": {"demo_batch_size": 0}}}, r"section 'Ball'\.gail\.demo_batch_size: must be positive"),
        ({"default": {"gail": {"n_disc_updates_per_round": 0}}}, r"\.gail\.n_disc_updates_per_round: must be positive"),
        ({"default": {"gail": {"gen_replay_buffer_capacity": 0}}}, r"\.gail\.gen_replay_buffer_capacity: must be positive"),
        ({"default": {"gail": {"strength": -0.5}}}, r"\.gail\.strength: must not be negative"),
        ({"default": {"ent_weight": -1}}, r"\.ent_weight: must not be negative"),
        ({"default": {"l2_weight": -1e-3}}, r"\.l2_weight: must not be negative"),
        ({"default": {"ppo": {"ent_coef": -0.1}}}, r"\.ppo\.ent_coef: must not be negative"),
        ({"default": {"sac": {"learning_starts": -1}}}, r"\.sac\.learning_starts: must not be negative"),
        ({"default": {"ppo": {"gamma": 1.5}}}, r"\.ppo\.gamma: must be between 0 and 1, got 1\.5"),
        ({"default": {"sac": {"gamma": -0.1}}}, r"\.sac\.gamma: must be between 0 and 1"),
        ({"default": {"ppo": {"gae_lambda": 2}}}, r"\.ppo\.gae_lambda: must be between 0 and 1"),
        ({"default": {"ppo": {"clip_range": 0}}}, r"\.ppo\.clip_range: must be positive"),
        ({"default": {"dagger_round_steps": 0}}, r"section 'default'\.dagger_round_steps: must be positive, got 0"),
        ({"Student": {"teacher": 3}}, r"section 'Student'\.teacher: expected str or null, got 3"),
        ({"Student": {"brain_to_imitate": ["Teacher"]}}, r"section 'Student'\.brain_to_imitate: expected str or null"),
        ({"default": {"batches_per_epoch": -1}}, r"\.batches_per_epoch: must not be negative"),
        ([1, 2], "top level must map section names"),
        ({1: {}}, "section name 1 is not a string"),
    ],
)
def test_every_validation_error_names_section_and_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, source="cfg.yaml")


def test_yaml_scientific_strings_and_relative_demo_path(tmp_path: Path) -> None:
    (tmp_path / "demos").mkdir()
    (tmp_path / "c.yaml").write_text("default:\n  max_steps: 5e4\n  learning_rate: 3e-4\n  demo_path: demos\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.default.max_steps == 50_000 and config.default.learning_rate == pytest.approx(3e-4)
    assert Path(config.default.demo_path) == tmp_path / "demos"


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("default: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")

