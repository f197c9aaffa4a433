"""One training run, like ``mlagents-learn``: config + env + demos in, ``results/<run-id>/`` out.

``results/<run-id>/`` holds:

* ``config.yaml``: the resolved config (every section, every key);
* ``model.zip``: the trained SB3 model (``PPO.load`` for ``offline_bc``, ``gail`` and
  ``bc_then_ppo``; ``SAC.load`` for ``bc_then_sac``); :func:`~gym_unity_il.train.evaluation.load_policy`
  gives it the env's own observations;
* ``evaluation.json``: returns of ``eval_episodes`` deterministic episodes (seeds
  ``seed``, ``seed + 1``, ...), what was trained, and ``unity_restarts`` (Unity processes
  restarted after a failure, see ``max_restarts``);
* ``metrics.csv`` and ``learning_curve.png``: return against steps, per phase;
* ``tensorboard/``: TensorBoard event files of every trainer;
* ``checkpoint/``: the state a Ctrl+C (or the end of the run) left, which ``resume=True``
  continues from.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml

from gym_unity_il.errors import ConfigError
from gym_unity_il.spec import BehaviorSpec
from gym_unity_il.train.config import RunConfig, TrainerSettings, load_config
from gym_unity_il.train.env import RestartLog, make_training_env
from gym_unity_il.train.evaluation import Evaluation, evaluate, plot_learning_curve
from gym_unity_il.train.progress import Phase, RunRecorder

#: The trainers this module runs from demonstrations.
RUN_TRAINERS = ("offline_bc", "gail", "bc_then_ppo", "bc_then_sac")
#: The trainers that learn from a live teacher (:mod:`.online`, :mod:`.dagger`), run through :func:`train` too.
TEACHER_TRAINERS = ("online_bc", "dagger")
CHECKPOINT_DIR = "checkpoint"


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    Attributes:
        run_dir: ``results_dir / run_id``.
        behavior_name: the behavior trained.
        trainer: the trainer type.
        interrupted: True when Ctrl+C stopped it (a checkpoint was saved; resume to go on).
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
        return self.run_dir / "model.zip"


def _check_settings(settings: TrainerSettings, where: str) -> None:
    """Refuses a trainer this module does not run, or one without demonstrations."""
    if settings.trainer not in RUN_TRAINERS:
        raise ConfigError(
            f"{where}.trainer: {settings.trainer!r} learns from a live teacher and the run was started for another trainer; "
            "name its behavior with --behavior (or give it the config's only behavior section)"
        )
    if settings.demo_path is None:
        raise ConfigError(f"{where}.demo_path: trainer {settings.trainer!r} learns from demonstrations; set demo_path to a .demo file or folder")


def _check_actions(settings: TrainerSettings, spec: BehaviorSpec, where: str) -> None:
    """Refuses, before anything trains, actions the chosen trainer cannot learn."""
    act = spec.action_spec
    if act.is_hybrid:
        raise ConfigError(
            f"behavior {spec.name!r} has hybrid actions (continuous {act.continuous_size} + discrete {list(act.discrete_branches)}); "
            f"trainer {settings.trainer!r} cannot train them: SB3 and imitation policies take one action space "
            "(Box, Discrete or MultiDiscrete). Give the agent only continuous or only discrete actions."
        )
    if settings.trainer == "bc_then_sac" and not act.is_continuous:
        raise ConfigError(f"{where}.trainer: 'bc_then_sac' needs continuous actions, behavior {spec.name!r} has discrete {list(act.discrete_branches)}; use 'bc_then_ppo'")


def _section(config: RunConfig, behavior: str) -> str:
    base = behavior.split("?team=")[0]
    name = behavior if behavior in config.behaviors else base if base in config.behaviors else "default"
    return f"{config.source}: section {name!r}"


def _make_model(settings: TrainerSettings, venv: Any, policy_kwargs: dict[str, Any], seed: int) -> Any:
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.sac.policies import SACPolicy

    if settings.trainer == "bc_then_sac":
        sac = settings.sac
        return SAC(SACPolicy, venv, learning_rate=sac.learning_rate, buffer_size=sac.buffer_size, batch_size=sac.batch_size,
                   learning_starts=sac.learning_starts, gamma=sac.gamma, policy_kwargs=policy_kwargs, seed=seed, device="cpu")  # fmt: skip
    ppo = settings.ppo
    return PPO(ActorCriticPolicy, venv, n_steps=ppo.n_steps, batch_size=ppo.batch_size, n_epochs=ppo.n_epochs, learning_rate=ppo.learning_rate,
               gamma=ppo.gamma, gae_lambda=ppo.gae_lambda, ent_coef=ppo.ent_coef, clip_range=ppo.clip_range,
               policy_kwargs=policy_kwargs, seed=seed, device="cpu")  # fmt: skip


def _save_checkpoint(folder: Path, model: Any, phases: list[Phase], current: int) -> None:
    folder.mkdir(exist_ok=True)
    model.save(folder / "model.zip")
    if getattr(model, "replay_buffer", None) is not None:  # SAC: its experience goes on too
        model.save_replay_buffer(folder / "replay_buffer.pkl")
    th.save([phase.state() for phase in phases], folder / "phases.pt")
    state = {"phase": current, "phase_name": phases[current].name, "num_timesteps": int(model.num_timesteps), "phases": [p.name for p in phases]}
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, folder / "state.json")  # written last: its presence means a whole checkpoint


def _load_checkpoint(folder: Path, model: Any, phases: list[Phase]) -> int:
    state = json.loads((folder / "state.json").read_text())
    if state["phases"] != [p.name for p in phases]:
        raise ConfigError(f"{folder}: the checkpoint is of a run with phases {state['phases']}, this config trains {[p.name for p in phases]}; use the same trainer to resume")
    model.set_parameters(str(folder / "model.zip"), exact_match=True, device="cpu")
    model.num_timesteps = int(state["num_timesteps"])
    if (folder / "replay_buffer.pkl").is_file() and hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(folder / "replay_buffer.pkl")
    for phase, phase_state in zip(phases, th.load(folder / "phases.pt", weights_only=True)):
        phase.load_state(phase_state)
    return int(state["phase"])


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
    seed: int = 0,
    progress: bool = True,
) -> RunResult:
    """Trains one behavior of a Unity build or built-in scene from its config section.

    The behavior is ``behavior_name``, else the config's only behavior section if it has
    exactly one, else the first behavior the scene announces. The demos are read and
    compared with the env's behavior spec before anything trains.

    Args:
        config: a :class:`RunConfig` or the path of a YAML config file.
        run_id: the name of the results folder.
        results_dir: where run folders go.
        file_name: a Unity build (else ``scene``).
        scene: a built-in scene name or ``"module:Class"`` (default: ``"ball"``).
        scene_kwargs: the built-in scene's arguments.
        behavior_name: the behavior to train.
        resume: continue from ``results_dir/run_id/checkpoint`` (the config may raise the budget).
        seed: seeds Python, NumPy and torch, the learners and the env copies (``seed + i``).
        progress: show progress bars.

    Returns:
        The run's folder, whether Ctrl+C interrupted it, and the final evaluation.

    Raises:
        ConfigError: a bad config, trainer, run folder or argument.
        SpecMismatchError: the demos were recorded from another behavior spec.
        DemoFormatError: a demo file cannot be read.
    """
    from imitation.util import logger as imitation_logger
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import unwrap_vec_wrapper

    from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, read_demo
    from gym_unity_il.train.bc import BCPhase, bc_batches, count_transitions
    from gym_unity_il.train.gail import GAILPhase
    from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs, observation_statistics
    from gym_unity_il.train.pretrain import RLPhase, SACActorPretraining

    started = time.perf_counter()
    if not isinstance(config, RunConfig):
        config = load_config(config)
    run_dir = Path(results_dir) / run_id
    checkpoint = run_dir / CHECKPOINT_DIR
    if resume and not (checkpoint / "state.json").is_file():
        raise ConfigError(f"--resume: {run_dir} holds no checkpoint to continue from; start the run without --resume")
    if not resume and run_dir.exists():
        raise ConfigError(f"--run-id {run_id!r}: {run_dir} already exists; pass --resume to continue it or choose another run id")
    if behavior_name is None and len(config.behaviors) == 1:
        behavior_name = next(iter(config.behaviors))
    settings = config.for_behavior(behavior_name) if behavior_name else config.default
    if settings.trainer in TEACHER_TRAINERS:
        if settings.max_restarts:
            raise ConfigError(
                f"{_section(config, behavior_name or '')}.max_restarts: trainer {settings.trainer!r} drives its Unity process with a "
                "live teacher and does not restart it; remove max_restarts (or set it to 0)"
            )
        if resume:
            raise ConfigError(f"--resume: trainer {settings.trainer!r} learns from a live teacher and does not resume; start a new run")
        if settings.trainer == "online_bc":
            from gym_unity_il.train.online import train_online

            return train_online(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                                behavior_name=behavior_name, seed=seed, progress=progress)  # fmt: skip
        from gym_unity_il.train.dagger import train_dagger

        return train_dagger(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                            behavior_name=behavior_name, seed=seed, progress=progress)  # fmt: skip
    if behavior_name or not config.behaviors:  # else the scene's first behavior picks the section
        _check_settings(settings, _section(config, behavior_name or ""))

    set_random_seed(seed)
    venv, spec = make_training_env(file_name=file_name, scene=scene, scene_kwargs=scene_kwargs, behavior_name=behavior_name,
                                   num_envs=settings.num_envs, seed=seed, max_restarts=settings.max_restarts)  # fmt: skip
    try:
        settings = config.for_behavior(spec.name)
        where = _section(config, spec.name)
        _check_settings(settings, where)
        _check_actions(settings, spec, where)
        demo = read_demo(settings.demo_path)  # type: ignore[arg-type]
        check_demo_matches(demo.behavior_spec, spec, what_a=f"demo {settings.demo_path}", what_b="env")
        trajectories = demo_to_trajectories(demo)
        n_transitions = count_transitions(trajectories)

        uses_gail = settings.trainer == "gail" or (settings.trainer == "bc_then_ppo" and settings.gail.strength > 0)
        batches = bc_batches(settings, n_transitions, pretraining=settings.trainer != "offline_bc", where=where) if settings.trainer != "gail" else 0
        if uses_gail and n_transitions < settings.gail.demo_batch_size:
            raise ConfigError(f"{where}.gail.demo_batch_size: {settings.gail.demo_batch_size} is larger than the {n_transitions} transitions of the demos; lower it or record more")

        adapter = ObservationAdapter(venv.observation_space, pack=uses_gail)
        policy_venv = adapter.wrap(venv)
        demos = adapter.trajectories(trajectories)
        normalization = observation_statistics(trajectories, venv.observation_space) if settings.normalize else None
        policy_kwargs = {"net_arch": settings.net_arch(), **extractor_kwargs(adapter, normalization)}
        model = _make_model(settings, policy_venv, policy_kwargs, seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        logger = imitation_logger.configure(run_dir / "tensorboard", ["tensorboard"])
        model.set_logger(logger)
        restart_log = unwrap_vec_wrapper(venv, RestartLog)
        if restart_log is not None:
            restart_log.logger = logger

        def evaluate_return() -> float:
            return evaluate(model, policy_venv, episodes=policy_venv.num_envs, seed=seed).mean_return

        phases: list[Phase] = []
        if settings.trainer in ("offline_bc", "bc_then_ppo"):
            phases.append(BCPhase(policy=model.policy, trajectories=demos, settings=settings, batches=batches,
                                  rng=np.random.default_rng(seed), logger=logger, evaluate_return=evaluate_return))  # fmt: skip
        if settings.trainer == "bc_then_sac":
            phases.append(SACActorPretraining(model=model, trajectories=demos, settings=settings, batches=batches,
                                              rng=np.random.default_rng(seed), evaluate_return=evaluate_return))  # fmt: skip
            phases.append(RLPhase(name="sac", model=model, total_steps=settings.max_steps))
        if uses_gail:
            strength = settings.gail.strength if settings.trainer == "bc_then_ppo" else None
            phases.append(GAILPhase(name="gail" if strength is None else "ppo", model=model, venv=policy_venv, trajectories=demos, settings=settings,
                                    adapter=adapter, normalization=normalization, total_steps=settings.max_steps, logger=logger, strength=strength))  # fmt: skip
        elif settings.trainer == "bc_then_ppo":
            phases.append(RLPhase(name="ppo", model=model, total_steps=settings.max_steps))

        first = _load_checkpoint(checkpoint, model, phases) if resume else 0
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        recorder = RunRecorder(run_dir=run_dir, logger=logger, summary_freq=settings.summary_freq, progress=progress)
        current = first
        try:
            for current in range(first, len(phases)):
                phases[current].run(recorder)
        except KeyboardInterrupt:
            _save_checkpoint(checkpoint, model, phases, current)
            return RunResult(run_dir, spec.name, settings.trainer, True, None, time.perf_counter() - started)
        _save_checkpoint(checkpoint, model, phases, len(phases) - 1)
        logger.dump(model.num_timesteps)
        model.save(run_dir / "model.zip")
        evaluation = evaluate(model, policy_venv, episodes=settings.eval_episodes, seed=seed)
    finally:
        venv.close()
    wall = time.perf_counter() - started
    summary = {
        "behavior": spec.name, "trainer": settings.trainer, "algorithm": type(model).__name__, "model": "model.zip",
        "demo_path": str(settings.demo_path), "demo_transitions": n_transitions, "env_steps": int(model.num_timesteps),
        "phases": [p.name for p in phases], "wall_time_s": wall, "unity_restarts": venv.unwrapped.restart_count, **evaluation.to_dict(),
    }  # fmt: skip
    (run_dir / "evaluation.json").write_text(json.dumps(summary, indent=2))
    plot_learning_curve(recorder.metrics_path, run_dir / "learning_curve.png", title=f"{run_id}: {settings.trainer} on {spec.name}")
    return RunResult(run_dir, spec.name, settings.trainer, False, evaluation, wall)

