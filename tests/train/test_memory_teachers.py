"""DAgger and online BC with memory: recurrent students (``memory`` in the config) and a teacher
with memory, on the "hallway" scene, whose cue only the episode's first observation shows.

The teacher is a probe that acts from its state alone: it takes the cue from the observation
that begins an episode (``episode_start``, or no state given) and nothing else, so it labels the
final choice right only when its state is carried from step to step and reset where each
episode begins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from imitation.data import serialize
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

from gym_unity_il.export.saved import load_policy
from gym_unity_il.scenes.hallway import CHOOSE_GREEN, CHOOSE_RED, FORWARD, GREEN, UNKNOWN, read_observation
from gym_unity_il.train import evaluate, parse_config
from gym_unity_il.train.dagger import train_dagger
from gym_unity_il.train.env import make_training_env
from gym_unity_il.train.online import OnlineBC, TeacherEpisodes, teacher_student_worker, train_online
from gym_unity_il.train.policies import ObservationAdapter

#: A corridor of 4 cells: 3 steps forward, then the choice; right: 0.97, wrong: -0.13, a guess: 0.42 on average.
LENGTH = 4
RIGHT = 1.0 - 0.01 * (LENGTH - 1)
PAIRED = "paired_hallway_scene:PairedHallway"
MEMORY = {"memory_size": 32, "sequence_length": 16}


class MemoryProbe:
    """The hallway teacher that acts from its state: ``int [rows, 2]``, the cue it took at the
    episode's first observation and the steps since. Records the steps it counted at each call;
    ``controls`` work the Teacher Helper's keys at set calls (once attached to a buffer)."""

    def __init__(self, controls: dict[int, str] | None = None) -> None:
        self.controls = controls or {}
        self.counted: list[np.ndarray] = []
        self.buffer: Any = None

    def attach(self, buffer: Any) -> None:
        self.buffer = buffer

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[np.ndarray, np.ndarray]:
        control = self.controls.get(len(self.counted))
        if control == "pause":
            self.buffer.recording = False
        elif control == "resume":
            self.buffer.recording = True
        elif control == "clear":
            self.buffer.clear()
        shown, at_end, _ = read_observation(obs)
        starts = np.ones(len(shown), bool) if state is None or episode_start is None else np.asarray(episode_start, bool)
        before = np.zeros((len(shown), 2), np.int64) if state is None else np.asarray(state)
        cue = np.where(starts, shown, before[:, 0])
        steps = np.where(starts, 0, before[:, 1] + 1)
        self.counted.append(steps)
        actions = np.where(at_end, np.where(cue == GREEN, CHOOSE_GREEN, CHOOSE_RED), FORWARD)
        return actions, np.stack([cue, steps], axis=1)


def _labels_are_right(episode: Any) -> bool:
    """Whether an episode's labels are the task's: forward, then the colour its first observation showed."""
    shown, at_end, _ = read_observation(np.asarray(episode.obs)[:-1])
    cue = shown[0]
    return cue != UNKNOWN and bool(np.array_equal(episode.acts, np.where(at_end, CHOOSE_RED + cue, FORWARD)))


def test_recurrent_dagger_learns_the_cue_from_a_teacher_with_memory(tmp_path: Path) -> None:
    section = {"trainer": "dagger", "batch_size": 64, "learning_rate": 3.0e-3, "hidden_units": 32, "max_steps": 600, "dagger_round_steps": 150,
               "num_epoch": 8, "summary_freq": 1000, "eval_episodes": 10, "memory": MEMORY}  # fmt: skip
    config = parse_config({"Hallway": section}, source="dagger.yaml")
    scene_kwargs = {"length": LENGTH, "num_agents": 2}
    result = train_dagger(config, run_id="dagger", results_dir=tmp_path, scene="hallway", scene_kwargs=scene_kwargs, teacher=MemoryProbe(), progress=False)
    summary = json.loads((result.run_dir / "evaluation.json").read_text())
    assert summary["algorithm"] == "RecurrentPPO" and summary["teacher_labels"] >= 600 and summary["rounds"] == 4
    assert summary["round_returns"][0] == pytest.approx(RIGHT)  # round 0: the probe drives, right every time
    assert summary["round_returns"][-1] > 0.9  # the student drives the last round, with its memory
    rows = (result.run_dir / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["dagger"] * 4
    for round_num in range(4):  # the probe labelled every episode right, the student's (rounds 1 on) too
        episodes = serialize.load(result.run_dir / "dagger" / "demos" / f"round-{round_num:03d}")
        assert episodes and all(_labels_are_right(e) for e in episodes)
    trained = load_policy(result.model_path)
    assert isinstance(trained.model, RecurrentPPO)
    venv, _ = make_training_env(scene="hallway", scene_kwargs=scene_kwargs, seed=50)
    try:
        student = evaluate(trained, venv, episodes=10, seed=50)
    finally:
        venv.close()
    assert student.mean_return == pytest.approx(RIGHT)  # a guess without memory: about 0.42


def test_recurrent_students_learn_online_from_a_teacher_with_memory(tmp_path: Path) -> None:
    section = {"trainer": "online_bc", "brain_to_imitate": "Teacher", "batch_size": 64, "learning_rate": 3.0e-3, "hidden_units": 32,
               "max_steps": 600, "summary_freq": 200, "eval_episodes": 10, "memory": MEMORY}  # fmt: skip
    config = parse_config({"Student": section}, source="online.yaml")
    probe = MemoryProbe()
    result = train_online(config, run_id="online", results_dir=tmp_path, scene=PAIRED, scene_kwargs={"length": LENGTH, "num_agents": 3},
                          teacher=probe, progress=False)  # fmt: skip
    assert [int(c[0]) for c in probe.counted] == list(range(LENGTH)) * (600 // LENGTH)  # carried, and reset at each episode end
    summary = json.loads((result.run_dir / "evaluation.json").read_text())
    assert summary["algorithm"] == "RecurrentPPO" and summary["teacher_return"] == pytest.approx(RIGHT) and summary["teacher_pairs"] == 600
    assert summary["gradient_batches"] == 600 - (LENGTH - 1)  # from the first episode's end on, one window of one group per step
    assert result.evaluation is not None and result.evaluation.mean_return == pytest.approx(RIGHT)
    last = (result.run_dir / "metrics.csv").read_text().splitlines()[-1].split(",")
    assert last[1] == "600" and float(last[2]) == pytest.approx(RIGHT)  # the students acted with their memory in the scene too


def test_recording_and_clear_keep_whole_episodes_in_a_live_run() -> None:
    worker = teacher_student_worker({"scene": PAIRED, "scene_kwargs": {"length": LENGTH, "num_agents": 2}, "seed": 3}, teacher_behavior="Teacher")
    try:
        slots = worker.slots["Student?team=0"]
        space = slots.spec.observation_space()
        policy = RecurrentActorCriticPolicy(space, slots.spec.action_space(), lambda _: 1e-3, net_arch=[16], lstm_hidden_size=8)
        settings = parse_config({"default": {"trainer": "online_bc", "brain_to_imitate": "Teacher", "batch_size": 32, "max_steps": 26,
                                             "summary_freq": 1000, "memory": {"memory_size": 16, "sequence_length": 8}}}).default  # fmt: skip
        # episodes are calls 0-3, 4-7, ...: paused in the 2nd, resumed in the 3rd, cleared in the 5th
        probe = MemoryProbe({6: "pause", 10: "resume", 18: "clear"})
        online = OnlineBC(worker=worker, teacher=probe, policy=policy, adapter=ObservationAdapter(space), settings=settings, seed=0)
        buffer = online.buffer
        assert isinstance(buffer, TeacherEpisodes) and probe.buffer is buffer
        online.run()
    finally:
        worker.close()
    assert buffer.total_added == 4 + 2 + 4 + 2 + 4 + 2  # episode 1, 2 up to the pause, 4, 5 up to the clear, 6, 7 under way
    assert [len(e.acts) for e in buffer.episodes] == [LENGTH] and len(buffer) == LENGTH  # only episode 6 is kept
    assert _labels_are_right(buffer.episodes[0])
    assert online.batches > 0 and online.steps == 26


def test_teacher_episodes_keep_slots_apart_and_drop_the_oldest() -> None:
    space = spaces.Dict({"camera": spaces.Box(0, 255, (4, 4, 1), np.uint8), "goal": spaces.Box(0, 1, (2,), np.float32)})
    adapter = ObservationAdapter(space)
    buffer = TeacherEpisodes(slots=2, adapt=adapter, capacity=5)

    def step(value: int) -> dict[str, np.ndarray]:
        return {"camera": np.full((2, 4, 4, 1), value, np.uint8), "goal": np.full((2, 2), value, np.float32)}

    starts = np.array([True, True])
    for t in range(3):  # slot 0 ends after 3 steps, slot 1 runs on
        assert buffer.add(step(t), np.array([t, 10 + t]), np.array([True, True]), starts) == 2
        starts = np.array([False, False])
    buffer.end(np.array([0]))
    assert len(buffer) == 3 and [e.acts.tolist() for e in buffer.episodes] == [[0, 1, 2]]
    kept = buffer.episodes[0].obs
    assert kept.get("camera").shape == (4, 1, 4, 4) and kept.get("camera")[1, 0, 0, 0] == 1  # adapted (CHW), a final observation added
    assert buffer.add(step(3), np.array([3, 13]), np.array([True, True]), np.array([True, False])) == 2
    buffer.end(np.array([1]))  # slot 1's 4 steps join: 7 pairs, beyond the capacity of 5, so the oldest goes
    assert [e.acts.tolist() for e in buffer.episodes] == [[10, 11, 12, 13]] and len(buffer) == 4
    assert [e.acts.tolist() for e in buffer.sample(3, np.random.default_rng(0))] == [[10, 11, 12, 13]]
    buffer.clear()
    buffer.end(np.array([0, 1]))  # slot 0's episode under way was dropped with the clear
    assert len(buffer) == 0 and buffer.total_added == 8
    with pytest.raises(ValueError, match="no teacher episode"):
        buffer.sample(1, np.random.default_rng(0))
