"""Every observation and action type through UnityIL-v0: spaces, checkers, values on the wire."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from gym_unity_il.envs.unity_env import UnityILEnv

SCENE = "conformance_scene:ConformanceScene"

CASES = [
    (["vector"], "continuous", "hwc_uint8"),
    (["vector"], "discrete", "hwc_uint8"),
    (["vector"], "multi_discrete", "hwc_uint8"),
    (["vector"], "hybrid", "hwc_uint8"),
    (["image"], "discrete", "hwc_uint8"),
    (["gray"], "continuous", "chw_float"),
    (["buffer", "vector"], "multi_discrete", "hwc_uint8"),
    (["image", "gray", "vector"], "hybrid", "chw_float"),
]


@pytest.fixture
def make_env(assert_released):
    envs: list[UnityILEnv] = []

    def make(sensors: list[str], actions: str, image_format: str, length: int = 4) -> UnityILEnv:
        env = UnityILEnv(scene=SCENE, scene_kwargs={"sensors": sensors, "actions": actions, "length": length},
                         image_format=image_format, timeout_wait=20)  # fmt: skip
        envs.append(env)
        return env

    yield make
    for env in envs:
        port = env.session.port
        env.close()
        assert_released(port)


def _expected_space(sensor: str, image_format: str) -> spaces.Box:
    if sensor == "vector":
        return spaces.Box(-np.inf, np.inf, (4,), np.float32)
    if sensor == "buffer":
        return spaces.Box(-np.inf, np.inf, (3, 2), np.float32)
    channels = 3 if sensor == "image" else 1
    if image_format == "hwc_uint8":
        return spaces.Box(0, 255, (8, 6, channels), np.uint8)
    return spaces.Box(0.0, 1.0, (channels, 8, 6), np.float32)


@pytest.mark.parametrize(("sensors", "actions", "image_format"), CASES, ids=lambda v: "+".join(v) if isinstance(v, list) else v)
def test_spaces_checkers_and_values(make_env, sensors: list[str], actions: str, image_format: str) -> None:
    env = make_env(sensors, actions, image_format)
    expected = {s: _expected_space(s, image_format) for s in sensors}
    if len(sensors) == 1:
        assert env.observation_space == expected[sensors[0]]
    else:
        assert isinstance(env.observation_space, spaces.Dict)
        assert [env.observation_space[k] for k in env.behavior_spec.observation_keys] == [expected[s] for s in sensors]
    action_space = {
        "continuous": spaces.Box(-1.0, 1.0, (2,), np.float32),
        "discrete": spaces.Discrete(5),
        "multi_discrete": spaces.MultiDiscrete([3, 2]),
        "hybrid": spaces.Dict({"continuous": spaces.Box(-1.0, 1.0, (2,), np.float32), "discrete": spaces.MultiDiscrete([3])}),
    }[actions]
    assert env.action_space == action_space

    gymnasium_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)

    obs, info = env.reset(seed=1)
    action = env.action_space.sample()
    obs, reward, terminated, truncated, info = env.step(action)
    assert env.observation_space.contains(obs) and reward == 1.0
    by_sensor = dict(zip(sensors, obs.values())) if isinstance(obs, dict) else {sensors[0]: obs}
    if "vector" in by_sensor:
        sent = [action] if actions == "discrete" else (
            np.concatenate([action["continuous"], action["discrete"]]) if actions == "hybrid" else action)  # fmt: skip
        np.testing.assert_allclose(by_sensor["vector"][1 : 1 + np.size(sent)], np.ravel(sent), rtol=1e-6)
        assert by_sensor["vector"][0] == 1.0
    for name in ("image", "gray"):
        if name in by_sensor:
            value = by_sensor[name].flat[0]
            assert value == (10 if image_format == "hwc_uint8" else np.float32(10 / 255))
    if actions != "continuous":
        assert info["action_mask"][0] == False  # noqa: E712  (masked by the scene)
        assert info["action_mask"][1:].all()


@pytest.mark.parametrize(("length", "terminated", "truncated"), [(2, True, False), (3, False, True)])
def test_episode_end_flags(make_env, length: int, terminated: bool, truncated: bool) -> None:
    env = make_env(["vector"], "continuous", "hwc_uint8", length=length)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[2:4] for _ in range(length)]
    assert flags[:-1] == [(False, False)] * (length - 1)
    assert flags[-1] == (terminated, truncated)
