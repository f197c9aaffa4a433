"""One training run, like ``mlagents-learn``: config + env + demos in, ``results/<run-id>/`` out.

``results/<run-id>/`` holds:

* ``config.yaml``: the resolved config (every section, every key);
* ``model.zip``: the trained SB3 model (``SAC.load`` for ``sac`` and ``bc_then_sac``,
  sb3-contrib's ``RecurrentPPO.load`` with ``memory``, ``PPO.load`` for every other trainer); :func:`~gym_unity_il.train.load_policy`
  gives it the env's own observations (the observation layout it was trained through is
  saved in it);
* ``evaluation.json``: returns of ``eval_episodes`` deterministic episodes (seeds
  ``1_000_000 + seed``, ``+ 1``, ...: never the starts the demos were recorded from), what was trained, and ``unity_restarts`` (Unity processes
  restarted after a failure, see ``max_restarts``);
* ``metrics.csv`` and ``learning_curve.png``: return against steps, per phase;
* ``tensorboard/``: TensorBoard event files of every trainer;
* ``checkpoint/`` (every trainer but ``online_bc`` and ``dagger``, which save the policy
  so far as ``model.zip`` on Ctrl+C instead): the state a Ctrl+C (or the end of the
  run) left, which ``resume=True`` continues from: the model, each phase's state (``phases.pt``, loaded weights-only),
  SAC's replay buffer, and ``state.json`` (the phase, the step, the rows of ``metrics.csv``
  it stands for, and a summary row it was computing). It is written beside the old one
  and then swapped in, so it is whole or absent.

A run id is a plain folder name (letters, digits, ``.``, ``_``, ``-``), so the run writes
only inside ``results/<run-id>/``; ``evaluation.json`` is written last. The names are
defined in :class:`~gym_unity_il.export.saved.RunFiles`, and every trainer goes through the
same sequence (:func:`~gym_unity_il.train.runner.run_training`); :data:`TRAINERS` says
which trainer runs a config's ``trainer``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from gym_unity_il.errors import ConfigError
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.train.config import RunConfig, RunSettings
from gym_unity_il.train.dagger import DaggerTrainer
from gym_unity_il.train.demos import DemoTrainer
from gym_unity_il.train.dialects import load_config
from gym_unity_il.train.online import OnlineTrainer
from gym_unity_il.train.runner import RunRequest, RunResult, Trainer, run_training

logger = logging.getLogger(__name__)

#: The trainer that runs each ``trainer`` of a config.
TRAINERS: Mapping[str, Trainer] = {**dict.fromkeys(DemoTrainer.names, DemoTrainer()), "online_bc": OnlineTrainer(), "dagger": DaggerTrainer()}


def train(
    config: RunConfig | str | os.PathLike[str],
    *,
    run_id: str | None = None,
    results_dir: str | os.PathLike[str] | None = None,
    file_name: str | os.PathLike[str] | None = None,
    scene: str | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    resume: bool | None = None,
    force: bool | None = None,
    seed: int | None = None,
    progress: bool = True,
    max_steps: int | None = None,
    run: RunSettings | None = None,
) -> RunResult:
    """Trains one behavior of a Unity build or built-in scene from its config section.

    The behavior is ``behavior_name``, else the config's only behavior section if it has
    exactly one, else the first behavior the scene announces. The demos are read and
    compared with the env's behavior spec before anything trains.

    Everything the run writes is inside ``results_dir/run_id``. A run that fails before
    it trains leaves no folder behind. Ctrl+C (``KeyboardInterrupt``) at any point of the
    training saves a checkpoint; resuming from it gives the same rows of ``metrics.csv``,
    learning curve and ``evaluation.json`` as a run that was never interrupted.

    The run settings are, by precedence: the arguments given here (``run_id``,
    ``results_dir``, ``file_name``, ``resume``, ``force``, ``seed``), then ``run`` (what
    ``gym-unity-il train``'s mlagents-learn flags set), then the config file's run sections
    (:attr:`RunConfig.run <gym_unity_il.train.config.RunConfig.run>`), then the defaults.

    Args:
        config: a :class:`RunConfig` or the path of a YAML config file.
        run_id: the name of the results folder: letters, digits, ``.``, ``_``, ``-``.
        results_dir: where run folders go (default ``results``).
        file_name: a Unity build (else ``scene``).
        scene: a built-in scene name or ``"module:Class"`` (default: ``"ball"``).
        scene_kwargs: the built-in scene's arguments.
        behavior_name: the behavior to train.
        resume: continue from ``results_dir/run_id/checkpoint`` (the config may raise the budget).
        force: start ``run_id`` anew: its folder is deleted first (only a folder holding
            nothing but a run's outputs).
        seed: seeds Python, NumPy and torch, the learners and the env copies (``seed + i``); default 0.
        progress: show progress bars.
        max_steps: replaces ``max_steps`` of every section of the config (``--max-steps``).
        run: run settings over the config's: ``num_envs`` replaces ``num_processes`` of
            every section, ``base_port``, ``no_graphics``, ``env_args`` and the engine
            settings go to the players' launch settings.

    Returns:
        The run's folder, whether Ctrl+C interrupted it, and the final evaluation.

    Raises:
        ConfigError: a bad config, trainer, run id, run folder, checkpoint or argument; no
            run id; an ``initialize_from`` run without a trained model of this network; a
            torch device other than ``cpu``.
        SpecMismatchError: the demos were recorded from another behavior spec.
        DemoFormatError: a demo file cannot be read.
        OutputError: the results folder cannot be written (naming the file).
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    given = RunSettings(run_id=run_id, results_dir=None if results_dir is None else os.fspath(results_dir),
                        env_path=None if file_name is None else os.fspath(file_name), resume=resume, force=force, seed=seed)  # fmt: skip
    settings = given.over(run or RunSettings()).over(config.run)
    logger.debug("run settings: %s", settings)
    check_run_settings(settings)
    assert settings.run_id is not None
    request = RunRequest.make(config, run_id=settings.run_id, results_dir=settings.results_dir or "results", file_name=settings.env_path,
                              scene=scene, scene_kwargs=scene_kwargs, behavior_name=behavior_name, seed=settings.seed or 0, progress=progress,
                              max_steps=max_steps, num_processes=settings.num_envs, launch=launch_settings(settings),
                              initialize_from=settings.initialize_from)  # fmt: skip
    return run_training(TRAINERS[request.settings.trainer], request, resume=bool(settings.resume), force=bool(settings.force))


def check_run_settings(settings: RunSettings) -> None:
    """Refuses what a run cannot do as asked (rather than doing something else silently).

    Raises:
        ConfigError: no run id, or a torch device other than ``cpu``.
    """
    if settings.run_id is None:
        raise ConfigError("no run id: give --run-id RUN_ID (or checkpoint_settings.run_id in the config)")
    if settings.initialize_from is not None and settings.resume:
        logger.warning("initialize_from %r (--initialize-from): ignored: a resumed run continues from its own checkpoint", settings.initialize_from)
    if settings.torch_device is not None and settings.torch_device != "cpu":
        raise ConfigError(f"torch device {settings.torch_device!r} (--torch-device, torch_settings.device): not yet supported; "
                          "gym-unity-il trains on the CPU: use cpu or leave it out")  # fmt: skip


def launch_settings(settings: RunSettings) -> LaunchSettings:
    """The players' launch settings of ``settings`` (the build is the request's ``file_name``)."""
    values: dict[str, Any] = {"engine_config": settings.engine_config()}
    if settings.base_port is not None:  # a port asked for is the port used, built-in scenes included
        values.update(base_port=settings.base_port, auto_port=False)
    if settings.no_graphics is not None:
        values["no_graphics"] = settings.no_graphics
    if settings.env_args is not None:
        values["additional_args"] = settings.env_args
    return LaunchSettings(**values)
