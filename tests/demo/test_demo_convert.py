"""Demonstrations as imitation trajectories / transitions and in SB3 replay buffers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from demo_helpers import image, spec_of, vector, write_episodes
from gym_unity_il.demo import DemoWriter, demo_to_trajectories, demo_to_transitions, fill_replay_buffer, flat_action_space, read_demo
from gym_unity_il.errors import DemoFormatError, MissingExtraError, SpecMismatchError

# 5 records ended by the task, 4 cut by the step limit, 1 record alone (no transition), 3 still open
EPISODES = [(5, "done"), (4, "max_step"), (1, "done"), (3, "open")]


@pytest.mark.imitation
def test_episodes_terminal_flags_and_causal_pairing(tmp_path: Path) -> None:
    path = tmp_path / "eps.demo"
    written = write_episodes(path, spec_of(vector(3), continuous=2), EPISODES)
    trajectories = demo_to_trajectories(path)
    assert [len(t) for t in trajectories] == [4, 3, 2]
    assert [t.terminal for t in trajectories] == [True, False, False]
    starts = [0, 5, 10]
    for traj, start in zip(trajectories, starts):
        n = len(traj)
        records = range(start, start + n + 1)
        assert np.array_equal(traj.obs, np.stack([written.observations[r][0] for r in records]))
        # the action taken at obs t is the action stored in record t+1
        assert np.array_equal(traj.acts, written.continuous[start + 1 : start + n + 1])
        assert np.array_equal(traj.rews, written.rewards[start + 1 : start + n + 1])
        assert traj.acts.dtype == np.float32 and traj.rews.dtype == np.float32 and traj.infos is None


@pytest.mark.imitation
def test_transitions_flatten_the_same_data(tmp_path: Path) -> None:
    path = tmp_path / "eps.demo"
    write_episodes(path, spec_of(vector(3), continuous=2), EPISODES)
    transitions = demo_to_transitions(path)
    assert len(transitions) == 4 + 3 + 2
    assert np.flatnonzero(transitions.dones).tolist() == [3]  # only the terminal episode ends "done"
    trajectories = demo_to_trajectories(path)
    assert np.array_equal(transitions.next_obs[4:7], trajectories[1].obs[1:])
    empty = tmp_path / "empty.demo"
    DemoWriter(empty, behavior_spec=spec_of(vector(3), continuous=2)).close()
    with pytest.raises(DemoFormatError, match="no transition"):
        demo_to_transitions(empty)


@pytest.mark.imitation
def test_action_forms(tmp_path: Path) -> None:
    one = tmp_path / "one.demo"
    written = write_episodes(one, spec_of(vector(2), branches=(4,)), [(4, "done")])
    (traj,) = demo_to_trajectories(one)
    assert traj.acts.dtype == np.int64 and traj.acts.shape == (3,)
    assert traj.acts.tolist() == written.discrete[1:, 0].tolist()
    multi = tmp_path / "multi.demo"
    written = write_episodes(multi, spec_of(vector(2), branches=(4, 2, 3)), [(4, "done")])
    (traj,) = demo_to_trajectories(multi)
    assert traj.acts.shape == (3, 3) and traj.acts.tolist() == written.discrete[1:].tolist()

    hybrid = tmp_path / "hybrid.demo"
    spec = spec_of(vector(2), continuous=2, branches=(3,))
    written = write_episodes(hybrid, spec, [(4, "done")])
    with pytest.raises(SpecMismatchError, match="hybrid_actions='continuous'"):
        demo_to_trajectories(hybrid)
    (cont,) = demo_to_trajectories(hybrid, hybrid_actions="continuous")
    (disc,) = demo_to_trajectories(hybrid, hybrid_actions="discrete")
    assert np.array_equal(cont.acts, written.continuous[1:]) and disc.acts.tolist() == written.discrete[1:, 0].tolist()
    assert flat_action_space(spec, hybrid_actions="discrete") == spaces.Discrete(3)
    assert isinstance(flat_action_space(spec, hybrid_actions="continuous"), spaces.Box)


@pytest.mark.imitation
def test_dict_observations_and_agents_kept_apart(tmp_path: Path) -> None:
    from imitation.data import types

    spec = spec_of(image(4, 3, 3, name="cam"), vector(2, "speed"), branches=(2,))
    path = tmp_path / "agents.demo"
    rng = np.random.default_rng(3)
    obs = [[rng.integers(0, 256, (4, 3, 3), dtype=np.uint8), rng.normal(size=2).astype(np.float32)] for _ in range(8)]
    with DemoWriter(path, behavior_spec=spec) as writer:
        for t in range(8):  # two agents, interleaved, each one episode of 4 records
            writer.write(obs[t], agent_id=t % 2, done=t >= 6, stored_discrete_action=[t // 2 % 2])
    trajectories = demo_to_trajectories(path)
    assert len(trajectories) == 2 and all(t.terminal and len(t) == 3 for t in trajectories)
    first = trajectories[0]
    assert isinstance(first.obs, types.DictObs) and set(first.obs.keys()) == {"cam", "speed"}
    assert np.array_equal(first.obs.get("cam"), np.stack([obs[t][0] for t in (0, 2, 4, 6)]))
    assert first.obs.get("cam").dtype == np.uint8
    assert first.acts.tolist() == [1, 0, 1]


def test_replay_buffer(tmp_path: Path) -> None:
    path = tmp_path / "eps.demo"
    spec = spec_of(vector(3), branches=(4,))
    written = write_episodes(path, spec, EPISODES)
    buffer = ReplayBuffer(100, spec.observation_space(), spec.action_space(), device="cpu", n_envs=1, handle_timeout_termination=True)
    assert fill_replay_buffer(buffer, path) == 9
    assert buffer.pos == 9
    assert buffer.actions[:4, 0, 0].tolist() == written.discrete[1:5, 0].tolist()
    assert np.array_equal(buffer.next_observations[0, 0], written.observations[1][0])
    assert np.array_equal(buffer.rewards[:9, 0], np.concatenate([written.rewards[1:5], written.rewards[6:9], written.rewards[11:13]]))
    # every episode end is done; the cut ones are timeouts so that learners bootstrap through them
    assert np.flatnonzero(buffer.dones[:9, 0]).tolist() == [3, 6, 8]
    assert np.flatnonzero(buffer.timeouts[:9, 0]).tolist() == [6, 8]

    wrong = ReplayBuffer(10, spaces.Box(-1, 1, (4,), np.float32), spec.action_space(), device="cpu")
    with pytest.raises(SpecMismatchError, match="observation space"):
        fill_replay_buffer(wrong, path)
    with pytest.raises(ValueError, match="n_envs=1"):
        fill_replay_buffer(ReplayBuffer(10, spec.observation_space(), spec.action_space(), device="cpu", n_envs=2), path)


def test_dict_replay_buffer(tmp_path: Path) -> None:
    spec = spec_of(image(4, 3, 1, name="cam"), vector(2, "speed"), continuous=1)
    path = tmp_path / "dict.demo"
    written = write_episodes(path, spec, [(3, "done"), (2, "open")])
    buffer = DictReplayBuffer(20, spec.observation_space(), spec.action_space(), device="cpu")
    assert fill_replay_buffer(buffer, path) == 3
    assert np.array_equal(buffer.observations["cam"][:2, 0], np.stack([written.observations[t][0] for t in (0, 1)]))
    assert np.array_equal(buffer.next_observations["speed"][2, 0], written.observations[4][1])
    assert buffer.actions[:3, 0, 0].tolist() == [written.continuous[i, 0] for i in (1, 2, 4)]


@pytest.mark.imitation
def test_demonstration_objects_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "eps.demo"
    write_episodes(path, spec_of(image(2, 2, 3), continuous=1), EPISODES)
    demo = read_demo(path, image_format="chw_float")
    (first, *_) = demo_to_trajectories(demo)
    assert first.obs.shape == (5, 3, 2, 2) and first.obs.dtype == np.float32


def test_without_imitation_the_converters_name_the_extra_and_buffers_still_fill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The core install has no imitation: trajectories need the train extra, SB3 buffers do not."""
    spec = spec_of(vector(3), continuous=2)
    path = tmp_path / "core.demo"
    with DemoWriter(path, behavior_spec=spec) as writer:
        for t in range(4):
            writer.write([np.full(3, t, np.float32)], done=t == 3, stored_continuous_action=[t, -t])
    for name in ("imitation", "imitation.data", "imitation.data.types", "imitation.data.rollout"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: importing it raises ImportError
    for convert in (demo_to_trajectories, demo_to_transitions):
        with pytest.raises(MissingExtraError, match=r"needs imitation, which cannot be imported .*Fix: pip install 'gym_unity_il\[train\]'"):
            convert(path)
    buffer = ReplayBuffer(8, spaces.Box(-np.inf, np.inf, (3,), np.float32), spaces.Box(-1, 1, (2,), np.float32))
    assert fill_replay_buffer(buffer, path) == 3 and buffer.size() == 3
