"""Every loop that drives a policy carries its recurrent state as SB3's ``predict`` takes it:
``evaluate`` on a UnityVecEnv whose agents end their episodes at different times,
``masked_predict`` with sb3-contrib's RecurrentPPO, ``record_episodes`` and ``demo record``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.cli import main
from gym_unity_il.demo import read_demo, record_episodes
from gym_unity_il.envs import UnityVecEnv, make_unity_vec_env
from gym_unity_il.export.saved import load_policy
from gym_unity_il.train.evaluation import action_masks, evaluate, masked_predict

#: Four plates deciding every 4th Academy step: under :class:`StepCounter`'s actions their
#: balls fall after 15 to 30 decisions, each at its own time.
BALL = {"num_agents": 4, "max_steps": 400, "decision_period": 4}
#: Three agents on a 3 x 3 field without camera: walls mask moves in 8 cells of 9.
GRID = {"num_agents": 3, "grid_size": 3, "camera": False, "max_steps": 12}


class StepCounter:
    """A recurrent predictor of the ball scene's actions: its state is each row's number of
    decisions since that row's episode began, its actions follow from that count, and it
    notes every call (the ``episode_start`` and the state it was given, the state it returned)."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []

    @staticmethod
    def actions(counts: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(counts / 4.0), np.sin(counts / 9.0)], axis=1).astype(np.float32)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> tuple[np.ndarray, np.ndarray]:
        single = np.ndim(observation) == 1
        rows = 1 if single else len(observation)
        starts = np.zeros(rows, bool) if episode_start is None else np.asarray(episode_start, bool).reshape(rows)
        before = np.zeros(rows, np.int64) if state is None else np.asarray(state)
        counts = np.where(starts, 0, before) + 1
        self.calls.append((starts.copy(), None if state is None else before.copy(), counts))
        actions = self.actions(counts)
        return (actions[0] if single else actions), counts


class Watch(VecEnvWrapper):
    """Notes what passes through a VecEnv: each reset (None) and each step's dones, the
    actions sent and the action masks they were chosen under."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.events: list[np.ndarray | None] = []
        self.actions: list[np.ndarray] = []
        self.masks: list[np.ndarray | None] = []

    def reset(self) -> Any:
        self.events.append(None)
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self.actions.append(np.array(actions))
        self.masks.append(action_masks(self.venv))
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.events.append(np.array(dones, bool))
        return obs, rewards, dones, infos

    def steps(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Each step's wave (resets so far, from 0), the rows whose episode began at its
        observation (every row after a reset, else those the previous step ended) and its dones."""
        steps, wave, starts = [], -1, None
        for event in self.events:
            if event is None:
                wave, starts = wave + 1, np.ones(self.num_envs, bool)
            else:
                steps.append((wave, starts, event))
                starts = event
        return steps


@pytest.fixture
def make_venv():
    made: list[UnityVecEnv] = []

    def make(scene: str, scene_kwargs: dict[str, Any]) -> UnityVecEnv:
        venv = make_unity_vec_env(scene=scene, scene_kwargs=scene_kwargs, timeout_wait=20)
        made.append(venv)
        return venv

    yield make
    for venv in made:
        venv.close()


def test_evaluate_resets_each_rows_state_exactly_where_its_episodes_start(make_venv) -> None:
    venv = Watch(make_venv("ball", BALL))
    probe = StepCounter()
    result = evaluate(probe, venv, episodes=6, seed=5)  # two waves: 4 episodes, then 2

    steps = venv.steps()
    assert len(probe.calls) == len(steps) and steps[-1][0] == 1
    for k, ((starts, given, _), (_, expected, _)) in enumerate(zip(probe.calls, steps)):
        np.testing.assert_array_equal(starts, expected, err_msg=f"call {k}")
        if k == 0:
            assert given is None
        else:  # the state returned before, across waves too
            np.testing.assert_array_equal(given, probe.calls[k - 1][2], err_msg=f"call {k}")
    # rows end and start again at different times, while the others run on
    restarts = [starts for k, (starts, _, _) in enumerate(probe.calls) if k and steps[k][0] == steps[k - 1][0] and starts.any()]
    assert any(not starts.all() for starts in restarts) and sum(int(starts.sum()) for starts in restarts) > 4
    # each row's count at its first episode end is the length evaluate measured
    for wave, rows in enumerate((4, 2)):
        ends: dict[int, int] = {}
        for (_, _, counts), (at, _, dones) in zip(probe.calls, steps):
            for i in np.flatnonzero(dones) if at == wave else ():
                ends.setdefault(int(i), int(counts[i]))
        assert result.lengths[4 * wave : 4 * wave + rows] == [ends[i] for i in range(rows)]
    assert len(set(result.lengths[:4])) > 1


@pytest.fixture
def recurrent_grid(make_venv, tmp_path: Path):
    """A small RecurrentPPO model of the grid scene, its saved file and the env. Untrained, its
    action head and its LSTM's recurrent weights scaled up so that its memory sways its choices."""
    import torch
    from sb3_contrib import RecurrentPPO

    venv = make_venv("grid", GRID)
    model = RecurrentPPO("MultiInputLstmPolicy", venv, n_steps=8, batch_size=8, seed=0,
                         policy_kwargs={"lstm_hidden_size": 16, "net_arch": [16]})  # fmt: skip
    with torch.no_grad():
        model.policy.action_net.weight.mul_(300.0)
        model.policy.lstm_actor.weight_hh_l0.mul_(4.0)
    model.save(tmp_path / "rppo.zip")
    return model, tmp_path / "rppo.zip", venv


def test_masked_predict_of_a_recurrent_policy_returns_its_new_state(recurrent_grid) -> None:
    model, _, venv = recurrent_grid
    obs = venv.reset()
    masks = action_masks(venv)
    starts = np.ones(venv.num_envs, bool)
    state = None
    for _ in range(6):
        actions, new_state = masked_predict(model, obs, masks, state, starts, deterministic=True)
        unmasked, sb3_state = model.predict(obs, state, starts, deterministic=True)
        for own, theirs in zip(new_state, sb3_state):
            np.testing.assert_allclose(own, theirs, atol=1e-6)
        all_allowed, _ = masked_predict(model, obs, np.ones_like(masks), state, starts)
        np.testing.assert_array_equal(all_allowed, unmasked)
        assert masks[np.arange(len(actions)), actions].all()
        obs, _, dones, _ = venv.step(actions)
        masks, starts, state = action_masks(venv), np.asarray(dones, bool), new_state
    assert state[0].shape == (1, venv.num_envs, 16)


def test_evaluate_a_recurrent_ppo_model_with_masks_as_a_manual_loop_does(recurrent_grid) -> None:
    model, path, base = recurrent_grid
    venv = Watch(base)
    result = evaluate(model, venv, episodes=5, seed=3)  # two waves of 3 sub-envs

    for actions, masks in zip(venv.actions, venv.masks):
        assert masks[np.arange(len(actions)), actions].all(), "a masked action was chosen"
    # the same episodes by hand: the state carried, episode starts after resets and dones
    returns, lengths, chosen, forbidden, stateless_differs = [], [], [], 0, False
    state = None
    while len(returns) < 5:
        wave = min(3, 5 - len(returns))
        base.seed(3 + len(returns))
        obs = base.reset()
        totals, steps, running, starts = np.zeros(3), np.zeros(3, int), np.arange(3) < wave, np.ones(3, bool)
        while running.any():
            masks = action_masks(base)
            unmasked, _ = model.predict(obs, state, starts, deterministic=True)
            forbidden += int((~masks[np.arange(3), unmasked]).sum())
            without_state, _ = masked_predict(model, obs, masks, None, None)
            actions, state = masked_predict(model, obs, masks, state, starts)
            stateless_differs |= bool((without_state != actions).any())
            chosen.append(actions)
            obs, rewards, dones, _ = base.step(actions)
            totals[running] += rewards[running]
            steps[running] += 1
            starts = np.asarray(dones, bool)
            running &= ~starts
        returns += totals[:wave].tolist()
        lengths += steps[:wave].tolist()
    assert result.returns == pytest.approx(returns) and result.lengths == lengths
    np.testing.assert_array_equal(np.stack(venv.actions), np.stack(chosen))
    assert forbidden > 0, "the masks never mattered"
    assert stateless_differs, "the state never mattered"

    # a TrainedPolicy of the saved model acts the same
    again = Watch(base)
    trained = evaluate(load_policy(path, base.observation_space), again, episodes=5, seed=3)
    assert trained.returns == pytest.approx(result.returns) and trained.lengths == result.lengths
    np.testing.assert_array_equal(np.stack(again.actions), np.stack(venv.actions))


def _episodes(done: np.ndarray) -> list[range]:
    """The records of each whole episode of a recording (the first one is the reset's)."""
    ends = np.flatnonzero(done)
    return [range(start, end + 1) for start, end in zip([0, *(ends[:-1] + 1)], ends)]


def test_record_episodes_drives_a_recurrent_predictor_through_each_episode(tmp_path: Path) -> None:
    probe = StepCounter()
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={**BALL, "num_agents": 1})
    path, returns = record_episodes(env, probe, tmp_path / "probe.demo", episodes=3, seed=2)

    demo = read_demo(path)
    episodes = _episodes(demo.done)
    assert len(episodes) == 3 and len({len(e) for e in episodes}) > 1
    assert sum(len(e) - 1 for e in episodes) == len(probe.calls)
    k = 0
    for episode in episodes:
        for step in range(len(episode) - 1):
            starts, given, counts = probe.calls[k]
            assert starts.tolist() == [step == 0]
            assert (given is None) == (k == 0) and (k == 0 or given.tolist() == probe.calls[k - 1][2].tolist())
            assert counts.tolist() == [step + 1]
            np.testing.assert_array_equal(demo.stored_continuous_actions[episode[step + 1]], StepCounter.actions(counts)[0])
            k += 1


def test_demo_record_with_a_saved_recurrent_ppo_model(tmp_path: Path) -> None:
    from sb3_contrib import RecurrentPPO

    env = gym.make("UnityIL-v0", scene="ball")
    try:
        model = RecurrentPPO("MlpLstmPolicy", env, n_steps=16, batch_size=16, seed=0, policy_kwargs={"lstm_hidden_size": 8, "net_arch": [8]})
    finally:
        env.close()
    model.save(tmp_path / "rppo.zip")
    out = tmp_path / "rppo.demo"
    kwargs = '{"max_steps": 20}'
    assert main(["demo", "record", str(out), "--scene", "ball", "--policy", str(tmp_path / "rppo.zip"), "--episodes", "2", "--scene-kwargs", kwargs]) == 0

    demo = read_demo(out)
    (observations,) = demo.observations
    stateless_gap = 0.0
    for episode in _episodes(demo.done):
        state = None
        for step, record in enumerate(episode[:-1]):
            action, state = model.predict(observations[record], state, np.array([step == 0]), deterministic=True)
            np.testing.assert_allclose(demo.stored_continuous_actions[record + 1], action, atol=1e-6)
            fresh, _ = model.predict(observations[record], None, np.array([True]), deterministic=True)
            stateless_gap = max(stateless_gap, float(np.abs(fresh - action).max()))
    assert stateless_gap > 1e-4, "the state never mattered"
