"""UnityVecEnv through SB3's VecEnv machinery: wrappers, evaluation, attribute access,
seeding, rendering, errors, and cleanup after close() and after a crashed process."""

from __future__ import annotations

import logging
import os
import signal

import gymnasium as gym
import numpy as np
import psutil
import pytest
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecCheckNan, VecFrameStack, VecMonitor, VecNormalize, VecTransposeImage, is_vecenv_wrapped

from gym_unity_il.envs import UnityVecEnv, make_unity_vec_env
from gym_unity_il.errors import ConfigError, EnvClosedError, NoAsyncCallError, SpecMismatchError, UnityProcessExitedError
from gym_unity_il.scenes import expert_policy


@pytest.fixture
def make_venv(assert_released):
    """Builds VecEnvs and, after the test, closes them and checks that nothing is left."""
    made: list[UnityVecEnv] = []

    def make(**kwargs) -> UnityVecEnv:
        venv = make_unity_vec_env(timeout_wait=20, **kwargs)
        made.append(venv)
        return venv

    yield make
    for venv in made:
        ports = list(venv.ports)
        venv.close()
        for port in ports:
            assert_released(port)


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}


def test_sb3_wrappers_see_consistent_steps_and_episodes(make_venv) -> None:
    venv = make_venv(scene="ball", num_processes=2, scene_kwargs={"num_agents": 3, "max_steps": 12})
    assert venv.num_envs == 6 and venv.num_processes == 2
    wrapped = VecNormalize(VecMonitor(VecCheckNan(venv, raise_exception=True)), gamma=0.99)
    assert is_vecenv_wrapped(wrapped, VecMonitor) and wrapped.unwrapped is venv
    obs = wrapped.reset()
    assert obs.shape == (6, 8) and np.isfinite(obs).all()
    returns, lengths, seen = np.zeros(6), np.zeros(6, int), 0
    rng = np.random.default_rng(0)
    for _ in range(40):
        obs, _, done, infos = wrapped.step(rng.uniform(-1, 1, (6, 2)).astype(np.float32))
        raw = wrapped.get_original_reward()
        returns += raw
        lengths += 1
        assert obs.shape == (6, 8) and np.isfinite(obs).all()
        for i in np.flatnonzero(done):
            episode = infos[i]["episode"]
            assert episode["r"] == pytest.approx(returns[i], abs=1e-4) and episode["l"] == lengths[i]
            assert infos[i]["TimeLimit.truncated"] and venv.observation_space.contains(infos[i]["terminal_observation"])
            returns[i], lengths[i], seen = 0.0, 0, seen + 1
    assert seen >= 6  # max_steps=12: every slot finished episodes


def test_evaluate_policy_scores_the_expert_through_the_vec_env(make_venv) -> None:
    venv = VecMonitor(make_venv(scene="ball", n_envs=2, scene_kwargs={"num_agents": 4, "max_steps": 20}))
    rewards, lengths = evaluate_policy(expert_policy("ball"), venv, n_eval_episodes=8, return_episode_rewards=True)
    assert len(rewards) == 8 and lengths == [20] * 8
    np.testing.assert_allclose(rewards, 2.0, atol=1e-4)  # +0.1 per step, never dropped, cut at 20 steps


def test_dict_observations_work_with_frame_stacking_and_image_transposing(make_venv) -> None:
    venv = make_venv(scene="grid", n_envs=1, scene_kwargs={"num_agents": 3, "camera_height": 9, "camera_width": 9})
    assert isinstance(venv.observation_space, gym.spaces.Dict)
    stacked = VecFrameStack(VecTransposeImage(venv), n_stack=2)
    obs = stacked.reset()
    assert obs["CameraSensor"].shape == (3, 6, 9, 9) and obs["GoalSensor"].shape == (3, 4)
    obs, _, _, _ = stacked.step(np.stack(get_action_masks(venv)).argmax(axis=1))
    assert stacked.observation_space.contains({k: v[0] for k, v in obs.items()})


def test_attributes_and_methods_follow_sb3_semantics(make_venv) -> None:
    venv = make_venv(scene="ball", n_envs=2, scene_kwargs={"num_agents": 2})
    venv.reset()
    assert venv.get_attr("render_mode") == [None] * 4
    assert venv.get_attr("agent_id") == [0, 1, 0, 1]
    assert venv.get_attr("process_index", indices=[0, 3]) == [0, 1]
    assert venv.get_attr("behavior_name", indices=2) == ["3DBall?team=0"]
    assert venv.get_attr("observation_space")[0] is venv.observation_space
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    venv.set_attr("note", "x", indices=[1])
    assert venv.get_attr("note", indices=1) == ["x"]
    with pytest.raises(AttributeError):
        venv.get_attr("note", indices=0)
    with pytest.raises(AttributeError):
        venv.set_attr("observation_space", None)
    assert venv.env_method("render") == [None] * 4
    assert venv.env_is_wrapped(Monitor) == [False] * 4
    assert not is_masking_supported(venv)  # continuous actions: no action_masks on the slots
    with pytest.raises(ConfigError):
        venv.action_masks()


def test_action_masks_reach_sb3_contrib(make_venv) -> None:
    venv = make_venv(scene="grid", n_envs=2, scene_kwargs={"num_agents": 2, "camera_height": 7, "camera_width": 7, "grid_size": 5})
    venv.reset()
    assert is_masking_supported(venv)
    masks = get_action_masks(venv)
    assert masks.shape == (4, 5) and masks.dtype == bool
    np.testing.assert_array_equal(masks, venv.action_masks())
    assert masks[:, 0].all()  # "stay" is always allowed
    # an agent at the field's edge may not walk into the wall: some moves are forbidden somewhere
    for _ in range(20):
        if not masks.all():
            break
        venv.step(np.full(4, 1))  # walk up until the wall is reached
        masks = get_action_masks(venv)
    assert not masks.all()


def test_seed_makes_resets_reproducible(make_venv) -> None:
    venv = make_venv(scene="ball", n_envs=2, scene_kwargs={"num_agents": 3})
    venv.seed(5)
    first = venv.reset()
    venv.step(np.ones((6, 2), np.float32))
    venv.seed(5)
    np.testing.assert_array_equal(venv.reset(), first)
    venv.seed(6)
    assert not np.array_equal(venv.reset(), first)
    assert not np.array_equal(first[:3], first[3:])  # the processes draw differently


def test_reset_options_set_environment_parameters(make_venv) -> None:
    venv = make_venv(scene="ball", n_envs=1, scene_kwargs={"num_agents": 2})
    venv.set_options({"env_parameters": {"gravity": 0.0}})
    venv.reset()
    for _ in range(5):
        obs, _, _, _ = venv.step(np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(obs[:, 5:8], 0.0)  # without gravity the ball never rolls
    venv.set_options({"colour": "red"})
    with pytest.raises(ConfigError, match="colour"):
        venv.reset()


def test_hybrid_actions_as_a_dict_of_batches_or_a_list_of_dicts(make_venv) -> None:
    venv = make_venv(scene="hybrid", n_envs=1, scene_kwargs={"num_agents": 3})
    venv.reset()
    venv.action_space.seed(0)
    obs, reward, _, _ = venv.step([venv.action_space.sample() for _ in range(3)])
    assert obs.shape == (3, 6) and reward.shape == (3,)
    obs, reward, _, _ = venv.step({"continuous": np.zeros((3, 2), np.float32), "discrete": np.ones((3, 1), np.int64)})
    assert obs.shape == (3, 6)


def test_render_tiles_every_slot_camera(make_venv) -> None:
    venv = make_venv(scene="grid", n_envs=1, scene_kwargs={"num_agents": 4, "camera_height": 8, "camera_width": 10, "grayscale": True},
                     render_mode="rgb_array")  # fmt: skip
    obs = venv.reset()
    images = venv.get_images()
    assert len(images) == 4 and images[0].shape == (8, 10, 3)
    np.testing.assert_array_equal(images[2][:, :, 1], obs["CameraSensor"][2, :, :, 0])
    assert venv.render().shape == (16, 20, 3)  # 4 images tiled 2 x 2


def test_stats_are_collected_from_every_process(make_venv) -> None:
    venv = make_venv(scene="staggered_scene:StaggeredScene", n_envs=2)
    venv.reset()
    for _ in range(3):
        venv.step(np.zeros((venv.num_envs, 1), np.float32))
    stats = venv.take_stats()
    assert len(stats["staggered/step"]) >= 6  # at least one value per message of each process
    assert venv.take_stats() == {}


def test_bad_input_gets_clear_errors(make_venv, assert_released) -> None:
    venv = make_venv(scene="grid", n_envs=1, scene_kwargs={"num_agents": 2, "camera_height": 7, "camera_width": 7})
    venv.reset()
    with pytest.raises(SpecMismatchError, match="2 slots"):
        venv.step(np.zeros(3, np.int64))
    with pytest.raises(SpecMismatchError, match="branch sizes"):
        venv.step(np.array([0, 5]))
    with pytest.raises(NoAsyncCallError, match="step_async"):
        venv.step_wait()
    before = _children()
    with pytest.raises(ConfigError, match="behavior_name='Nobody'"):
        make_unity_vec_env(scene="ball", n_envs=2, behavior_name="Nobody", scene_kwargs={"num_agents": 1})
    assert _children() <= before  # both processes of the failed VecEnv are gone
    with pytest.raises(ConfigError, match="n_envs"):
        make_unity_vec_env(scene="ball", n_envs=0)
    with pytest.raises(ConfigError, match="num_processes must be"):
        make_unity_vec_env(scene="ball", num_processes=0)
    with pytest.raises(ConfigError, match="former name"):
        make_unity_vec_env(scene="ball", num_processes=2, n_envs=2)
    with pytest.raises(ConfigError, match="render_mode"):
        make_unity_vec_env(scene="ball", render_mode="rgb_array", scene_kwargs={"num_agents": 1})
    venv.close()
    with pytest.raises(EnvClosedError, match="closed"):
        venv.reset()


@pytest.mark.parametrize("victim", [0, 1], ids=["first-process", "second-process"])
def test_a_killed_process_closes_the_whole_vec_env(make_venv, assert_released, victim: int) -> None:
    before = _children()
    venv = make_venv(scene="ball", n_envs=2, scene_kwargs={"num_agents": 2})
    venv.reset()
    pids = list(venv.process_ids)
    assert set(pids) <= _children() - before
    process = psutil.Process(pids[victim])
    os.kill(pids[victim], signal.SIGKILL)
    process.wait(10)
    with pytest.raises(UnityProcessExitedError):
        for _ in range(100):  # the step on which the crash is noticed raises
            venv.step(np.zeros((4, 2), np.float32))
    assert _children() <= before  # the other process was ended too
    with pytest.raises(EnvClosedError, match="closed"):
        venv.step(np.zeros((4, 2), np.float32))
    venv.close()  # idempotent


def test_close_is_idempotent_and_leaves_nothing(assert_released) -> None:
    before = _children()
    venv = make_unity_vec_env(scene="ball", n_envs=2, scene_kwargs={"num_agents": 2})
    ports = list(venv.ports)
    venv.reset()
    venv.close()
    venv.close()
    assert _children() <= before
    for port in ports:
        assert_released(port)


def test_more_agents_than_slots_are_reported_once(make_venv, caplog) -> None:
    venv = make_venv(scene="async_agents_scene:AsyncAgentsScene", scene_kwargs={"periods": [1, 1], "spawn_step": 2, "spawn_count": 1})
    venv.reset()
    with caplog.at_level(logging.WARNING, logger="gym_unity_il.envs.vec_env"):
        for _ in range(4):
            venv.step(np.zeros((2, 1), np.float32))
    assert sum("more agents than slots" in r.getMessage() for r in caplog.records) == 1
    assert venv.get_attr("agent_id") == [0, 1]
