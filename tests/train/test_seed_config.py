"""ML-Agents 0.10 / 0.11 trainer configs read as they are (:mod:`gym_unity_il.train.seed_config`):
the five files of those releases parse, warn once per ignored key, refuse what would change the
result silently, and the BC ones train through the CLI."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from stable_baselines3 import PPO

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError
from gym_unity_il.train.config import parse_config
from gym_unity_il.train.run import TRAINERS
from gym_unity_il.train.seed_config import KEYS, translate
from train_helpers import BALL

FIXTURES = Path(__file__).parent / "mlagents_configs" / "seed"
DOCS = Path(__file__).parents[2] / "docs" / "mlagents_config.md"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / name).read_text())


def warned(warnings: list[str]) -> list[str]:
    """The section-relative key each warning names (``3DBall.time_horizon`` style)."""
    out = []
    for text in warnings:
        match = re.match(r"[^:]+: section '([^']+)'\.(\S*): ", text)
        assert match, text
        out.append(f"{match.group(1)}.{match.group(2)}")
    return out


_MEMORY = ["memory_size", "sequence_length"]

#: fixture -> the trainer of each section, and the keys that warn
ACCEPTED = {
    "trainer_config.yaml": (
        {"default": "ppo", "3DBall": "ppo", "GridWorld": "ppo"},
        [*(f"default.{k}" for k in [*_MEMORY, "vis_encode_type", "time_horizon"]), "3DBall.time_horizon", "3DBall.normalize", "GridWorld.time_horizon"],
    ),
    "sac_trainer_config.yaml": (
        {"default": "sac", "3DBall": "sac", "GridWorld": "sac"},
        [*(f"default.{k}" for k in [*_MEMORY, "vis_encode_type", "time_horizon"]),
         "3DBall.time_horizon", "3DBall.init_entcoef", "3DBall.normalize", "GridWorld.time_horizon", "GridWorld.init_entcoef"],
    ),
    "offline_bc_config.yaml": (
        {"default": "offline_bc", "3DBall": "offline_bc", "GridWorld": "offline_bc", "Hallway": "offline_bc"},
        [*(f"{section}.{k}" for section in ("default", "3DBall", "GridWorld") for k in _MEMORY), "Hallway.num_epoch"],
    ),
    "online_bc_config.yaml": (
        {"default": "online_bc", "Student": "online_bc"},
        [*(f"default.{k}" for k in [*_MEMORY, "time_horizon"]), "Student.sequence_length"],
    ),
    "gail_config.yaml": (
        {"default": "ppo", "3DBall": "ppo", "GridWorld": "gail"},
        [*(f"default.{k}" for k in [*_MEMORY, "time_horizon"]),
         "3DBall.time_horizon", "3DBall.reward_signals.gail.encoding_size", "3DBall.reward_signals.gail.use_actions",
         "GridWorld.time_horizon", "GridWorld.reward_signals.gail.encoding_size", "GridWorld.reward_signals.gail.use_actions"],
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_every_fixture_parses_with_one_warning_per_ignored_key(name: str) -> None:
    trainers, warns = ACCEPTED[name]
    translated, warnings = translate(load(name), source=name)
    config = parse_config(translated, source=name)
    assert {section: config.for_behavior(section).trainer for section in trainers} == trainers
    assert warned(warnings) == warns
    assert all(": ignored: " in text or ": approximated: " in text for text in warnings)


def test_ppo_keys_map_to_our_ppo_settings() -> None:
    config = parse_config(translate(load("trainer_config.yaml"), source="t.yaml")[0])
    ball, grid = config.for_behavior("3DBall"), config.for_behavior("GridWorld")
    ppo = ball.ppo
    assert (ppo.batch_size, ppo.buffer_size, ppo.n_epochs, ppo.gae_lambda, ppo.ent_coef, ppo.clip_range) == (64, 12000, 3, 0.99, 0.001, 0.2)
    assert ppo.steps_per_agent(12) == 1000  # ML-Agents' buffer_size counts all agents' steps
    # 0.10 / 0.11: the learning rate's schedule as the file says (linear by default), beta and epsilon always linear
    assert (ppo.learning_rate_schedule, ppo.ent_coef_schedule, ppo.clip_range_schedule) == ("linear", "linear", "linear")
    assert (ball.num_epoch, ball.normalize, ball.max_steps) == (0, False, 50_000)  # no demos: normalize is ignored, RL from scratch
    # a brain's reward_signals replaces the default's whole; the other keys come from default
    assert (grid.ppo.gamma, grid.hidden_units, grid.num_layers, grid.ppo.learning_rate, grid.max_steps) == (0.9, 256, 1, 3.0e-4, 500_000)


def test_gail_config_maps_pretraining_and_the_gail_reward() -> None:
    config = parse_config(translate(load("gail_config.yaml"), source="g.yaml")[0])
    ball, grid, default = config.for_behavior("3DBall"), config.for_behavior("GridWorld"), config.default
    assert ball.demo_path == "./demos/ball_expert.demo" and ball.gail.strength == 0.01 and ball.gail.disc_learning_rate == 3.0e-4
    assert (ball.num_epoch, ball.batch_size, ball.learning_rate, ball.batches_per_epoch) == (3, 128, pytest.approx(1.5e-4), None)
    assert ball.trainer == "ppo" and ball.cloning.during_rl and ball.cloning.steps == 10_000  # BC beside PPO, annealed over steps
    assert (grid.trainer, grid.demo_path, grid.num_epoch, grid.gail.strength) == ("gail", "./demos/grid_expert.demo", 0, 0.0)
    assert default.demo_path is None and default.gail.strength == 0.0


def test_offline_bc_steps_become_demo_samples() -> None:
    ball = parse_config(translate(load("offline_bc_config.yaml"), source="o.yaml")[0]).for_behavior("3DBall")
    assert (ball.max_steps, ball.summary_freq, ball.num_epoch, ball.batches_per_epoch) == (50_000 * 10 * 64, 1000 * 10 * 64, None, 10)
    assert ball.demo_path == "./demos/ball_expert.demo"


def test_sac_keys_map_to_our_sac_settings() -> None:
    grid = parse_config(translate(load("sac_trainer_config.yaml"), source="s.yaml")[0]).for_behavior("GridWorld")
    sac = grid.sac
    assert (sac.batch_size, sac.buffer_size, sac.learning_starts, sac.gamma, sac.learning_rate) == (128, 50_000, 1000, 0.9, 3.0e-4)


def test_a_section_naming_another_is_that_section() -> None:
    raw = load("trainer_config.yaml")
    raw["Ball2"] = "3DBall"
    config = parse_config(translate(raw, source="t.yaml")[0])
    assert config.for_behavior("Ball2") == config.for_behavior("3DBall")


def test_keys_the_trainer_did_not_read_are_ignored_with_a_warning() -> None:
    raw = load("offline_bc_config.yaml")
    raw["3DBall"].update(num_epoch=5, beta=0.01, threaded=True)
    _, warnings = translate(raw, source="o.yaml")
    assert "o.yaml: section '3DBall'.num_epoch: ignored: ML-Agents' offline_bc trainer does not read it" in warnings
    assert "o.yaml: section '3DBall'.beta: ignored: ML-Agents' offline_bc trainer does not read it" in warnings


def _with(name: str, section: str, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(load(name))
    raw[section].update(changes)
    return raw


REFUSED = [
    (_with("offline_bc_config.yaml", "GridWorld", use_recurrent=True, memory_size="big"), r"o\.yaml: section 'GridWorld'\.memory_size: expected an integer"),
    (_with("sac_trainer_config.yaml", "3DBall", reward_signals={"extrinsic": {"strength": 1.0, "gamma": 0.99}, "curiosity": {"strength": 0.02}}),
     r"section '3DBall'\.reward_signals\.curiosity\.strength: 0\.02, but .* beside the env's reward only; use trainer: ppo"),
    (_with("gail_config.yaml", "GridWorld", reward_signals={"gail": {"strength": 1.0, "demo_path": "d.demo"}, "curiosity": {"strength": 0.02}}),
     r"curiosity\.strength: 0\.02, .* add reward_signals\.extrinsic"),
    (_with("gail_config.yaml", "GridWorld", reward_signals={"gail": {"strength": 1.0, "gamma": 0.99, "demo_path": "d.demo", "use_vail": True}}),
     r"reward_signals\.gail\.use_vail: true, but the variational bottleneck \(VAIL\) is not built"),
    (_with("gail_config.yaml", "3DBall", pretraining={"demo_path": "other.demo", "strength": 0.5, "steps": 10000}), r"one demo_path"),
    (_with("trainer_config.yaml", "3DBall", reward_signals={"extrinsic": {"strength": 0.5, "gamma": 0.99}}),
     r"extrinsic\.strength: 0\.5, but .* weight 1"),
    (_with("sac_trainer_config.yaml", "3DBall", tau=0.01), r"section '3DBall'\.tau: 0\.01, but our SAC .* 0\.005"),
    (_with("sac_trainer_config.yaml", "3DBall", reward_signals={"gail": {"strength": 0.1, "gamma": 0.99, "demo_path": "d.demo"},
                                                                "extrinsic": {"strength": 1.0, "gamma": 0.99}}), r"our SAC cannot add the GAIL reward"),
    (_with("trainer_config.yaml", "3DBall", trainer="imitation"), r"section '3DBall'\.trainer: unknown trainer 'imitation'"),
    (_with("trainer_config.yaml", "3DBall", num_epochs=3), r"section '3DBall': unknown key 'num_epochs'"),
    (_with("gail_config.yaml", "3DBall", pretraining={"demo_path": "d.demo", "strenght": 0.5}),
     r"section '3DBall'\.pretraining: unknown key 'strenght'"),
    (_with("trainer_config.yaml", "3DBall", reward_signals={"extrinsic": {"strength": 1.0, "gama": 0.99}}),
     r"reward_signals\.extrinsic: unknown key 'gama'"),
    (_with("trainer_config.yaml", "3DBall", batch_size="many"), r"section '3DBall'\.batch_size: expected an integer, got 'many'"),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED)
def test_refusals_name_the_file_section_key_and_fix(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        translate(raw, source="o.yaml")


def test_an_inherited_key_is_named_in_the_default_section() -> None:
    raw = _with("sac_trainer_config.yaml", "default", tau=0.01)
    with pytest.raises(ConfigError, match=r"section 'default'\.tau: 0\.01"):
        translate(raw, source="t.yaml")


def test_the_docs_table_is_the_key_table() -> None:
    text = DOCS.read_text()
    section = text.split("## Seed-era files (0.10 / 0.11)", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    documented = {(row[0], row[1].strip("`"), row[2], row[3]) for row in rows}
    assert documented == {(name, key, entry.handling, entry.how) for name, keys in KEYS.items() for key, entry in keys.items()}


def _args(config: Path, run_id: str, tmp_path: Path, scene_kwargs: dict[str, Any]) -> list[str]:
    return ["train", str(config), "--run-id", run_id, "--results-dir", str(tmp_path / "results"), "--scene", "ball",
            "--scene-kwargs", json.dumps(scene_kwargs)]  # fmt: skip


def _write(translated: dict[str, Any], path: Path, **ours: Any) -> Path:
    """The translated config as a YAML file of our dialect, with ``ours`` (keys only our dialect
    has, such as eval_episodes) in every section."""
    path.write_text(yaml.safe_dump({name: {**section, **ours} for name, section in translated.items()}))
    return path


def test_offline_bc_config_trains_through_the_cli(tmp_path: Path, ball_demo: Path, capsys) -> None:
    raw = load("offline_bc_config.yaml")
    raw["3DBall"].update(demo_path=str(ball_demo), max_steps=20, summary_freq=10, batches_per_epoch=2)  # 20 x 2 batches of 64
    translated, _ = translate(raw, source="offline_bc_config.yaml")
    config = _write(translated, tmp_path / "offline_bc.yaml", eval_episodes=1)
    assert main(_args(config, "seed_bc", tmp_path, BALL)) == 0
    assert "trained offline_bc on 3DBall?team=0" in capsys.readouterr().out
    run = tmp_path / "results" / "seed_bc"
    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["trainer"] == "offline_bc" and summary["episodes"] == 1
    assert yaml.safe_load((run / "config.yaml").read_text())["3DBall"]["max_steps"] == 20 * 2 * 64
    assert PPO.load(run / "model.zip", device="cpu").policy is not None


def test_online_bc_config_trains_through_the_cli(tmp_path: Path, capsys) -> None:
    raw = load("online_bc_config.yaml")
    raw["Student"].update(max_steps=240, summary_freq=120)
    translated, _ = translate(raw, source="online_bc_config.yaml")
    config = _write(translated, tmp_path / "online_bc.yaml", eval_episodes=1)
    scene = {"teacher_student": True, "num_agents": 2, "max_steps": 60}
    assert main(_args(config, "seed_online", tmp_path, scene)) == 0
    assert "trained online_bc on Student?team=0" in capsys.readouterr().out
    summary = json.loads((tmp_path / "results" / "seed_online" / "evaluation.json").read_text())
    assert summary["trainer"] == "online_bc" and summary["teacher_pairs"] >= 240


@pytest.mark.skipif("ppo" not in TRAINERS, reason="our ppo trainer is not wired into train/run.py TRAINERS yet")
def test_gail_config_section_trains_through_the_cli(tmp_path: Path, ball_demo: Path, capsys) -> None:
    raw = load("gail_config.yaml")
    raw["3DBall"].update(max_steps=256, summary_freq=1024, buffer_size=128, batch_size=64, num_epoch=1, hidden_units=32)
    raw["3DBall"]["pretraining"]["demo_path"] = raw["3DBall"]["reward_signals"]["gail"]["demo_path"] = str(ball_demo)
    translated, _ = translate(raw, source="gail_config.yaml")
    gail = {**translated["3DBall"]["gail"], "demo_batch_size": 64}
    config = _write({"3DBall": translated["3DBall"]}, tmp_path / "gail.yaml", eval_episodes=1, gail=gail)
    assert main(_args(config, "seed_gail", tmp_path, BALL)) == 0
    assert "trained ppo on 3DBall?team=0" in capsys.readouterr().out
    summary = json.loads((tmp_path / "results" / "seed_gail" / "evaluation.json").read_text())
    assert summary["trainer"] == "ppo" and summary["episodes"] == 1


def test_curiosity_maps_to_our_curiosity_section() -> None:
    raw = _with("trainer_config.yaml", "3DBall", reward_signals={"extrinsic": {"strength": 1.0, "gamma": 0.99},
                                                                  "curiosity": {"strength": 0.02, "gamma": 0.9, "encoding_size": 256, "num_epoch": 3}})
    translated, warnings = translate(raw, source="t.yaml")
    ball = parse_config(translated).for_behavior("3DBall")
    assert (ball.curiosity.strength, ball.curiosity.encoding_size, ball.curiosity.learning_rate) == (0.02, 256, 3.0e-4)
    assert {w for w in warned(warnings) if "curiosity" in w} == {"3DBall.reward_signals.curiosity.num_epoch", "3DBall.reward_signals.curiosity.gamma"}
