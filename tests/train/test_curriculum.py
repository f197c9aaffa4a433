"""ML-Agents' environment_parameters applied during training, on the real "ball" scene over
real gRPC: constants and samplers reach the scene, curricula advance on progress and on
reward as ML-Agents decides, require_reset resets, checkpoints keep the lessons, and a file
with a curriculum trains through the command line with the lesson in TensorBoard.

The ball scene reads ``gravity``; :func:`gravity_seen` reads it back from one zero-action step.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
import yaml
from imitation.util import logger as imitation_logger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gym_unity_il.cli import main
from gym_unity_il.errors import ConfigError
from gym_unity_il.protocol.channels import Sampler, SamplerType
from gym_unity_il.scenes.ball import DT, ROLLING
from gym_unity_il.train import load_config, train
from gym_unity_il.train.config import RunConfig
from gym_unity_il.train.curriculum import (
    LESSON_TAG,
    Curriculum,
    EnvironmentParameterEnv,
    attach_environment_parameters,
    lesson_checkpoints,
)
from gym_unity_il.train.dialects import parse_any_config
from gym_unity_il.train.env import make_training_env
from gym_unity_il.train.evaluation import evaluate

BEHAVIOR = "3DBall?team=0"


def config(parameters: dict[str, Any]) -> RunConfig:
    """A config of our own dialect with ``environment_parameters`` in ML-Agents' shape."""
    return parse_any_config({"default": {"trainer": "ppo"}, "environment_parameters": parameters}, source="c.yaml")


def curriculum(lessons: list[dict[str, Any]]) -> dict[str, Any]:
    return {"curriculum": lessons}


def wrapped(parameters: dict[str, Any], *, max_steps: int = 100, scene_steps: int = 1000, logger: Any = None) -> EnvironmentParameterEnv:
    """The training env of 4 ball agents, driving ``parameters``."""
    venv, spec = make_training_env(scene="ball", scene_kwargs={"num_agents": 4, "max_steps": scene_steps}, seed=0)
    env = attach_environment_parameters(venv, config(parameters), spec.name, max_steps, logger, seed=0)
    assert isinstance(env, EnvironmentParameterEnv)
    return env


def gravity_seen(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The gravity each slot's ball rolled under in one zero-action step (its velocity along x)."""
    return -(after[:, 5] - before[:, 5]) / (DT * ROLLING * np.sin(after[:, 0]))


ZERO = np.zeros((4, 2), np.float32)


def test_a_curriculum_on_progress_advances_at_its_step_and_the_next_value_reaches_the_scene() -> None:
    env = wrapped({"gravity": curriculum([
        {"name": "flat", "value": 0.0, "completion_criteria": {"behavior": "3DBall", "measure": "progress", "threshold": 0.25}},
        {"name": "steep", "value": 20.0},
    ])})  # fmt: skip
    try:
        obs = env.reset()
        lessons, seen = [], []
        for _ in range(8):
            after, *_ = env.step(ZERO)
            seen.append(float(np.median(gravity_seen(obs, after))))
            lessons.append(env.curriculum.lesson["gravity"])
            obs = after
        # 4 agents: 4 steps a step; progress 28 / 100 passes 0.25 at the 7th, the new value goes with the 8th
        assert lessons == [0] * 6 + [1, 1] and env.steps == 32
        assert seen[:7] == pytest.approx([0.0] * 7, abs=1e-6) and seen[7] == pytest.approx(20.0, rel=1e-3)
    finally:
        env.close()


def test_a_curriculum_on_reward_waits_for_min_lesson_length_episodes_above_threshold_and_logs_its_lesson(tmp_path: Path) -> None:
    logger = imitation_logger.configure(str(tmp_path / "tb"), ["tensorboard"])
    criteria = {"behavior": "3DBall", "measure": "reward", "min_lesson_length": 8, "signal_smoothing": False}
    env = wrapped({
        "gravity": curriculum([{"name": "a", "value": 9.81, "completion_criteria": {**criteria, "threshold": 0.3}}, {"name": "b", "value": 5}]),
        "wind": curriculum([{"name": "a", "value": 0.0, "completion_criteria": {**criteria, "threshold": 0.6}}, {"name": "b", "value": 1}]),
    }, scene_steps=5, logger=logger)  # fmt: skip
    try:
        env.reset()
        lessons = []
        for step in range(1, 21):
            env.step(ZERO)
            logger.dump(step)
            lessons.append((env.curriculum.lesson["gravity"], env.curriculum.lesson["wind"]))
        # episodes of 5 steps worth 0.5 each: 4 end at step 5 (fewer than 8), 8 by step 10 (0.5 > 0.3); wind wants 0.6: never
        assert lessons == [(0, 0)] * 9 + [(1, 0)] * 11
    finally:
        env.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    logged = {tag: [(e.step, e.value) for e in events.Scalars(LESSON_TAG.format(tag))] for tag in ("gravity", "wind")}
    assert logged["gravity"] == [(step, 0.0 if step < 10 else 1.0) for step in range(1, 21)]
    assert logged["wind"] == [(step, 0.0) for step in range(1, 21)]


def test_the_reward_measure_is_smoothed_and_held_to_min_lesson_length_as_in_ml_agents() -> None:
    def lessons(criteria: dict[str, Any]) -> Curriculum:
        parameters = config({"p": curriculum([{"name": "a", "value": 0.0, "completion_criteria": {"behavior": "3DBall", **criteria}},
                                              {"name": "b", "value": 1.0}])}).environment_parameters  # fmt: skip
        return Curriculum(parameters, behavior=BEHAVIOR, max_steps=100, seed=0)

    smoothed = lessons({"threshold": 0.45, "min_lesson_length": 2})
    assert smoothed.update(1, [0.5, 0.5]) is None  # 0.25 x 0 + 0.75 x 0.5 = 0.375
    change = smoothed.update(2, [])  # 0.25 x 0.375 + 0.75 x 0.5 = 0.469: above
    assert change is not None and change.values == {"p": 1.0} and not change.reset and smoothed.lesson == {"p": 1}
    plain = lessons({"threshold": 0.45, "min_lesson_length": 2, "signal_smoothing": False})
    assert plain.update(1, [0.5]) is None and plain.update(2, [0.5]) is not None
    progress = lessons({"measure": "progress", "threshold": 0.5, "min_lesson_length": 1})  # progress also waits for episodes
    assert progress.update(60, []) is None and progress.update(61, [0.0]) is not None
    at_threshold = lessons({"measure": "progress", "threshold": 0.5})
    assert at_threshold.update(50, []) is None and at_threshold.update(51, []) is not None  # above, not at


def test_samplers_without_a_seed_take_the_runs_seed_plus_their_lessons_place() -> None:
    parameters = config({
        "gravity": curriculum([
            {"name": "a", "value": 1.0, "completion_criteria": {"behavior": "3DBall", "measure": "progress", "threshold": 0.1}},
            {"name": "b", "value": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 5, "max_value": 15}}},
        ]),
        "size": {"sampler_type": "gaussian", "sampler_parameters": {"mean": 2, "st_dev": 0.5, "seed": 77}},
        "mass": {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[1, 2], [4, 5]], "seed": -1}},
    }).environment_parameters  # fmt: skip
    values = Curriculum(parameters, behavior=BEHAVIOR, max_steps=100, seed=40).values()
    assert values == {"gravity": 1.0, "size": Sampler(SamplerType.GAUSSIAN, 77, (2.0, 0.5)),
                      "mass": Sampler(SamplerType.MULTIRANGEUNIFORM, 42, (1.0, 2.0, 4.0, 5.0))}  # fmt: skip
    later = Curriculum(parameters, behavior=BEHAVIOR, max_steps=100, seed=40)
    assert later.update(11, []).values == {"gravity": Sampler(SamplerType.UNIFORM, 41, (5.0, 15.0))}


def test_require_reset_resets_the_env_within_the_step_and_the_new_sampler_is_drawn() -> None:
    criteria = {"behavior": "3DBall", "measure": "progress", "threshold": 0.1, "require_reset": True}
    env = wrapped({"gravity": curriculum([
        {"name": "a", "value": 0.0, "completion_criteria": criteria},
        {"name": "b", "value": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 5, "max_value": 15}}},
    ])})  # fmt: skip
    try:
        obs = env.reset()
        for _ in range(2):
            obs, _, dones, _ = env.step(ZERO)
            assert not dones.any()
        moved = obs.copy()
        env.step_async(ZERO + 0.5)  # tilt the plates: the reset's observations differ from a step's
        first, _, dones, infos = env.step_wait()  # 12 steps > 10: the lesson ends, with a reset
        assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
        assert np.all(first[:, 5:8] == 0.0)  # balls at rest: new episodes
        ends = np.stack([info["terminal_observation"] for info in infos])
        assert np.all(ends[:, 0:2] != moved[:, 0:2])  # the tilted plates of the cut episodes
        after, *_ = env.step(ZERO)
        seen = gravity_seen(first, after)
        assert 5.0 <= seen[0] <= 15.0 and seen == pytest.approx(seen[0], rel=1e-3)
    finally:
        env.close()


def test_a_checkpoint_keeps_the_lessons_and_a_resumed_env_sends_them() -> None:
    parameters = {"gravity": curriculum([
        {"name": "flat", "value": 0.0, "completion_criteria": {"behavior": "3DBall", "measure": "progress", "threshold": 0.05}},
        {"name": "steep", "value": 20.0},
    ])}  # fmt: skip
    env = wrapped(parameters)
    try:
        env.reset()
        for _ in range(2):
            env.step(ZERO)
        assert env.curriculum.lesson == {"gravity": 1}
        (helper,) = lesson_checkpoints(env)
        saved = io.BytesIO()
        th.save(helper.state(), saved)
    finally:
        env.close()
    resumed = wrapped(parameters)
    try:
        (helper,) = lesson_checkpoints(resumed)
        helper.load_state(th.load(io.BytesIO(saved.getvalue()), weights_only=True))
        assert resumed.curriculum.lesson == {"gravity": 1} and resumed.steps == 8
        obs = resumed.reset()
        after, *_ = resumed.step(ZERO)
        assert gravity_seen(obs, after) == pytest.approx(20.0, rel=1e-3)
    finally:
        resumed.close()


def test_an_evaluation_is_no_training_for_the_curriculum() -> None:
    class Still:
        def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
            return np.zeros((len(obs), 2), np.float32), None

    env = wrapped({"gravity": curriculum([
        {"name": "a", "value": 9.81, "completion_criteria": {"behavior": "3DBall", "measure": "progress", "threshold": 0.0}},
        {"name": "b", "value": 5.0},
    ])}, scene_steps=5)  # fmt: skip
    try:
        evaluate(Still(), env, episodes=8, seed=3)
        assert env.steps == 0 and env.curriculum.lesson == {"gravity": 0}
        env.reset()
        env.step(ZERO)
        assert env.steps == 4 and env.curriculum.lesson == {"gravity": 1}
    finally:
        env.close()


def test_a_curriculum_on_another_behavior_stays_in_its_lesson_and_one_on_no_behavior_of_the_config_is_refused(caplog) -> None:
    parameters = config({"grid_size": curriculum([
        {"name": "a", "value": 3.0, "completion_criteria": {"behavior": "GridWorld", "measure": "progress", "threshold": 0.5}},
        {"name": "b", "value": 5.0},
    ])}).environment_parameters  # fmt: skip
    with pytest.raises(ConfigError, match=r"c\.yaml: environment_parameters\.grid_size\.curriculum\[0\]\.completion_criteria\.behavior: "
                                          r"'GridWorld' is not a behavior of the config, and this run trains '3DBall\?team=0'"):  # fmt: skip
        Curriculum(parameters, behavior=BEHAVIOR, max_steps=10, seed=0, behaviors=["3DBall"], where="c.yaml")
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.train.curriculum"):
        other = Curriculum(parameters, behavior=BEHAVIOR, max_steps=10, seed=0, behaviors=["3DBall", "GridWorld"], where="c.yaml")
    assert "'GridWorld', which this run does not train (it trains '3DBall?team=0'): grid_size goes no further than lesson 0" in caplog.text
    assert other.update(10, [1.0] * 5) is None and other.lesson == {"grid_size": 0} and other.values() == {"grid_size": 3.0}
    trained = Curriculum(parameters, behavior="GridWorld?team=0", max_steps=10, seed=0)
    assert trained.update(6, []) is not None and trained.lesson == {"grid_size": 1}


def test_every_dialect_reads_the_parameters_a_run_saves() -> None:
    ours = config({
        "gravity": 9.81,
        "mass": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 1, "max_value": 2, "seed": 3}},
        "size": curriculum([{"name": "a", "value": 1.0, "completion_criteria": {"behavior": "3DBall", "threshold": 0.2, "require_reset": True}},
                            {"name": "b", "value": {"sampler_type": "gaussian", "sampler_parameters": {"mean": 2, "st_dev": 0.1}}}]),
    })  # fmt: skip
    saved = yaml.safe_load(yaml.safe_dump(ours.to_dict(), sort_keys=False))
    assert saved["environment_parameters"]["gravity"] == 9.81
    assert parse_any_config(saved).environment_parameters == ours.environment_parameters
    modern = parse_any_config(yaml.safe_load((Path(__file__).parent / "mlagents_configs" / "modern" / "ppo_curriculum.yaml").read_text()))
    assert [lesson.name for lesson in modern.environment_parameters["ball_mass"]] == ["Lesson0", "Lesson1", "Lesson2"]
    again = parse_any_config(yaml.safe_load(yaml.safe_dump(modern.to_dict())))
    assert again.environment_parameters == modern.environment_parameters


def test_a_modern_file_with_a_curriculum_trains_through_the_cli_and_resumes_in_its_lesson(tmp_path: Path) -> None:
    raw = {
        "behaviors": {"3DBall": {"trainer_type": "ppo", "hyperparameters": {"batch_size": 64, "buffer_size": 128, "num_epoch": 1},
                                 "network_settings": {"hidden_units": 16}, "max_steps": 264, "summary_freq": 100000}},
        "environment_parameters": {"gravity": curriculum([
            {"name": "light", "value": 4.0, "completion_criteria": {"behavior": "3DBall", "measure": "progress", "threshold": 0.6}},
            {"name": "earth", "value": 9.81},
        ])},
    }  # fmt: skip
    path = tmp_path / "curriculum.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    args = ["train", str(path), "--run-id", "cur", "--results-dir", str(tmp_path / "results"), "--scene-kwargs", json.dumps({"max_steps": 50})]
    assert main(args) == 0
    run = tmp_path / "results" / "cur"
    # 12 agents, rollouts of 11 steps each (132): the lesson ends past 0.6 x 264 steps, between the two dumps
    assert lessons_logged(run) == [(132, 0.0), (264, 1.0)]
    assert parse_any_config(yaml.safe_load((run / "config.yaml").read_text())).environment_parameters == load_config(path).environment_parameters
    # resumed with a larger budget, where a new curriculum would be in its first lesson until past 0.6 x 792 steps
    assert main([*args, "--resume", "--max-steps", "792"]) == 0
    assert lessons_logged(run) == [(132, 0.0), (264, 1.0)] + [(step, 1.0) for step in (396, 528, 660, 792)]


def lessons_logged(run: Path) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(LESSON_TAG.format("gravity"))]


def test_dagger_runs_apply_the_curriculum_too(tmp_path: Path) -> None:
    raw = {"default": {"trainer": "dagger", "max_steps": 400, "dagger_round_steps": 200, "num_epoch": 1, "eval_episodes": 1, "hidden_units": 16},
           "environment_parameters": {"gravity": curriculum([
               {"name": "light", "value": 4.0, "completion_criteria": {"behavior": "3DBall", "measure": "progress", "threshold": 0.4}},
               {"name": "earth", "value": 9.81}])}}  # fmt: skip
    train(parse_any_config(raw, source="d.yaml"), run_id="d", results_dir=tmp_path, scene="ball", scene_kwargs={"max_steps": 50}, progress=False)
    logged = lessons_logged(tmp_path / "d")
    assert logged and logged[-1][1] == 1.0  # logged as DAgger's logger writes; past 0.4 x 400 steps the second lesson began


def test_online_bc_runs_apply_the_curriculum_and_its_reset(tmp_path: Path) -> None:
    """The students' episodes move the lesson on (any return above -1 after two of them), which
    resets the scene; the lesson is logged."""
    raw = {"Student": {"trainer": "online_bc", "brain_to_imitate": "Teacher", "max_steps": 120, "summary_freq": 60, "eval_episodes": 1},
           "environment_parameters": {"gravity": curriculum([
               {"name": "light", "value": 4.0, "completion_criteria": {"behavior": "Student", "threshold": -1.0, "min_lesson_length": 2,
                                                                       "require_reset": True}},
               {"name": "earth", "value": 9.81}])}}  # fmt: skip
    result = train(parse_any_config(raw, source="o.yaml"), run_id="o", results_dir=tmp_path, scene="ball", progress=False,
                   scene_kwargs={"teacher_student": True, "num_agents": 2, "max_steps": 20})  # fmt: skip
    assert not result.interrupted
    assert lessons_logged(tmp_path / "o") == [(60, 1.0), (120, 1.0)]  # two 20-step episodes of 2 students ended by step 20
