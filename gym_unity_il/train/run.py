"""One training run, like ``mlagents-learn``: config + env + demos in, ``results/<run-id>/`` out.

``results/<run-id>/`` holds:

* ``config.yaml``: the resolved config (every section, every key);
* ``model.zip``: the trained SB3 model (``SAC.load`` for ``sac`` and ``bc_then_sac``,
  ``PPO.load`` for every other trainer); :func:`~gym_unity_il.train.load_policy`
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

import os
from collections.abc import Mapping
from typing import Any

from gym_unity_il.train.config import RunConfig
from gym_unity_il.train.dagger import DaggerTrainer
from gym_unity_il.train.demos import DemoTrainer
from gym_unity_il.train.online import OnlineTrainer
from gym_unity_il.train.runner import RunRequest, RunResult, Trainer, run_training

#: The trainer that runs each ``trainer`` of a config.
TRAINERS: Mapping[str, Trainer] = {**dict.fromkeys(DemoTrainer.names, DemoTrainer()), "online_bc": OnlineTrainer(), "dagger": DaggerTrainer()}


def train(
    config: RunConfig | str | os.PathLike[str],
    *,
    run_id: str,
    results_dir: str | os.PathLike[str] = "results",
    file_name: str | os.PathLike[str] | None = None,
    scene: str | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    resume: bool = False,
    force: bool = False,
    seed: int = 0,
    progress: bool = True,
    max_steps: int | None = None,
) -> RunResult:
    """Trains one behavior of a Unity build or built-in scene from its config section.

    The behavior is ``behavior_name``, else the config's only behavior section if it has
    exactly one, else the first behavior the scene announces. The demos are read and
    compared with the env's behavior spec before anything trains.

    Everything the run writes is inside ``results_dir/run_id``. A run that fails before
    it trains leaves no folder behind. Ctrl+C (``KeyboardInterrupt``) at any point of the
    training saves a checkpoint; resuming from it gives the same rows of ``metrics.csv``,
    learning curve and ``evaluation.json`` as a run that was never interrupted.

    Args:
        config: a :class:`RunConfig` or the path of a YAML config file.
        run_id: the name of the results folder: letters, digits, ``.``, ``_``, ``-``.
        results_dir: where run folders go.
        file_name: a Unity build (else ``scene``).
        scene: a built-in scene name or ``"module:Class"`` (default: ``"ball"``).
        scene_kwargs: the built-in scene's arguments.
        behavior_name: the behavior to train.
        resume: continue from ``results_dir/run_id/checkpoint`` (the config may raise the budget).
        force: start ``run_id`` anew: its folder is deleted first (only a folder holding
            nothing but a run's outputs).
        seed: seeds Python, NumPy and torch, the learners and the env copies (``seed + i``).
        progress: show progress bars.
        max_steps: replaces ``max_steps`` of every section of the config (``--max-steps``).

    Returns:
        The run's folder, whether Ctrl+C interrupted it, and the final evaluation.

    Raises:
        ConfigError: a bad config, trainer, run id, run folder, checkpoint or argument.
        SpecMismatchError: the demos were recorded from another behavior spec.
        DemoFormatError: a demo file cannot be read.
        OutputError: the results folder cannot be written (naming the file).
    """
    request = RunRequest.make(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                              behavior_name=behavior_name, seed=seed, progress=progress, max_steps=max_steps)  # fmt: skip
    return run_training(TRAINERS[request.settings.trainer], request, resume=resume, force=force)
