"""Everything above the link on built-in scenes speaking ML-Agents 0.10 and 0.11 (``scene_kwargs={"protocol": ...}``):
the env, the VecEnv, the PettingZoo env, recordings, faults; the same scenes in the modern protocol as the reference."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import read_demo, record_episodes
from gym_unity_il.envs import UnityILEnv, make_unity_vec_env
from gym_unity_il.errors import ConfigError, UnityProcessExitedError
from gym_unity_il.scenes import expert_policy
from gym_unity_il.spec import CameraResolution

ERAS = ["0.10", "0.11"]


def _episode(env: gym.Env, seed: int, steps: int) -> tuple[list[np.ndarray], list[float], list[np.ndarray], bool, bool, dict]:
    """Observations, rewards and the terminal observation of one episode of the ball expert."""
    expert = expert_policy("ball")
    obs, _ = env.reset(seed=seed)
    seen, rewards = [obs], []
    for _ in range(steps):
        action, _ = expert.predict(obs[None], deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action[0])
        rewards.append(reward)
        if terminated or truncated:
            return seen, rewards, obs, terminated, truncated, info
        seen.append(obs)
    raise AssertionError("the episode did not end")


@pytest.mark.parametrize("era", ERAS)
def test_the_env_plays_like_the_modern_scene_and_ends_episodes_as_the_era_does(era: str) -> None:
    modern = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"max_steps": 20})
    legacy = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"protocol": era, "max_steps": 20})
    try:
        assert legacy.unwrapped.session.unity_info.communication_version == {"0.10": "API-10", "0.11": "API-11"}[era]
        assert legacy.observation_space == modern.observation_space and legacy.action_space == modern.action_space
        a_obs, a_rew, a_last, a_term, a_trunc, _ = _episode(modern, 5, 30)
        b_obs, b_rew, b_last, b_term, b_trunc, _ = _episode(legacy, 5, 30)
        np.testing.assert_array_equal(np.stack(a_obs), np.stack(b_obs))  # same seed, same episode, step for step
        np.testing.assert_allclose(a_rew, b_rew)
        assert (a_term, a_trunc) == (b_term, b_trunc) == (False, True)
        # 0.x never sends an episode's last observation: the env returns the next episode's first
        # one (the era's gym_unity did the same), and a reset() starts afresh as everywhere.
        assert not np.array_equal(b_last, a_last)
        first, _ = legacy.reset(seed=5)
        np.testing.assert_array_equal(first, b_obs[0])
    finally:
        modern.close()
        legacy.close()


@pytest.mark.parametrize("era", ERAS)
def test_images_are_sized_by_camera_resolution_in_colour_and_gray(era: str) -> None:
    for gray in (False, True):
        env = UnityILEnv(scene="grid", scene_kwargs={"protocol": era, "camera_height": 36, "camera_width": 40, "grayscale": gray})
        try:
            spec = env.behavior_spec
            assert [o.camera_resolution for o in spec.observation_specs if o.is_visual] == [CameraResolution(36, 40, gray)]
            obs, _ = env.reset(seed=0)
            assert spec.observation_keys[0] == "obs_0"  # 0.x sensors have no names: keyed as the .demo reader keys them
            camera = obs["obs_0"] if isinstance(obs, dict) else obs
            assert camera.shape == (36, 40, 1 if gray else 3) and camera.dtype == np.uint8 and camera.max() > camera.min()
            assert env.observation_space.contains(obs)
        finally:
            env.close()


@pytest.mark.parametrize("era", ERAS)
def test_the_vec_env_over_agents_and_processes_gives_the_last_observation_seen_as_terminal(era: str) -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"protocol": era, "num_agents": 3, "max_steps": 10}, num_processes=2, seed=1)
    try:
        assert venv.num_envs == 6
        obs = venv.reset()
        rng = np.random.default_rng(0)
        for t in range(10):
            previous = obs
            obs, _, dones, infos = venv.step(rng.uniform(-1, 1, (6, 2)).astype(np.float32))
            if dones.any():
                break
        assert t == 9 and dones.all()  # max_steps 10: every agent's episode is cut at its tenth action
        for i, info in enumerate(infos):
            assert info["TimeLimit.truncated"]
            np.testing.assert_array_equal(info["terminal_observation"], previous[i])
            assert not np.array_equal(obs[i], previous[i])  # the new episode's first observation
    finally:
        venv.close()


def test_a_player_brain_is_observed_never_driven() -> None:
    layout = {"protocol": "0.10", "teacher_student": True, "num_agents": 2}
    env = UnityILEnv(scene="ball", scene_kwargs=layout)
    try:
        assert env.behavior_spec.name == "Student"  # the first brain Python controls
        assert not env.session.takes_actions("Teacher")
    finally:
        env.close()
    with pytest.raises(ConfigError, match="decided by the build itself.*online BC"):
        UnityILEnv(scene="ball", scene_kwargs=layout, behavior_name="Teacher")
    pettingzoo = pytest.importorskip("pettingzoo")
    del pettingzoo
    from gym_unity_il.envs import UnityParallelEnv

    for era, agents in (("0.10", ["Student_1", "Student_2"]), ("0.11", ["Teacher_0", "Student_1", "Student_2"])):
        env = UnityParallelEnv(scene="ball", scene_kwargs={**layout, "protocol": era})
        try:
            env.reset(seed=0)
            assert sorted(env.agents) == sorted(agents)  # 0.11 has no Player brains: both are trained
            obs, rewards, terminated, truncated, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
            assert sorted(obs) == sorted(agents)
        finally:
            env.close()


@pytest.mark.parametrize("era", ERAS)
def test_a_recording_reads_back_what_the_env_returned(tmp_path: Path, era: str) -> None:
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"protocol": era, "max_steps": 15})
    expert = expert_policy("ball")
    path, returns = record_episodes(env, lambda obs: expert.predict(obs[None], deterministic=True)[0][0], tmp_path / "ball.demo", episodes=2)
    demo = read_demo(path)
    assert demo.done.sum() == 2 and len(demo) == 2 * 16 and returns == pytest.approx([1.5, 1.5])
    again = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"protocol": era, "max_steps": 15})
    try:
        for episode in range(2):
            seen, rewards, last, _, truncated, _ = _episode(again, episode, 20)
            rows = slice(16 * episode, 16 * (episode + 1))
            np.testing.assert_array_equal(demo.observations[0][rows], np.stack([*seen, last]))
            np.testing.assert_allclose(demo.rewards[rows][1:], rewards)
            assert truncated and demo.max_step_reached[rows][-1]
    finally:
        again.close()


@pytest.mark.parametrize("era", ERAS)
def test_a_crash_is_reported_and_leaves_nothing_behind(tmp_path: Path, era: str, assert_released) -> None:
    env = UnityILEnv(scene="ball", scene_kwargs={"protocol": era}, additional_args=["--fault", "crash-at-step:3"], log_folder=tmp_path)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.step(env.action_space.sample())
    with pytest.raises(UnityProcessExitedError, match="exited with code 3"):
        env.step(env.action_space.sample())
    assert_released(env.session.port)


def test_a_hang_is_a_timeout(tmp_path: Path, assert_released) -> None:
    from gym_unity_il.errors import UnityTimeoutError

    env = UnityILEnv(scene="ball", scene_kwargs={"protocol": "0.10"}, additional_args=["--fault", "hang-at-step:2"], timeout_wait=60)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.session.timeout_wait = 2  # short only for the hanging step: a busy machine may take longer to start
    with pytest.raises(UnityTimeoutError):
        env.step(env.action_space.sample())
    assert_released(env.session.port)


@pytest.mark.parametrize("era", ERAS)
def test_reset_parameters_arrive_and_unknown_ones_are_refused(era: str) -> None:
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"protocol": era})
    try:
        obs, _ = env.reset(seed=0, options={"env_parameters": {"gravity": 0.0}})
        for _ in range(5):
            obs, *_ = env.step(np.ones(2, np.float32))
        assert np.all(obs[5:8] == 0.0)  # no gravity: the tilted plate never moves the ball
        obs, _ = env.reset(seed=0, options={"env_parameters": {"gravity": 9.81}})
        for _ in range(5):
            obs, *_ = env.step(np.ones(2, np.float32))
        assert np.abs(obs[5:8]).max() > 0.01
        with pytest.raises(ConfigError, match=r"'wind'.*announces"):
            env.reset(options={"env_parameters": {"wind": 1.0}})
        obs, _ = env.reset(seed=0)  # nothing was lost: the env goes on
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_a_crashed_0_10_process_of_the_vec_env_is_restarted(tmp_path: Path) -> None:
    venv = make_unity_vec_env(scene="ball", scene_kwargs={"protocol": "0.10", "num_agents": 2}, num_processes=2, timeout_wait=20, max_restarts=1,
                              additional_args=["--fault", "crash-at-step:2", "--fault", f"once:{tmp_path / 'crashed'}"])  # fmt: skip
    try:
        first = list(venv.process_ids)
        venv.reset()
        venv.step(np.zeros((4, 2), np.float32))
        _, _, done, infos = venv.step(np.zeros((4, 2), np.float32))
        restarted = [i for i, info in enumerate(infos) if info.get("unity_restarted")]
        assert len(restarted) == 2 and done[restarted].all() and sum(venv.restart_counts) == 1
        assert venv.process_ids != first
        _, _, done, _ = venv.step(np.zeros((4, 2), np.float32))
        assert not done.any()
    finally:
        venv.close()


def test_the_grid_expert_plays_a_0_10_grid_from_its_unnamed_sensors(tmp_path: Path) -> None:
    env = gym.make("UnityIL-v0", scene="grid", scene_kwargs={"protocol": "0.10", "camera_height": 36, "camera_width": 36})
    expert = expert_policy("grid")
    path, returns = record_episodes(env, lambda obs: expert.predict(obs, deterministic=True)[0], tmp_path / "grid.demo", episodes=3)
    assert min(returns) > 0.9  # the expert reaches the goal: it read the camera and the goal by their order
    demo = read_demo(path)
    assert demo.behavior_spec.observation_keys == ("obs_0", "obs_1") and demo.observations[0].shape[1:] == (36, 36, 3)


@pytest.mark.parametrize("era", ERAS)
def test_two_cameras_stacked_vectors_and_masked_branches(era: str) -> None:
    """A colour and a gray camera, a vector stacked 3 deep, two discrete branches with a mask."""
    kwargs = {"protocol": era, "stacked_vectors": 3, "sensors": ["image", "gray", "vector"], "actions": "multi_discrete", "length": 6}
    env = gym.make("UnityIL-v0", scene="conformance_scene:ConformanceScene", scene_kwargs=kwargs)
    try:
        spec = env.unwrapped.behavior_spec
        assert [o.camera_resolution for o in spec.observation_specs[:2]] == [CameraResolution(8, 6, False), CameraResolution(8, 6, True)]
        assert env.observation_space["obs_0"].shape == (8, 6, 3) and env.observation_space["obs_1"].shape == (8, 6, 1)
        assert env.observation_space["obs_2"].shape == (12,) and env.action_space.nvec.tolist() == [3, 2]
        obs, info = env.reset(seed=0)
        assert info["action_mask"].tolist() == [False, True, True, True, True]  # the scene forbids the first option
        frames = [obs["obs_2"]]
        for action in ([1, 1], [2, 0]):
            obs, *_, info = env.step(np.array(action))
            frames.append(obs["obs_2"])
        np.testing.assert_array_equal(obs["obs_2"].reshape(3, 4)[:, 0], [0, 1, 2])  # the scene's steps, oldest frame first
        np.testing.assert_array_equal(obs["obs_2"].reshape(3, 4)[-1, 1:3], [2, 0])  # the last action reached the scene
        np.testing.assert_array_equal(frames[0].reshape(3, 4)[:2], 0)  # before the first frame: zeros
        assert obs["obs_0"].max() == 20 and obs["obs_1"].max() == 20  # both cameras at step 2
        assert env.observation_space.contains(obs)
    finally:
        env.close()
