"""Online behavioral cloning on the "ball" teacher/student layout: students learn from a
scripted teacher live, the Teacher Helper's controls from code, Ctrl+C, refusals."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy

from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import parse_config
from gym_unity_il.train.online import OnlineBC, TeacherBuffer, teacher_student_worker, train_online
from gym_unity_il.train.policies import ObservationAdapter

LAYOUT = {"teacher_student": True, "num_agents": 3, "max_steps": 300}


def _online(**overrides: Any) -> dict[str, Any]:
    section = {"trainer": "online_bc", "brain_to_imitate": "Teacher", "batch_size": 64, "batches_per_epoch": 2, "learning_rate": 1.0e-3,
               "hidden_units": 64, "max_steps": 1200, "summary_freq": 300, "eval_episodes": 3}  # fmt: skip
    section.update(overrides)
    return section


def test_students_reach_the_teachers_return(tmp_path: Path) -> None:
    config = parse_config({"Student": _online()}, source="online.yaml")
    result = train_online(config, run_id="online", results_dir=tmp_path, scene="ball", scene_kwargs=LAYOUT, progress=False)
    assert not result.interrupted and result.behavior_name == "Student?team=0"
    summary = json.loads((result.run_dir / "evaluation.json").read_text())
    teacher = summary["teacher_return"]
    assert teacher == pytest.approx(30.0, abs=0.5)  # the expert never drops the ball in 300 steps
    assert summary["env_steps"] == 1200 and summary["teacher_pairs"] == 1200 and summary["gradient_batches"] == 2 * 1200
    assert result.evaluation is not None and result.evaluation.mean_return >= 0.9 * teacher
    rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0] == "phase,step,return,episodes,time_s" and [r.split(",")[1] for r in rows[1:]] == ["300", "600", "900", "1200"]
    assert any((result.run_dir / "tensorboard").iterdir())
    model = PPO.load(result.model_path, device="cpu")
    obs = np.zeros((1, 8), np.float32)
    assert model.predict(obs, deterministic=True)[0].shape == (1, 2)


def test_buffer_recording_off_does_not_grow_and_clear_empties() -> None:
    space = spaces.Dict({"camera": spaces.Box(0, 255, (4, 4, 1), np.uint8), "goal": spaces.Box(0, 1, (2,), np.float32)})
    buffer = TeacherBuffer(observation_space=space, action_space=spaces.Discrete(5), capacity=8)
    batch = {"camera": np.full((3, 4, 4, 1), 7, np.uint8), "goal": np.ones((3, 2), np.float32)}
    assert buffer.add(batch, np.array([1, 2, 3])) == 3 and len(buffer) == 3
    assert buffer.toggle_recording() is False
    assert buffer.add(batch, np.array([4, 4, 4])) == 0 and len(buffer) == 3 and buffer.total_added == 3
    buffer.recording = True
    for _ in range(3):
        buffer.add(batch, np.array([4, 4, 4]))
    assert len(buffer) == 8 and buffer.total_added == 12  # a ring: the oldest went first
    obs, acts = buffer.sample(50, np.random.default_rng(0))
    assert obs["camera"].shape == (50, 4, 4, 1) and set(acts.tolist()) == {4}
    buffer.clear()
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1, np.random.default_rng(0))


class _ScriptedHelper:
    """The ball expert as teacher, with the Teacher Helper's controls used from code at set steps."""

    def __init__(self, actions: dict[int, str]) -> None:
        self.expert = expert_policy("ball")
        self.actions = actions
        self.calls = 0
        self.buffer: TeacherBuffer | None = None
        self.sizes: list[int] = []
        self.observations: list[np.ndarray] = []

    def attach(self, buffer: TeacherBuffer) -> None:
        self.buffer = buffer

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[Any, None]:
        assert self.buffer is not None
        self.sizes.append(len(self.buffer))
        self.observations.append(np.array(obs))
        action = self.actions.get(self.calls)
        if action == "pause":
            self.buffer.recording = False
        elif action == "resume":
            self.buffer.recording = True
        elif action == "clear":
            self.buffer.clear()
        elif action == "interrupt":
            signal.raise_signal(signal.SIGINT)  # what Ctrl+C does to the run
        self.calls += 1
        return self.expert.predict(obs)


def test_recording_toggle_and_clear_in_a_live_run() -> None:
    worker = teacher_student_worker({"scene": "ball", "scene_kwargs": LAYOUT, "seed": 3}, teacher_behavior="Teacher")
    try:
        assert worker.behaviors == ["Teacher?team=0", "Student?team=0"]
        teacher_slots, student_slots = worker.slots["Teacher?team=0"], worker.slots["Student?team=0"]
        assert len(teacher_slots) == 1 and len(student_slots) == 3
        space = student_slots.spec.observation_space()
        adapter = ObservationAdapter(space)
        policy = ActorCriticPolicy(space, student_slots.spec.action_space(), lambda _: 1e-3, net_arch=[16])
        teacher = _ScriptedHelper({20: "pause", 40: "resume", 50: "clear"})
        settings = parse_config({"default": _online(max_steps=70, summary_freq=1000)}).default
        online = OnlineBC(worker=worker, teacher=teacher, policy=policy, adapter=adapter, settings=settings, seed=0)
        online.run()
    finally:
        worker.close()
    sizes = teacher.sizes  # the buffer's size when the teacher decided at step i
    assert sizes[20] == 20 and sizes[40] == 20  # paused from step 20 to 39: the teacher acted, nothing was kept
    assert sizes[41] == 21 and sizes[50] == 30 and sizes[51] == 1  # recording again; cleared at step 50
    assert len(online.buffer) == 20 and online.buffer.total_added == 20 + 10 + 20
    assert online.steps == 70 and online.batches == 2 * 70


def test_ctrl_c_saves_the_policy(tmp_path: Path) -> None:
    config = parse_config({"Student": _online(max_steps=10**6)}, source="online.yaml")
    teacher = _ScriptedHelper({150: "interrupt"})
    result = train_online(config, run_id="stopped", results_dir=tmp_path, scene="ball", scene_kwargs=LAYOUT, teacher=teacher, progress=False)
    assert result.interrupted and result.evaluation is None
    assert teacher.calls == 150  # stopped in the step the signal came
    model = PPO.load(result.model_path, device="cpu")
    assert not (result.run_dir / "evaluation.json").exists()
    # saved as trained up to the stop: BC on the near-deterministic teacher shrank the action noise from its initial log-std 0
    assert float(model.policy.log_std.detach().max()) < -0.1
    assert teacher.observations and np.isfinite(model.predict(teacher.observations[-1], deterministic=True)[0]).all()


@pytest.mark.parametrize(
    ("section", "scene_kwargs", "message"),
    [
        (_online(brain_to_imitate=None), LAYOUT, r"section 'Student'\.brain_to_imitate: trainer 'online_bc' needs the teacher's behavior"),
        (_online(normalize=True), LAYOUT, r"\.normalize: trainer 'online_bc' learns live"),
        (_online(), {"max_steps": 300}, r"brain_to_imitate='Teacher' is not a behavior of the scene, whose behaviors are \['3DBall\?team=0'\]"),
        (_online(brain_to_imitate="Student"), LAYOUT, r"the student behavior 'Student\?team=0' is the teacher's"),
        (_online(teacher="no/such/model.zip"), LAYOUT, r"\.teacher: 'no/such/model.zip' is neither 'expert', 'human' nor an existing saved model"),
    ],
)
def test_refusals(tmp_path: Path, section: dict[str, Any], scene_kwargs: dict[str, Any], message: str) -> None:
    config = parse_config({"Student": section}, source="online.yaml")
    with pytest.raises(ConfigError, match=message):
        train_online(config, run_id="r", results_dir=tmp_path, scene="ball", scene_kwargs=scene_kwargs, progress=False)
    assert not (tmp_path / "r" / "model.zip").exists()


def test_a_scene_of_the_teacher_alone_is_refused(tmp_path: Path) -> None:
    config = parse_config({"default": _online(brain_to_imitate="3DBall")}, source="online.yaml")
    with pytest.raises(ConfigError, match=r"the scene has only the teacher behavior '3DBall\?team=0': online BC needs a student"):
        train_online(config, run_id="r", results_dir=tmp_path, scene="ball", scene_kwargs={"max_steps": 300}, progress=False)


@pytest.mark.parametrize("era", ["0.10", "0.4"])  # 0.4 zeroes the stored action when an agent resets
def test_students_learn_from_a_player_teacher_brain_of_a_seed_era_build(tmp_path: Path, era: str) -> None:
    """The seed's Teacher/Student setup: the build's Player brain plays (here the scene's own expert, standing in
    for a person at the keyboard); no action is sent for it, its stored actions are what the students learn."""
    config = parse_config({"Student": _online(teacher="human")}, source="online.yaml")  # the build plays: no window opens
    layout = {**LAYOUT, "protocol": era}
    result = train_online(config, run_id="player", results_dir=tmp_path, scene="ball", scene_kwargs=layout, progress=False)
    summary = json.loads((result.run_dir / "evaluation.json").read_text())
    assert result.behavior_name == "Student" and summary["teacher_behavior"] == "Teacher"
    assert summary["teacher_return"] == pytest.approx(30.0, abs=0.5)
    assert summary["teacher_pairs"] == 1200 - 4  # every step's pair but those of the 4 episode ends (300 steps each)
    assert result.evaluation is not None and result.evaluation.mean_return >= 0.9 * summary["teacher_return"]
