"""Ctrl+C at any point of a run, then ``resume``: the same rows of ``metrics.csv``, learning
curve and ``evaluation.json`` as a run that was never interrupted.

Each interrupt is raised deterministically by a hook on a real component (a BC batch, an
evaluation, a PPO update, an env step, the start of a phase, the plot), not by a timed
signal; the signal path itself is tested in ``test_cli_signals.py``."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from stable_baselines3 import PPO

import gym_unity_il.train.runner as runner_module
from gym_unity_il.demo import record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import parse_config, train
from gym_unity_il.train.bc import DemoBatches
from gym_unity_il.train.pretrain import RLPhase
from gym_unity_il.train.progress import ProgressCallback, RunRecorder
from train_helpers import tiny

SCENE = {"scene": "ball", "scene_kwargs": {"max_steps": 50, "num_agents": 2}, "progress": False}
#: BC: 400 batches of 64, a row every 100 (2 per step of the demos' 50-step episodes: at 6400, 12800, 19200, 25600 samples);
#: PPO / GAIL: rollouts of 2 x 32 steps up to 512 (rows at 256, 512).
SECTIONS = {
    "bc_then_ppo": {"trainer": "bc_then_ppo", "num_epoch": 2, "batches_per_epoch": 200, "max_steps": 512, "summary_freq": 256, "eval_episodes": 2,
                    "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1}},
    "gail": {"trainer": "gail", "max_steps": 512, "summary_freq": 256, "eval_episodes": 2, "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
             "gail": {"demo_batch_size": 64, "n_disc_updates_per_round": 1}},
    # PPO with BC beside it and linear schedules: their state and values survive the interrupt
    "ppo_cloning": {"trainer": "ppo", "num_epoch": 1, "batches_per_epoch": 4, "max_steps": 512, "summary_freq": 256, "eval_episodes": 2,
                    "cloning": {"during_rl": True, "steps": 384},
                    "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1, "learning_rate_schedule": "linear", "clip_range_schedule": "linear"}},
    # summary_freq 384: BC's 16 batches, too few for a row before its last (1024); PPO at 384 and its last
    # step (512), written after learning
    "bc_then_ppo_odd": {"trainer": "bc_then_ppo", "num_epoch": 2, "batches_per_epoch": 8, "max_steps": 512, "summary_freq": 384, "eval_episodes": 2,
                        "ppo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1}},
}  # fmt: skip


def _after_calls(n: int, call: Callable[..., Any], *, before: bool = False) -> Callable[..., Any]:
    """``call`` that raises KeyboardInterrupt at its ``n``-th call: after running it, or instead of it."""
    calls = [0]

    def hooked(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == n and before:
            raise KeyboardInterrupt("test hook")
        result = call(*args, **kwargs)
        if calls[0] == n:
            raise KeyboardInterrupt("test hook")
        return result

    return hooked


def _batches_then_interrupt(n: int) -> Callable[..., Any]:
    original = DemoBatches.__iter__
    seen = [0]

    def hooked(self: DemoBatches) -> Any:
        for batch in original(self):
            seen[0] += 1
            if seen[0] == n:
                raise KeyboardInterrupt("test hook")
            yield batch

    return hooked


def _on_step_until(steps: int) -> Callable[..., Any]:
    original = ProgressCallback._on_step

    def hooked(self: ProgressCallback) -> bool:
        if self.model.num_timesteps >= steps:
            raise KeyboardInterrupt("test hook")
        return original(self)

    return hooked


#: Where each interrupt lands: (trainer, object, attribute, hooked replacement).
INTERRUPTS: dict[str, tuple[str, Any, str, Callable[[], Any]]] = {
    "in_a_bc_batch": ("bc_then_ppo", DemoBatches, "__iter__", lambda: _batches_then_interrupt(140)),
    "in_a_bc_summary_evaluation": ("bc_then_ppo", runner_module, "evaluate", lambda: _after_calls(2, runner_module.evaluate, before=True)),
    "in_the_last_bc_summary_evaluation": ("bc_then_ppo", runner_module, "evaluate", lambda: _after_calls(4, runner_module.evaluate, before=True)),
    "between_bc_and_ppo": ("bc_then_ppo", RLPhase, "run", lambda: _after_calls(1, RLPhase.run, before=True)),
    "in_a_ppo_rollout": ("bc_then_ppo", ProgressCallback, "_on_step", lambda: _on_step_until(300)),
    "in_a_ppo_update_after_a_summary_row": ("bc_then_ppo", PPO, "train", lambda: _after_calls(4, PPO.train, before=True)),
    "in_the_final_evaluation": ("bc_then_ppo", runner_module, "evaluate", lambda: _after_calls(5, runner_module.evaluate, before=True)),
    "in_the_final_plot": ("bc_then_ppo", runner_module, "plot_learning_curve", lambda: _after_calls(1, runner_module.plot_learning_curve)),
    "in_a_gail_update_after_a_summary_row": ("gail", PPO, "train", lambda: _after_calls(4, PPO.train, before=True)),
    "in_a_gail_rollout": ("gail", ProgressCallback, "_on_step", lambda: _on_step_until(170)),
    "in_a_ppo_update_with_bc_beside_it": ("ppo_cloning", PPO, "train", lambda: _after_calls(5, PPO.train, before=True)),
    "after_a_bc_batch_is_counted_before_its_row": ("bc_then_ppo", RunRecorder, "summary", lambda: _after_calls(2, RunRecorder.summary, before=True)),
    "after_the_last_ppo_step_before_its_row": ("bc_then_ppo_odd", RunRecorder, "catch_up", lambda: _after_calls(1, RunRecorder.catch_up, before=True)),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 expert episodes of the scene the runs train on (50 steps: the expert never lets the ball fall)."""
    path = tmp_path_factory.mktemp("demos") / "ball_expert.demo"
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"max_steps": 50})
    record_episodes(env, expert_policy("ball"), path, episodes=6, seed=1000)
    return path


def _config(demo: Path, trainer: str):
    return parse_config({"default": tiny(demo, **SECTIONS[trainer])}, source="c.yaml")


def _outputs(run: Path) -> dict[str, Any]:
    """What must not depend on interrupts: the rows' phases and steps, the evaluation's shape."""
    with open(run / "metrics.csv", newline="") as f:
        rows = [(row["phase"], int(row["step"])) for row in csv.DictReader(f)]
    summary = json.loads((run / "evaluation.json").read_text())
    assert (run / "learning_curve.png").stat().st_size > 1000 and (run / "model.zip").is_file()
    return {"rows": rows, "env_steps": summary["env_steps"], "episodes": summary["episodes"], "phases": summary["phases"], "keys": sorted(summary)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, demo: Path) -> dict[str, dict[str, Any]]:
    results = tmp_path_factory.mktemp("uninterrupted")
    outputs = {}
    for trainer in SECTIONS:
        assert not train(_config(demo, trainer), run_id=trainer, results_dir=results, **SCENE).interrupted
        outputs[trainer] = _outputs(results / trainer)
    return outputs


def test_the_uninterrupted_runs_write_the_rows_the_tests_expect(uninterrupted: dict[str, dict[str, Any]]) -> None:
    bc = [("bc", 6400), ("bc", 12800), ("bc", 19200), ("bc", 25600)]
    assert uninterrupted["bc_then_ppo"]["rows"] == [*bc, ("ppo", 256), ("ppo", 512)] and uninterrupted["bc_then_ppo"]["env_steps"] == 512
    assert uninterrupted["gail"]["rows"] == [("gail", 256), ("gail", 512)] and uninterrupted["gail"]["env_steps"] == 512
    assert uninterrupted["ppo_cloning"]["rows"] == [("ppo", 256), ("ppo", 512)] and uninterrupted["ppo_cloning"]["phases"] == ["ppo"]
    assert uninterrupted["bc_then_ppo_odd"]["rows"] == [("bc", 1024), ("ppo", 384), ("ppo", 512)]


@pytest.mark.parametrize("where", list(INTERRUPTS))
def test_an_interrupt_then_resume_gives_the_outputs_of_an_uninterrupted_run(tmp_path: Path, demo: Path, uninterrupted: dict[str, Any],
                                                                            where: str, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    trainer, owner, attribute, make_hook = INTERRUPTS[where]
    monkeypatch.setattr(owner, attribute, make_hook())
    first = train(_config(demo, trainer), run_id="r", results_dir=tmp_path, **SCENE)
    monkeypatch.undo()
    assert first.interrupted and (tmp_path / "r" / "checkpoint" / "state.json").is_file()
    assert not (tmp_path / "r" / "evaluation.json").exists()

    second = train(_config(demo, trainer), run_id="r", results_dir=tmp_path, resume=True, **SCENE)
    assert not second.interrupted and second.evaluation is not None
    assert _outputs(tmp_path / "r") == uninterrupted[trainer]
