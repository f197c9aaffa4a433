"""Every built-in scene: registry, specs against arrays, seeding, and the scripted experts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.errors import ConfigError
from gym_unity_il.link.launcher import environment_with_import_path
from gym_unity_il.scenes import DEFAULT_SCENE, SCENES, expert_policy, make_scene
from gym_unity_il.scenes.academy import SEED_PARAMETER
from gym_unity_il.scenes.evaluate import RandomPolicy, env_observation, evaluate_in_process
from gym_unity_il.scenes.registry import scene_command

CONFIGS = [
    ("ball", {"num_agents": 3}),
    ("ball", {"num_agents": 2, "teacher_student": True, "decision_period": 5}),
    ("grid", {"num_agents": 3}),
    ("grid", {"num_agents": 2, "camera_height": 30, "camera_width": 45, "grayscale": True}),
    ("hallway", {"num_agents": 3}),
    ("hallway", {"num_agents": 2, "camera": True, "camera_height": 9, "camera_width": 14, "grayscale": True, "decision_period": 3}),
    ("hybrid", {"num_agents": 3}),
]


def drive(scene, steps: int, seed: int = 0) -> list[dict]:
    """Plays uniformly random actions for a number of messages; returns every message."""
    rng = np.random.default_rng(seed)
    messages = [scene.observe()]
    for _ in range(steps):
        actions = {}
        for name, batch in messages[-1].items():
            spec = scene.behavior_specs()[name].action_spec
            n = int((~batch.done).sum())
            continuous = rng.uniform(-1, 1, (n, spec.continuous_size)).astype(np.float32)
            discrete = np.stack([rng.integers(0, b, n) for b in spec.discrete_branches], axis=1) if spec.discrete_branches else np.zeros((n, 0))
            actions[name] = (continuous, discrete.astype(np.int32))
        scene.act(actions)
        messages.append(scene.observe())
    return messages


def test_registry_and_errors():
    assert DEFAULT_SCENE in SCENES and set(SCENES) == {"ball", "grid", "hallway", "hybrid"}
    assert all(make_scene(name).name == name for name in SCENES)
    with pytest.raises(ConfigError, match="unknown built-in scene 'cube'"):
        make_scene("cube")
    with pytest.raises(ConfigError, match=r"does not take \['agents'\]"):
        make_scene("ball", agents=3)
    with pytest.raises(ConfigError, match="num_agents must be an integer >= 1"):
        make_scene("hybrid", num_agents=0)
    with pytest.raises(ConfigError, match="unknown built-in scene"):
        expert_policy("cube")


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_observation_specs_agree_with_the_arrays(name, kwargs):
    scene = make_scene(name, max_steps=8, seed=1, **kwargs)
    specs = scene.behavior_specs()
    messages = drive(scene, 12)
    assert any(batch.done.any() for m in messages for batch in m.values())  # terminal records are checked too
    for message in messages:
        assert set(message) == set(specs)
        for behavior, batch in message.items():
            spec = specs[behavior]
            n = len(batch)
            assert batch.agent_ids.dtype == np.int32 and batch.rewards.dtype == np.float32
            assert batch.done.shape == batch.max_step_reached.shape == (n,)
            assert len(batch.observations) == len(spec.observation_specs)
            for obs_spec, array in zip(spec.observation_specs, batch.observations):
                assert array.shape == (n, *obs_spec.shape)
                assert array.dtype == (np.uint8 if obs_spec.is_visual else np.float32)
            assert (batch.action_mask is not None) == (name in ("grid", "hallway"))  # only these mask actions
            if batch.action_mask is not None:
                assert batch.action_mask.shape == (n, sum(spec.action_spec.discrete_branches))
            for image_format in ("hwc_uint8", "chw_float"):
                space = spec.observation_space(image_format)
                obs = env_observation(spec, batch.observations, image_format)
                for row in range(n):
                    one = {k: v[row] for k, v in obs.items()} if isinstance(obs, dict) else obs[row]
                    assert space.contains(one)


@pytest.mark.parametrize("name", sorted(SCENES))
def test_reseeding_reproduces_an_episode(name):
    scene = make_scene(name, num_agents=2, seed=0)
    runs = []
    for seed in (7, 7, 8):
        scene.set_parameter(SEED_PARAMETER, float(seed))  # side-channel values arrive as floats
        scene.reset()
        runs.append(drive(scene, 15, seed=0))
    fresh = drive(make_scene(name, num_agents=2, seed=7), 15, seed=0)

    def flat(messages):
        return [(b, [o.copy() for o in batch.observations], batch.rewards.copy(), batch.done.copy()) for m in messages for b, batch in m.items()]

    def same(a, b) -> bool:
        return all(
            x[0] == y[0] and all(np.array_equal(p, q) for p, q in zip(x[1], y[1])) and np.array_equal(x[2], y[2]) and np.array_equal(x[3], y[3])
            for x, y in zip(flat(a), flat(b))
        ) and len(a) == len(b)

    assert same(runs[0], runs[1])
    assert same(runs[0], fresh)  # the constructor's seed is the same as a re-seeded reset
    assert not same(runs[0], runs[2])
    scene.reset()  # without a new seed the generator goes on: another episode
    assert not same(runs[2], drive(scene, 15, seed=0))


@pytest.mark.parametrize(
    ("name", "kwargs", "margin"),
    [("ball", {"max_steps": 300}, 15.0), ("grid", {}, 1.0), ("hallway", {}, 0.4), ("hybrid", {}, 3.0)],
)
def test_expert_clearly_beats_random(name, kwargs, margin):
    expert = evaluate_in_process(name, "expert", episodes=10, seed=0, **kwargs)
    random = evaluate_in_process(name, "random", episodes=10, seed=0, **kwargs)
    assert expert.mean_return > random.mean_return + margin
    assert len(expert.returns) == len(random.returns) == 10


def test_expert_takes_single_observations_batches_and_both_image_layouts():
    ball = expert_policy("ball")
    obs = make_scene("ball", num_agents=4, seed=0).observe()["3DBall?team=0"].observations[0]
    batch_actions, state = ball.predict(obs)
    assert state is None and batch_actions.shape == (4, 2) and batch_actions.dtype == np.float32
    np.testing.assert_array_equal(ball.predict(obs[2])[0], batch_actions[2])
    called, _ = ball(obs, None, np.zeros(4, bool))
    np.testing.assert_array_equal(called, batch_actions)

    grid_scene = make_scene("grid", num_agents=3, seed=0)
    spec = grid_scene.behavior_specs()["GridWorld?team=0"]
    arrays = grid_scene.observe()["GridWorld?team=0"].observations
    hwc = env_observation(spec, arrays, "hwc_uint8")
    chw = env_observation(spec, arrays, "chw_float")
    actions, _ = expert_policy("grid").predict(hwc)
    assert actions.shape == (3,) and np.issubdtype(actions.dtype, np.integer)
    np.testing.assert_array_equal(expert_policy("grid", image_format="chw_float").predict(chw)[0], actions)
    single, _ = expert_policy("grid").predict({k: v[1] for k, v in hwc.items()})
    assert single.shape == () and single == actions[1]
    assert spec.action_space().contains(int(single))
    with pytest.raises(ValueError, match="uint8"):
        expert_policy("grid").predict(chw)

    hybrid_obs = make_scene("hybrid", num_agents=2, seed=0).observe()["Hybrid?team=0"].observations[0]
    hybrid, _ = expert_policy("hybrid").predict(hybrid_obs)
    assert hybrid["continuous"].shape == (2, 2) and hybrid["discrete"].shape == (2, 1)
    one, _ = expert_policy("hybrid").predict(hybrid_obs[0])
    assert make_scene("hybrid").behavior_specs()["Hybrid?team=0"].action_space().contains(one)


def test_random_policy_samples_the_action_space():
    spec = make_scene("grid").behavior_specs()["GridWorld?team=0"]
    policy = RandomPolicy(spec, seed=0)
    obs = {"CameraSensor": np.zeros((6, 84, 84, 3), np.uint8), "GoalSensor": np.zeros((6, 2), np.float32)}
    actions, _ = policy.predict(obs)
    assert actions.shape == (6,) and len(set(actions.tolist())) > 1


@pytest.mark.imitation
def test_expert_drives_imitation_rollouts(in_process_env):
    from imitation.data import rollout

    venv = DummyVecEnv([lambda i=i: in_process_env("grid", seed=i, image_format="chw_float") for i in range(2)])
    trajectories = rollout.generate_trajectories(
        expert_policy("grid", image_format="chw_float"),
        venv,
        rollout.make_sample_until(min_episodes=6),
        rng=np.random.default_rng(0),
    )
    assert len(trajectories) >= 6
    for trajectory in trajectories:
        assert trajectory.terminal and trajectory.rews[-1] == pytest.approx(1.0)
        assert trajectory.obs.get("CameraSensor").shape[1:] == (3, 84, 84)


def test_frame_time_reaches_the_player_which_checks_it_and_serves_as_usual() -> None:
    """``frame_time`` stands in for a rendered Unity frame: it travels to the player as
    ``--frame-time`` (not as a scene argument), both ends refuse what is not a number of seconds
    from 0 to 10, and a player given one serves steps as usual. (What it costs per step is
    printed by ``benchmarks/bench_vecenv.py``, never asserted here.)"""
    argv = scene_command("ball", {"frame_time": 0.01}).argv
    assert argv[-2:] == ("--frame-time", "0.01") and "frame_time" not in argv[argv.index("--scene-kwargs") + 1]
    for bad in (-1, 11, "fast", True):
        with pytest.raises(ConfigError, match="frame_time must be a number of seconds from 0 to 10"):
            scene_command("ball", {"frame_time": bad})
    player = subprocess.run([sys.executable, "-m", "gym_unity_il.scenes", "ball", "--mlagents-port", "1", "--frame-time", "11"],
                            capture_output=True, text=True, timeout=60, env=environment_with_import_path())  # fmt: skip
    assert player.returncode == 2 and "--frame-time must be from 0 to 10.0 seconds, got 11.0" in player.stderr
    with UnityILEnv(scene="ball", scene_kwargs={"frame_time": 0.01}) as env:
        env.reset(seed=0)
        for _ in range(3):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs) and np.isfinite(reward)
