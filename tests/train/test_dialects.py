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
from gym_unity_il.train.config import Lesson
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


def test_run_sections_of_a_modern_file_become_run_settings_and_environment_parameters_the_configs(tmp_path: Path, caplog) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"behaviors": {"3DBall": {"trainer_type": "ppo"}}, "env_settings": {"num_envs": 2},
                                      "environment_parameters": {"gravity": 9.81}}))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        loaded = load_config(config)
    assert loaded.run.num_envs == 2
    assert loaded.environment_parameters == {"gravity": (Lesson("gravity", {"sampler_type": "constant", "value": 9.81}),)}
    assert "env_settings" not in caplog.text and "environment_parameters" not in caplog.text


#: Every ML-Agents fixture a run accepts: the behavior trained, its scene and scene arguments, and our trainer.
GRID = {"camera_height": 20, "camera_width": 20, "max_steps": 30}
GRID_8 = {**GRID, "num_agents": 8}  # a rollout of 2,048 steps in 256 steps of 8 agents
FIXTURE_RUNS = {
    "seed/trainer_config.yaml": ("3DBall", "ball", BALL, "ppo"),
    "seed/sac_trainer_config.yaml": ("3DBall", "ball", BALL, "sac"),
    "seed/offline_bc_config.yaml": ("3DBall", "ball", BALL, "offline_bc"),
    "seed/online_bc_config.yaml": ("Student", "ball", {"teacher_student": True, "num_agents": 2, "max_steps": 60}, "online_bc"),
    "seed/gail_config.yaml": ("GridWorld", "grid", GRID_8, "gail"),
    "modern/ppo_3DBall.yaml": ("3DBall", "ball", BALL, "ppo"),
    "modern/sac_3DBall.yaml": ("3DBall", "ball", BALL, "sac"),
    "modern/imitation_3DBall.yaml": ("3DBall", "ball", BALL, "ppo"),
    "modern/imitation_Crawler_3DBall.yaml": ("3DBall", "ball", BALL, "gail"),
    "modern/imitation_PushBlock_GridWorld.yaml": ("GridWorld", "grid", GRID_8, "gail"),
    "modern/imitation_Pyramids_GridWorld.yaml": ("GridWorld", "grid", GRID_8, "ppo"),
    "modern/imitation_Hallway_GridWorld.yaml": ("GridWorld", "grid", GRID_8, "ppo"),
    "modern/ppo_curriculum.yaml": ("3DBall", "ball", BALL, "ppo"),
    "modern/ppo_randomize_full.yaml": ("3DBall", "ball", BALL, "ppo"),
}


@pytest.fixture(scope="module")
def demos_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``demos/`` holds what the fixtures' relative demo paths name."""
    import gymnasium as gym

    from gym_unity_il.demo import record_episodes
    from gym_unity_il.scenes import expert_policy

    root = tmp_path_factory.mktemp("configs")
    (root / "demos").mkdir()
    for scene, kwargs, episodes in (("ball", BALL, 8), ("grid", GRID, 100)):  # 2,400 and about 350 pairs: more than a batch of each file
        expert = expert_policy(scene)
        env = gym.make("UnityIL-v0", scene=scene, scene_kwargs=kwargs)
        record_episodes(env, lambda obs: expert.predict(obs)[0], root / "demos" / f"{scene}_expert.demo", episodes=episodes, seed=0)
    return root



@pytest.mark.parametrize("name", list(FIXTURE_RUNS))
def test_each_accepted_ml_agents_file_trains_through_the_cli_as_written(name: str, demos_folder: Path, capsys) -> None:
    behavior, scene, scene_kwargs, trainer = FIXTURE_RUNS[name]
    config = demos_folder / name.replace("/", "_")
    config.write_text((FIXTURES / name).read_text())  # beside demos/: the relative demo paths resolve as they are written
    results = demos_folder / "results"
    code = main(["train", str(config), "--run-id", config.stem, "--results-dir", str(results), "--behavior", behavior, "--max-steps", "64",
                 "--scene", scene, "--scene-kwargs", json.dumps(scene_kwargs)])  # fmt: skip
    assert code == 0 and f"trained {trainer} on {behavior}?team=0" in capsys.readouterr().out
    summary = json.loads((results / config.stem / "evaluation.json").read_text())
    assert summary["trainer"] == trainer and (results / config.stem / "model.zip").is_file()


def test_every_fixture_is_run() -> None:
    assert {f"{p.parent.name}/{p.name}" for p in FIXTURES.glob("*/*.yaml")} == set(FIXTURE_RUNS)
