"""UnityParallelEnv: PettingZoo's parallel API test on a scene with two behaviors, agent
naming, agents leaving at their episode end, action masks, seeding and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from gym_unity_il.envs import UnityParallelEnv
from gym_unity_il.errors import EnvClosedError, ResetNeededError, SpecMismatchError
from gym_unity_il.scenes import SCENES


@pytest.fixture
def make_env(assert_released):
    made: list[UnityParallelEnv] = []

    def make(**kwargs) -> UnityParallelEnv:
        env = UnityParallelEnv(timeout_wait=20, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        try:
            port: int | None = env.session.port
        except EnvClosedError:  # the test closed it
            port = None
        env.close()
        if port is not None:
            assert_released(port)


def test_parallel_api_test_passes_with_teacher_and_students(make_env) -> None:
    env = make_env(scene="ball", scene_kwargs={"teacher_student": True, "num_agents": 3, "max_steps": 60})
    assert env.possible_agents == ["Teacher_0", "Student_1", "Student_2", "Student_3"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=100)  # every agent is done within 60 steps
    assert [str(w.message) for w in seen if "pettingzoo" in w.filename] == []  # the API test found nothing to warn about
    assert env.observation_space("Student_2") is env.observation_space("Student_1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert env.render() is None and env.metadata["render_fps"] == 50
    assert env.action_space("Teacher_0").shape == (2,)


def test_agents_leave_when_their_episode_ends_and_match_the_scene(make_env) -> None:
    kwargs = {"teacher_student": True, "num_agents": 2, "max_steps": 90}
    env = make_env(scene="ball", scene_kwargs=kwargs)
    observations, infos = env.reset(seed=3)
    reference = SCENES["ball"](seed=3, **kwargs)  # the same scene, simulated here
    reference.reset()
    assert infos["Student_2"] == {"behavior_name": "Student?team=0", "agent_id": 2}
    np.testing.assert_array_equal(observations["Teacher_0"], reference.observe()["Teacher?team=0"].observations[0][0])
    lean = np.array([-1.0, 0.0, 1.0], np.float32)  # per agent id: the teacher and student 2 drop their balls first
    finished: dict[str, int] = {}
    for t in range(100):
        live = list(env.agents)
        actions = {agent: np.full(2, lean[infos[agent]["agent_id"]], np.float32) for agent in live}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        applied = np.array([lean[i] if any(infos.get(a, {}).get("agent_id") == i for a in live) else 0.0 for i in range(3)], np.float32)
        reference.act({"Teacher?team=0": (np.full((1, 2), applied[0]), np.zeros((1, 0), np.int32)),
                       "Student?team=0": (np.repeat(applied[1:, None], 2, axis=1), np.zeros((2, 0), np.int32))})  # fmt: skip
        expected = {}
        for behavior, batch in reference.observe().items():
            for row, agent_id in enumerate(batch.agent_ids.tolist()):
                name = f"{behavior.split('?')[0]}_{agent_id}"
                if batch.done[row] or name not in expected:  # a terminal record comes first and wins
                    expected.setdefault(name, (batch.observations[0][row], batch.rewards[row], bool(batch.done[row]), bool(batch.max_step_reached[row])))
        assert set(observations) == set(live)
        for agent in live:
            obs, reward, done, cut = expected[agent]
            np.testing.assert_array_equal(observations[agent], obs)
            assert rewards[agent] == pytest.approx(float(reward)) and terminations[agent] == (done and not cut) and truncations[agent] == cut
            if done:
                finished[agent] = t
        if not env.agents:
            break
    assert set(finished) == {"Teacher_0", "Student_1", "Student_2"}
    assert len(set(finished.values())) > 1  # the agents left at different steps
    with pytest.raises(ResetNeededError, match="reset"):
        env.step({})
    observations, _ = env.reset()
    assert env.agents == ["Teacher_0", "Student_1", "Student_2"] and set(observations) == set(env.agents)


def test_discrete_agents_get_action_masks(make_env) -> None:
    env = make_env(scene="grid", scene_kwargs={"num_agents": 2, "camera_height": 7, "camera_width": 7})
    observations, infos = env.reset(seed=0)
    assert env.agents == ["GridWorld_0", "GridWorld_1"]
    assert set(observations["GridWorld_0"]) == {"CameraSensor", "GoalSensor"}
    for _ in range(5):
        actions = {a: int(np.flatnonzero(infos[a]["action_mask"])[-1]) for a in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        for agent in observations:
            mask = infos[agent]["action_mask"]
            assert mask.dtype == np.int8 and mask.shape == (5,) and mask[0] == 1
            assert env.observation_space(agent).contains(observations[agent])


def test_seeded_resets_repeat_and_bad_actions_are_refused(make_env) -> None:
    env = make_env(scene="ball", scene_kwargs={"num_agents": 2})
    first, _ = env.reset(seed=11)
    env.step({a: np.ones(2, np.float32) for a in env.agents})
    again, _ = env.reset(seed=11)
    for agent in first:
        np.testing.assert_array_equal(first[agent], again[agent])
    with pytest.raises(SpecMismatchError, match="Nobody_7"):
        env.step({"Nobody_7": np.zeros(2, np.float32)})
    with pytest.raises(SpecMismatchError, match="3DBall_0"):
        env.step({"3DBall_0": np.zeros(3, np.float32)})


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("discrete", [0, 1, 1, 1, 1]),
        ("multi_discrete", ([0, 1, 1], [1, 1])),
        ("hybrid", {"continuous": None, "discrete": ([0, 1, 1],)}),
    ],
)
def test_action_masks_follow_pettingzoo_and_gymnasium_sample(make_env, actions, expected) -> None:
    # The scene forbids the first option of the first branch.
    env = make_env(scene="conformance_scene:ConformanceScene", scene_kwargs={"actions": actions, "length": 6})
    _, infos = env.reset(seed=0)
    agent = env.agents[0]
    mask = infos[agent]["action_mask"]
    flat = mask["discrete"] if isinstance(mask, dict) else mask if isinstance(mask, tuple) else (mask,)
    assert all(isinstance(m, np.ndarray) and m.dtype == np.int8 for m in flat)
    if isinstance(expected, dict):
        assert mask["continuous"] is None and [m.tolist() for m in flat] == [list(e) for e in expected["discrete"]]
    else:
        assert [m.tolist() for m in flat] == ([expected] if actions == "discrete" else [list(e) for e in expected])
    space = env.action_space(agent)
    space.seed(0)
    samples = [space.sample(mask) for _ in range(60)]
    first = [int(np.asarray(s["discrete"] if isinstance(s, dict) else s).reshape(-1)[0]) for s in samples]
    allowed = set(np.flatnonzero(flat[0]).tolist())
    assert set(first) == allowed and 0 not in allowed  # every allowed option of the first branch, and only those
    assert all(space.contains(s) for s in samples)
    # PettingZoo's AEC API test samples every action with `action_space(agent).sample(info["action_mask"])`.
    api_test(parallel_to_aec(env), num_cycles=20)
