"""gym_unity's ``UnityEnv`` options on ``UnityIL-v0``: spaces, values, flattened actions and masks, errors."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import psutil
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.envs import FlattenBranched, FloatImages, UnityILEnv, VisualObservations, make_unity_env
from gym_unity_il.errors import ConfigError

CONFORMANCE = "conformance_scene:ConformanceScene"
GRID = {"camera_height": 20, "camera_width": 24}


@pytest.fixture
def make(assert_released):
    """``gym.make("UnityIL-v0", ...)``; after the test, closes every env and checks that nothing is left."""
    envs: list[gym.Env] = []

    def make_env(**kwargs) -> gym.Env:
        env = gym.make("UnityIL-v0", timeout_wait=20, **kwargs)
        envs.append(env)
        return env

    yield make_env
    ports = [env.unwrapped.session.port for env in envs]
    for env in envs:
        env.close()
    for port in ports:
        assert_released(port)


def check_wrapped_env(env: gym.Env, *, sb3: bool = False) -> None:
    """gymnasium's (and SB3's) env checker on a wrapped env. They warn that it is not the
    unwrapped env, and gymnasium 0.29 that SB3's checker looks for ``seed`` through it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version")
        warnings.filterwarnings("ignore", message=".*to get variables from other wrappers is deprecated")
        gymnasium_check_env(env, skip_render_check=True)
        if sb3:
            sb3_check_env(env, warn=False)


def option_wrappers(env: gym.Env) -> list[type]:
    """The wrappers of this module's kind between ``env`` and its unwrapped env, outermost first."""
    found = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, (VisualObservations, FloatImages, FlattenBranched)):
            found.append(type(env))
        env = env.env
    return found


def test_without_options_or_with_their_defaults_the_env_is_not_wrapped(make) -> None:
    env = make(scene="ball", use_visual=False, uint8_visual=True, multiagent=False, flatten_branched=False, allow_multiple_visual_obs=False)
    assert option_wrappers(env) == [] and type(env.env.env) is UnityILEnv  # OrderEnforcing, PassiveEnvChecker, the env
    assert gym.spec("UnityIL-v0").entry_point == "gym_unity_il.envs.gym_unity_options:make_unity_env"
    assert make_unity_env.metadata == UnityILEnv.metadata  # gym.make checks render_mode against it, as before


def test_use_visual_gives_the_first_camera_and_uint8_visual_false_the_same_image_as_float_hwc(make) -> None:
    plain = make(scene="grid", scene_kwargs=GRID)
    visual = make(scene="grid", scene_kwargs=GRID, use_visual=True)
    floats = make(scene="grid", scene_kwargs=GRID, use_visual=True, uint8_visual=False)
    assert visual.observation_space == spaces.Box(0, 255, (20, 24, 3), np.uint8)
    assert floats.observation_space == spaces.Box(0.0, 1.0, (20, 24, 3), np.float32)
    assert option_wrappers(floats) == [FloatImages, VisualObservations]
    assert floats.unwrapped.observation_space == plain.observation_space  # the env itself is unchanged
    check_wrapped_env(visual.env.env, sb3=True)
    check_wrapped_env(floats.env.env, sb3=True)
    envs = (plain, visual, floats)
    observations = [env.reset(seed=3)[0] for env in envs]
    for action in (1, 4, 2, 3, None):  # the same seed and actions: the same pictures
        full, image, float_image = observations
        assert image.dtype == np.uint8 and image.max() > image.min()
        np.testing.assert_array_equal(image, full["CameraSensor"])
        assert float_image.dtype == np.float32 and 0.0 <= float_image.min() and float_image.max() <= 1.0
        np.testing.assert_array_equal(float_image, image.astype(np.float32) / np.float32(255))
        if action is None:
            break
        steps = [env.step(action) for env in envs]
        observations = [obs for obs, *_ in steps]
        if steps[0][2] or steps[0][3]:  # the episode ended: start another
            observations = [env.reset()[0] for env in envs]


def test_uint8_visual_false_turns_the_images_of_every_sensor_to_float_and_leaves_the_rest(make) -> None:
    env = make(scene="grid", scene_kwargs={**GRID, "grayscale": True}, uint8_visual=False)
    assert env.observation_space == spaces.Dict(
        {"CameraSensor": spaces.Box(0.0, 1.0, (20, 24, 1), np.float32), "GoalSensor": spaces.Box(-np.inf, np.inf, (2,), np.float32)}
    )
    assert list(env.observation_space.spaces) == ["CameraSensor", "GoalSensor"]
    obs, _ = env.reset(seed=0)
    assert list(obs) == ["CameraSensor", "GoalSensor"] and obs["CameraSensor"].dtype == np.float32
    assert sorted(obs["GoalSensor"].tolist()) == [0.0, 1.0]
    check_wrapped_env(env.env.env)


@pytest.mark.parametrize("uint8_visual", [None, False])
def test_allow_multiple_visual_obs_gives_every_camera_as_a_tuple_in_sensor_order(make, uint8_visual: bool | None) -> None:
    options = {} if uint8_visual is None else {"uint8_visual": uint8_visual}
    env = make(scene=CONFORMANCE, scene_kwargs={"sensors": ["image", "gray", "vector"], "actions": "discrete"},
               use_visual=True, allow_multiple_visual_obs=True, **options)  # fmt: skip
    low, high, dtype = (0, 255, np.uint8) if uint8_visual is None else (0.0, 1.0, np.float32)
    assert env.observation_space == spaces.Tuple([spaces.Box(low, high, (8, 6, 3), dtype), spaces.Box(low, high, (8, 6, 1), dtype)])
    check_wrapped_env(env.env.env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(1)
    obs, *_ = env.step(1)  # the scene fills its images with 10 * step
    assert isinstance(obs, tuple) and len(obs) == 2
    expected = np.uint8(20) if uint8_visual is None else np.float32(20) / np.float32(255)
    for image, space in zip(obs, env.observation_space.spaces):
        assert image.shape == space.shape and image.dtype == dtype
        assert np.all(image == expected)


def test_use_visual_keeps_the_layout_of_image_format_chw_float(make) -> None:
    env = make(scene=CONFORMANCE, scene_kwargs={"sensors": ["gray", "vector"]}, image_format="chw_float", use_visual=True)
    assert env.observation_space == spaces.Box(0.0, 1.0, (1, 8, 6), np.float32)
    assert env.reset(seed=0)[0].shape == (1, 8, 6)


def test_flatten_branched_numbers_every_combination_last_branch_fastest_and_flattens_masks(make) -> None:
    env = make(scene=CONFORMANCE, scene_kwargs={"sensors": ["vector"], "actions": "multi_discrete"}, flatten_branched=True)
    flat = env.get_wrapper_attr("table")  # the wrapper's attributes, through gym.make's wrappers
    wrapper = env.env.env
    assert isinstance(wrapper, FlattenBranched) and env.unwrapped.action_space == spaces.MultiDiscrete([3, 2])
    assert env.action_space == spaces.Discrete(6)
    np.testing.assert_array_equal(flat, [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]])
    for index in range(6):
        assert wrapper.reverse_action(wrapper.action(index)) == index
    with pytest.raises(ValueError, match=r"outside Discrete\(6\)"):
        wrapper.action(6)

    # The scene forbids value 0 of the first branch: combinations 0 and 1.
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["action_mask"], [False, False, True, True, True, True])
    np.testing.assert_array_equal(wrapper.action_masks(), info["action_mask"])
    np.testing.assert_array_equal(wrapper.flatten_mask([True, True, True, True, False]), [True, False, True, False, True, False])
    obs, _, _, _, info = env.step(5)
    assert obs.tolist() == [1.0, 2.0, 1.0, 0.0]  # the scene received branch values [2, 1]
    np.testing.assert_array_equal(info["action_mask"], [False, False, True, True, True, True])
    obs, *_ = env.step(np.int64(2))
    assert obs.tolist() == [2.0, 1.0, 0.0, 0.0]

    check_wrapped_env(wrapper, sb3=True)
    remade = gym.make(env.spec)  # the spec records the options: the same wrappers, applied once
    try:
        assert option_wrappers(remade) == [FlattenBranched] and remade.action_space == spaces.Discrete(6)
    finally:
        remade.close()


def test_sb3_contrib_reads_the_flattened_mask(make) -> None:
    get_action_masks = pytest.importorskip("sb3_contrib.common.maskable.utils").get_action_masks
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = make(scene=CONFORMANCE, scene_kwargs={"sensors": ["vector"], "actions": "multi_discrete"}, flatten_branched=True)
    venv = DummyVecEnv([lambda: env.env.env])
    venv.reset()
    np.testing.assert_array_equal(get_action_masks(venv), [[False, False, True, True, True, True]])


def test_flatten_branched_leaves_a_single_branch_as_it_is(make) -> None:
    env = make(scene="grid", scene_kwargs=GRID, flatten_branched=True)
    assert env.action_space == env.unwrapped.action_space == spaces.Discrete(5)
    np.testing.assert_array_equal(env.get_wrapper_attr("table"), np.arange(5)[:, None])
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks())
    _, _, _, _, info = env.step(np.int64(0))
    np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks())
    check_wrapped_env(env.env.env)


@pytest.mark.parametrize("protocol", ["0.10", "0.11"])
def test_the_options_act_the_same_on_players_of_the_gym_unity_era(make, protocol: str) -> None:
    scene_kwargs = {"protocol": protocol, "sensors": ["image", "gray", "vector"], "actions": "multi_discrete"}
    env = make(scene=CONFORMANCE, scene_kwargs=scene_kwargs,
               use_visual=True, allow_multiple_visual_obs=True, uint8_visual=False, flatten_branched=True)  # fmt: skip
    assert env.observation_space == spaces.Tuple([spaces.Box(0.0, 1.0, (8, 6, 3), np.float32), spaces.Box(0.0, 1.0, (8, 6, 1), np.float32)])
    assert env.action_space == spaces.Discrete(6)
    check_wrapped_env(env.env.env)
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["action_mask"], [False, False, True, True, True, True])
    env.step(5)
    obs, *_ = env.step(5)
    assert all(np.all(image == np.float32(20) / np.float32(255)) for image in obs)


def test_contradictory_options_are_refused_before_unity_starts() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ConfigError, match=r"make_unity_vec_env\(\.\.\.\) with the same"):
        gym.make("UnityIL-v0", scene="ball", multiagent=True)
    with pytest.raises(ConfigError, match="allow_multiple_visual_obs=True needs use_visual=True"):
        gym.make("UnityIL-v0", scene="grid", allow_multiple_visual_obs=True)
    for uint8_visual in (True, False):
        with pytest.raises(ConfigError, match="image_format='chw_float' gives float32 CHW"):
            gym.make("UnityIL-v0", scene="grid", image_format="chw_float", use_visual=True, uint8_visual=uint8_visual)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


@pytest.mark.parametrize(
    ("scene", "options", "message"),
    [
        ("ball", {"use_visual": True}, r"needs a camera .*: 3DBall\?team=0: observations \[VectorSensor_size8\[8\]\]"),
        ("ball", {"flatten_branched": True}, r"needs discrete actions .* continuous=2 discrete=\[\]"),
        ("hybrid", {"flatten_branched": True}, r"needs discrete actions .* continuous=2 discrete=\[2\]"),
    ],
)
def test_options_the_behavior_cannot_take_name_its_spec_and_leave_nothing_running(scene: str, options: dict, message: str) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ConfigError, match=message):
        gym.make("UnityIL-v0", scene=scene, timeout_wait=20, **options)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert not left
