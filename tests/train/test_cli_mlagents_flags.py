"""``gym-unity-il train`` with mlagents-learn's flags, and the run sections of today's ML-Agents
files (``env_settings``, ``engine_settings``, ``checkpoint_settings``) under them.

The built-in scene's player logs its port and the engine settings it receives, and takes
``-logFile PATH`` among its extra arguments (``--env-args``), so a real run shows what
reached the players."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError
from gym_unity_il.train import load_config
from train_helpers import BALL, tiny


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ours(path: Path, demo: Path) -> Path:
    path.write_text(yaml.safe_dump({"default": tiny(demo, trainer="offline_bc", num_epoch=1, eval_episodes=1)}))
    return path


def _modern(path: Path, **run_sections: Any) -> Path:
    """A tiny PPO file of today's ML-Agents with ``run_sections``."""
    behavior = {"trainer_type": "ppo", "max_steps": 128, "summary_freq": 1000,
                "hyperparameters": {"batch_size": 64, "buffer_size": 64, "num_epoch": 1},
                "network_settings": {"hidden_units": 16, "num_layers": 1}}  # fmt: skip
    path.write_text(yaml.safe_dump({"behaviors": {"3DBall": behavior}, **run_sections}))
    return path


def _resolved(run: Path) -> dict[str, Any]:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_a_tiny_run_with_num_envs_time_scale_and_train(tmp_path: Path, ball_demo: Path, capsys) -> None:
    config = _ours(tmp_path / "bc.yaml", ball_demo)
    args = ["train", str(config), "--run-id", "two", "--results-dir", str(tmp_path / "results"), "--scene", "ball", "--scene-kwargs", json.dumps(BALL),
            "--num-envs", "2", "--time-scale", "20", "--train"]  # fmt: skip
    assert main(args) == 0
    assert "trained offline_bc on 3DBall?team=0" in capsys.readouterr().out
    run = tmp_path / "results" / "two"
    assert _resolved(run)["default"]["num_processes"] == 2
    assert json.loads((run / "evaluation.json").read_text())["trainer"] == "offline_bc"


def test_launch_flags_reach_the_player(tmp_path: Path, ball_demo: Path) -> None:
    config, log, port = _ours(tmp_path / "bc.yaml", ball_demo), tmp_path / "player.log", _free_port()
    args = ["train", str(config), "--run-id", "flags", "--results-dir", str(tmp_path / "results"), "--scene", "ball", "--scene-kwargs", json.dumps(BALL),
            "--base-port", str(port), "--width", "100", "--quality-level", "3", "--time-scale", "20", "--capture-frame-rate", "50", "--slow",
            "--no-graphics", "--torch-device", "cpu", "--seed", "3", "--env-args", "-logFile", str(log)]  # fmt: skip
    assert main(args) == 0
    text = log.read_text()
    assert f"seed 3, port {port}" in text
    assert "engine configuration: {'width': 100, 'height': 84}" in text  # the side left out is ML-Agents' 84
    for setting in ("'quality_level': 3", "'time_scale': 20.0", "'target_frame_rate': 60", "'capture_frame_rate': 50"):
        assert setting in text  # --slow gives the frame rate 60, and --time-scale wins over its time scale 1


def test_a_modern_files_run_sections_apply_under_the_flags(tmp_path: Path, caplog) -> None:
    log, results = tmp_path / "player.log", tmp_path / "from_file"
    config = _modern(tmp_path / "run.yaml",
                     env_settings={"env_path": None, "env_args": ["-logFile", str(log)], "num_envs": 1, "seed": -1, "num_areas": 1},
                     engine_settings={"width": 90, "height": 90, "time_scale": 5.0, "no_graphics": True},
                     checkpoint_settings={"run_id": "file_id", "results_dir": str(results), "resume": False, "train_model": False, "inference": False},
                     torch_settings={"device": "cpu"}, debug=False)  # fmt: skip
    loaded = load_config(config).run
    assert (loaded.run_id, loaded.results_dir, loaded.num_envs, loaded.time_scale, loaded.env_args) == ("file_id", str(results), 1, 5.0, ("-logFile", str(log)))
    assert loaded.seed is None  # ML-Agents' -1 (random) reads as not set: the default seed 0
    with caplog.at_level(logging.WARNING):
        assert main(["train", str(config), "--scene", "ball", "--scene-kwargs", json.dumps(BALL), "--time-scale", "20", "--height", "64"]) == 0
    assert (results / "file_id" / "evaluation.json").is_file()  # run id and results folder from checkpoint_settings
    text = log.read_text()  # env_args from env_settings; width from the file, height and time scale from the flags
    assert "engine configuration: {'width': 90, 'height': 64}" in text and "'time_scale': 20.0" in text
    assert "not applied" not in caplog.text and "engine_settings" not in caplog.text
    assert "env_settings.seed: -1 (ML-Agents: a random seed) is read as not set" in caplog.text


def test_refusals_and_the_log_level(tmp_path: Path, ball_demo: Path, capsys) -> None:
    config = _ours(tmp_path / "bc.yaml", ball_demo)
    base = ["train", str(config), "--results-dir", str(tmp_path / "results"), "--scene", "ball"]
    root = logging.getLogger()
    before = root.level
    try:
        assert main([*base, "--run-id", "a", "--initialize-from", "older", "--debug"]) == 2
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before)
    assert "initialize_from 'older' (--initialize-from): no trained model at" in capsys.readouterr().err
    assert main([*base, "--run-id", "a", "--torch-device", "cuda"]) == 2
    assert "torch device 'cuda'" in capsys.readouterr().err
    assert main(base) == 2
    assert "no run id: give --run-id RUN_ID" in capsys.readouterr().err
    assert main([*base, "--run-id", "a", "--num-envs", "0"]) == 2
    assert "command line.num_envs: 0 is out of range" in capsys.readouterr().err
    assert main([*base, "--run-id", "a", "--load"]) == 2  # --load is --resume: there is no run to continue
    captured = capsys.readouterr()
    assert "--load is the former name of --resume" in captured.err and "resume=True" in captured.err
    assert not (tmp_path / "results" / "a").exists()


def test_a_modern_file_asking_for_inference_only_is_refused(tmp_path: Path) -> None:
    config = _modern(tmp_path / "run.yaml", checkpoint_settings={"inference": True})
    with pytest.raises(ConfigError, match=r"checkpoint_settings'\.inference: true asks for an inference-only run"):
        load_config(config)
    with pytest.raises(ConfigError, match=r"engine_settings\.time_scale: expected float"):
        load_config(_modern(tmp_path / "bad.yaml", engine_settings={"time_scale": "fast"}))


def _policy_weights(run: Path) -> list[Any]:
    from stable_baselines3 import PPO

    return [p.detach().clone() for p in PPO.load(run / "model.zip", device="cpu").policy.parameters()]


def test_initialize_from_starts_a_new_run_from_another_runs_model(tmp_path: Path) -> None:
    import torch

    results = tmp_path / "results"
    common = ["--results-dir", str(results), "--scene", "ball", "--scene-kwargs", json.dumps(BALL)]
    assert main(["train", str(_modern(tmp_path / "a.yaml")), "--run-id", "base", "--seed", "5", *common]) == 0  # other initial weights
    still = _modern(tmp_path / "still.yaml")  # the same network, learning nothing: the run ends where it started
    raw = yaml.safe_load(still.read_text())
    raw["behaviors"]["3DBall"]["hyperparameters"].update(learning_rate=1.0e-9, learning_rate_schedule="constant")
    still.write_text(yaml.safe_dump(raw))
    assert main(["train", str(still), "--run-id", "tuned", "--initialize-from", "base", *common]) == 0
    assert main(["train", str(still), "--run-id", "scratch", *common]) == 0
    base, tuned, scratch = (_policy_weights(results / name) for name in ("base", "tuned", "scratch"))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(base, tuned))
    assert not all(torch.allclose(a, b, atol=1e-2) for a, b in zip(base, scratch))
    assert json.loads((results / "tuned" / "evaluation.json").read_text())["env_steps"] == 144  # its own steps from 0: 2 rollouts of 12 agents x 6 steps (buffer_size 64)


def test_initialize_from_a_run_of_another_network_is_refused_naming_it(tmp_path: Path, capsys) -> None:
    results = tmp_path / "results"
    common = ["--results-dir", str(results), "--scene", "ball", "--scene-kwargs", json.dumps(BALL)]
    assert main(["train", str(_modern(tmp_path / "a.yaml")), "--run-id", "base", *common]) == 0
    wide = _modern(tmp_path / "wide.yaml")
    raw = yaml.safe_load(wide.read_text())
    raw["behaviors"]["3DBall"]["network_settings"]["hidden_units"] = 32
    wide.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    assert main(["train", str(wide), "--run-id", "wide", "--initialize-from", "base", *common]) == 2
    err = capsys.readouterr().err
    assert "initialize_from 'base' (--initialize-from): " in err and "another algorithm or network" in err and "hidden_units" in err
    assert not (results / "wide").exists()
