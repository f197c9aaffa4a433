"""``gym-unity-il train``: the example configs at a tiny budget, Ctrl+C and --resume in a real
child process, and the errors that stop a run before it trains."""

from __future__ import annotations

import csv
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from stable_baselines3 import PPO

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError
from gym_unity_il.train import load_config, parse_config, train
from train_helpers import BALL, tiny

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"
TINY_BUDGET = {"num_epoch": 1, "max_steps": 256, "summary_freq": 1024, "eval_episodes": 1, "ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 1}}


def _shrink(section: dict[str, Any], demo: Path) -> dict[str, Any]:
    out = dict(section, demo_path=str(demo))
    for key, value in TINY_BUDGET.items():
        out[key] = {**section.get(key, {}), **value} if isinstance(value, dict) else value
    if "gail" in section:
        out["gail"] = {**section["gail"], "demo_batch_size": 64}
    return out


@pytest.mark.parametrize("name", ["offline_bc", "gail", "bc_then_ppo"])
def test_example_config_trains_through_the_cli(tmp_path: Path, ball_demo: Path, name: str, capsys) -> None:
    example = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    load_config(EXAMPLES / f"{name}.yaml")  # valid as shipped
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({section: _shrink(values, ball_demo) for section, values in example.items()}))
    args = ["train", str(config), "--run-id", name, "--results-dir", str(tmp_path / "results"), "--scene", "ball", "--scene-kwargs", json.dumps(BALL)]
    assert main(args) == 0
    assert f"trained {name} on 3DBall?team=0" in capsys.readouterr().out
    run = tmp_path / "results" / name
    summary = json.loads((run / "evaluation.json").read_text())
    assert summary["trainer"] == name and summary["episodes"] == 1
    assert set(yaml.safe_load((run / "config.yaml").read_text())) == set(example)
    assert PPO.load(run / "model.zip", device="cpu").policy is not None


def _read_until(child: subprocess.Popen, marker: bytes, timeout: float) -> bytes:
    """Reads the child's stderr until ``marker`` appears (a real event), within ``timeout`` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(child.stderr, selectors.EVENT_READ)
        while marker not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                pytest.fail(f"no {marker!r} from the child within {timeout} s; stderr so far: {seen[-2000:]!r}")
            chunk = os.read(child.stderr.fileno(), 65536)
            if not chunk:
                pytest.fail(f"the child exited (status {child.wait()}) before {marker!r}; stderr: {seen[-3000:]!r}")
            seen += chunk
    return seen


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tmp_path: Path, ball_demo: Path) -> None:
    config = tmp_path / "bc.yaml"
    section = tiny(ball_demo, trainer="offline_bc", num_epoch=None, max_steps=10**8, summary_freq=640, eval_episodes=1)
    config.write_text(yaml.safe_dump({"default": section}))
    results, short = tmp_path / "results", json.dumps({"max_steps": 50})
    args = [sys.executable, "-m", "gym_unity_il.cli", "train", str(config), "--run-id", "r", "--results-dir", str(results), "--scene", "ball", "--scene-kwargs", short]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _read_until(child, b"ret=", timeout=120)  # the bar shows a return: a summary row exists
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130, err.decode(errors="replace")[-3000:]
    assert b"interrupted: checkpoint saved" in out and b"--resume --run-id r" in out
    run = results / "r"
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["phase_name"] == "bc" and not (run / "model.zip").exists()
    before = _rows(run)
    last = int(before[-1]["step"])
    assert last >= 640

    section["max_steps"] = last + 20 * 64  # the resumed run may raise or set the budget
    config.write_text(yaml.safe_dump({"default": section}))
    result = train(config, run_id="r", results_dir=results, scene="ball", scene_kwargs={"max_steps": 50}, resume=True, progress=False)
    after = _rows(run)
    assert after[: len(before)] == before  # the history is kept
    resumed = [int(r["step"]) for r in after[len(before) :]]
    assert resumed and min(resumed) > last  # continued from the checkpoint, not from zero
    assert resumed[-1] == math.ceil(section["max_steps"] / 64) * 64
    assert not result.interrupted and (run / "evaluation.json").is_file() and PPO.load(run / "model.zip", device="cpu")

    other = parse_config({"default": tiny(ball_demo, trainer="bc_then_ppo", num_epoch=1, max_steps=128)}, source="other.yaml")
    with pytest.raises(ConfigError, match=r"checkpoint is of a run with phases \['bc'\], this config trains \['bc', 'ppo'\]"):
        train(other, run_id="r", results_dir=results, scene="ball", scene_kwargs={"max_steps": 50}, resume=True, progress=False)


def test_refusals_before_training(tmp_path: Path, ball_demo: Path, capsys) -> None:
    results = tmp_path / "results"
    good = parse_config({"default": tiny(ball_demo, trainer="offline_bc", num_epoch=1)})
    with pytest.raises(ConfigError, match=r"resume=True \(--resume on the command line\): .*r does not exist"):
        train(good, run_id="r", results_dir=results, resume=True)
    (results / "taken").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"run id 'taken': .* already exists and holds no checkpoint to resume; pass force=True \(--force"):
        train(good, run_id="taken", results_dir=results)
    with pytest.raises(ConfigError, match=r"resume=True .*: .*taken holds no checkpoint to continue from; start it anew with force=True"):
        train(good, run_id="taken", results_dir=results, resume=True)
    with pytest.raises(ConfigError, match=r"section 'default'\.normalize: trainer 'dagger' learns live"):
        train(parse_config({"default": {"trainer": "dagger", "normalize": True}}, source="c.yaml"), run_id="r", results_dir=results)
    with pytest.raises(ConfigError, match=r"section 'Ball'\.demo_path: trainer 'gail' learns from demonstrations"):
        train(parse_config({"Ball": {"trainer": "gail"}}, source="c.yaml"), run_id="r", results_dir=results)
    too_big = parse_config({"default": tiny(ball_demo, trainer="offline_bc", batch_size=5000)}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"section 'default': batch_size 5000 is larger than the 1800 transitions"):
        train(too_big, run_id="r", results_dir=results, scene="ball", scene_kwargs=BALL)
    gail_too_big = parse_config({"default": tiny(ball_demo, trainer="gail", gail={"demo_batch_size": 4096})}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"\.gail\.demo_batch_size: 4096 is larger than the 1800 transitions"):
        train(gail_too_big, run_id="r", results_dir=results, scene="ball", scene_kwargs=BALL)

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"default": tiny(ball_demo)}))
    assert main(["train", str(config), "--run-id", "x", "--results-dir", str(results), "--scene", "ball", "--env", "Game.x86_64"]) == 2
    assert "at most one of --scene NAME" in capsys.readouterr().err
    assert main(["train", str(config), "--run-id", "taken", "--results-dir", str(results)]) == 2
    assert "already exists and holds no checkpoint to resume; pass force=True (--force on the command line)" in capsys.readouterr().err
    assert main(["train", str(config), "--run-id", "y", "--results-dir", str(results), "--scene", "grid"]) == 2
    err = capsys.readouterr().err
    assert "the demo" in err and "3DBall?team=0: observations [VectorSensor_size8[8]]" in err and "env: GridWorld?team=0: observations [CameraSensor" in err
