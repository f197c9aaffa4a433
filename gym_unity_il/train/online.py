"""Online behavioral cloning: a teacher plays while students learn from it, live, in one scene.

In one running scene (one :class:`~gym_unity_il.link.session.UnitySession`, driven by one
:class:`~gym_unity_il.envs.worker.SessionWorker`: :func:`teacher_student_worker`) the agents of
the teacher behavior (``brain_to_imitate``) are driven by a teacher (a scripted policy, a
saved model, or a human at the keyboard: :mod:`gym_unity_il.train.teacher`) and the
agents of the student behavior by the student policy. Every step, the teacher's
(observation, action) pairs go into a :class:`TeacherBuffer` and the student trains
``batches_per_epoch`` gradient batches of ``batch_size`` pairs drawn from it, with
`imitation`'s behavioral cloning loss, until ``max_steps`` steps. The students' returns
are shown on the progress bar and logged to TensorBoard and ``metrics.csv`` while they
learn.

The teacher may also be a brain the build decides itself: the Player "Teacher" brain of an
ML-Agents 0.4 ... 0.10 scene (Unity sends that brain's agents without letting Python
control them), played by a person in the Unity window. Then no action is sent for it: each
step, the action its agents report having carried out (``stored_actions``) is paired with
the observation they had before it, except at an episode's end, whose action builds before
0.8.2 replace by zeros when the agent resets.

The Teacher Helper's controls, from code or from the teacher's window:

* ``buffer.recording = False`` (key R toggles): the teacher keeps acting, the buffer stops
  growing; ``True`` resumes;
* ``buffer.clear()`` (key C): forget every demonstration so far.

Students and teacher act with their recurrent state carried per agent slot
(:class:`~gym_unity_il.train.teacher.CarriedState`), each slot's reset where its agent's
episode ends, so a teacher with memory (a saved recurrent model, a scripted teacher that
remembers) and students with memory (``memory`` in the config) act as they would in Unity.
Students with memory learn from whole episodes: the teacher's pairs are kept per teacher
agent in order, as :class:`TeacherEpisodes` (an episode joins when it ends), and each
batch is ``batch_size // sequence_length`` of those episodes run from their start with
:class:`~gym_unity_il.train.memory.SequenceCloning` (truncated backpropagation through
time: a gradient step per window of ``sequence_length`` steps, each counted as a batch).
There, recording off cuts the episodes under way (kept up to there) and recording resumes
with each teacher agent's next episode; clear drops the episodes under way too.

:class:`OnlineTrainer` is what ``gym-unity-il train`` runs for ``trainer: online_bc``
(:func:`train_online` with a teacher object of your own); the built-in scene ``ball``
offers the layout with ``scene_kwargs={"teacher_student": True}`` (behaviors ``Teacher``
with one agent and ``Student`` with ``num_agents``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from imitation.algorithms.bc import BehaviorCloningLossCalculator
from imitation.data import types

from gym_unity_il.envs.slots import SlotBatch, split_batch_actions
from gym_unity_il.envs.worker import SessionWorker, resolve_behavior
from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes.evaluate import Predictor
from gym_unity_il.spec import ActionSpec, BehaviorSpec
from gym_unity_il.train.config import RunConfig, TrainerSettings
from gym_unity_il.train.curriculum import Curriculum
from gym_unity_il.train.env import make_training_env
from gym_unity_il.train.memory import SequenceCloning, is_recurrent, sequences_per_update
from gym_unity_il.train.policies import ObservationAdapter, make_model
from gym_unity_il.train.progress import RunRecorder
from gym_unity_il.train.runner import Run, RunRequest, RunResult, Training, check_actions, run_training
from gym_unity_il.train.teacher import CarriedState, TeacherTrainer

logger = logging.getLogger(__name__)

#: Pairs a :class:`TeacherBuffer` keeps by default (the oldest are overwritten beyond it).
BUFFER_CAPACITY = 100_000
#: Finished episodes :attr:`EpisodeReturns.mean` is taken over (``evaluation.json``'s ``teacher_return``).
RETURN_WINDOW = 20


class _RecordingSwitch:
    """The record key of the teacher window: :attr:`recording` and :meth:`toggle_recording`
    (a subclass reacts to a change in :meth:`_switch`)."""

    _recording: bool

    @property
    def recording(self) -> bool:
        """Whether what the teacher does is kept (key R of the teacher window toggles it)."""
        return self._recording

    @recording.setter
    def recording(self, value: bool) -> None:
        self._switch(bool(value))
        self._recording = bool(value)

    def _switch(self, value: bool) -> None:
        """Called before recording turns ``value``; nothing by default."""

    def toggle_recording(self) -> bool:
        """Pauses or resumes recording; returns the new state."""
        self.recording = not self._recording
        return self._recording


class TeacherBuffer(_RecordingSwitch):
    """The teacher's (observation, action) pairs the students learn from.

    A ring buffer over env observations (an array, or a mapping of arrays for several
    sensors) and actions in the env's gymnasium form; when full, the oldest pairs go first.

    Args:
        observation_space: the teacher behavior's observation space (Box or Dict).
        action_space: its action space (Box, Discrete or MultiDiscrete).
        capacity: the most pairs kept.
        recording: start recording (True) or paused.
    """

    def __init__(self, *, observation_space: spaces.Space, action_space: spaces.Space, capacity: int = BUFFER_CAPACITY, recording: bool = True) -> None:
        if capacity < 1:
            raise ConfigError(f"TeacherBuffer capacity must be at least 1, got {capacity}")
        subspaces = observation_space.spaces if isinstance(observation_space, spaces.Dict) else {"": observation_space}
        self._keyed = isinstance(observation_space, spaces.Dict)
        self._obs = {k: np.zeros((capacity, *s.shape), s.dtype) for k, s in subspaces.items()}
        self._acts = np.zeros((capacity, *action_space.shape), action_space.dtype)
        self.capacity = capacity
        self._size = 0
        self._next = 0
        self._recording = bool(recording)
        #: pairs added since construction (clearing does not reset it)
        self.total_added = 0

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        """Forgets every pair (key C of the teacher window)."""
        self._size = 0
        self._next = 0

    def add(self, observations: Any, actions: Any) -> int:
        """Adds a batch of pairs (leading axis) when recording; returns how many were added."""
        if not self._recording:
            return 0
        parts = dict(observations) if self._keyed else {"": observations}
        acts = np.asarray(actions).reshape(-1, *self._acts.shape[1:])
        n = len(acts)
        rows = (self._next + np.arange(n)) % self.capacity
        for key, store in self._obs.items():
            store[rows] = np.asarray(parts[key]).reshape(n, *store.shape[1:])
        self._acts[rows] = acts
        self._next = int((self._next + n) % self.capacity)
        self._size = min(self.capacity, self._size + n)
        self.total_added += n
        return n

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        """``batch_size`` pairs drawn uniformly with replacement: ``(observations, actions)``.

        Raises:
            ValueError: the buffer is empty.
        """
        if self._size == 0:
            raise ValueError("the teacher buffer is empty: nothing to sample")
        rows = rng.integers(0, self._size, batch_size)
        obs = {k: v[rows] for k, v in self._obs.items()}
        return (obs if self._keyed else obs[""]), self._acts[rows]


class TeacherEpisodes(_RecordingSwitch):
    """The teacher's (observation, action) pairs as whole episodes in order, what students with
    memory learn from (:class:`~gym_unity_il.train.memory.SequenceCloning`).

    One episode is under way per teacher slot; :meth:`add` records a step of every slot,
    and an episode joins the kept ones when :meth:`end` says it ended (or a new episode
    begins in its slot). Every kept episode starts at its episode's first step: a policy
    with memory learns each step with the memory of everything before it.

    The Teacher Helper's controls keep their meaning. Recording off (``recording = False``,
    key R): the episodes under way are cut there and kept up to there (their steps so far
    are right, with the memory they had), and nothing is recorded until recording is on
    again; then each slot's recording begins with its next episode (the rest of an episode
    under way would lack its beginning). :meth:`clear` (key C) drops the kept episodes and
    those under way, which are not recorded further for the same reason.

    Args:
        slots: the teacher behavior's agent slots.
        adapt: turns a batch of env observations into the students' (their
            :class:`~gym_unity_il.train.policies.ObservationAdapter`), once per episode as it
            is kept; None: kept as the env gives them.
        capacity: the most pairs kept; beyond it the oldest episodes go first (the newest stays).
        recording: start recording (True) or paused.
    """

    def __init__(self, *, slots: int, adapt: Callable[[Any], Any] | None = None, capacity: int = BUFFER_CAPACITY, recording: bool = True) -> None:
        if capacity < 1:
            raise ConfigError(f"TeacherEpisodes capacity must be at least 1, got {capacity}")
        self.adapt = adapt
        self.capacity = capacity
        #: the kept episodes, oldest first: `imitation` trajectories (the final observation repeats the last one)
        self.episodes: list[types.Trajectory] = []
        self._open: list[list[tuple[Any, np.ndarray]] | None] = [None] * slots  # each slot's episode under way (None: not recorded)
        self._size = 0
        self._recording = bool(recording)
        #: pairs recorded since construction (clearing does not reset it)
        self.total_added = 0

    def __len__(self) -> int:
        """Pairs in the kept episodes."""
        return self._size

    def _switch(self, value: bool) -> None:
        if self._recording and not value:
            for row in range(len(self._open)):
                self._finish(row)  # cut here, kept up to here

    def clear(self) -> None:
        """Drops every kept episode and those under way (key C of the teacher window)."""
        self.episodes.clear()
        self._open = [None] * len(self._open)
        self._size = 0

    def add(self, observations: Any, actions: Any, live: np.ndarray, starts: np.ndarray) -> int:
        """Records one step of the teacher slots when recording; returns the pairs added.

        Args:
            observations: every slot's observation (leading axis: slots), as the env gives them.
            actions: every slot's action.
            live: ``bool [slots]``, the slots whose pair is recorded (an agent in the slot).
            starts: ``bool [slots]``, the slots whose episode begins with this observation:
                an episode under way there is kept, and a new one begins (when recording).
        """
        for row in np.flatnonzero(starts):
            self._finish(int(row))
            if self._recording:
                self._open[row] = []
        rows = [int(r) for r in np.flatnonzero(live) if self._open[r] is not None]
        acts = np.asarray(actions)
        for row in rows:
            step = {k: np.asarray(v[row]) for k, v in observations.items()} if isinstance(observations, Mapping) else np.asarray(observations[row])
            self._open[row].append((step, acts[row]))  # type: ignore[union-attr]
        self.total_added += len(rows)
        return len(rows)

    def end(self, rows: np.ndarray) -> None:
        """The episodes of these slots ended: they join the kept episodes."""
        for row in rows:
            self._finish(int(row))

    def _finish(self, row: int) -> None:
        steps, self._open[row] = self._open[row], None
        if not steps:
            return
        first = steps[0][0]
        if isinstance(first, dict):
            obs: Any = {k: np.stack([o[k] for o, _ in steps] + [steps[-1][0][k]]) for k in first}
        else:
            obs = np.stack([o for o, _ in steps] + [steps[-1][0]])
        if self.adapt is not None:
            obs = self.adapt(obs)
        obs = types.DictObs(dict(obs)) if isinstance(obs, Mapping) else obs
        self.episodes.append(types.Trajectory(obs=obs, acts=np.stack([a for _, a in steps]), infos=None, terminal=True))
        self._size += len(steps)
        while self._size > self.capacity and len(self.episodes) > 1:
            self._size -= len(self.episodes.pop(0).acts)

    def sample(self, count: int, rng: np.random.Generator) -> list[types.Trajectory]:
        """``count`` different kept episodes at random (all of them when fewer are kept).

        Raises:
            ValueError: no episode is kept.
        """
        if not self.episodes:
            raise ValueError("no teacher episode is kept yet: nothing to sample")
        chosen = rng.choice(len(self.episodes), size=min(count, len(self.episodes)), replace=False)
        return [self.episodes[i] for i in chosen]


def episode_starts(batch: SlotBatch, agents_before: np.ndarray) -> np.ndarray:
    """``bool [slots]``: the slots whose observation in ``batch`` begins an episode (the
    previous one ended in the step, or another agent took the slot)."""
    return np.asarray(batch.done, bool) | (batch.agent_id != agents_before)


def observation_of(arrays: tuple[np.ndarray, ...], spec: BehaviorSpec) -> Any:
    """A batch of observations as the env returns them: the one sensor's array, else a dict by sensor name."""
    if len(arrays) == 1:
        return arrays[0]
    return collections.OrderedDict(zip(spec.observation_keys, arrays))


def teacher_student_worker(session_kwargs: Mapping[str, Any], *, teacher_behavior: str,
                           student_behavior: str | None = None) -> SessionWorker:  # fmt: skip
    """A worker (:meth:`SessionWorker.open <gym_unity_il.envs.worker.SessionWorker.open>`)
    driving every agent of a teacher behavior and of a student behavior of one Unity
    process: ``worker.behaviors`` is ``[teacher, student]`` (fully qualified).

    Each behavior's agents sit in fixed slots (as in :class:`~gym_unity_il.envs.UnityVecEnv`:
    an agent whose episode ends goes on in its slot with its next episode); one step takes
    one action per slot of each behavior and runs until every slot has its next decision.

    Args:
        session_kwargs: the session's arguments (the scene or build, seed, ...).
        teacher_behavior: the teacher's behavior (``brain_to_imitate``), with or without ``?team=N``.
        student_behavior: the students' behavior (None: the first other behavior).

    Raises:
        ConfigError: a behavior is not in the scene, or the two are the same.
        AgentNeverDecidesError: no agent of one of them asked for a decision after the reset.
    """

    def teacher_and_student(specs: Mapping[str, BehaviorSpec]) -> list[str]:
        try:
            teacher = resolve_behavior(specs, teacher_behavior)
        except ConfigError:
            raise ConfigError(
                f"brain_to_imitate={teacher_behavior!r} is not a behavior of the scene, whose behaviors are {list(specs)}; "
                "name the teacher's behavior (the built-in 'ball' has Teacher and Student with scene_kwargs {\"teacher_student\": true})"
            ) from None
        if student_behavior is None and len(specs) == 1:
            raise ConfigError(f"the scene has only the teacher behavior {teacher!r}: online BC needs a student behavior too")
        student = resolve_behavior(specs, student_behavior, exclude=[teacher])
        if student == teacher:
            raise ConfigError(f"the student behavior {student!r} is the teacher's (brain_to_imitate): choose another behavior to train")
        return [teacher, student]

    return SessionWorker.open(session_kwargs, behaviors=teacher_and_student, observe_unity_decided=True)


class EpisodeReturns:
    """Running returns of a set of slots, and the returns of their finished episodes: the last
    ``window`` (:attr:`mean`) and those that ended since the last row (:meth:`take`)."""

    def __init__(self, n: int, window: int = RETURN_WINDOW) -> None:
        self.running = np.zeros(n)
        self.finished: collections.deque[float] = collections.deque(maxlen=window)
        self.episodes = 0
        self.unreported: list[float] = []

    def add(self, batch: SlotBatch) -> list[float]:
        """Adds a step's rewards; returns the returns of the episodes it ended."""
        self.running += batch.reward
        ended = []
        for row in batch.terminal_rows:
            ended.append(float(self.running[row]))
            self.running[row] = 0.0
            self.episodes += 1
        self.finished.extend(ended)
        self.unreported.extend(ended)
        return ended

    @property
    def mean(self) -> float | None:
        """Mean of the last finished episodes (None before the first ends)."""
        return float(np.mean(self.finished)) if self.finished else None

    def take(self) -> list[float]:
        """The returns of the episodes that ended since the last call."""
        taken, self.unreported = self.unreported, []
        return taken


class OnlineBC:
    """The online loop: teacher acts and is recorded, students act and learn, every step.

    Args:
        worker: drives the scene's teacher and student agents, teacher first
            (:func:`teacher_student_worker`).
        teacher: drives the teacher agents (SB3's ``predict`` on a batch of env observations);
            None when the build decides the teacher's behavior itself (a 0.x Player brain).
        policy: the students' SB3 ``ActorCriticPolicy`` (or sb3-contrib's
            ``RecurrentActorCriticPolicy``), trained in place.
        adapter: turns env observations into the policy's (:class:`~gym_unity_il.train.policies.ObservationAdapter`).
        settings: ``batch_size``, ``learning_rate``, ``batches_per_epoch`` (default 1),
            ``max_steps``, ``ent_weight``, ``l2_weight``, ``summary_freq`` (with memory,
            ``memory.sequence_length`` too).
        buffer: the teacher's pairs (default: a new :class:`TeacherBuffer`, or for a
            policy with memory a new :class:`TeacherEpisodes`).
        seed: seeds the batch sampler and the scene's first reset.
        logger: an `imitation` / SB3 logger (TensorBoard), or None.
        curriculum: the config's environment parameters (:class:`~gym_unity_il.train.curriculum.Curriculum`),
            sent before the first reset and moved on by the students' episodes and the steps.
    """

    name = "online_bc"

    def __init__(
        self,
        *,
        worker: SessionWorker,
        teacher: Predictor | None,
        policy: Any,
        adapter: Any,
        settings: TrainerSettings,
        buffer: TeacherBuffer | None = None,
        seed: int = 0,
        logger: Any = None,
        curriculum: Curriculum | None = None,
    ) -> None:
        self.worker = worker
        self.curriculum = curriculum
        self.teacher_behavior, self.student_behavior = worker.behaviors
        teacher_slots, student_slots = worker.slots[self.teacher_behavior], worker.slots[self.student_behavior]
        self.teacher = teacher
        self.policy = policy
        self.adapter = adapter
        self.settings = settings
        spec, session = teacher_slots.spec, worker.session
        if not session.takes_actions(self.student_behavior):
            raise ConfigError(f"the students' behavior {self.student_behavior!r} is decided by the build itself: choose a behavior Python controls")
        #: Whether the build decides the teacher's actions (read back as stored actions).
        self.unity_teacher = not session.takes_actions(self.teacher_behavior)
        if (teacher is None) != self.unity_teacher:
            raise ConfigError(
                f"the teacher behavior {self.teacher_behavior!r} is decided by the build itself: give no teacher"
                if self.unity_teacher
                else f"the teacher behavior {self.teacher_behavior!r} needs a teacher to drive it"
            )
        recurrent = is_recurrent(policy)
        if buffer is not None and isinstance(buffer, TeacherEpisodes) != recurrent:
            wanted = "TeacherEpisodes: a student with memory learns from whole episodes" if recurrent else "TeacherBuffer: a student without memory learns from pairs"
            raise ConfigError(f"buffer: give a {wanted}, not a {type(buffer).__name__} (or give no buffer)")
        self.buffer: TeacherBuffer | TeacherEpisodes = buffer or (
            TeacherEpisodes(slots=len(teacher_slots), adapt=adapter)
            if recurrent
            else TeacherBuffer(observation_space=spec.observation_space(session.image_format), action_space=spec.action_space())
        )
        attach = getattr(teacher, "attach", None)
        if callable(attach):
            attach(self.buffer)  # the teacher's window gets the R and C keys
        show_scene = getattr(teacher, "show_scene", None)
        if callable(show_scene) and session.scene_pictures is not None:
            show_scene(session.scene_pictures, int(teacher_slots.agent[0]))  # the window shows the scene
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.logger = logger
        self.loss = BehaviorCloningLossCalculator(ent_weight=settings.ent_weight, l2_weight=settings.l2_weight)
        #: a student with memory learns with sequence cloning, over groups of whole teacher episodes
        self.cloning = SequenceCloning(policy=policy, trajectories=[], settings=settings, rng=self.rng) if recurrent else None
        self.optimizer = self.cloning.optimizer if self.cloning is not None else th.optim.Adam(policy.parameters(), lr=settings.learning_rate)
        #: the students and the teacher act with their recurrent state carried per agent slot
        self.student_state = CarriedState(policy, len(student_slots))
        self.teacher_state = CarriedState(teacher, len(teacher_slots)) if teacher is not None else None
        self.steps = 0
        self.batches = 0
        self.student_returns = EpisodeReturns(len(student_slots))
        self.teacher_returns = EpisodeReturns(len(teacher_slots))
        self.last_loss = float("nan")

    def train_batch(self) -> float:
        """One gradient step on a batch from the buffer; returns the loss. With memory, a
        batch is ``batch_size // sequence_length`` (at least one) whole teacher episodes,
        run window by window: a gradient step per window of ``sequence_length`` steps."""
        if self.cloning is not None:
            return self._train_sequences()
        assert isinstance(self.buffer, TeacherBuffer)
        obs, acts = self.buffer.sample(self.settings.batch_size, self.rng)
        self.policy.set_training_mode(True)
        metrics = self.loss(self.policy, self.adapter(types.DictObs(obs) if isinstance(obs, Mapping) else obs), acts)
        self.optimizer.zero_grad()
        metrics.loss.backward()
        self.optimizer.step()
        self.policy.set_training_mode(False)
        self.batches += 1
        return float(metrics.loss.item())

    def _train_sequences(self) -> float:
        assert self.cloning is not None and isinstance(self.buffer, TeacherEpisodes)
        loss, updates = self.cloning.train_group(self.buffer.sample(sequences_per_update(self.settings), self.rng))
        self.policy.set_training_mode(False)
        self.batches += updates
        return loss

    def run(self, recorder: RunRecorder | None = None) -> None:
        """Plays and learns until ``max_steps`` steps (continuing from :attr:`steps`).

        A ``KeyboardInterrupt`` (Ctrl+C) propagates after the step in progress; the
        policy keeps what it learned so far.
        """
        settings = self.settings
        per_step = settings.batches_per_epoch if settings.batches_per_epoch is not None else 1
        t_name, s_name = self.teacher_behavior, self.student_behavior
        t_spec, s_spec = self.worker.slots[t_name].spec, self.worker.slots[s_name].spec
        if self.curriculum is not None:
            self.worker.set_env_parameters(self.curriculum.values())
        batches = self.worker.reset(seed=self.seed).batches
        teacher_batch, student_batch = batches[t_name], batches[s_name]
        teacher_starts = self._begin_episodes(teacher_batch)
        bar = recorder.bar(self.name, total=settings.max_steps, initial=self.steps, unit="step") if recorder is not None else None
        try:
            while self.steps < settings.max_steps:
                teacher_obs = observation_of(teacher_batch.obs, t_spec)
                student_obs = observation_of(student_batch.obs, s_spec)
                student_actions = self.student_state.predict(self.adapter(student_obs), deterministic=True)
                live = teacher_batch.agent_id >= 0
                if self.teacher_state is None:  # the build decides: its actions are read back after the step
                    teacher_pair = self.worker.slots[t_name].zero_actions()
                else:
                    teacher_actions = self.teacher_state.predict(teacher_obs, deterministic=True)
                    self._record(teacher_obs, teacher_actions, live, teacher_starts)
                    teacher_pair = split_batch_actions(teacher_actions, t_spec, len(teacher_batch.agent_id))
                actions = {t_name: teacher_pair, s_name: split_batch_actions(student_actions, s_spec, len(student_batch.agent_id))}
                before = teacher_batch.agent_id, student_batch.agent_id
                batches = self.worker.step(actions).batches
                teacher_batch, student_batch = batches[t_name], batches[s_name]
                if self.teacher is None and teacher_batch.stored_actions is not None:
                    ends = teacher_batch.done  # an episode's last action: zeros on builds before 0.8.2
                    self._record(teacher_obs, env_actions(teacher_batch.stored_actions, t_spec.action_spec), live & ~ends, teacher_starts)
                teacher_starts = self._next_episodes(teacher_batch, student_batch, before)
                self.teacher_returns.add(teacher_batch)
                ended = self.student_returns.add(student_batch)
                if self.curriculum is not None and self._next_lesson(ended):
                    batches = self.worker.reset().batches  # a lesson asked for it: the episodes under way end here
                    teacher_batch, student_batch = batches[t_name], batches[s_name]
                    teacher_starts = self._begin_episodes(teacher_batch)
                    self.teacher_returns.running[:] = self.student_returns.running[:] = 0.0
                if len(self.buffer):
                    for _ in range(per_step):
                        self.last_loss = self.train_batch()
                self.steps += 1
                if bar is not None:
                    bar.update(1)
                if self.steps % settings.summary_freq == 0 or self.steps == settings.max_steps:
                    self._summary(recorder)
        finally:
            if bar is not None:
                bar.close()

    def _next_lesson(self, ended: list[float]) -> bool:
        """Moves the curriculum on by this step (the students' episodes that ended); sends the
        values of lessons that begin and returns whether one asks for a reset."""
        assert self.curriculum is not None
        change = self.curriculum.update(self.steps + 1, ended)
        if self.logger is not None:
            self.curriculum.record(self.logger)
        if change is None:
            return False
        self.worker.set_env_parameters(change.values)
        return change.reset

    def _begin_episodes(self, teacher: SlotBatch) -> np.ndarray:
        """After a reset: every slot's episode begins (the teacher's episodes under way end
        here). Returns the teacher slots' episode starts."""
        if isinstance(self.buffer, TeacherEpisodes):
            self.buffer.end(np.arange(len(teacher.agent_id)))
        for carried in (self.student_state, self.teacher_state):
            if carried is not None:
                carried.restart()
        return np.ones(len(teacher.agent_id), bool)

    def _next_episodes(self, teacher: SlotBatch, student: SlotBatch, before: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """After a step: the teacher's episodes that ended are kept, and the slots whose next
        observation begins an episode start from a fresh state. Returns the teacher slots' episode starts."""
        teacher_starts, student_starts = episode_starts(teacher, before[0]), episode_starts(student, before[1])
        if isinstance(self.buffer, TeacherEpisodes):
            self.buffer.end(teacher.terminal_rows)
        self.student_state.restart(student_starts)
        if self.teacher_state is not None:
            self.teacher_state.restart(teacher_starts)
        return teacher_starts

    def _record(self, obs: Any, actions: Any, live: np.ndarray, starts: np.ndarray) -> None:
        """Adds the teacher's pairs of the slots with an agent (``starts``: the slots whose episode begins with ``obs``)."""
        if isinstance(self.buffer, TeacherEpisodes):
            self.buffer.add(obs, actions, live, starts)
        elif live.all():
            self.buffer.add(obs, actions)
        elif live.any():
            self.buffer.add(_rows(obs, live), np.asarray(actions)[live])

    def _summary(self, recorder: RunRecorder | None) -> None:
        student, teacher = self.student_returns.take(), self.teacher_returns.take()  # the episodes that ended since the last row
        if self.logger is not None:
            self.logger.record("online/buffer_size", len(self.buffer))
            self.logger.record("online/recording", int(self.buffer.recording))
            self.logger.record("online/loss", self.last_loss)
            if teacher:
                self.logger.record("online/teacher_return", float(np.mean(teacher)))
            if student:
                self.logger.record("online/student_return", float(np.mean(student)))
        if recorder is not None:
            recorder.summary(self.name, self.steps, student)
        if self.logger is not None:
            self.logger.dump(self.steps)

    def state(self) -> dict[str, Any]:
        return {"steps": self.steps, "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.optimizer.load_state_dict(state["optimizer"])


def env_actions(pair: tuple[np.ndarray, np.ndarray], spec: ActionSpec) -> Any:
    """A batch of ``(continuous [n, c], discrete [n, d])`` actions in the env's action space:
    the inverse of :func:`~gym_unity_il.envs.slots.split_batch_actions`."""
    continuous, discrete = pair
    if spec.is_hybrid:
        return {"continuous": continuous, "discrete": discrete}
    if spec.continuous_size:
        return continuous
    return discrete[:, 0] if spec.discrete_size == 1 else discrete


def _rows(obs: Any, keep: np.ndarray) -> Any:
    if isinstance(obs, Mapping):
        return {k: np.asarray(v)[keep] for k, v in obs.items()}
    return np.asarray(obs)[keep]


# ---------------------------------------------------------------------------- a whole run


class OnlineTrainer(TeacherTrainer):
    """``online_bc`` as :func:`~gym_unity_il.train.runner.run_training` runs it: the students of
    the trained behavior learn from the teacher of ``brain_to_imitate`` (``teacher``, else the
    config's ``teacher``); the policy is evaluated on a second process of the same scene."""

    names = ("online_bc",)

    def start(self, run: Run) -> Training:
        request, first = run.request, run.request.settings
        self.check(first, request.where())  # the settings the run starts with name the teacher's behavior
        with contextlib.ExitStack() as teaching:
            worker = teacher_student_worker({**request.env_source, "seed": request.seed}, teacher_behavior=first.brain_to_imitate or "",
                                            student_behavior=request.behavior_name)  # fmt: skip
            teaching.callback(worker.close)
            teacher_behavior, student = worker.behaviors
            teacher_spec, student_spec = worker.slots[teacher_behavior].spec, worker.slots[student].spec
            settings, where = request.config.for_behavior(student), request.where(student)
            self.check(settings, where)
            check_actions(settings, student_spec, where)
            if teacher_spec.observation_specs != student_spec.observation_specs or teacher_spec.action_spec != student_spec.action_spec:
                raise ConfigError(
                    f"{where}: the teacher {teacher_spec.describe()} and the students {student_spec.describe()} must see and act alike "
                    "for the students to learn from the teacher"
                )
            unity_teacher = not worker.session.takes_actions(teacher_behavior)  # a 0.x Player brain plays in the build
            if unity_teacher:
                logger.info("%s: the build decides %r itself (a Player brain); the students learn from its actions, teacher: is not used",
                            where, teacher_behavior)  # fmt: skip
            teacher = None if unity_teacher else self.open_teacher(settings, teacher_spec, scene=request.scene, where=where, teaching=teaching)
            venv, _ = make_training_env(**request.env_source, behavior_name=student, seed=request.seed + 1)
            try:
                adapter = ObservationAdapter(venv.observation_space)
                policy_venv = adapter.wrap(venv)
                model = make_model(settings, policy_venv, adapter, seed=request.seed, logger=run.logger)
                curriculum = None
                if request.config.environment_parameters:
                    curriculum = Curriculum(request.config.environment_parameters, behavior=student, max_steps=settings.max_steps, seed=request.seed,
                                            behaviors=list(request.config.behaviors), where=request.config.source)  # fmt: skip
                online = OnlineBC(worker=worker, teacher=teacher, policy=model.policy, adapter=adapter, settings=settings,
                                  seed=request.seed, logger=run.logger, curriculum=curriculum)  # fmt: skip
            except BaseException:
                venv.close()
                raise

            def summary() -> dict[str, Any]:
                return {"teacher_behavior": teacher_behavior, "env_steps": online.steps, "teacher_pairs": online.buffer.total_added,
                        "gradient_batches": online.batches, "teacher_return": online.teacher_returns.mean}  # fmt: skip

            return Training(student, settings, model, policy_venv, adapter.observation_layout, [online], summary, teaching.pop_all())


def train_online(
    config: RunConfig | str | os.PathLike[str],
    *,
    run_id: str,
    results_dir: str | os.PathLike[str] = "results",
    file_name: str | os.PathLike[str] | None = None,
    scene: str | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    teacher: Predictor | None = None,
    seed: int = 0,
    progress: bool = True,
) -> RunResult:
    """One ``online_bc`` run: results in ``results_dir/run_id`` like :func:`~gym_unity_il.train.train`.

    The teacher drives the ``brain_to_imitate`` behavior; the students are
    ``behavior_name`` (else the config's only behavior section, else the first other
    behavior). The students' policy is saved as ``model.zip`` (``PPO.load``; with ``memory``, ``RecurrentPPO.load``) at the end
    and on Ctrl+C, and evaluated on ``eval_episodes`` episodes of a second process of
    the same scene.

    Args:
        config: a :class:`RunConfig` or a YAML file.
        run_id: the run folder's name.
        results_dir: where run folders go.
        file_name: a Unity build (else the built-in ``scene``).
        scene: a built-in scene (default ``"ball"``).
        scene_kwargs: its arguments (``ball`` needs ``{"teacher_student": True}``).
        behavior_name: the student behavior.
        teacher: a policy with SB3's ``predict`` (default: the config's ``teacher``).
        seed: seeds torch, NumPy, the scene and the evaluation.
        progress: show the progress bar.

    Returns:
        A :class:`~gym_unity_il.train.runner.RunResult` (``interrupted`` after Ctrl+C, with the model saved).
    """
    request = RunRequest.make(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                              behavior_name=behavior_name, seed=seed, progress=progress)  # fmt: skip
    return run_training(OnlineTrainer(teacher), request)
