"""SessionWorker: one session driving the slots of several behaviors (a teacher and its
students on the built-in scene ``ball``), the one behavior resolver, and the specific
errors the envs raise."""

from __future__ import annotations

import numpy as np
import pytest

import gym_unity_il
from gym_unity_il import demo, errors
from gym_unity_il.envs.worker import SessionWorker, resolve_behavior
from gym_unity_il.errors import AgentNeverDecidesError, ConfigError, EnvClosedError, GymUnityILError, NoAsyncCallError, ResetNeededError
from gym_unity_il.envs.source import open_session
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

SCENE = {"scene": "ball", "scene_kwargs": {"teacher_student": True, "num_agents": 3, "max_steps": 0}, "timeout_wait": 20}


def _spec(name: str) -> BehaviorSpec:
    return BehaviorSpec(name, (ObservationSpec((1,)),), ActionSpec(continuous_size=1))


def test_the_resolver_takes_names_with_or_without_team_and_the_first_free_behavior() -> None:
    specs = {name: _spec(name) for name in ("Teacher?team=0", "Student?team=0", "Other?team=1")}
    assert resolve_behavior(specs, None) == "Teacher?team=0"
    assert resolve_behavior(specs, "Student") == "Student?team=0"
    assert resolve_behavior(specs, "Other?team=1") == "Other?team=1"
    assert resolve_behavior(specs, None, exclude=["Teacher?team=0"]) == "Student?team=0"
    with pytest.raises(ConfigError, match=r"behavior_name='Nobody' is not in the scene; its behaviors are \['Teacher"):
        resolve_behavior(specs, "Nobody")
    with pytest.raises(ConfigError, match="taken"):
        resolve_behavior(specs, None, exclude=list(specs))
    with pytest.raises(ConfigError, match="announced no behavior"):
        resolve_behavior({}, None)


def test_the_specific_errors_are_caught_as_before_and_exported() -> None:
    for cls in (EnvClosedError, ResetNeededError, NoAsyncCallError, AgentNeverDecidesError):
        assert issubclass(cls, GymUnityILError) and issubclass(cls, RuntimeError)
        assert getattr(gym_unity_il, cls.__name__) is cls and cls.__name__ in gym_unity_il.__all__
    assert demo.DemoFormatWarning is errors.DemoFormatWarning is gym_unity_il.DemoFormatWarning
    assert issubclass(errors.DemoFormatWarning, UserWarning)


def test_one_worker_drives_a_teacher_and_its_students(assert_released) -> None:
    worker = SessionWorker.open(SCENE, behaviors=["Teacher", None])  # None: the first behavior not driven yet
    port = worker.session.port
    try:
        assert worker.behaviors == ["Teacher?team=0", "Student?team=0"]
        info = worker.describe()
        assert info.num_agents == {"Teacher?team=0": 1, "Student?team=0": 3} and info.port == port
        first = worker.reset(seed=1)
        np.testing.assert_array_equal(first.batches["Teacher?team=0"].agent_id, [0])
        np.testing.assert_array_equal(first.batches["Student?team=0"].agent_id, [1, 2, 3])
        teacher, students = (np.full((1, 2), 0.5, np.float32), np.zeros((1, 0), np.int32)), (np.zeros((3, 2), np.float32), np.zeros((3, 0), np.int32))
        after = worker.step({"Teacher?team=0": teacher, "Student?team=0": students})
        for name, batch in after.batches.items():
            assert batch.obs[0].shape == (len(batch.agent_id), 8) and not batch.done.any()
        tilted = after.batches["Teacher?team=0"].obs[0][0] != first.batches["Teacher?team=0"].obs[0][0]
        assert tilted.any()  # the teacher's action reached the teacher's agent
    finally:
        worker.close()
    assert_released(port)


def test_a_behavior_named_twice_is_refused_and_the_session_closed(assert_released) -> None:
    session = open_session(**SCENE)
    with pytest.raises(ConfigError, match="named twice"):
        SessionWorker(session, behaviors=["Student", "Student?team=0"])
    assert session.closed
    assert_released(session.port)


def test_a_function_chooses_the_behaviors_by_what_the_scene_announced(assert_released) -> None:
    announced: list[list[str]] = []

    def students_first(specs) -> list[str]:
        announced.append(list(specs))
        return [name for name in specs if name.startswith("Student")] + [None]

    worker = SessionWorker.open(SCENE, behaviors=students_first)
    try:
        assert announced == [["Teacher?team=0", "Student?team=0"]]
        assert worker.behaviors == ["Student?team=0", "Teacher?team=0"]
        assert [len(batch.agent_id) for batch in worker.reset(seed=2).batches.values()] == [3, 1]
    finally:
        worker.close()
    assert_released(worker.session.port)

    def refuse(specs) -> list[str]:
        raise ConfigError(f"nothing to drive among {list(specs)}")

    session = open_session(**SCENE)
    with pytest.raises(ConfigError, match=r"nothing to drive among \['Teacher\?team=0', 'Student\?team=0'\]"):
        SessionWorker(session, behaviors=refuse)
    assert session.closed
    assert_released(session.port)
