"""The one sequence every training run goes through, and what a trainer plugs into it.

A trainer (:class:`Trainer`, an entry of :data:`gym_unity_il.train.run.TRAINERS`) sets a
run up: :meth:`Trainer.start` starts the env, checks the behavior's settings and builds the
model and the phases that train it (a :class:`Training`). :func:`run_training` does all the
rest, the same way for every trainer:

1. the run folder (:mod:`.folder`): the run id checked, ``resume`` / ``force``, the folder
   made, and removed again if the run fails before it trains;
2. the seeds, the trainer's setup, the TensorBoard logger, the checkpoint when resuming,
   the resolved config copied into the folder;
3. the phases, each writing rows of ``metrics.csv``;
4. at the end: the final checkpoint (trainers that resume), ``model.zip`` with the
   observation layout it was trained through, the evaluation on held-out seeds,
   ``learning_curve.png``, and ``evaluation.json`` last;
5. Ctrl+C (``KeyboardInterrupt``) from the first phase on: a checkpoint that ``resume``
   continues from, or, for trainers that do not resume, the policy so far in ``model.zip``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import yaml
from imitation.util import logger as imitation_logger
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from gym_unity_il.errors import ConfigError
from gym_unity_il.export.layout import ObservationLayout
from gym_unity_il.export.saved import RunFiles, save_model
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.scenes.evaluate import Evaluation
from gym_unity_il.spec import BehaviorSpec
from gym_unity_il.train.config import SAC_TRAINERS, RunConfig, TrainerSettings
from gym_unity_il.train.dialects import load_config
from gym_unity_il.train.evaluation import HELD_OUT_SEEDS, evaluate, plot_learning_curve
from gym_unity_il.train.folder import check_run_folder, initialize_from, load_checkpoint, remove_run_folder, run_folder, save_checkpoint
from gym_unity_il.train.progress import Phase, RunRecorder, writing


@dataclass(frozen=True)
class RunRequest:
    """A run as it was asked for (the arguments of :func:`~gym_unity_il.train.train`), its
    config loaded. Make it with :meth:`make`."""

    config: RunConfig
    run_id: str
    results_dir: str | os.PathLike[str]
    behavior_name: str | None
    file_name: str | os.PathLike[str] | None
    scene: str | None
    scene_kwargs: Mapping[str, Any] | None
    seed: int
    progress: bool
    #: how the players are launched (ports, graphics, extra arguments, engine settings); the build is ``file_name``
    launch: LaunchSettings = field(default_factory=LaunchSettings)
    #: a run of ``results_dir`` whose trained model a new run starts from (not a resumed one)
    initialize_from: str | None = None

    @classmethod
    def make(cls, config: RunConfig | str | os.PathLike[str], *, max_steps: int | None = None, num_processes: int | None = None,
             **arguments: Any) -> RunRequest:  # fmt: skip
        """The request of a run: ``config`` loaded (a path) with ``max_steps`` and
        ``num_processes`` replaced in every section, and the other arguments of
        :func:`~gym_unity_il.train.train` (every field of this class), with the behavior the
        config's only section when none is named, and the scene ``"ball"`` when neither a
        build nor a scene is given."""
        if not isinstance(config, RunConfig):
            config = load_config(config)
        if max_steps is not None:
            config = config.with_max_steps(max_steps)
        if num_processes is not None:
            config = config.with_num_processes(num_processes)
        request = cls(config=config, **arguments)
        behavior, scene = request.behavior_name, request.scene
        if behavior is None and len(config.behaviors) == 1:
            behavior = next(iter(config.behaviors))
        if scene is None and request.file_name is None:
            scene = "ball"
        return dataclasses.replace(request, behavior_name=behavior, scene=scene)

    @property
    def settings(self) -> TrainerSettings:
        """The settings the run starts with: its behavior's, else the default (the scene's
        first behavior then picks its own section once the scene runs)."""
        return self.config.for_behavior(self.behavior_name) if self.behavior_name else self.config.default

    @property
    def env_source(self) -> dict[str, Any]:
        """Where the env comes from and how it is launched: ``scene``, ``scene_kwargs`` and
        ``launch`` (with ``file_name`` as its build)."""
        return {"scene": self.scene, "scene_kwargs": self.scene_kwargs, "launch": dataclasses.replace(self.launch, file_name=self.file_name)}

    def where(self, behavior: str | None = None) -> str:
        """The config section of ``behavior`` (default: the run's), as errors name it."""
        return self.config.where(behavior or self.behavior_name or "")


@dataclass
class Run:
    """A run under way, as its trainer's :meth:`~Trainer.start` sees it."""

    request: RunRequest
    files: RunFiles

    @cached_property
    def logger(self) -> Any:
        """The `imitation` logger writing TensorBoard events, shared by every trainer of the
        run; made on first use, after the setup's checks (a refused resume writes nothing)."""
        with writing(self.files.tensorboard):
            return imitation_logger.configure(self.files.tensorboard, ["tensorboard"])

    def held_out_returns(self, model: Any, venv: VecEnv) -> list[float]:
        """The returns of ``model``'s episodes, one per env copy of ``venv`` (policy
        observations), on the held-out seeds of the final evaluation: a BC row of ``metrics.csv``."""
        return evaluate(model, venv, episodes=venv.num_envs, seed=HELD_OUT_SEEDS + self.request.seed).returns


@dataclass
class Training:
    """What a trainer set up, for :func:`run_training` to drive.

    Attributes:
        behavior: the behavior trained.
        settings: its settings.
        model: the SB3 model, saved as ``model.zip``.
        venv: the env in the model's observations: the final evaluation runs on it, and
            the run closes it at the end.
        layout: how env observations reach the model (saved with it).
        phases: what trains the model, in order.
        summary: the trainer's own entries of ``evaluation.json``, asked for after training.
        teaching: what only the training needs (a teacher, its scene), closed as soon as
            the training stops.
    """

    behavior: str
    settings: TrainerSettings
    model: Any
    venv: VecEnv
    layout: ObservationLayout
    phases: list[Phase]
    summary: Callable[[], dict[str, Any]]
    teaching: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


class Trainer(Protocol):
    """One kind of training, as :func:`run_training` runs it."""

    #: The config ``trainer`` values it runs.
    names: tuple[str, ...]
    #: Whether its runs keep a checkpoint that ``resume`` continues from (else Ctrl+C saves
    #: the policy so far, and the run is over).
    resumable: bool

    def check(self, settings: TrainerSettings, where: str) -> None:
        """Refuses settings it cannot train with (``where``: their config section), before
        anything starts (:func:`check_trainer` first)."""

    def start(self, run: Run) -> Training:
        """Starts the env, checks the behavior's own settings and builds the model and its
        phases; closes what it opened when it fails."""


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    Attributes:
        run_dir: ``results_dir / run_id``.
        behavior_name: the behavior trained.
        trainer: the trainer type.
        interrupted: True when Ctrl+C stopped it (a checkpoint was saved, resume to go on; a
            trainer that does not resume saved the policy so far).
        evaluation: the final evaluation (None when interrupted).
        wall_time_s: seconds this call took.
    """

    run_dir: Path
    behavior_name: str
    trainer: str
    interrupted: bool
    evaluation: Evaluation | None
    wall_time_s: float

    @property
    def model_path(self) -> Path:
        return RunFiles.at(self.run_dir).model


def check_trainer(settings: TrainerSettings, trainer: Trainer, where: str) -> None:
    """Refuses the settings of another trainer than the one the run started.

    Raises:
        ConfigError: naming what the run was started for.
    """
    if settings.trainer not in trainer.names:
        raise ConfigError(
            f"{where}.trainer: {settings.trainer!r}, but the run was started for {' / '.join(trainer.names)}; name the behavior with "
            "behavior_name= (--behavior on the command line), or give it the config's only behavior section"
        )


def check_actions(settings: TrainerSettings, spec: BehaviorSpec, where: str) -> None:
    """Refuses, before anything trains, actions the chosen trainer cannot learn.

    Raises:
        ConfigError: hybrid actions (SB3 and `imitation` policies take one action space),
            or SAC on discrete actions.
    """
    act = spec.action_spec
    if act.is_hybrid:
        raise ConfigError(
            f"behavior {spec.name!r} has hybrid actions (continuous {act.continuous_size} + discrete {list(act.discrete_branches)}); "
            f"trainer {settings.trainer!r} cannot train them: SB3 and imitation policies take one action space "
            "(Box, Discrete or MultiDiscrete). Give the agent only continuous or only discrete actions."
        )
    if settings.trainer in SAC_TRAINERS and not act.is_continuous:
        ppo = settings.trainer.replace("sac", "ppo")
        raise ConfigError(f"{where}.trainer: {settings.trainer!r} needs continuous actions, behavior {spec.name!r} has discrete {list(act.discrete_branches)}; use {ppo!r}")


def run_training(trainer: Trainer, request: RunRequest, *, resume: bool = False, force: bool = False) -> RunResult:
    """Runs ``trainer`` as ``request`` asks, through the whole sequence of this module.

    Raises:
        ConfigError: a bad config, trainer, run id, run folder, checkpoint or argument.
        SpecMismatchError: the demos were recorded from another behavior spec.
        DemoFormatError: a demo file cannot be read.
        OutputError: the results folder cannot be written (naming the file).
    """
    started = time.perf_counter()
    files = RunFiles.at(run_folder(request.results_dir, request.run_id))
    check_run_folder(files, resume=resume, force=force, trainer=request.settings.trainer, resumable=trainer.resumable)
    if request.behavior_name or not request.config.behaviors:  # else the scene's first behavior picks the section
        trainer.check(request.settings, request.where())
    if force and files.root.exists():
        remove_run_folder(files)
    new = not files.root.exists()
    with writing(files.root):
        files.root.mkdir(parents=True, exist_ok=True)  # now: a results folder that cannot be written fails before Unity starts
    course = _Course(trainer, Run(request, files), started)
    try:
        return course.drive(resume=resume)
    except BaseException:
        if new and not course.training:  # nothing trained: no folder to block the next attempt
            shutil.rmtree(files.root, ignore_errors=True)
        raise


class _Course:
    """One run from the trainer's setup on; :attr:`training` tells whether it got as far as training."""

    def __init__(self, trainer: Trainer, run: Run, started: float) -> None:
        self.trainer = trainer
        self.run = run
        self.started = started
        self.training = False

    def drive(self, *, resume: bool) -> RunResult:
        run, files = self.run, self.run.files
        set_random_seed(run.request.seed)
        training = self.trainer.start(run)
        try:
            settings = training.settings
            if run.request.initialize_from is not None and not resume:
                initialize_from(training.model, run.request.results_dir, run.request.initialize_from)
            recorder = RunRecorder(metrics_path=files.metrics, logger=run.logger, summary_freq=settings.summary_freq, progress=run.request.progress,
                                   behavior=training.behavior)  # fmt: skip
            state = load_checkpoint(files.checkpoint, training.model, training.phases) if resume else None
            with writing(files.config):
                files.config.write_text(yaml.safe_dump(run.request.config.to_dict(), sort_keys=False))
            self.training = True
            current = 0
            try:
                if state is not None:  # the rows the checkpoint had, and the one it was computing
                    current = int(state["phase"])
                    recorder.truncate(int(state["metrics_rows"]))
                    if state.get("pending_summary"):
                        phase_name, step = state["pending_summary"]
                        recorder.summary(phase_name, int(step), lambda: run.held_out_returns(training.model, training.venv))
                for current in range(current, len(training.phases)):
                    recorder.safe_step = None
                    training.phases[current].run(recorder)
                training.teaching.close()  # the teacher and its scene are done
                evaluation = self._finish(training, recorder)
            except KeyboardInterrupt:
                self._keep(training, recorder, current)
                return self._result(training, interrupted=True, evaluation=None)
        finally:
            training.teaching.close()
            training.venv.close()
        return self._result(training, interrupted=False, evaluation=evaluation)

    def _result(self, training: Training, *, interrupted: bool, evaluation: Evaluation | None) -> RunResult:
        wall = time.perf_counter() - self.started
        return RunResult(self.run.files.root, training.behavior, training.settings.trainer, interrupted, evaluation, wall)

    def _finish(self, training: Training, recorder: RunRecorder) -> Evaluation:
        """The end of a finished run: checkpoint, model, evaluation, curve, ``evaluation.json``."""
        request, files = self.run.request, self.run.files
        model, phases, settings = training.model, training.phases, training.settings
        if self.trainer.resumable:
            save_checkpoint(files.checkpoint, model, phases, len(phases) - 1, metrics_rows=len(recorder.rows), pending=None)
        recorder.logger.dump(model.num_timesteps)
        with writing(files.model):
            save_model(model, files.model, training.layout)
        evaluation = evaluate(model, training.venv, episodes=settings.eval_episodes, seed=HELD_OUT_SEEDS + request.seed)
        summary = {
            "behavior": training.behavior, "trainer": settings.trainer, "algorithm": type(model).__name__, "model": files.model.name,
            **training.summary(), "phases": [p.name for p in phases], "wall_time_s": time.perf_counter() - self.started, **evaluation.to_dict(),
        }  # fmt: skip
        with writing(files.learning_curve):
            plot_learning_curve(files.metrics, files.learning_curve, title=f"{request.run_id}: {settings.trainer} on {training.behavior}")
        with writing(files.evaluation):  # last: its presence means a finished run
            files.evaluation.write_text(json.dumps(summary, indent=2))
        return evaluation

    def _keep(self, training: Training, recorder: RunRecorder, current: int) -> None:
        """What Ctrl+C leaves: the checkpoint of phase ``current``, or the policy so far."""
        files, model = self.run.files, training.model
        if not self.trainer.resumable:
            with writing(files.model):
                save_model(model, files.model, training.layout)
            return
        rows = len(recorder.rows)
        if recorder.safe_step is not None and recorder.safe_step < model.num_timesteps:
            # RL stopped within a rollout: the checkpoint is at the rollout's start, which the parameters belong to;
            # the resumed run collects those steps again (and writes their rows again).
            model.num_timesteps = recorder.safe_step
            rows = recorder.rows_until(training.phases[current].name, recorder.safe_step)
        save_checkpoint(files.checkpoint, model, training.phases, current, metrics_rows=rows, pending=recorder.pending)
