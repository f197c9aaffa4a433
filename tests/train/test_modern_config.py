"""Today's ML-Agents config files (top-level ``behaviors:``): every fixture (in the shapes of
ML-Agents' config/ folder) translates and parses, each ignored key warns, each key that would
change the result is refused naming the file, section and key, the docs' table matches the
key table, and a PPO and an imitation file train on the built-in ball scene."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gym_unity_il.errors import ConfigError
from gym_unity_il.train import parse_config, train
from gym_unity_il.train.config import TRAINER_TYPES
from gym_unity_il.train.modern_config import KEYS, RUN_FIELDS, RUN_SECTIONS, translate
from train_helpers import BALL

FIXTURES = Path(__file__).parent / "mlagents_configs" / "modern"
DOCS = Path(__file__).parents[2] / "docs" / "mlagents_config.md"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / name).read_text())


def sections(translated: dict[str, Any]) -> dict[str, Any]:
    """The translated dict without its run-level sections: what parse_config takes."""
    return {k: v for k, v in translated.items() if k not in RUN_SECTIONS}


def warned(warnings: list[str]) -> list[str]:
    """The section-relative key each warning names (``behaviors.3DBall.time_horizon`` style)."""
    out = []
    for text in warnings:
        match = re.match(r"[^:]+: section '([^']+)'(\S*): ", text)
        assert match, text
        out.append(match.group(1) + match.group(2))
    return out


#: fixture -> the trainer of each behavior, and the keys that warn
ACCEPTED = {
    "ppo_3DBall.yaml": (
        {"3DBall": "ppo"},
        ["time_horizon", "keep_checkpoints", "network_settings.normalize"],
    ),
    "sac_3DBall.yaml": (
        {"3DBall": "sac"},
        ["time_horizon", "keep_checkpoints", "threaded", "hyperparameters.init_entcoef", "hyperparameters.save_replay_buffer",
         "hyperparameters.steps_per_update", "hyperparameters.reward_signal_steps_per_update", "network_settings.normalize"],
    ),  # fmt: skip
    "imitation_3DBall.yaml": (
        {"3DBall": "ppo"},
        ["time_horizon", "keep_checkpoints", "reward_signals.gail.network_settings", "reward_signals.gail.use_actions"],
    ),  # fmt: skip
    "imitation_PushBlock_GridWorld.yaml": (
        {"GridWorld": "gail"},
        ["time_horizon", "keep_checkpoints", "threaded", "reward_signals.gail.encoding_size", "reward_signals.gail.use_actions"],
    ),  # fmt: skip
    "imitation_Crawler_3DBall.yaml": (
        {"3DBall": "gail"},
        ["time_horizon", "keep_checkpoints", "reward_signals.gail.network_settings", "reward_signals.gail.use_actions"],
    ),
    "imitation_Hallway_GridWorld.yaml": (
        {"GridWorld": "ppo"},
        ["time_horizon", "keep_checkpoints", "reward_signals.gail.use_actions"],
    ),
    "imitation_Pyramids_GridWorld.yaml": (
        {"GridWorld": "ppo"},
        ["time_horizon", "reward_signals.gail.encoding_size", "reward_signals.gail.use_actions"],
    ),
    "ppo_curriculum.yaml": (
        {"3DBall": "ppo", "GridWorld": "ppo"},
        ["time_horizon", "keep_checkpoints", "threaded"],
    ),
    "ppo_randomize_full.yaml": (
        {"default": "ppo", "3DBall": "ppo"},
        ["time_horizon", "keep_checkpoints", "even_checkpoints", "checkpoint_interval", "threaded"],
    ),
}

def test_every_fixture_is_covered() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.yaml")) == sorted(ACCEPTED)


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_fixtures_translate_parse_and_warn_once_per_ignored_key(name: str) -> None:
    trainers, keys = ACCEPTED[name]
    raw = load(name)
    translated, warnings = translate(raw, source=name)
    if any(t not in TRAINER_TYPES for t in trainers.values()):
        pytest.skip(f"trainers {sorted(set(trainers.values()) - set(TRAINER_TYPES))} are not in our dialect yet")
    config = parse_config(sections(translated), source=name)
    assert {k: config.for_behavior(k).trainer if k != "default" else config.default.trainer for k in trainers} == trainers
    expected = {f"{'default_settings' if section == 'default' else 'behaviors.' + section}.{key}" for section in trainers for key in keys}
    notes = [w for w in warned(warnings) if not w.startswith(("environment_parameters", "env_settings"))]
    assert sorted(notes) == sorted(expected)
    restarts = {f"env_settings.{key}" for key in ("timeout_wait", "max_lifetime_restarts", "restarts_rate_limit_n", "restarts_rate_limit_period_s")}
    assert {w for w in warned(warnings) if w.startswith("env_settings")} == (restarts if "env_settings" in raw else set())  # our restart policy
    assert all(name in w and ("ignored: " in w or "approximated: " in w) for w in warnings if "environment_parameters" not in w)


def test_ppo_hyperparameters_map_to_ours() -> None:
    translated, _ = translate(load("ppo_3DBall.yaml"), source="f.yaml")
    ball = translated["3DBall"]
    assert ball["ppo"] == {"buffer_size": 12000, "batch_size": 64, "n_epochs": 3, "learning_rate": 3.0e-4, "ent_coef": 0.001,
                           "clip_range": 0.2, "gae_lambda": 0.99, "gamma": 0.99, "learning_rate_schedule": "linear",
                           "ent_coef_schedule": "linear", "clip_range_schedule": "linear"}  # fmt: skip
    assert (ball["max_steps"], ball["summary_freq"], ball["hidden_units"], ball["num_layers"]) == (500_000, 12_000, 128, 2)
    assert ball["normalize"] is False and "demo_path" not in ball and "num_epoch" not in ball


def test_sac_hyperparameters_map_to_ours() -> None:
    translated, _ = translate(load("sac_3DBall.yaml"), source="f.yaml")
    assert translated["3DBall"]["sac"] == {"buffer_size": 200_000, "batch_size": 64, "learning_rate": 3.0e-4, "learning_starts": 0, "gamma": 0.99,
                                           "learning_rate_schedule": "constant"}  # fmt: skip
    assert translated["3DBall"]["max_steps"] == 100_000


def test_behavioral_cloning_and_gail_map_to_bc_beside_ppo_and_the_gail_strength() -> None:
    translated, _ = translate(load("imitation_3DBall.yaml"), source="f.yaml")
    ball = translated["3DBall"]
    assert ball["trainer"] == "ppo" and ball["demo_path"] == "demos/ball_expert.demo" and ball["normalize"] is True
    assert ball["cloning"] == {"during_rl": True, "steps": 50_000}
    assert ball["learning_rate"] == pytest.approx(3.0e-4 * 0.5) and ball["num_epoch"] == 3 and ball["batch_size"] == 64
    assert ball["gail"] == {"strength": 0.01, "disc_learning_rate": 3.0e-4, "demo_batch_size": 64}
    raw = load("imitation_3DBall.yaml")
    raw["behaviors"]["3DBall"]["behavioral_cloning"].update(samples_per_update=640, batch_size=32, num_epoch=2)
    ball = translate(raw, source="f.yaml")[0]["3DBall"]
    assert (ball["batches_per_epoch"], ball["batch_size"], ball["num_epoch"]) == (20, 32, 2)


def test_gail_alone_is_our_gail_trainer_with_its_gamma() -> None:
    raw = load("imitation_PushBlock_GridWorld.yaml")
    raw["behaviors"]["GridWorld"]["reward_signals"]["gail"]["gamma"] = 0.9
    grid = translate(raw, source="f.yaml")[0]["GridWorld"]
    assert grid["trainer"] == "gail" and grid["ppo"]["gamma"] == 0.9 and "strength" not in grid["gail"]
    assert grid["demo_path"] == "demos/grid_expert.demo"


def test_default_settings_is_our_default_and_lies_under_every_behavior() -> None:
    translated, _ = translate(load("ppo_randomize_full.yaml"), source="f.yaml")
    assert translated["default"]["max_steps"] == 500_000 and translated["3DBall"]["max_steps"] == 200_000
    assert translated["3DBall"]["ppo"] == translated["default"]["ppo"]
    config = parse_config(sections(translated), source="f.yaml")
    assert config.for_behavior("Other").max_steps == 500_000 and config.for_behavior("3DBall?team=0").max_steps == 200_000


def test_run_level_sections_are_returned_as_run_settings() -> None:
    raw = load("ppo_randomize_full.yaml")
    translated, _ = translate(raw, source="f.yaml")
    expected = {section: {RUN_FIELDS[key]: value for key, value in (raw.get(section) or {}).items() if key in RUN_FIELDS and value is not None}
                for section in ("env_settings", "engine_settings", "checkpoint_settings", "torch_settings")}  # fmt: skip
    if raw.get("debug") is not None:
        expected["debug"] = {"debug": raw["debug"]}
    assert translated["run"] == expected and all(expected.values())
    assert set(RUN_SECTIONS) <= set(translated)


def test_constants_and_samplers_become_one_lesson_each() -> None:
    translated, warnings = translate(load("ppo_randomize_full.yaml"), source="f.yaml")
    assert translated["environment_parameters"] == {
        "gravity": [{"name": "gravity", "value": {"sampler_type": "constant", "value": 9.81}, "completion_criteria": None}],
        "mass": [{"name": "mass", "value": {"sampler_type": "uniform", "min_value": 0.5, "max_value": 10.0}, "completion_criteria": None}],
        "length": [{"name": "length", "value": {"sampler_type": "multirange_uniform", "intervals": [[7.0, 10.0], [15.0, 20.0]]}, "completion_criteria": None}],
        "scale": [{"name": "scale", "value": {"sampler_type": "gaussian", "mean": 2.0, "st_dev": 0.3, "seed": 5}, "completion_criteria": None}],
    }
    assert not [w for w in warnings if "environment_parameters" in w]


def test_curricula_are_data_with_defaults() -> None:
    translated, warnings = translate(load("ppo_curriculum.yaml"), source="f.yaml")
    mass = translated["environment_parameters"]["ball_mass"]
    assert [lesson["name"] for lesson in mass] == ["Lesson0", "Lesson1", "Lesson2"]
    assert mass[0]["completion_criteria"] == {"behavior": "3DBall", "measure": "progress", "threshold": 0.1, "min_lesson_length": 100,
                                              "signal_smoothing": True, "require_reset": False}  # fmt: skip
    assert mass[1]["completion_criteria"]["require_reset"] is True and mass[2] == {"name": "Lesson2", "value": {"sampler_type": "constant", "value": 8.0},
                                                                                   "completion_criteria": None}  # fmt: skip
    assert not [w for w in warnings if "environment_parameters" in w]


def edited(name: str, path: str, value: Any) -> dict[str, Any]:
    """Fixture ``name`` with the key at dotted ``path`` set to ``value`` (``None``: removed)."""
    raw = copy.deepcopy(load(name))
    *parents, leaf = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(leaf)
    else:
        node[leaf] = value
    return raw


B = "behaviors.3DBall"
REFUSALS = [
    ("ppo_3DBall.yaml", f"{B}.trainer_type", "poca", r"'behaviors\.3DBall'\.trainer_type: 'poca'.*not supported; use trainer_type: ppo or sac"),
    ("ppo_3DBall.yaml", f"{B}.trainer_type", "a2c", r"\.trainer_type: expected one of ppo, sac, got 'a2c'"),
    ("ppo_3DBall.yaml", f"{B}.trainer_type", None, r"'behaviors\.3DBall': hyperparameters are given without trainer_type"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.memory", {"memory_size": "big"}, r"\.network_settings\.memory\.memory_size: expected an integer"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.memory", {"memory_sise": 128}, r"\.network_settings\.memory: unknown key 'memory_sise'"),
    ("ppo_3DBall.yaml", f"{B}.self_play", {"window": 10, "save_steps": 50000}, r"\.self_play: self-play .* is not built; remove self_play"),
    ("ppo_3DBall.yaml", f"{B}.init_path", "results/old/3DBall", r"\.init_path: starting from another run's model is not built"),
    ("sac_3DBall.yaml", f"{B}.reward_signals.curiosity", {"strength": 0.02}, r"\.reward_signals\.curiosity: our SAC learns .*use trainer_type: ppo"),
    ("imitation_PushBlock_GridWorld.yaml", "behaviors.GridWorld.reward_signals.rnd", {"strength": 0.01},
     r"\.reward_signals\.rnd: intrinsic rewards are added to PPO's beside the env's reward, and GAIL is the only other signal"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.rnd", {"strength": 0.01, "encoding_size": 0}, r"\.rnd\.encoding_size: 0 is out of range"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.extrinsic.strength", 0.5, r"\.reward_signals\.extrinsic\.strength: 0\.5.*divide the other signals"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals", {}, r"\.reward_signals: no reward signal with a nonzero strength"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.gail", {"strength": 0.1}, r"\.reward_signals\.gail\.demo_path: GAIL learns from demonstrations"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.extrinsic.gama", 0.9, r"\.reward_signals\.extrinsic: unknown key 'gama'"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.bonus", {}, r"\.reward_signals: unknown key 'bonus'"),
    ("sac_3DBall.yaml", f"{B}.reward_signals.gail", {"strength": 0.1, "demo_path": "d.demo"}, r"\.reward_signals\.gail: our SAC learns .*use trainer_type: ppo"),
    ("sac_3DBall.yaml", f"{B}.hyperparameters.tau", 0.01, r"\.hyperparameters\.tau: 0\.01.*set tau to 0\.005"),
    ("sac_3DBall.yaml", f"{B}.hyperparameters.beta", 0.01, r"\.hyperparameters: unknown key 'beta'"),
    ("ppo_3DBall.yaml", f"{B}.hyperparameters.tau", 0.005, r"\.hyperparameters: unknown key 'tau'"),
    ("ppo_3DBall.yaml", f"{B}.hyperparameters.batch_size", "many", r"\.hyperparameters\.batch_size: expected an integer, got 'many'"),
    ("ppo_3DBall.yaml", f"{B}.hyperparameters.epsilon", 0, r"\.hyperparameters\.epsilon: 0 is out of range"),
    ("ppo_3DBall.yaml", f"{B}.hyperparameters.learning_rate_schedule", "cosine", r"\.learning_rate_schedule: expected one of constant, linear"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.normalize", "yes", r"\.network_settings\.normalize: expected true or false"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.vis_encode_type", "big", r"\.vis_encode_type: expected one of simple, nature_cnn"),
    ("ppo_3DBall.yaml", f"{B}.max_steps", "lots", r"'behaviors\.3DBall'\.max_steps: expected an integer"),
    ("ppo_3DBall.yaml", f"{B}.output_path", "default", r"'behaviors\.3DBall': unknown key 'output_path'"),
    ("ppo_3DBall.yaml", "behaviors.default", {"trainer_type": "ppo"}, r"'behaviors\.default': the behavior name 'default' is a reserved"),
    ("ppo_3DBall.yaml", "parameter_randomization", {}, r"top level: unknown key 'parameter_randomization'"),
    ("ppo_3DBall.yaml", "env_settings.env_pth", "x", r"section 'env_settings': unknown key 'env_pth'"),
    ("imitation_3DBall.yaml", f"{B}.behavioral_cloning.demo_path", "other.demo", r"\.behavioral_cloning\.demo_path: 'other\.demo' differs from"),
    ("imitation_3DBall.yaml", f"{B}.behavioral_cloning.anneal", 1, r"\.behavioral_cloning: unknown key 'anneal'"),
    ("imitation_3DBall.yaml", f"{B}.behavioral_cloning", {"strength": 0.5}, r"\.behavioral_cloning\.demo_path: behavioral cloning learns from demonstrations"),
    ("imitation_3DBall.yaml", f"{B}.behavioral_cloning.demo_path", ["a.demo"], r"\.behavioral_cloning\.demo_path: expected a string"),
    ("imitation_3DBall.yaml", f"{B}.behavioral_cloning.strength", 0, r"\.behavioral_cloning\.strength: 0 turns behavioral cloning off"),
    ("imitation_3DBall.yaml", f"{B}.reward_signals.gail.use_gail", True, r"\.reward_signals\.gail: unknown key 'use_gail'"),
    ("ppo_curriculum.yaml", "environment_parameters.grid_size.curriculum", [{"name": "a", "value": 1.0}, {"name": "b", "value": 2.0}],
     r"grid_size\.curriculum\[0\]\.completion_criteria: every lesson but the last needs completion_criteria"),
    ("ppo_curriculum.yaml", "environment_parameters.grid_size.curriculum",
     [{"name": "a", "value": 1.0, "completion_criteria": {"behavior": "Walker", "threshold": 0.5}}, {"name": "b", "value": 2.0}],
     r"curriculum\[0\]\.completion_criteria\.behavior: expected one of the file's behaviors \['3DBall', 'GridWorld'\], got 'Walker'"),
    ("ppo_curriculum.yaml", "environment_parameters.grid_size.curriculum",
     [{"name": "a", "value": 1.0, "completion_criteria": {"behavior": "GridWorld", "measure": "progress", "threshold": 2}}, {"name": "b", "value": 2.0}],
     r"completion_criteria\.threshold: 2\.0 is out of range for measure progress"),
    ("ppo_randomize_full.yaml", "environment_parameters.mass.sampler_parameters.min_value", 20, r"mass\.sampler_parameters: min_value 20\.0 is larger than max_value"),
    ("ppo_randomize_full.yaml", "environment_parameters.mass.sampler_type", "triangular", r"mass\.sampler_type: expected one of uniform, gaussian"),
    ("ppo_randomize_full.yaml", "environment_parameters.mass.sampler_parameters.mean", 1, r"'mean' is not a parameter of the uniform sampler"),
    ("ppo_randomize_full.yaml", "environment_parameters.length.sampler_parameters.intervals", [[1, 2, 3]], r"the interval \[1, 2, 3\] must hold exactly two"),
    ("ppo_randomize_full.yaml", "environment_parameters.scale.sampler_parameters", None, r"scale: expected a number or a sampler"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "value", "message"), REFUSALS, ids=[f"{p}={v!r:.20}" for _, p, v, _ in REFUSALS])
def test_refusals_and_unknown_keys_name_the_file_section_and_key(name: str, path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^f\\.yaml: .*{message}"):
        translate(edited(name, path, value), source="f.yaml")


WARNINGS = [
    ("ppo_3DBall.yaml", f"{B}.reward_signals.curiosity", {"strength": 0.0}, "reward_signals.curiosity", "ignored: strength 0"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.rnd", {"strength": 0}, "reward_signals.rnd", "ignored: strength 0"),
    ("ppo_3DBall.yaml", f"{B}.reward_signals.extrinsic.network_settings", {"hidden_units": 8}, "reward_signals.extrinsic.network_settings", "ignored: "),
    ("ppo_3DBall.yaml", f"{B}.hyperparameters.shared_critic", True, "hyperparameters.shared_critic", "separate networks"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.vis_encode_type", "resnet", "network_settings.vis_encode_type", "approximated: resnet is not built"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.goal_conditioning_type", "hyper", "network_settings.goal_conditioning_type", "inputs like the other"),
    ("ppo_3DBall.yaml", f"{B}.network_settings.deterministic", True, "network_settings.deterministic", "most probable"),
    ("ppo_3DBall.yaml", f"{B}.even_checkpoints", True, "even_checkpoints", "one checkpoint"),
    ("imitation_3DBall.yaml", f"{B}.reward_signals.gail.use_vail", True, "reward_signals.gail.use_vail", "no variational bottleneck"),
    ("imitation_3DBall.yaml", f"{B}.reward_signals.gail.gamma", 0.9, "reward_signals.gail.gamma", "with extrinsic's gamma 0.99"),
    ("imitation_3DBall.yaml", f"{B}.reward_signals.gail.strength", 0, "reward_signals.gail", "ignored: strength 0"),
    ("ppo_curriculum.yaml", "environment_parameters.grid_size.curriculum.1.completion_criteria", {"behavior": "GridWorld"},
     "environment_parameters.grid_size.curriculum[1].completion_criteria", "ignored: the last lesson"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "value", "key", "text"), WARNINGS, ids=[p for _, p, _, _, _ in WARNINGS])
def test_keys_ignored_for_some_values_warn_once(name: str, path: str, value: Any, key: str, text: str) -> None:
    base = warned(translate(load(name), source="f.yaml")[1])
    if ".curriculum.1." in path:
        raw = copy.deepcopy(load(name))
        raw["environment_parameters"]["grid_size"]["curriculum"][1]["completion_criteria"] = value
        section = ""
    else:
        raw = edited(name, path, value)
        section = f"{B}."
    translated, warnings = translate(raw, source="f.yaml")
    new = [w for w in warnings if warned([w])[0] not in base]
    assert len(new) == 1 and warned(new)[0] == f"{section}{key}" and text in new[0], warnings
    parse_config(sections(translated), source="f.yaml")


def test_the_docs_table_is_the_key_table() -> None:
    text = DOCS.read_text()
    section = text.split("## Today's files (behaviors:)", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    documented = {(row[0], row[1].strip("`"), row[2], row[3]) for row in rows}
    table = {(section, key, entry.handling, entry.how) for section, keys in KEYS.items() for key, entry in keys.items()}
    assert documented == table


def tiny(raw: dict[str, Any], demo: Path | None = None) -> dict[str, Any]:
    """``raw``'s 3DBall section at a budget of seconds (the keys a user would turn down)."""
    ball = raw["behaviors"]["3DBall"]
    ball["hyperparameters"].update(buffer_size=128, batch_size=64, num_epoch=1)
    ball.update(max_steps=512, summary_freq=1024)
    if demo is not None:
        ball["reward_signals"]["gail"]["demo_path"] = str(demo)
        ball["behavioral_cloning"]["demo_path"] = str(demo)
    return raw


def train_translated(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    translated, _ = translate(raw, source="f.yaml")
    translated["3DBall"]["eval_episodes"] = 2
    config = parse_config(sections(translated), source="f.yaml")
    result = train(config, run_id="run", results_dir=tmp_path, scene="ball", scene_kwargs=BALL, seed=3, progress=False)
    assert not result.interrupted and (tmp_path / "run" / "model.zip").exists()
    return json.loads((tmp_path / "run" / "evaluation.json").read_text())


@pytest.mark.skipif("ppo" not in TRAINER_TYPES, reason="trainer 'ppo' is not in our dialect yet")
def test_the_3dball_ppo_file_trains_on_the_ball_scene(tmp_path: Path) -> None:
    summary = train_translated(tiny(load("ppo_3DBall.yaml")), tmp_path)
    assert summary["trainer"] == "ppo" and summary["phases"] == ["ppo"] and summary["env_steps"] >= 512


def test_the_imitation_file_trains_ppo_with_bc_beside_it_and_gail_on_the_ball_scene(tmp_path: Path, ball_demo: Path) -> None:
    summary = train_translated(tiny(load("imitation_3DBall.yaml"), ball_demo), tmp_path)
    assert summary["trainer"] == "ppo" and summary["phases"] == ["ppo"] and summary["env_steps"] >= 512
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["3DBall"]
    assert config["gail"]["strength"] == 0.01 and config["normalize"] is True


def test_schedules_default_as_in_ml_agents() -> None:
    """PPO: linear unless the file says otherwise, beta and epsilon following the learning
    rate's schedule; SAC: constant."""
    ppo = translate(edited("ppo_3DBall.yaml", f"{B}.hyperparameters.learning_rate_schedule", None), source="f.yaml")[0]["3DBall"]["ppo"]
    assert (ppo["learning_rate_schedule"], ppo["ent_coef_schedule"], ppo["clip_range_schedule"]) == ("linear", "linear", "linear")
    raw = edited("ppo_3DBall.yaml", f"{B}.hyperparameters.learning_rate_schedule", "constant")
    raw["behaviors"]["3DBall"]["hyperparameters"]["epsilon_schedule"] = "linear"
    ppo = translate(raw, source="f.yaml")[0]["3DBall"]["ppo"]
    assert (ppo["learning_rate_schedule"], ppo["ent_coef_schedule"], ppo["clip_range_schedule"]) == ("constant", "constant", "linear")
    assert translate(load("sac_3DBall.yaml"), source="f.yaml")[0]["3DBall"]["sac"]["learning_rate_schedule"] == "constant"


def test_gail_alone_with_behavioral_cloning_is_gail_with_bc_beside_it() -> None:
    grid = translate(load("imitation_Crawler_3DBall.yaml"), source="f.yaml")[0]["3DBall"]
    assert grid["trainer"] == "gail" and grid["cloning"] == {"during_rl": True, "steps": 50_000}
    assert grid["learning_rate"] == pytest.approx(3.0e-4 * 0.5) and "strength" not in grid["gail"]


def test_behavioral_cloning_with_sac_is_pretraining_and_its_steps_warn() -> None:
    raw = load("sac_3DBall.yaml")
    raw["behaviors"]["3DBall"]["behavioral_cloning"] = {"demo_path": "d.demo", "strength": 0.5, "steps": 1000}
    translated, warnings = translate(raw, source="f.yaml")
    assert translated["3DBall"]["trainer"] == "bc_then_sac" and "cloning" not in translated["3DBall"]
    assert [w for w in warnings if "behavioral_cloning.steps" in w and "pretraining" in w]


def test_curiosity_and_rnd_map_to_our_sections() -> None:
    grid = translate(load("imitation_Pyramids_GridWorld.yaml"), source="f.yaml")[0]["GridWorld"]
    assert grid["curiosity"] == {"strength": 0.02, "encoding_size": 256, "learning_rate": 3.0e-4} and "rnd" not in grid
    raw = edited("ppo_3DBall.yaml", f"{B}.reward_signals.rnd", {"strength": 0.01, "gamma": 0.9, "network_settings": {"hidden_units": 64}})
    translated, warnings = translate(raw, source="f.yaml")
    assert translated["3DBall"]["rnd"] == {"strength": 0.01, "encoding_size": 64, "learning_rate": 1.0e-4}
    assert {w for w in warned(warnings) if ".rnd" in w} == {f"{B}.reward_signals.rnd.network_settings", f"{B}.reward_signals.rnd.gamma"}
    assert parse_config(sections(translated)).for_behavior("3DBall").rnd.strength == 0.01
