"""What a run shows while it trains: every row of ``metrics.csv`` and its progress line hold
the episodes that ended since the previous row (checked against the rewards a real scene
paid), a row where none ended says so, and a BC phase evaluates at most once per 2 batches
per step of a demo episode."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnvWrapper

from gym_unity_il.demo import demo_to_trajectories, read_demo, record_episodes
from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import make_training_env, parse_config, train
from gym_unity_il.train.bc import BATCHES_PER_EVALUATION_STEP, evaluation_interval
from gym_unity_il.train.pretrain import RLPhase
from gym_unity_il.train.progress import METRICS_COLUMNS, RunRecorder
from train_helpers import tiny

#: Ball episodes of 100 steps at most for four agents: random play lets the ball fall at
#: different times, so the returns differ from episode to episode.
SHORT = {"max_steps": 100, "num_agents": 4}
#: Episodes of the BC demos and of the evaluations.
DEMO_STEPS = 50


class EpisodeLog(VecEnvWrapper):
    """Adds up the rewards of each sub-env's episodes itself: :attr:`ended` holds, for every
    episode, the env steps so far (all sub-envs, as SB3 counts them) when it ended, and its return."""

    def __init__(self, venv: Any) -> None:
        super().__init__(venv)
        self.totals = np.zeros(self.num_envs)
        self.steps = 0
        self.ended: list[tuple[int, float]] = []

    def reset(self) -> Any:
        self.totals[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.steps += self.num_envs
        self.totals += rewards
        for row in np.flatnonzero(dones):
            self.ended.append((self.steps, float(self.totals[row])))
            self.totals[row] = 0.0
        return obs, rewards, dones, infos


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 expert episodes of ball cut at 50 steps (the expert never lets the ball fall)."""
    path = tmp_path_factory.mktemp("demos") / "ball_short.demo"
    env = gym.make("UnityIL-v0", scene="ball", scene_kwargs={"max_steps": DEMO_STEPS})
    record_episodes(env, expert_policy("ball"), path, episodes=4, seed=1000)
    return path


def test_each_rl_row_holds_the_episodes_that_ended_since_the_previous_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    venv, _ = make_training_env(scene="ball", scene_kwargs=SHORT, seed=0)
    log = EpisodeLog(venv)
    try:
        logger = configure(str(tmp_path / "log"), [])
        model = PPO("MlpPolicy", log, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})
        model.set_logger(logger)
        recorder = RunRecorder(metrics_path=tmp_path / "metrics.csv", logger=logger, summary_freq=24, progress=True, behavior="3DBall?team=0")
        RLPhase(name="ppo", model=model, total_steps=1024).run(recorder)
    finally:
        log.close()

    rows = _rows(tmp_path / "metrics.csv")
    steps = [int(row["step"]) for row in rows]
    assert list(rows[0]) == list(METRICS_COLUMNS)
    assert steps == [*range(24, 1024, 24), 1024]  # every 24 steps (6 env steps of 4 agents), and the phase's last step
    lines = [line for line in capsys.readouterr().err.splitlines() if "Time Elapsed" in line]
    assert len(lines) == len(rows)
    previous, empty = 0, 0
    for row, step, line in zip(rows, steps, lines):
        returns = [r for ended, r in log.ended if previous < ended <= step]
        assert int(row["episodes"]) == len(returns), step
        if returns:
            assert float(row["return"]) == pytest.approx(np.mean(returns), rel=1e-5, abs=1e-5)
            assert line.endswith(f"Mean Reward: {np.mean(returns):.3f}. Std of Reward: {np.std(returns):.3f}. Training.")
        else:
            empty += 1
            assert row["return"] == "" and line.endswith("No episode was completed since last summary. Training.")
        previous = step
    assert sum(int(row["episodes"]) for row in rows) == len(log.ended) > 5  # every episode counted once
    assert 0 < empty < len(rows)  # some rows saw no episode end, others did
    assert len({row["return"] for row in rows if row["return"]}) > 2  # returns that differ: a mean over other episodes would show


def test_a_bc_phase_evaluates_at_most_once_per_2_batches_per_step_of_a_demo_episode(tmp_path: Path, short_demo: Path) -> None:
    trajectories = demo_to_trajectories(read_demo(short_demo))
    assert [len(t.acts) for t in trajectories] == [DEMO_STEPS] * 4
    assert evaluation_interval(64, 64, trajectories) == BATCHES_PER_EVALUATION_STEP * DEMO_STEPS == 100  # 1 batch asked
    assert evaluation_interval(150 * 64, 64, trajectories) == 150  # summary_freq longer than that: as asked

    section = tiny(short_demo, trainer="offline_bc", num_epoch=None, max_steps=250 * 64, summary_freq=64, eval_episodes=2)
    train(parse_config({"default": section}, source="c.yaml"), run_id="bc", results_dir=tmp_path, scene="ball",
          scene_kwargs={"max_steps": DEMO_STEPS, "num_agents": 2}, progress=False)  # fmt: skip
    rows = _rows(tmp_path / "bc" / "metrics.csv")
    # 250 batches: rows after 100 and 200, and after the last; each an evaluation of one episode per agent
    assert [(row["phase"], int(row["step"]), row["episodes"]) for row in rows] == [("bc", 100 * 64, "2"), ("bc", 200 * 64, "2"), ("bc", 250 * 64, "2")]
    assert all(float(row["return"]) > 0 for row in rows)


def test_a_metrics_file_with_other_columns_is_refused(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("phase,step,return,time_s\nbc,64,1.5,2.0\n")
    with pytest.raises(ConfigError, match=r"metrics\.csv: columns phase,step,return,time_s, not phase,step,return,episodes,time_s .*force=True"):
        RunRecorder(metrics_path=metrics, logger=configure(str(tmp_path / "log"), []), summary_freq=64)
