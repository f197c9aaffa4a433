"""The "hallway" scene: a cue seen only at the start, masks, rewards, and the expert's memory."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.envs import make_unity_vec_env
from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes import expert_policy, make_scene
from gym_unity_il.scenes.evaluate import evaluate_in_process
from gym_unity_il.scenes.hallway import AGENT, COLOURS, END, FLOOR, GREEN_WALL, RED_WALL, WALL, GuessPolicy
from gym_unity_il.scenes.legacy_player import LEGACY_PROTOCOLS
from gym_unity_il.spec import CameraResolution

FORWARD, CHOOSE_RED, CHOOSE_GREEN = 0, 1, 2
LENGTH = 12


def make(**scene_kwargs) -> gym.Env:
    return gym.make("UnityIL-v0", scene="hallway", scene_kwargs=scene_kwargs, timeout_wait=20)


def test_the_cue_shows_only_in_the_first_observation_and_only_forward_moves_before_the_end() -> None:
    env = make()
    try:
        for episode in range(4):
            obs, info = env.reset(seed=episode)
            assert obs[:2].sum() == 1.0 and obs[2:].tolist() == [0.0, 0.0]  # red or green, at cell 0
            cue = int(obs[:2].argmax())
            # A choice before the end cell does nothing but pass the step, and shows no cue again.
            obs, reward, terminated, truncated, info = env.step(CHOOSE_RED + cue)
            assert obs.tolist() == [0.0, 0.0, 0.0, 0.0] and reward == pytest.approx(-0.01) and not (terminated or truncated)
            for cell in range(1, LENGTH):
                assert info["action_mask"].tolist() == [True, False, False]
                obs, reward, terminated, truncated, info = env.step(FORWARD)
                assert obs.tolist() == pytest.approx([0.0, 0.0, cell / LENGTH, float(cell == LENGTH - 1)])
                assert reward == pytest.approx(-0.01) and not (terminated or truncated)
            assert info["action_mask"].tolist() == [False, True, True]
            obs, reward, *_ = env.step(FORWARD)  # forbidden at the end: the agent stays
            assert obs.tolist() == pytest.approx([0.0, 0.0, (LENGTH - 1) / LENGTH, 1.0]) and reward == pytest.approx(-0.01)
            wrong = episode % 2 == 1
            _, reward, terminated, truncated, _ = env.step(CHOOSE_RED + (1 - cue if wrong else cue))
            assert terminated and not truncated and reward == pytest.approx(-0.1 if wrong else 1.0)
        env.reset(seed=0)
        for step in range(50):  # max_steps cuts an episode that never chooses
            _, _, terminated, truncated, _ = env.step(FORWARD)
            if terminated or truncated:
                break
        assert (step, terminated, truncated) == (49, False, True)
    finally:
        env.close()


def test_documented_returns_and_the_expert_always_chooses_the_cue() -> None:
    expert = evaluate_in_process("hallway", "expert", episodes=20, seed=0)
    guess = evaluate_in_process("hallway", GuessPolicy(seed=0), episodes=20, seed=0)
    random = evaluate_in_process("hallway", "random", episodes=20, seed=0)
    assert expert.returns == pytest.approx([0.89] * 20) and expert.lengths == [LENGTH] * 20
    assert (round(guess.mean_return, 3), round(guess.std_return, 3)) == (0.450, 0.539)
    assert (round(random.mean_return, 3), round(random.std_return, 3)) == (0.266, 0.521)
    camera = evaluate_in_process("hallway", "expert", episodes=20, seed=0, camera=True)
    assert camera.returns == expert.returns


def test_a_policy_without_memory_is_right_half_the_time() -> None:
    result = evaluate_in_process("hallway", GuessPolicy(seed=1), episodes=400, seed=1)
    right = np.mean(np.array(result.returns) > 0)
    assert 0.4 < right < 0.6 and set(result.lengths) == {LENGTH}


@pytest.mark.parametrize("scene_kwargs", [{}, {"camera": True}], ids=["vector", "camera"])
def test_after_the_first_observation_both_cues_look_the_same(scene_kwargs: dict) -> None:
    """Eight agents given the same actions, random ones included: their first observations differ by
    cue, every later one, the end cell's included, is the same whatever the cue, though the reward is not."""
    venv = make_unity_vec_env(scene="hallway", scene_kwargs={"num_agents": 8, **scene_kwargs}, seed=3, timeout_wait=20)
    try:
        obs = venv.reset()
        rng = np.random.default_rng(0)
        first, episodes, at_end = True, 0, 0
        for _ in range(150):
            flat = obs.reshape(8, -1)
            if first:
                assert 1 < len(np.unique(flat, axis=0)) <= 2  # the two cues, seen
            else:
                assert (flat == flat[0]).all()
            at_end += bool(np.asarray(venv.env_method("action_masks"))[0, 1])
            action = FORWARD if rng.random() < 0.6 else int(rng.integers(0, 3))
            obs, rewards, dones, infos = venv.step(np.full(8, action))
            assert dones.all() or not dones.any()
            first = bool(dones.all())
            if first:
                episodes += 1
                terminal = np.stack([info["terminal_observation"] for info in infos]).reshape(8, -1)
                assert (terminal == terminal[0]).all()
                if not infos[0]["TimeLimit.truncated"]:  # a choice: right for one cue, wrong for the other
                    assert sorted(set(rewards.tolist())) == pytest.approx([-0.1, 1.0])
        assert episodes >= 4 and at_end >= 10
    finally:
        venv.close()


def test_the_expert_remembers_per_row_and_forgets_at_episode_starts() -> None:
    """Agents whose episodes start at different times: each row keeps its own cue, with
    ``episode_start`` given (the policy-callable form imitation uses) or not."""
    for starts_given in (True, False):
        venv = make_unity_vec_env(scene="hallway", scene_kwargs={"num_agents": 4, "max_steps": 0}, seed=5, timeout_wait=20)
        try:
            expert = expert_policy("hallway")
            obs = venv.reset()
            state, dones = None, np.zeros(4, bool)
            delay = np.array([0, 1, 3, 6])  # steps each agent wastes on a forbidden choice in its first episode
            right = wrong = 0
            for t in range(60):
                actions, state = expert(obs, state, dones if starts_given else None)
                assert state.shape == (4,) and state.dtype == np.int64
                actions = np.where(t < delay, CHOOSE_GREEN, actions)
                obs, rewards, dones, _ = venv.step(actions)
                right += int((rewards[dones] > 0).sum())
                wrong += int((rewards[dones] < 0).sum())
            assert wrong == 0 and right >= 16
        finally:
            venv.close()
    expert = expert_policy("hallway")
    at_end = np.array([[0.0, 0.0, 11 / 12, 1.0]] * 3, np.float32)
    actions, state = expert.predict(at_end, state=np.array([1, 1, 0]), episode_start=np.array([True, False, False]))
    assert actions.tolist() == [CHOOSE_RED, CHOOSE_GREEN, CHOOSE_RED] and state.tolist() == [-1, 1, 0]  # row 0 forgot: red
    shown = np.array([0.0, 1.0, 0.0, 0.0], np.float32)
    action, state = expert.predict(shown, state=np.array([0]))
    assert action.shape == () and action == FORWARD and state.tolist() == [1]  # a cue seen replaces the remembered one
    with pytest.raises(ValueError, match="state holds 2 cues for 3 observations"):
        expert.predict(at_end, state=np.array([0, 1]))


def _kind_pixels(image: np.ndarray, kind: int, channels: int) -> np.ndarray:
    colour = COLOURS[kind] if channels == 3 else np.rint(COLOURS[kind].astype(float).mean(keepdims=True))
    return (image == colour.astype(np.uint8)).all(axis=-1)


@pytest.mark.parametrize("grayscale", [False, True])
def test_the_camera_shows_the_cue_on_the_walls_in_the_first_frame_only(grayscale: bool) -> None:
    height, width = 9, 15
    env = make(camera=True, camera_height=height, camera_width=width, grayscale=grayscale)
    channels = 1 if grayscale else 3
    try:
        spec = env.unwrapped.behavior_spec.observation_specs[0]
        assert spec.name == "CameraSensor" and spec.camera_resolution == CameraResolution(height, width, grayscale)
        for episode in range(2):
            frame, _ = env.reset(seed=episode)
            assert frame.shape == (height, width, channels) and frame.dtype == np.uint8
            walls = np.r_[0:3, 6:9]
            cues = [kind for kind in (RED_WALL, GREEN_WALL) if _kind_pixels(frame[walls], kind, channels).all()]
            assert len(cues) == 1
            cell_columns = [np.flatnonzero(np.floor((np.arange(width) + 0.5) * LENGTH / width) == cell) for cell in range(LENGTH)]
            for cell in range(LENGTH):
                floor = frame[3:6]
                assert _kind_pixels(floor[:, cell_columns[cell]], AGENT, channels).all()
                if cell < LENGTH - 1:
                    assert _kind_pixels(floor[:, cell_columns[-1]], END, channels).all()
                    assert _kind_pixels(floor[:, cell_columns[cell - 1 if cell else 1]], FLOOR, channels).all()
                    frame, *_ = env.step(FORWARD)
                    assert _kind_pixels(frame[walls], WALL, channels).all()
            _, reward, terminated, *_ = env.step(CHOOSE_RED if cues[0] == RED_WALL else CHOOSE_GREEN)
            assert terminated and reward == pytest.approx(1.0)  # the colour shown was the cue
    finally:
        env.close()


def test_the_expert_reads_float_chw_images_single_and_batched() -> None:
    env = gym.make("UnityIL-v0", scene="hallway", scene_kwargs={"camera": True, "grayscale": True}, image_format="chw_float", timeout_wait=20)
    expert = expert_policy("hallway", image_format="chw_float")
    try:
        frames = []
        for episode in range(3):
            obs, _ = env.reset(seed=episode)
            assert obs.shape == (1, 24, 24) and obs.dtype == np.float32
            state, total = None, 0.0
            for step in range(LENGTH):
                frames.append(obs)
                action, state = expert.predict(obs, state, np.array([step == 0]))
                obs, reward, terminated, truncated, _ = env.step(action)
                total += reward
            assert terminated and total == pytest.approx(0.89)
        batch = np.stack(frames)
        batched, cues = expert.predict(batch)
        assert batched.tolist() == [expert.predict(f)[0] for f in frames] and (cues[::LENGTH] >= 0).all()
        with pytest.raises(ValueError, match="chw_float"):
            expert_policy("hallway").predict(batch)
    finally:
        env.close()


@pytest.mark.parametrize("protocol", [None, *LEGACY_PROTOCOLS])
def test_every_protocol_era_serves_the_hallway_and_the_expert_solves_it(protocol: str | None) -> None:
    """Vector in every era; the camera, sized by the brain's camera resolution, from 0.10 on and in 0.4 (JPEG)."""
    variants = [{}] + ([{"camera": True, "camera_height": 12, "camera_width": 20}] if protocol in (None, "0.4", "0.10", "0.11") else [])
    for variant in variants:
        env = make(**variant, **({"protocol": protocol} if protocol else {}))
        try:
            spec = env.unwrapped.behavior_spec
            if variant:
                assert spec.observation_specs[0].camera_resolution == CameraResolution(12, 20, False)
            expert = expert_policy("hallway")
            for episode in range(2):
                obs, info = env.reset(seed=episode)
                state, start, masks = None, True, []
                for _ in range(LENGTH):
                    masks.append(info["action_mask"].tolist())
                    action, state = expert.predict(obs, state, np.array([start]))
                    obs, reward, terminated, truncated, info = env.step(action)
                    start = False
                assert terminated and reward == pytest.approx(1.0)
                if protocol != "0.4":  # 0.4 has no action masks
                    assert masks == [[True, False, False]] * (LENGTH - 1) + [[False, True, True]]
        finally:
            env.close()


def test_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="camera_height >= 3 and camera_width >= 12"):
        make_scene("hallway", camera=True, camera_width=11)
    with pytest.raises(ConfigError, match="length must be an integer >= 2"):
        make_scene("hallway", length=1)
    scene = make_scene("hallway", length=5, camera=True, camera_height=3, camera_width=5, num_agents=2)
    assert scene.observe()["Hallway?team=0"].observations[0].shape == (2, 3, 5, 3)


def test_the_picture_always_shows_the_cue() -> None:
    scene = make_scene("hallway", num_agents=1, seed=2, max_steps=0)
    behavior = "Hallway?team=0"
    cue = int(scene.observe()[behavior].observations[0][0, :2].argmax())
    colour = COLOURS[(RED_WALL, GREEN_WALL)[cue]]
    for cell in range(LENGTH):
        picture = scene.render(0, 30, 60)
        assert (picture[:10] == colour).all() and (picture[20:] == colour).all()
        agent = np.flatnonzero((picture[15] == COLOURS[AGENT]).all(axis=-1))
        assert agent.tolist() == list(range(cell * 5, cell * 5 + 5))
        scene.act({behavior: (np.zeros((1, 0), np.float32), np.array([[FORWARD]], np.int32))})


@pytest.mark.imitation
def test_the_expert_drives_imitation_rollouts_with_its_state() -> None:
    from imitation.data import rollout

    venv = make_unity_vec_env(scene="hallway", scene_kwargs={"num_agents": 3}, seed=1, timeout_wait=20)
    try:
        trajectories = rollout.generate_trajectories(
            expert_policy("hallway"), venv, rollout.make_sample_until(min_episodes=9), rng=np.random.default_rng(0)
        )
    finally:
        venv.close()
    assert len(trajectories) >= 9
    for trajectory in trajectories:
        assert trajectory.terminal and len(trajectory.acts) == LENGTH and trajectory.rews[-1] == pytest.approx(1.0)
        assert trajectory.obs[0, :2].sum() == 1.0 and not trajectory.obs[1:, :2].any()  # the cue: first observation only
