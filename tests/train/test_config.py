"""Training configs: merging of sections and every validation error path."""

from __future__ import annotations

import dataclasses
import logging
import re
import tracemalloc
import typing
from pathlib import Path

import pytest
import yaml

from gym_unity_il.errors import ConfigError
from gym_unity_il.train.config import (
    MAX_CONFIG_BYTES,
    NUMERIC_RANGES,
    CloningSettings,
    GAILSettings,
    IntrinsicSettings,
    MemorySettings,
    PPOSettings,
    SACSettings,
    TrainerSettings,
    parse_config,
)
from gym_unity_il.train.dialects import load_config


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
        ({"default": {"trainer": "poca"}}, r"section 'default'\.trainer: expected one of 'offline_bc'"),
        ({"default": {"batch_size": "many"}}, r"\.batch_size: expected int, got 'many'"),
        ({"default": {"batch_size": 1.5}}, r"\.batch_size: expected int"),
        ({"default": {"normalize": "yes please"}}, r"\.normalize: expected bool"),
        ({"default": {"learning_rate": [1]}}, r"\.learning_rate: expected float"),
        ({"default": {"demo_path": 3}}, r"\.demo_path: expected str or null"),
        ({"default": {"batch_size": 0}}, r"section \'default\'\.batch_size: 0 is out of range; accepted: an integer from 1 to 1000000"),
        ({"default": {"learning_rate": -1.0}}, r"\.learning_rate: -1\.0 is out of range; accepted: a finite number > 0 and <= 10"),
        ({"default": {"gail": 5}}, r"\.gail: expected a mapping"),
        ({"default": {"max_steps": True}}, r"\.max_steps: expected int"),
        ({"default": {"num_processes": 0}}, r"section 'default'\.num_processes: 0 is out of range; accepted: an integer from 1 to 256"),
        ({"default": {"eval_episodes": -2}}, r"\.eval_episodes: -2 is out of range"),
        ({"default": {"num_processes": 1.5}}, r"\.num_processes: expected int"),
        ({"Ball": {"gail": {"demo_batch_size": 0}}}, r"section 'Ball'\.gail\.demo_batch_size: 0 is out of range"),
        ({"default": {"gail": {"n_disc_updates_per_round": 0}}}, r"\.gail\.n_disc_updates_per_round: 0 is out of range"),
        ({"default": {"gail": {"gen_replay_buffer_capacity": 0}}}, r"\.gail\.gen_replay_buffer_capacity: 0 is out of range"),
        ({"default": {"gail": {"strength": -0.5}}}, r"\.gail\.strength: -0\.5 is out of range; accepted: a finite number >= 0"),
        ({"default": {"ent_weight": -1}}, r"\.ent_weight: -1\.0 is out of range"),
        ({"default": {"l2_weight": -1e-3}}, r"\.l2_weight: -0\.001 is out of range"),
        ({"default": {"ppo": {"ent_coef": -0.1}}}, r"\.ppo\.ent_coef: -0\.1 is out of range"),
        ({"default": {"sac": {"learning_starts": -1}}}, r"\.sac\.learning_starts: -1 is out of range; accepted: an integer from 0 to"),
        ({"default": {"ppo": {"gamma": 1.5}}}, r"\.ppo\.gamma: 1\.5 is out of range; accepted: a finite number >= 0 and <= 1"),
        ({"default": {"sac": {"gamma": -0.1}}}, r"\.sac\.gamma: -0\.1 is out of range"),
        ({"default": {"ppo": {"gae_lambda": 2}}}, r"\.ppo\.gae_lambda: 2\.0 is out of range"),
        ({"default": {"ppo": {"clip_range": 0}}}, r"\.ppo\.clip_range: 0\.0 is out of range; accepted: a finite number > 0"),
        ({"default": {"dagger_round_steps": 0}}, r"section 'default'\.dagger_round_steps: 0 is out of range"),
        ({"Student": {"teacher": 3}}, r"section 'Student'\.teacher: expected str or null, got 3"),
        ({"Student": {"brain_to_imitate": ["Teacher"]}}, r"section 'Student'\.brain_to_imitate: expected str or null"),
        ({"default": {"batches_per_epoch": -1}}, r"\.batches_per_epoch: -1 is out of range"),
        ([1, 2], "top level must map section names"),
        ({1: {}}, "section name 1 is not a string"),
    ],
)
def test_every_validation_error_names_section_and_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, source="cfg.yaml")


def test_num_envs_is_read_as_num_processes_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "old.yaml").write_text("default:\n  num_envs: 3\nBall:\n  num_processes: 2\n")
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.train.config"):
        config = load_config(tmp_path / "old.yaml")
    assert config.default.num_processes == 3 and config.for_behavior("Ball").num_processes == 2
    assert "num_envs" not in config.to_dict()["default"] and config.to_dict()["default"]["num_processes"] == 3
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1
    assert re.search(r"old\.yaml: section 'default': num_envs is the former name of num_processes; write num_processes", notes[0])
    with pytest.raises(ConfigError, match=r"section 'Ball': num_envs and num_processes are both given; num_envs is the former name of"):
        parse_config({"Ball": {"num_processes": 2, "num_envs": 2}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"section 'default'\.num_envs: 0 is out of range; accepted: an integer from 1 to 256"):
        parse_config({"default": {"num_envs": 0}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"section 'default'\.num_envs: expected int"):
        parse_config({"default": {"num_envs": 1.5}}, source="c.yaml")


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



# ---------------------------------------------------------------------------- configs are data, safely read

SETTINGS_CLASSES = {"": TrainerSettings, "ppo.": PPOSettings, "sac.": SACSettings, "gail.": GAILSettings, "cloning.": CloningSettings,
                    "curiosity.": IntrinsicSettings, "rnd.": IntrinsicSettings, "memory.": MemorySettings}  # fmt: skip


def _numeric_keys() -> list[tuple[str, str, bool]]:
    """(prefix, key, is_int) of every numeric setting of every settings class."""
    keys = []
    for prefix, cls in SETTINGS_CLASSES.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kinds = set(typing.get_args(hints[f.name])) - {type(None)} or {hints[f.name]}
            if kinds & {int, float}:
                keys.append((prefix, f.name, int in kinds))
    return keys


def _section(prefix: str, key: str, value: object) -> dict:
    return {"default": {prefix[:-1]: {key: value}} if prefix else {key: value}}


def test_every_numeric_key_has_a_range_that_refuses_values_past_both_ends_and_non_finite() -> None:
    keys = _numeric_keys()
    assert len(keys) == 44 and {key for _, key, _ in keys} == set(NUMERIC_RANGES)  # batch_size, learning_rate, gamma: twice or more
    for prefix, key, is_int in keys:
        low, high, open_low = NUMERIC_RANGES[key]
        below = low if open_low else (low - 1 if is_int else low - 0.5)
        values = [below, high + 1 if is_int else high * 2, 10**30] + ([] if is_int else [float("nan"), float("inf"), float("-inf")])
        for value in values:
            expected = "an integer from" if is_int else "a finite number"
            with pytest.raises(ConfigError, match=rf"section 'default'\.{re.escape(prefix + key)}: .* is out of range; accepted: {expected}"):
                parse_config(_section(prefix, key, value), source="c.yaml")
        if is_int:
            with pytest.raises(ConfigError, match=rf"section 'default'\.{re.escape(prefix + key)}: expected int.*, got inf"):
                parse_config(_section(prefix, key, float("inf")), source="c.yaml")
        parse_config(_section(prefix, key, high), source="c.yaml")  # the ends are accepted
        parse_config(_section(prefix, key, low if not open_low else high / 2), source="c.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default:\n  hidden_units: 1e29\n", r"\.hidden_units: 99999999999999991433150857216 is out of range; accepted: an integer from 1 to 4096"),
        ("default:\n  hidden_units: 1000000000\n", r"\.hidden_units: 1000000000 is out of range"),
        ("default:\n  num_epoch: 1e308\n", r"\.num_epoch: an integer of about 308 digits is out of range; accepted: an integer from 0 to 1000000"),
        ("default:\n  learning_rate: .nan\n", r"\.learning_rate: nan is out of range; accepted: a finite number > 0 and <= 10"),
        ("default:\n  learning_rate: .inf\n", r"\.learning_rate: inf is out of range"),
        ("default:\n  batch_size: " + "9" * 6000 + "\n", r"c\.yaml: a value cannot be read: 'Exceeds the limit"),
    ],
)
def test_bad_numbers_in_a_file_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(tmp_path / "c.yaml")
    assert len(str(info.value)) < 400


def test_a_yaml_alias_bomb_is_refused_at_once_naming_the_line(tmp_path: Path) -> None:
    lines = ['lol: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines += ["default:", "  batch_size: *a8"]  # 9**9 strings once expanded
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"bomb\.yaml, line 1: YAML anchors and aliases \(&name, \*name\) are not accepted"):
            load_config(tmp_path / "bomb.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # refused before any expansion (expanded, the bomb reached 5.8 GB)
    (tmp_path / "alias.yaml").write_text("default:\n  batch_size: 64\nBall:\n  gail: *g\n")
    with pytest.raises(ConfigError, match=r"alias\.yaml, line 4: YAML anchors and aliases"):
        load_config(tmp_path / "alias.yaml")


def test_files_that_are_not_small_utf8_text_are_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("default:\n  batch_size: 64\n" + "# padding\n" * (MAX_CONFIG_BYTES // 10))
    with pytest.raises(ConfigError, match=r"big\.yaml: larger than 1048576 bytes"):
        load_config(tmp_path / "big.yaml")
    (tmp_path / "model.yaml").write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff\xfe binary")
    with pytest.raises(ConfigError, match=r"model\.yaml: not UTF-8 text \(byte 10 cannot be decoded\)"):
        load_config(tmp_path / "model.yaml")
    (tmp_path / "nul.yaml").write_bytes(b"default:\n  batch_size: 64\x00\x00\n")
    with pytest.raises(ConfigError, match=r"nul\.yaml: holds NUL bytes"):
        load_config(tmp_path / "nul.yaml")
    with pytest.raises(ConfigError, match=r"cannot read config file .*: Is a directory"):
        load_config(tmp_path)


def test_error_messages_quote_huge_values_briefly() -> None:
    for value in ["x" * 100_000, list(range(100_000)), {f"k{i}": i for i in range(1000)}]:
        with pytest.raises(ConfigError) as info:
            parse_config({"default": {"trainer": value}}, source="c.yaml")
        assert len(str(info.value)) < 500, str(info.value)[:1000]
    with pytest.raises(ConfigError, match=r"unknown key 'y{199}\.\.\. \(10000 characters\); known keys"):
        parse_config({"default": {"y" * 10_000: 1}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"section 'default': unknown key 1; known keys"):
        parse_config({"default": {1: 2, "a": 3}}, source="c.yaml")  # keys of mixed types
