"""DAgger with a teacher as the expert, over ``UnityIL-v0`` or every agent of a behavior.

`imitation`'s :class:`~imitation.algorithms.dagger.SimpleDAggerTrainer` runs the rounds:
in round 0 the teacher drives and labels; from round 1 on the student drives (``beta``
is 1 in round 0 and 0 after, the schedule of Ross et al.'s analysis), the teacher
labels every state the student reaches, and the student is trained again with BC on
every label so far. That is the cure for behavioral cloning's drift: the student
learns what to do in the states its own mistakes lead to.

The teacher is anything with SB3's ``predict`` over env observations (a scripted expert,
a saved model, a :class:`~gym_unity_il.train.teacher.HumanTeacher`); images reach it in
the env's own layout even though the student's policy sees them transposed. It labels
every observation of every episode, whoever drives, so a teacher with memory (one that
returns a state, as the "hallway" expert does) gets its state back at its next call,
reset where that sub-env's episode ends (`imitation`'s rollout carries it).

A student with memory (``memory`` in the config: sb3-contrib's recurrent policy) cannot go
through `imitation`'s DAgger, whose collector asks the student without its state and whose
BC takes one transition at a time. Its rounds have the same meaning and run here: the
round's env is :class:`StudentDriven` (the student's state carried per sub-env and reset
where that sub-env's episode ends), a round is whole episodes of at least
``dagger_round_steps`` steps (saved to ``scratch_dir/demos/round-NNN``), and after it
``num_epoch`` epochs of :class:`~gym_unity_il.train.memory.SequenceCloning` run over every
labelled episode so far (demonstrations, when given, join round 0).

* :func:`run_dagger`: the rounds on any VecEnv (e.g. a ``DummyVecEnv`` of ``UnityIL-v0``);
  `imitation`'s collector takes array observations only, so several sensors are packed
  into one vector (:class:`~gym_unity_il.train.policies.ObservationAdapter` with ``pack``);
* :class:`DaggerTrainer`: what ``gym-unity-il train`` runs for ``trainer: dagger``
  (:func:`train_dagger` with a teacher object of your own).
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from imitation.algorithms import bc
from imitation.data import rollout, types
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, read_demonstrations
from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes.evaluate import Predictor
from gym_unity_il.train.config import RunConfig, TrainerSettings
from gym_unity_il.train.curriculum import attach_environment_parameters
from gym_unity_il.train.env import make_training_env
from gym_unity_il.train.memory import SequenceCloning, is_recurrent
from gym_unity_il.train.policies import ObservationAdapter, make_model
from gym_unity_il.train.progress import RunRecorder
from gym_unity_il.train.runner import Run, RunRequest, RunResult, Training, check_actions, run_training
from gym_unity_il.train.teacher import CarriedState, TeacherTrainer

#: BC epochs after each round when ``num_epoch`` is null.
DAGGER_EPOCHS = 4


def first_round_only(round_num: int) -> float:
    """The beta schedule: the teacher drives round 0, the student every later round."""
    return 1.0 if round_num == 0 else 0.0


class AdaptedTeacher:
    """A teacher of env observations made to take the policy's (CHW images back to HWC).

    `imitation`'s DAgger gives the expert what the student sees; this undoes the
    :class:`~gym_unity_il.train.policies.ObservationAdapter` for the teacher.

    Args:
        teacher: reads env observations.
        adapter: the student's adapter.
        action_space: the env's action space.
    """

    def __init__(self, teacher: Predictor, adapter: ObservationAdapter, action_space: spaces.Space) -> None:
        self.teacher = teacher
        self.adapter = adapter
        self.observation_space = adapter.space
        self.action_space = action_space

    def to_env(self, obs: Any) -> Any:
        """Policy observations back in the env's layout."""
        return self.adapter.observation_layout.to_env(obs.unwrap() if isinstance(obs, types.DictObs) else obs)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[Any, Any]:
        return self.teacher.predict(self.to_env(observation), state, episode_start, deterministic)

    def __call__(self, observations: Any, states: Any, episode_starts: Any) -> tuple[Any, Any]:
        """The policy-callable form of ``imitation.data.rollout``."""
        return self.predict(observations, states, episode_starts)


class StudentDriven(VecEnvWrapper):
    """The env of a DAgger round: each step, every sub-env carries out the teacher's action
    (the one given to ``step``) with probability ``beta``, else the student's.

    The student decides every step, whoever drives, with its recurrent state carried per
    sub-env (:class:`~gym_unity_il.train.teacher.CarriedState`) and reset where that
    sub-env's episode ends; with ``beta`` 1 it is not asked at all. Its actions are sampled
    (``deterministic=False``), as `imitation`'s collector asks a feed-forward student.

    Args:
        venv: the env in the policy's observations.
        student: the student's policy.
        beta: the chance the teacher's action is carried out.
        rng: draws whose action each sub-env carries out.
    """

    def __init__(self, venv: VecEnv, student: Any, beta: float, rng: np.random.Generator) -> None:
        super().__init__(venv)
        self.student = CarriedState(student, venv.num_envs)
        self.beta = beta
        self.rng = rng
        self.obs: Any = None

    def reset(self) -> Any:
        self.obs = self.venv.reset()
        self.student.restart()
        return self.obs

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.array(actions)
        if self.beta < 1.0:
            student = self.student.predict(self.obs, deterministic=False)
            takes = self.rng.uniform(0, 1, self.num_envs) > self.beta
            actions[takes] = np.asarray(student)[takes]
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        self.obs, rewards, dones, infos = self.venv.step_wait()
        self.student.restart(np.asarray(dones, bool))
        return self.obs, rewards, dones, infos


class _ImitationRounds:
    """The rounds of a feed-forward student: `imitation`'s DAgger trainer (its collector and its BC)."""

    def __init__(self, *, venv: VecEnv, expert: AdaptedTeacher, policy: Any, settings: TrainerSettings, scratch_dir: str | os.PathLike[str],
                 logger: Any, rng: np.random.Generator, demonstrations: Sequence[Any] | None) -> None:  # fmt: skip
        from imitation.algorithms import dagger

        trainer_bc = bc.BC(
            observation_space=venv.observation_space, action_space=venv.action_space, rng=rng, policy=policy, batch_size=settings.batch_size,
            optimizer_kwargs={"lr": settings.learning_rate}, ent_weight=settings.ent_weight, l2_weight=settings.l2_weight, device=policy.device,
            custom_logger=logger,
        )  # fmt: skip
        self.trainer = dagger.SimpleDAggerTrainer(
            venv=venv, scratch_dir=scratch_dir, expert_policy=expert, rng=rng, expert_trajs=demonstrations, beta_schedule=first_round_only,
            bc_trainer=trainer_bc, custom_logger=logger,
        )  # fmt: skip
        self.expert = expert

    @property
    def round_num(self) -> int:
        return self.trainer.round_num

    def collect(self, until: Callable[[Sequence[Any]], bool]) -> Sequence[Any]:
        collector = self.trainer.create_trajectory_collector()
        return rollout.generate_trajectories(policy=self.expert, venv=collector, sample_until=until, rng=collector.rng)

    def update(self, epochs: int) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
            self.trainer.extend_and_update({"n_epochs": epochs, "progress_bar": False, "log_rollouts_venv": None})


class _SequenceRounds:
    """The rounds of a student with memory: the episodes of a round driven by :class:`StudentDriven`,
    labelled by the teacher through `imitation`'s rollout (which carries the teacher's state), saved
    to ``scratch_dir/demos/round-NNN`` and learnt with :class:`~gym_unity_il.train.memory.SequenceCloning`."""

    def __init__(self, *, venv: VecEnv, expert: AdaptedTeacher, policy: Any, settings: TrainerSettings, scratch_dir: str | os.PathLike[str],
                 logger: Any, rng: np.random.Generator, demonstrations: Sequence[Any] | None) -> None:  # fmt: skip
        self.venv = venv
        self.expert = expert
        self.policy = policy
        self.scratch_dir = Path(scratch_dir)
        self.rng = rng
        self.logger = logger
        self.cloning = SequenceCloning(policy=policy, trajectories=demonstrations or [], settings=settings, rng=rng, logger=logger)
        self.round_num = 0

    def collect(self, until: Callable[[Sequence[Any]], bool]) -> Sequence[Any]:
        from imitation.data import serialize

        venv = StudentDriven(self.venv, self.policy, first_round_only(self.round_num), self.rng)
        trajectories = rollout.generate_trajectories(policy=self.expert, venv=venv, sample_until=until, rng=self.rng)
        serialize.save(self.scratch_dir / "demos" / f"round-{self.round_num:03d}", trajectories)
        self.cloning.add(trajectories)
        return trajectories

    def update(self, epochs: int) -> None:
        self.logger.record("bc/loss", self.cloning.train(n_batches=epochs * len(self.cloning)))
        self.policy.set_training_mode(False)
        self.round_num += 1


def run_dagger(
    *,
    venv: Any,
    teacher: Predictor,
    policy: Any,
    adapter: ObservationAdapter,
    settings: TrainerSettings,
    scratch_dir: str | os.PathLike[str],
    logger: Any,
    seed: int = 0,
    recorder: RunRecorder | None = None,
    demonstrations: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """DAgger rounds until ``settings.max_steps`` labelled env steps.

    A feed-forward student goes through `imitation`'s DAgger trainer; a student with memory
    (:func:`~gym_unity_il.train.memory.is_recurrent`) through rounds of the same meaning that
    carry its state (see the module docstring).

    Args:
        venv: the env in the policy's observations (``adapter.wrap(env_venv)``).
        teacher: labels env observations (with its state carried when it returns one).
        policy: the student's SB3 ``ActorCriticPolicy`` (or sb3-contrib's
            ``RecurrentActorCriticPolicy``), trained in place.
        adapter: the student's adapter (packed for a Dict observation: `imitation`'s
            DAgger collects arrays only).
        settings: ``max_steps``, ``dagger_round_steps``, ``num_epoch`` (default 4),
            ``batch_size``, ``learning_rate``, ``ent_weight``, ``l2_weight`` (with memory,
            ``memory.sequence_length`` too).
        scratch_dir: where the rounds' labelled trajectories are kept.
        logger: an `imitation` logger (always given to the trainers: TensorBoard).
        seed: seeds the rollouts and BC's batches.
        recorder: progress bar and ``metrics.csv`` (a row per round: its episodes).
        demonstrations: `imitation` trajectories (policy observations) added to round 0
            (with memory: whole episodes, in order).

    Returns:
        ``{"rounds", "labels", "round_returns"}``: rounds run, teacher labels collected,
        mean return of the episodes of each round (round 0: the teacher driving).

    Raises:
        ConfigError: a round smaller than a batch.
    """
    import datasets  # imitation saves rounds with Hugging Face datasets: a second of import time, so only here

    if settings.dagger_round_steps < settings.batch_size:
        raise ConfigError(f"dagger_round_steps {settings.dagger_round_steps} is smaller than batch_size {settings.batch_size}: the first round would not fill one batch")
    rng = np.random.default_rng(seed)
    expert = AdaptedTeacher(teacher, adapter, venv.action_space)
    kind = _SequenceRounds if is_recurrent(policy) else _ImitationRounds
    rounds = kind(venv=venv, expert=expert, policy=policy, settings=settings, scratch_dir=scratch_dir, logger=logger, rng=rng, demonstrations=demonstrations)
    epochs = settings.num_epoch if settings.num_epoch is not None else DAGGER_EPOCHS
    labels, returns = 0, []
    bar = recorder.bar("dagger", total=settings.max_steps, initial=0, unit="label") if recorder is not None else None
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # keep its bars off ours
    try:
        while labels < settings.max_steps:
            until = rollout.make_sample_until(min_timesteps=min(settings.dagger_round_steps, settings.max_steps - labels), min_episodes=1)
            trajectories = rounds.collect(until)
            steps = sum(len(t) for t in trajectories)
            labels += steps
            episode_returns = [float(t.rews.sum()) for t in trajectories]
            round_return = float(np.mean(episode_returns))
            returns.append(round_return)
            logger.record("dagger/round_return", round_return)
            logger.record("dagger/labels", labels)
            rounds.update(epochs)
            if bar is not None:
                bar.update(steps)
            if recorder is not None:
                recorder.summary("dagger", labels, episode_returns)
            logger.dump(labels)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
        if bar is not None:
            bar.close()
    return {"rounds": rounds.round_num, "labels": labels, "round_returns": returns}


class DaggerPhase:
    """:func:`run_dagger` as the one phase of a ``dagger`` run; :attr:`outcome` is what it returned."""

    name = "dagger"

    def __init__(self, **arguments: Any) -> None:
        self.rounds = functools.partial(run_dagger, **arguments)
        self.outcome: dict[str, Any] = {}

    def run(self, recorder: RunRecorder) -> None:
        self.outcome = self.rounds(recorder=recorder)

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    def summary(self) -> dict[str, Any]:
        """Its entries of ``evaluation.json``."""
        outcome = self.outcome
        return {"teacher_labels": outcome["labels"], "rounds": outcome["rounds"], "round_returns": outcome["round_returns"]}


class DaggerTrainer(TeacherTrainer):
    """``dagger`` as :func:`~gym_unity_il.train.runner.run_training` runs it, over every agent of
    the behavior, with ``teacher`` (else the config's ``teacher``) as the expert; ``demo_path``,
    when set, adds demonstrations to round 0."""

    names = ("dagger",)

    def start(self, run: Run) -> Training:
        request = run.request
        venv, spec = make_training_env(**request.env_source, behavior_name=request.behavior_name, seed=request.seed)
        with contextlib.ExitStack() as teaching:
            try:
                settings, where = request.config.for_behavior(spec.name), request.where(spec.name)
                self.check(settings, where)
                check_actions(settings, spec, where)
                teacher = self.open_teacher(settings, spec, scene=request.scene, where=where, teaching=teaching)
                venv = attach_environment_parameters(venv, request.config, spec.name, settings.max_steps, run.logger, seed=request.seed)
                adapter = ObservationAdapter(venv.observation_space, pack=True)  # DAgger's collector takes arrays only
                policy_venv = adapter.wrap(venv)
                demos = None
                if settings.demo_path is not None:
                    demo = read_demonstrations(settings.demo_path)
                    check_demo_matches(demo.behavior_spec, spec, what_a=f"demo {settings.demo_path}", what_b="env")
                    demos = adapter.trajectories(demo_to_trajectories(demo))
                model = make_model(settings, policy_venv, adapter, seed=request.seed, logger=run.logger)
            except BaseException:
                venv.close()
                raise
            phase = DaggerPhase(venv=policy_venv, teacher=teacher, policy=model.policy, adapter=adapter, settings=settings, scratch_dir=run.files.dagger,
                                logger=run.logger, seed=request.seed, demonstrations=demos)  # fmt: skip
            return Training(spec.name, settings, model, policy_venv, adapter.observation_layout, [phase], phase.summary, teaching.pop_all())


def train_dagger(
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
    """One ``dagger`` run over every agent of the behavior (results as :func:`~gym_unity_il.train.train`).

    The teacher is ``teacher``, else the config's ``teacher`` key; ``demo_path``, when
    set, adds demonstrations to round 0. Ctrl+C saves the policy (``model.zip``) and returns.

    Returns:
        A :class:`~gym_unity_il.train.runner.RunResult`.
    """
    request = RunRequest.make(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                              behavior_name=behavior_name, seed=seed, progress=progress)  # fmt: skip
    return run_training(DaggerTrainer(teacher), request)
