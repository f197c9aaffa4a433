"""UnityILEnv on the built-in scenes and on a test scene, through real player processes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import psutil
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.envs.unity_env import UnityILEnv, _row_of
from gym_unity_il.errors import ConfigError, EnvClosedError, ResetNeededError, UnityProcessExitedError
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.protocol.channels import StatsAggregationMethod
from gym_unity_il.scenes import SCENES

STAGGERED = "staggered_scene:StaggeredScene"


@pytest.fixture
def make_env(assert_released):
    """Builds envs and, after the test, closes them and checks that nothing is left."""
    envs: list[UnityILEnv] = []

    def make(**kwargs) -> UnityILEnv:
        env = UnityILEnv(timeout_wait=20, **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        port = env.session.port if env._session is not None else None
        env.close()
        if port is not None:
            assert_released(port)


# The built-in scenes, over their observation kinds (vector; image + vector; grayscale image
# as float CHW) and action kinds (continuous; discrete with masks; hybrid).
SCENE_CASES = [
    pytest.param("ball", {}, "hwc_uint8", id="ball-vector-continuous"),
    pytest.param("grid", {"camera_height": 20, "camera_width": 24}, "hwc_uint8", id="grid-image-discrete"),
    pytest.param("grid", {"camera_height": 16, "camera_width": 16, "grayscale": True}, "chw_float", id="grid-gray-chw-discrete"),
    pytest.param("hallway", {"camera": True}, "chw_float", id="hallway-image-chw-discrete"),
    pytest.param("hybrid", {}, "hwc_uint8", id="hybrid-vector-hybrid"),
]


def test_every_built_in_scene_is_covered() -> None:
    assert {case.values[0] for case in SCENE_CASES} == set(SCENES)


@pytest.mark.parametrize(("scene", "kwargs", "image_format"), SCENE_CASES)
def test_gymnasium_and_sb3_checkers_accept_the_built_in_scenes(make_env, scene: str, kwargs: dict, image_format: str) -> None:
    env = make_env(scene=scene, scene_kwargs=kwargs, image_format=image_format)
    gymnasium_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["agent_id"] == 0 and info["behavior_name"] == env.behavior_name
    assert len(env.session.steps[env.behavior_name][0]) == 1  # built-in scenes start with one agent
    env.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and isinstance(reward, float)
        if terminated or truncated:  # random moves may end a grid episode at once
            obs, info = env.reset()


def test_default_env_is_the_ball_scene_with_one_agent(make_env) -> None:
    env = make_env()
    assert env.behavior_name == "3DBall?team=0"
    assert env.observation_space == gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert len(env.session.steps["3DBall?team=0"][0]) == 1


def test_registered_id_makes_the_env(assert_released) -> None:
    env = gym.make("UnityIL-v0", scene="hybrid", timeout_wait=20)
    assert isinstance(env.unwrapped, UnityILEnv)
    assert isinstance(env.action_space, gym.spaces.Dict)
    port = env.unwrapped.session.port
    env.close()
    assert_released(port)


def test_reset_seed_is_deterministic(make_env) -> None:
    env = make_env(scene="ball")
    first, _ = env.reset(seed=3)
    trajectory = [env.step(np.array([0.3, -0.2], np.float32))[0] for _ in range(5)]
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(trajectory, [env.step(np.array([0.3, -0.2], np.float32))[0] for _ in range(5)])
    other, _ = env.reset(seed=4)
    assert not np.array_equal(first, other)


def test_reward_adds_up_over_messages_and_other_agents_get_zero_actions(make_env) -> None:
    env = make_env(scene=STAGGERED, scene_kwargs={"max_steps": 6}, env_parameters={"level": 2.0})
    obs, _ = env.reset()
    assert obs.tolist() == [0.0, 0.0, 2.0, 0.0]
    obs, reward, terminated, truncated, info = env.step(np.array([0.75], np.float32))
    # Agent 0 decides every second Academy step: one message in between carried agent 1 only.
    assert obs.tolist() == [2.0, 0.75, 2.0, 0.0] and reward == 2.0 and not terminated and not truncated
    assert info["stats"] == {"staggered/step": [(1.0, StatsAggregationMethod.AVERAGE), (2.0, StatsAggregationMethod.AVERAGE)]}
    other = env.session.steps["Staggered?team=0"][0]
    assert other.agent_id.tolist() == [0, 1] and other.obs[0][1, 1] == 0.0  # agent 1 got zero actions
    obs, _ = env.reset(options={"env_parameters": {"level": -3.0}})
    assert obs[2] == -3.0


def test_truncated_comes_from_max_step_reached(make_env) -> None:
    env = make_env(scene=STAGGERED, scene_kwargs={"max_steps": 4})
    env.reset()
    assert env.step(np.zeros(1, np.float32))[2:4] == (False, False)
    _, reward, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
    assert (terminated, truncated, reward) == (False, True, 2.0)
    with pytest.raises(ResetNeededError, match="reset"):
        env.step(np.zeros(1, np.float32))


def test_terminated_for_a_true_end(make_env) -> None:
    env = make_env(scene=STAGGERED, scene_kwargs={"end_on_negative": True})
    env.reset()
    _, _, terminated, truncated, _ = env.step(np.array([-1.0], np.float32))
    assert (terminated, truncated) == (True, False)


def _blue_centre(picture: np.ndarray) -> np.ndarray:
    """Where the grid's agent (its colour) is in a picture."""
    from gym_unity_il.scenes.grid import AGENT, COLOURS, KIND_COLOUR

    rows, cols = np.nonzero((picture == COLOURS[KIND_COLOUR[AGENT]]).all(axis=2))
    assert rows.size, "the agent is not in the picture"
    return np.array([rows.mean(), cols.mean()])


def test_action_masks_and_the_scene_picture_on_the_grid(make_env) -> None:
    env = make_env(scene="grid", scene_kwargs={"camera_height": 20, "camera_width": 24}, render_mode="rgb_array", render_size=(70, 70))
    obs, info = env.reset(seed=2)
    mask = env.action_masks()
    assert mask.dtype == bool and mask.shape == (5,) and np.array_equal(mask, info["action_mask"])
    frame = env.render()  # the scene's own picture, not the 20 x 24 camera
    assert frame.dtype == np.uint8 and frame.shape == (70, 70, 3)
    move = int(np.flatnonzero(mask[1:])[0]) + 1  # a move the mask allows: up, down, left or right
    _, _, terminated, _, info = env.step(move)
    assert np.array_equal(info["action_mask"], env.action_masks())
    assert not terminated  # seed 2: no goal next to the agent
    step = _blue_centre(env.render()) - _blue_centre(frame)  # one cell (10 pixels) the way it was told
    assert np.allclose(step, 10 * np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]][move]))


def test_render_is_the_camera_for_a_scene_that_draws_no_picture(make_env) -> None:
    env = make_env(scene="conformance_scene:ConformanceScene", scene_kwargs={"sensors": ["image", "vector"], "actions": "discrete"}, render_mode="rgb_array")
    obs, _ = env.reset(seed=2)
    np.testing.assert_array_equal(env.render(), obs["CameraSensor"])
    obs, *_ = env.step(1)
    np.testing.assert_array_equal(env.render(), obs["CameraSensor"])
    assert obs["CameraSensor"].max() > 0  # the camera changed with the step


def test_render_repeats_a_grayscale_camera_to_rgb(make_env) -> None:
    env = make_env(scene="conformance_scene:ConformanceScene", scene_kwargs={"sensors": ["gray"]}, render_mode="rgb_array", image_format="chw_float")
    env.reset(seed=1)
    obs, *_ = env.step(np.zeros(2, np.float32))
    frame = env.render()
    assert frame.shape == (8, 6, 3) and frame.dtype == np.uint8
    expected = np.rint(obs[0] * 255).astype(np.uint8)
    assert expected.max() > 0
    for channel in range(3):
        np.testing.assert_array_equal(frame[:, :, channel], expected)


def test_render_through_gym_make_declares_its_fps_and_warns_nothing() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium's checker warns when render_fps is missing
        env = gym.make("UnityIL-v0", scene="ball", render_mode="rgb_array", timeout_wait=20)
        try:
            env.reset(seed=0)
            first = env.render()
            env.step(np.ones(2, np.float32))
            assert first.shape == (160, 160, 3) and not np.array_equal(env.render(), first)
        finally:
            env.close()
    assert env.metadata["render_fps"] == 50


def test_behavior_name_picks_the_controlled_behavior(make_env) -> None:
    env = make_env(scene="ball", scene_kwargs={"teacher_student": True, "num_agents": 2}, behavior_name="Student")
    assert env.behavior_name == "Student?team=0"
    _, info = env.reset()
    assert info["agent_id"] == int(env.session.steps["Student?team=0"][0].agent_id[0])
    env.step(np.zeros(2, np.float32))
    with pytest.raises(ConfigError, match=r"Coach.*Teacher\?team=0"):
        make_env(scene="ball", scene_kwargs={"teacher_student": True}, behavior_name="Coach")


def test_bad_arguments_and_misuse_are_clear_errors(make_env, assert_released) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ConfigError, match="camera observation or a built-in scene that draws itself"):
        UnityILEnv(scene="conformance_scene:ConformanceScene", render_mode="rgb_array", timeout_wait=20)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    with pytest.raises(ConfigError, match="render_mode"):
        UnityILEnv(render_mode="human")
    env = make_env(scene="ball")
    with pytest.raises(ResetNeededError, match="reset"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ConfigError, match="seeds"):
        env.reset(options={"seeds": 1})
    with pytest.raises(ConfigError, match="no discrete actions"):
        env.action_masks()
    port = env.session.port
    env.close()
    env.close()
    with pytest.raises(EnvClosedError, match="closed"):
        env.reset()
    assert_released(port)


def test_the_controlled_agent_is_found_at_its_row_or_anywhere_else() -> None:
    def batch(ids: list[int]) -> StepBatch:
        n = len(ids)
        return StepBatch(np.array(ids, np.int32), (), np.zeros(n, np.float32), np.zeros(n, bool), None, np.zeros(n, np.int32), np.zeros(n, np.float32))

    assert _row_of(batch([4, 7, 9]), 7, 1) == 1  # where it was
    assert _row_of(batch([7, 4, 9]), 7, 1) == 0  # moved: found by search
    assert _row_of(batch([4, 9]), 7, 5) is None  # absent, the guess out of range
    assert _row_of(batch([]), 7, 0) is None


def test_launch_settings_come_as_one_object_or_as_keywords_checked_before_anything_starts(make_env) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ConfigError, match=r"unknown keyword argument\(s\) \['timeout'\].*'timeout_wait'"):
        gym.make("UnityIL-v0", scene="ball", timeout=20)
    with pytest.raises(ConfigError, match="only one of file_name"):
        UnityILEnv(scene="ball", launch=LaunchSettings(editor=True))
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    env = make_env(scene="ball", launch=LaunchSettings(worker_id=3, timeout_wait=30, no_graphics=False))  # the keyword (20 s) wins
    assert (env.session.worker_id, env.session.timeout_wait, env.session.launch.no_graphics) == (3, 20.0, False)
    assert env.reset(seed=0)[0].shape == (8,)


def test_max_message_bytes_reaches_the_session_and_is_checked_before_anything_starts(make_env) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    for bad in (0, -1, 2**31):
        with pytest.raises(ConfigError, match="max_message_bytes"):
            UnityILEnv(scene="ball", max_message_bytes=bad)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    env = make_env(scene="ball", max_message_bytes=64 * 1024)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8,)
    with pytest.raises(UnityProcessExitedError):  # 100 agents' observations do not fit in 1 KiB
        UnityILEnv(scene="ball", scene_kwargs={"num_agents": 100}, max_message_bytes=1024, timeout_wait=20)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before | {env.session.process_id}
