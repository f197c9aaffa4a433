"""``max_restarts`` in a training run: a real scene process crashes mid-run, the run goes on
in a restarted process, and the count reaches the warnings, TensorBoard and evaluation.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gym_unity_il.errors import ConfigError
from gym_unity_il.train import parse_config, train
from gym_unity_il.train.env import RESTARTS_KEY
from train_helpers import BALL, tiny


def test_a_run_goes_on_through_a_unity_crash_and_logs_the_restart(tmp_path: Path, ball_demo: Path, caplog) -> None:
    section = tiny(ball_demo, trainer="bc_then_ppo", num_epoch=1, max_steps=512, max_restarts=1, eval_episodes=2)
    config = parse_config({"default": section}, source="test.yaml")
    scene_kwargs = {**BALL, "crash_at_step": 60, "marker": str(tmp_path / "crashed")}
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.envs.vec_env"):
        result = train(config, run_id="run", results_dir=tmp_path, scene="crash_scene:CrashOnceBall", scene_kwargs=scene_kwargs,
                       seed=3, progress=False)  # fmt: skip
    assert (tmp_path / "crashed").exists()  # the scene process did crash
    assert not result.interrupted and result.evaluation is not None and result.model_path.is_file()
    warnings = [r.getMessage() for r in caplog.records if "restarting it" in r.getMessage()]
    assert len(warnings) == 1 and "exited with code 3" in warnings[0] and "restart 1 of 1" in warnings[0]

    summary = json.loads((result.run_dir / "evaluation.json").read_text())
    assert summary["unity_restarts"] == 1 and summary["phases"] == ["bc", "ppo"]
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    logged = [event.value for event in events.Scalars(RESTARTS_KEY)]
    assert logged and logged[-1] == 1.0


def test_max_restarts_is_checked(tmp_path: Path) -> None:
    assert parse_config({"default": {"max_restarts": 3}}).default.max_restarts == 3
    with pytest.raises(ConfigError, match=r"section 'default'\.max_restarts: -1 is out of range; accepted: an integer from 0 to"):
        parse_config({"default": {"max_restarts": -1}})
    with pytest.raises(ConfigError, match=r"\.max_restarts: expected int"):
        parse_config({"default": {"max_restarts": "often"}})
    dagger = parse_config({"default": {"trainer": "dagger", "max_restarts": 1}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml: section 'default'\.max_restarts: trainer 'dagger' .* does not restart"):
        train(dagger, run_id="r", results_dir=tmp_path, scene="ball")
    assert not (tmp_path / "r").exists()
