"""A run's checkpoint folder, damaged file by file: every missing, truncated or garbage file
is a ConfigError naming it, saying the run cannot be resumed and how to start again, and
never passing on advice to load unsafely."""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import pytest
import torch as th

from gym_unity_il.errors import ConfigError
from gym_unity_il.train import parse_config, train
from train_helpers import tiny

SCENE = {"scene": "ball", "scene_kwargs": {"max_steps": 50, "num_agents": 2}, "progress": False}
CONFIGS = {
    "bc_then_ppo": {"trainer": "bc_then_ppo", "num_epoch": 1, "max_steps": 64, "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1}},
    "bc_then_sac": {"trainer": "bc_then_sac", "num_epoch": 1, "max_steps": 40, "sac": {"learning_starts": 10, "batch_size": 16, "buffer_size": 1000}},
}


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory, ball_demo: Path) -> dict[str, Path]:
    """One finished run per trainer (its checkpoint is the end of the run)."""
    results = tmp_path_factory.mktemp("finished")
    for name, overrides in CONFIGS.items():
        config = parse_config({"default": tiny(ball_demo, eval_episodes=1, **overrides)}, source="c.yaml")
        assert not train(config, run_id=name, results_dir=results, **SCENE).interrupted
    return {name: results / name for name in CONFIGS}


def _pickle_with_a_global(path: Path) -> None:
    th.save([{"done": 1, "optimizer": print}], path)  # weights_only refuses the global, and torch's message advises weights_only=False


DAMAGE = {
    "missing": lambda path: path.unlink(),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path: path.write_bytes(bytes(range(256)) * 8),
    "empty": lambda path: path.write_bytes(b""),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize(("trainer", "file"), [("bc_then_ppo", "model.zip"), ("bc_then_ppo", "phases.pt"), ("bc_then_ppo", "state.json"),
                                               ("bc_then_sac", "replay_buffer.pkl"), ("bc_then_sac", "model.zip")])  # fmt: skip
def test_a_damaged_checkpoint_file_is_named_and_the_fix_given(tmp_path: Path, finished_runs: dict[str, Path], ball_demo: Path, trainer: str,
                                                              file: str, damage: str) -> None:  # fmt: skip
    run = shutil.copytree(finished_runs[trainer], tmp_path / "r")
    DAMAGE[damage](run / "checkpoint" / file)
    _assert_refused(tmp_path, ball_demo, trainer, run / "checkpoint" / file)


def test_a_phases_file_that_torch_would_advise_loading_unsafely_is_refused_without_that_advice(tmp_path: Path, finished_runs: dict[str, Path],
                                                                                                 ball_demo: Path) -> None:  # fmt: skip
    run = shutil.copytree(finished_runs["bc_then_ppo"], tmp_path / "r")
    _pickle_with_a_global(run / "checkpoint" / "phases.pt")
    with pytest.raises(Exception, match="with `weights_only` set to `False` will likely succeed"):  # what torch itself says
        th.load(run / "checkpoint" / "phases.pt", weights_only=True)
    _assert_refused(tmp_path, ball_demo, "bc_then_ppo", run / "checkpoint" / "phases.pt")


def test_a_state_file_of_the_wrong_shape_is_refused(tmp_path: Path, finished_runs: dict[str, Path], ball_demo: Path) -> None:
    run = shutil.copytree(finished_runs["bc_then_ppo"], tmp_path / "r")
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    for broken in ({**state, "phase": 7}, {k: v for k, v in state.items() if k != "num_timesteps"}, [1, 2]):
        (run / "checkpoint" / "state.json").write_text(json.dumps(broken))
        _assert_refused(tmp_path, ball_demo, "bc_then_ppo", run / "checkpoint" / "state.json")


def _assert_refused(tmp_path: Path, ball_demo: Path, trainer: str, path: Path) -> None:
    config = parse_config({"default": tiny(ball_demo, eval_episodes=1, **CONFIGS[trainer])}, source="c.yaml")
    with pytest.raises(ConfigError) as info:
        train(config, run_id="r", results_dir=tmp_path, resume=True, **SCENE)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "the run cannot be resumed from its checkpoint" in message
    assert "force=True (--force on the command line)" in message
    shown = "".join(traceback.format_exception(info.value))  # with every chained exception a traceback would show
    assert "weights_only" not in shown and "During handling" not in shown and "direct cause" not in shown
    assert (tmp_path / "r").is_dir()  # a refused resume deletes nothing


def test_a_damaged_metrics_file_is_named_too(tmp_path: Path, finished_runs: dict[str, Path], ball_demo: Path) -> None:
    run = shutil.copytree(finished_runs["bc_then_ppo"], tmp_path / "r")
    (run / "metrics.csv").write_bytes(b"phase,step,return,time_s\nbc,\xff\xfe,1,2\n")
    config = parse_config({"default": tiny(ball_demo, eval_episodes=1, **CONFIGS["bc_then_ppo"])}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"r/metrics\.csv: damaged or not written by gym_unity_il \(UnicodeDecodeError\), .* force=True"):
        train(config, run_id="r", results_dir=tmp_path, resume=True, **SCENE)
