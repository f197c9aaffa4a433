"""UnityVecEnv with agents that decide at different times, end at different times, vanish
and appear (the test scene ``async_agents_scene``), in one and in two processes."""

from __future__ import annotations

import numpy as np
import pytest

from gym_unity_il.envs import UnityVecEnv, make_unity_vec_env
from gym_unity_il.errors import AgentNeverDecidesError

SCENE = "async_agents_scene:AsyncAgentsScene"
T, ID, LAST_ACTION, EPISODE_STEP, EPISODES = range(5)


@pytest.fixture
def make_venv(assert_released):
    made: list[UnityVecEnv] = []

    def make(scene_kwargs: dict, **kwargs) -> UnityVecEnv:
        venv = make_unity_vec_env(scene=SCENE, scene_kwargs=scene_kwargs, timeout_wait=20, **kwargs)
        made.append(venv)
        return venv

    yield make
    for venv in made:
        ports = list(venv.ports)
        venv.close()
        for port in ports:
            assert_released(port)


@pytest.mark.parametrize("processes", [1, 2])
def test_agents_deciding_and_ending_at_different_times(make_venv, processes: int) -> None:
    periods, offsets, lengths = [1, 2, 3, 5], [0, 1, 2, 3], [7, 0, 11, 13]
    venv = make_venv({"periods": periods, "offsets": offsets, "lengths": lengths}, n_envs=processes)
    n = venv.num_envs
    assert n == 4 * processes
    obs = venv.reset()
    np.testing.assert_array_equal(obs[:, T], 0)  # every agent decides at the reset
    rng = np.random.default_rng(0)
    ends = np.zeros(n, int)
    skipped = 0  # episodes left out because the agent ended twice within one step
    for _ in range(150):
        previous = obs[:, T].copy()
        actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        obs, reward, done, infos = venv.step(actions)
        period = np.tile(periods, processes)
        # every slot decided after receiving this step's action...
        np.testing.assert_array_equal(obs[~done, LAST_ACTION], actions[~done, 0])
        assert np.all(obs[:, T] % period == np.tile(offsets, processes) % period)
        # ...and earned 1 per Academy step since the observation of the previous step, up to its episode end
        until = obs[:, T].copy()
        for i in np.flatnonzero(done):
            terminal = infos[i]["terminal_observation"]
            until[i] = terminal[T]
            assert terminal[EPISODE_STEP] == lengths[i % 4] and terminal[ID] == i % 4
            assert obs[i, EPISODES] >= terminal[EPISODES] + 1  # an observation of a later episode
            skipped += int(obs[i, EPISODES] - terminal[EPISODES] - 1)
            assert infos[i]["TimeLimit.truncated"] == (i % 2 == 1)  # the scene cuts odd ids
        np.testing.assert_array_equal(reward, until - previous)
        ends += done
    # agents end at their own pace (agent 1 never ends)
    counts = ends[:4]
    assert counts[1] == 0 and counts[0] > counts[2] > counts[3] > 0
    assert skipped > 0  # agent 0 (7 steps per episode) sometimes ends twice while agent 3 (period 5) catches up


def test_decisions_every_fifth_step_take_one_message(make_venv) -> None:
    venv = make_venv({"periods": [5, 5, 5]})
    obs = venv.reset()
    for k in range(1, 6):
        obs, reward, _, _ = venv.step(np.zeros((3, 1), np.float32))
        np.testing.assert_array_equal(obs[:, T], 5 * k)
        np.testing.assert_array_equal(reward, 5.0)


def test_a_vanished_agent_leaves_a_vacant_slot_that_a_new_agent_takes(make_venv) -> None:
    kwargs = {"periods": [1, 1, 1], "lengths": [0, 4, 0], "vanish": [1], "spawn_step": 12, "spawn_count": 1}
    venv = make_venv(kwargs, vacant_after=3)
    venv.reset()
    actions = np.array([[0.1], [0.2], [0.3]], np.float32)
    history = []
    for _ in range(12):
        obs, reward, done, infos = venv.step(actions)
        history.append((obs.copy(), reward.copy(), done.copy(), infos, venv.get_attr("agent_id")))
    # steps 1-3: normal; step 4: agent 1 ends, the step waits 3 more messages, then leaves the slot vacant
    obs, reward, done, infos, ids = history[3]
    assert done.tolist() == [False, True, False] and infos[1]["vacant"] and infos[1]["TimeLimit.truncated"]
    np.testing.assert_array_equal(obs[:, T], [7, 4, 7])
    np.testing.assert_array_equal(reward, [4, 1, 4])
    assert ids == [0, -1, 2]
    # vacant: last observation, no reward, no episode end
    obs, reward, done, infos, ids = history[4]
    assert infos[1]["vacant"] and reward[1] == 0 and not done[1] and obs[1, T] == 4
    # Academy step 12: agent 100 appears and takes the vacant slot; its reward that step is dropped
    step = next(k for k, h in enumerate(history) if h[4][1] == 100)
    obs, reward, done, infos, ids = history[step]
    assert obs[1, ID] == 100 and obs[1, T] == 12 and reward[1] == 0 and not done[1] and "vacant" not in infos[1]
    obs, reward, done, infos, ids = history[step + 1]
    assert obs[1, ID] == 100 and obs[1, LAST_ACTION] == pytest.approx(0.2) and reward[1] == 1


def test_a_new_agent_takes_the_slot_of_one_that_just_ended(make_venv) -> None:
    venv = make_venv({"periods": [1, 1], "lengths": [0, 5], "vanish": [1], "spawn_step": 5, "spawn_count": 1})
    venv.reset()
    for _ in range(4):
        venv.step(np.zeros((2, 1), np.float32))
    obs, reward, done, infos = venv.step(np.zeros((2, 1), np.float32))
    assert done.tolist() == [False, True] and "vacant" not in infos[1]
    assert infos[1]["terminal_observation"][ID] == 1 and obs[1, ID] == 100
    assert reward[1] == 1 and venv.get_attr("agent_id") == [0, 100]


def test_an_agent_that_never_decides_ends_in_an_error_and_closes_everything(assert_released) -> None:
    session = {"scene": SCENE, "scene_kwargs": {"periods": [1, 1000], "offsets": [0, 999]}, "timeout_wait": 20}
    venv = UnityVecEnv(sessions=[session, session], max_messages=10)
    ports = list(venv.ports)
    venv.reset()
    with pytest.raises(AgentNeverDecidesError, match=r"\[1\]"):
        venv.step(np.zeros((4, 1), np.float32))
    for port in ports:
        assert_released(port)
