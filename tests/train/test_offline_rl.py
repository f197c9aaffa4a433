"""Offline RL from Minari datasets through d3rlpy (the ``offline`` extra): the adapter keeps
every transition of a dataset as Minari stores it, and ``examples/offline_rl.py`` runs as
written: IQL trained from recorded expert demos beats the random policy on held-out seeds,
and nothing is written outside the folders it is given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("d3rlpy", reason="needs the offline extra")
minari = pytest.importorskip("minari", reason="needs the datasets extra")

import gym_unity_il  # noqa: E402,F401  (registers UnityIL-v0)
from gym_unity_il.demo import DemoWriter, behavior_spec_from_spaces, demo_to_minari, record_episodes  # noqa: E402
from gym_unity_il.demo.minari import load_minari_dataset, minari_to_d3rlpy  # noqa: E402
from gym_unity_il.errors import SpecMismatchError  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _random_dataset(scene: str, scene_kwargs: dict, root: Path) -> minari.MinariDataset:
    """8 episodes of uniform random actions on a built-in scene, recorded into a Minari dataset."""
    env = gym.make("UnityIL-v0", scene=scene, scene_kwargs=scene_kwargs)
    space = env.action_space
    space.seed(0)
    record_episodes(env, lambda obs: space.sample(), root / f"{scene}.demo", episodes=8, minari_id=f"test/{scene}-random-v0", dataset_dir=root)
    return load_minari_dataset(f"test/{scene}-random-v0", dataset_dir=root)


@pytest.mark.parametrize(
    ("scene", "scene_kwargs"),
    [
        ("ball", {"max_steps": 100}),  # Box observations and actions; the ball falls in some episodes, not in others
        ("grid", {"max_steps": 4, "grid_size": 3, "camera_height": 12, "camera_width": 12}),  # a camera and a vector; Discrete(5)
    ],
)
def test_minari_to_d3rlpy_keeps_every_transition_of_terminated_and_truncated_episodes(scene: str, scene_kwargs: dict, tmp_path: Path) -> None:
    dataset = _random_dataset(scene, scene_kwargs, tmp_path)
    episodes = list(dataset.iterate_episodes())
    assert {bool(e.terminations[-1]) for e in episodes} == {True, False}  # both kinds of end are covered
    keys = list(dataset.observation_space.spaces) if isinstance(dataset.observation_space, gym.spaces.Dict) else None

    def observation(episode: Any, t: int) -> list[np.ndarray]:
        return [episode.observations[t]] if keys is None else [episode.observations[k][t] for k in keys]

    converted = minari_to_d3rlpy(f"test/{scene}-random-v0", dataset_dir=tmp_path)

    assert converted.transition_count == dataset.total_steps
    assert len(converted.episodes) == len(episodes)
    for ours, theirs in zip(converted.episodes, episodes):
        terminated = bool(theirs.terminations[-1])
        assert ours.terminated == terminated and ours.transition_count == len(theirs.rewards)
        for t in range(len(theirs.rewards)):
            step = converted.transition_picker(ours, t)
            for got, want in zip(step.observation if keys else [step.observation], observation(theirs, t), strict=True):
                np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(step.action.reshape(-1), np.reshape(theirs.actions[t], -1))
            assert step.reward.item() == np.float32(theirs.rewards[t])
            last = t == len(theirs.rewards) - 1
            assert step.terminal == float(last and terminated)
            if not (last and terminated):  # a truncated episode's last step still reaches its next observation
                for got, want in zip(step.next_observation if keys else [step.next_observation], observation(theirs, t + 1), strict=True):
                    np.testing.assert_array_equal(got, want)


def test_minari_to_d3rlpy_names_actions_d3rlpy_cannot_learn(tmp_path: Path) -> None:
    """Two discrete branches (a MultiDiscrete): d3rlpy learns one Box or one Discrete only."""
    spec = behavior_spec_from_spaces(gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.MultiDiscrete([2, 3]))
    with DemoWriter(tmp_path / "branches.demo", behavior_spec=spec) as writer:
        for t in range(4):
            writer.write(np.full(3, t / 4, np.float32), reward=1.0, done=t == 3, stored_discrete_action=[t % 2, t % 3])
    demo_to_minari(tmp_path / "branches.demo", "test/branches-v0", dataset_dir=tmp_path)

    with pytest.raises(SpecMismatchError, match=r"'test/branches-v0' has actions MultiDiscrete\(\[2 3\]\), which d3rlpy cannot learn.*Fix: "):
        minari_to_d3rlpy("test/branches-v0", dataset_dir=tmp_path)


@pytest.mark.slow
@pytest.mark.imitation
def test_offline_rl_example_trains_iql_that_beats_random_and_writes_only_under_out(tmp_path: Path) -> None:
    out, cwd, home = tmp_path / "out", tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    args = ["--episodes", "4", "--max-steps", "300", "--steps", "400", "--eval-episodes", "3", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(home)}
    env.pop("MINARI_DATASETS_PATH", None)
    done = subprocess.run([sys.executable, str(EXAMPLES / "offline_rl.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    table = {row[0]: float(row[1]) for row in (line.split() for line in done.stdout.splitlines()) if row[:1] in (["expert"], ["random"], ["iql"])}
    assert set(table) == {"expert", "random", "iql"}
    report = json.loads((out / "report.json").read_text())
    assert report["expert"]["mean_return"] == pytest.approx(table["expert"], abs=1e-3) and report["expert"]["mean_return"] > 25.0  # 0.1 per step
    assert report["iql"]["mean_return"] > report["random"]["mean_return"] + 5.0
    assert report["iql"]["seed"] >= 1_000_000  # held-out seeds, not the demos'
    assert report["transitions"] == 4 * 300

    assert (out / "datasets" / "unity" / "ball-expert-v0" / "data" / "metadata.json").is_file()
    assert (out / "d3rlpy_logs" / "iql" / "params.json").is_file()
    assert list(cwd.iterdir()) == []  # no d3rlpy_logs/ in the working directory
    assert not (home / ".minari").exists()  # nor in Minari's default root (matplotlib may cache its fonts in the home folder)
