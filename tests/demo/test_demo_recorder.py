"""DemoRecorder on plain gymnasium envs: what it writes, teacher controls, and behavioral
cloning from a recorded scripted policy."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from demo_helpers import image, spec_of, vector
from gym_unity_il.demo import DemoRecorder, behavior_spec_from_spaces, demo_to_trajectories, demo_to_transitions, read_demo
from gym_unity_il.errors import SpecMismatchError


class RoverEnv(gym.Env):
    """Dict observations (a uint8 camera and a vector), two discrete branches, masks in info;
    episodes end by the task after ``length`` steps."""

    observation_space = spaces.Dict(
        OrderedDict(camera=spaces.Box(0, 255, (6, 5, 3), np.uint8), state=spaces.Box(-np.inf, np.inf, (2,), np.float32))
    )
    action_space = spaces.MultiDiscrete([3, 2])

    def __init__(self, length: int = 4) -> None:
        self.length = length
        self.t = 0

    def _obs(self) -> OrderedDict:
        camera = np.full((6, 5, 3), self.t * 10, np.uint8)
        return OrderedDict(camera=camera, state=np.array([self.t, -self.t], np.float32))

    def _info(self) -> dict[str, Any]:
        return {"action_mask": np.array([True, True, self.t % 2 == 0, True, True])}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[OrderedDict, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[OrderedDict, float, bool, bool, dict]:
        self.t += 1
        return self._obs(), float(action[0]), self.t >= self.length, False, self._info()


class UnityLikeEnv(gym.Env):
    """An env that announces its own behavior spec and image layout, like UnityILEnv."""

    def __init__(self) -> None:
        self.behavior_spec = spec_of(image(4, 3, 3, chw=True), vector(2), continuous=2, name="Like?team=0")
        self.image_format = "chw_float"
        self.observation_space = self.behavior_spec.observation_space("chw_float")
        self.action_space = self.behavior_spec.action_space()
        self.rng = np.random.default_rng(0)

    def _obs(self) -> OrderedDict:
        keys = self.behavior_spec.observation_keys
        pixels = self.rng.integers(0, 256, (3, 4, 3), dtype=np.uint8).astype(np.float32) / np.float32(255)
        return OrderedDict(zip(keys, (pixels, self.rng.normal(size=2).astype(np.float32))))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[OrderedDict, dict]:
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[OrderedDict, float, bool, bool, dict]:
        return self._obs(), 0.5, False, False, {}


def _cartpole_expert(obs: np.ndarray) -> int:
    return int(3 * obs[2] + obs[3] > 0)


@pytest.mark.imitation
def test_cartpole_records_unity_timing(tmp_path: Path) -> None:
    path = tmp_path / "cartpole.demo"
    env = DemoRecorder(gym.make("CartPole-v1", max_episode_steps=30), path)
    seen, taken = [], []
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        seen.append(obs)
        done = False
        while not done:
            action = _cartpole_expert(obs) if episode == 0 else 0  # the second episode falls over
            obs, _, terminated, truncated, _ = env.step(action)
            seen.append(obs)
            taken.append(action)
            done = terminated or truncated
    env.close()
    demo = read_demo(path)
    assert demo.behavior_spec.action_spec.discrete_branches == (2,)
    assert demo.behavior_spec.observation_specs[0].shape == (4,)
    assert np.array_equal(demo.observations[0], np.stack(seen))
    assert len(demo) == len(taken) + 2 and demo.meta.number_episodes == 3
    first, second = demo_to_trajectories(demo)
    assert (len(first), first.terminal) == (30, False)  # cut by the time limit
    assert second.terminal and len(second) == len(taken) - 30
    assert first.acts.tolist() + second.acts.tolist() == taken
    assert demo.stored_discrete_actions[0, 0] == 0 and demo.max_step_reached[30] and demo.done[30]


@pytest.mark.imitation
def test_pendulum_continuous_actions_are_kept_raw(tmp_path: Path) -> None:
    path = tmp_path / "pendulum.demo"
    env = DemoRecorder(gym.make("Pendulum-v1", max_episode_steps=5), path)
    env.reset(seed=0)
    actions = [np.array([1.5], np.float32), np.array([-2.0], np.float32), np.array([0.25], np.float32)]
    for a in actions:
        env.step(a)
    env.close()
    (traj,) = demo_to_trajectories(path)
    assert np.array_equal(traj.acts, np.stack(actions)) and not traj.terminal


@pytest.mark.imitation
def test_dict_env_with_masks(tmp_path: Path) -> None:
    path = tmp_path / "rover.demo"
    env = DemoRecorder(RoverEnv(), path)
    env.reset(seed=1)
    for a in ([2, 1], [0, 0], [1, 1], [2, 0]):
        env.step(np.array(a))
    env.close()
    demo = read_demo(path)
    assert demo.behavior_spec.observation_keys == ("camera", "state")
    assert demo.behavior_spec.action_spec.discrete_branches == (3, 2)
    assert demo.action_masks[:, 2].tolist() == [True, False, True, False, True]
    (traj,) = demo_to_trajectories(path)
    assert traj.terminal and traj.acts.tolist() == [[2, 1], [0, 0], [1, 1], [2, 0]]
    assert traj.obs.get("camera")[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40]
    assert traj.rews.tolist() == [2.0, 0.0, 1.0, 2.0]


def test_spec_and_layout_from_the_env(tmp_path: Path) -> None:
    env = UnityLikeEnv()
    path = tmp_path / "like.demo"
    recorder = DemoRecorder(env, path)
    first, _ = recorder.reset()
    recorder.step(np.array([0.1, -0.2], np.float32))
    recorder.close()
    demo = read_demo(path, image_format="chw_float")
    assert demo.behavior_spec == env.behavior_spec
    assert np.array_equal(demo.observations[0][0], first["CameraSensor"])
    with pytest.raises(SpecMismatchError, match="the env returns"):
        DemoRecorder(env, tmp_path / "bad.demo", behavior_spec=spec_of(vector(3), continuous=2))


def test_spaces_a_demo_cannot_hold() -> None:
    with pytest.raises(ValueError, match="FlattenObservation"):
        behavior_spec_from_spaces(spaces.Discrete(4), spaces.Discrete(2))
    with pytest.raises(ValueError, match="FlattenAction"):
        behavior_spec_from_spaces(spaces.Box(-1, 1, (3,)), spaces.Discrete(3, start=1))
    hybrid = behavior_spec_from_spaces(
        spaces.Box(-1, 1, (3,)), spaces.Dict(continuous=spaces.Box(-1, 1, (2,)), discrete=spaces.MultiDiscrete([3, 4]))
    )
    assert (hybrid.action_spec.continuous_size, hybrid.action_spec.discrete_branches) == (2, (3, 4))


@pytest.mark.imitation
def test_pause_resume_never_joins_across_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "pause.demo"
    env = DemoRecorder(RoverEnv(length=10), path)
    env.reset()
    env.step(np.array([1, 0]))
    env.step(np.array([2, 0]))  # t = 2
    env.recording = False
    env.step(np.array([0, 0]))  # t = 3, not recorded
    env.step(np.array([0, 0]))  # t = 4, not recorded
    env.recording = True
    for _ in range(3):
        env.step(np.array([1, 1]))  # t = 5, 6, 7 recorded
    env.close()
    demo = read_demo(path)
    assert demo.observations[1][:, 0].tolist() == [0, 1, 2, 5, 6, 7]
    assert demo.done.tolist() == [False, False, True, False, False, False]
    assert demo.max_step_reached[2]  # the pause cut the episode: an interrupted end
    before, after = demo_to_trajectories(demo)
    assert (len(before), before.terminal, before.acts[:, 0].tolist()) == (2, False, [1, 2])
    assert (len(after), after.obs.get("state")[:, 0].tolist()) == (2, [5, 6, 7])


@pytest.mark.imitation
def test_mark_and_discard(tmp_path: Path) -> None:
    path = tmp_path / "discard.demo"
    env = DemoRecorder(RoverEnv(length=10), path)
    env.reset()
    env.step(np.array([1, 0]))
    env.mark()
    for _ in range(3):
        env.step(np.array([2, 1]))  # a mistake the teacher wants gone
    assert env.number_steps == 5
    assert env.discard_since_mark() == 3
    assert env.discard_since_mark() == 0
    env.step(np.array([0, 1]))  # t = 5: a new episode part from the env's current state
    env.step(np.array([1, 1]))
    env.reset()  # mid-episode reset: the running part is interrupted
    env.step(np.array([2, 0]))
    env.close()
    demo = read_demo(path)
    assert demo.observations[1][:, 0].tolist() == [0, 1, 5, 6, 0, 1]
    assert demo.done.tolist() == [False, True, False, True, False, False]
    assert demo.max_step_reached.tolist() == [False, True, False, True, False, False]
    trajectories = demo_to_trajectories(demo)
    assert [t.acts.tolist() for t in trajectories] == [[[1, 0]], [[1, 1]], [[2, 0]]]
    assert not any(t.terminal for t in trajectories)


@pytest.mark.imitation
def test_bc_learns_from_a_recorded_scripted_policy(tmp_path: Path) -> None:
    """A scripted CartPole controller, acting with 30 % random actions so the demonstrations
    cover off-balance states, is recorded; BC trained on the file balances like the script."""
    from imitation.algorithms import bc
    from imitation.util import logger

    path = tmp_path / "teacher.demo"
    env = DemoRecorder(gym.make("CartPole-v1"), path)
    rng = np.random.default_rng(0)
    for episode in range(5):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            action = _cartpole_expert(obs) if rng.random() > 0.3 else int(rng.integers(2))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()

    def evaluate(policy, seeds: range) -> float:  # type: ignore[no-untyped-def]
        returns = []
        eval_env = gym.make("CartPole-v1")
        for seed in seeds:
            obs, _ = eval_env.reset(seed=seed)
            done, total = False, 0.0
            while not done:
                obs, reward, terminated, truncated, _ = eval_env.step(policy(obs))
                total += reward
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns))

    script_return = evaluate(_cartpole_expert, range(100, 103))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: one thread is fastest on a busy machine
    try:
        torch.manual_seed(0)
        plain = gym.make("CartPole-v1")
        trainer = bc.BC(
            observation_space=plain.observation_space,
            action_space=plain.action_space,
            demonstrations=demo_to_transitions(path),
            rng=np.random.default_rng(0),
            batch_size=64,
            optimizer_kwargs={"lr": 3e-3},
            custom_logger=logger.configure(format_strs=[]),
        )
        trainer.train(n_batches=100, progress_bar=False)
        bc_return = evaluate(lambda o: int(trainer.policy.predict(o, deterministic=True)[0]), range(100, 103))
    finally:
        torch.set_num_threads(threads)
    assert script_return == 500.0
    assert bc_return >= 0.9 * script_return


def test_recording_the_unity_env_on_a_built_in_scene(tmp_path: Path) -> None:
    """UnityIL-v0 announces its spec and layout; the file reads back exactly what it returned."""
    import gym_unity_il  # noqa: F401  (registers UnityIL-v0)

    path = tmp_path / "grid.demo"
    env = DemoRecorder(gym.make("UnityIL-v0", scene="grid"), path)
    try:
        allowed = np.ones(5, bool)
        obs, info = env.reset(seed=0)
        seen, masks = [obs], [info.get("action_mask", allowed)]
        for _ in range(12):
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            seen.append(obs)
            masks.append(info.get("action_mask", allowed))
            if terminated or truncated:
                obs, info = env.reset()
                seen.append(obs)
                masks.append(info.get("action_mask", allowed))
    finally:
        env.close()
    demo = read_demo(path)
    spec = env.unwrapped.behavior_spec
    assert demo.behavior_spec == spec and len(demo) == len(seen)
    for j, key in enumerate(spec.observation_keys):
        assert np.array_equal(demo.observations[j], np.stack([o[key] for o in seen]))
    assert np.array_equal(demo.action_masks, np.stack(masks))
