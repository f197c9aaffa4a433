"""One training run, like ``mlagents-learn``: config + env + demos in, ``results/<run-id>/`` out.

``results/<run-id>/`` holds:

* ``config.yaml``: the resolved config (every section, every key);
* ``model.zip``: the trained SB3 model (``PPO.load`` for ``offline_bc``, ``gail`` and
  ``bc_then_ppo``; ``SAC.load`` for ``bc_then_sac``); :func:`~gym_unity_il.train.evaluation.load_policy`
  gives it the env's own observations;
* ``evaluation.json``: returns of ``eval_episodes`` deterministic episodes (seeds
  ``1_000_000 + seed``, ``+ 1``, ...: never the starts the demos were recorded from), what was trained, and ``unity_restarts`` (Unity processes
  restarted after a failure, see ``max_restarts``);
* ``metrics.csv`` and ``learning_curve.png``: return against steps, per phase;
* ``tensorboard/``: TensorBoard event files of every trainer;
* ``checkpoint/``: the state a Ctrl+C (or the end of the run) left, which ``resume=True``
  continues from: the model, each phase's state (``phases.pt``, loaded weights-only),
  SAC's replay buffer, and ``state.json`` (the phase, the step, the rows of ``metrics.csv``
  it stands for, and a summary row it was computing). It is written beside the old one
  and then swapped in, so it is whole or absent.

A run id is a plain folder name (letters, digits, ``.``, ``_``, ``-``), so the run writes
only inside ``results/<run-id>/``; ``evaluation.json`` is written last.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml

from gym_unity_il.errors import ConfigError, OutputError, quote
from gym_unity_il.spec import BehaviorSpec
from gym_unity_il.train.config import RunConfig, TrainerSettings, load_config
from gym_unity_il.train.env import RestartLog, make_training_env
from gym_unity_il.train.evaluation import HELD_OUT_SEEDS, Evaluation, evaluate, plot_learning_curve
from gym_unity_il.train.progress import Phase, RunRecorder, writing

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
            "name its behavior with behavior_name= (--behavior on the command line), or give it the config's only behavior section"
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


#: What a run id may be: a plain folder name (no separator, not ``.`` or ``..``).
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: What a run folder holds (every trainer's outputs): ``force=True`` deletes only a folder
#: holding nothing else.
RUN_ENTRIES = frozenset({"config.yaml", "model.zip", "evaluation.json", "metrics.csv", "learning_curve.png", "tensorboard",
                         CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.tmp", f"{CHECKPOINT_DIR}.old", "dagger"})  # fmt: skip
FORCE_HINT = "force=True (--force on the command line)"
RESUME_HINT = "resume=True (--resume on the command line)"


def check_run_id(run_id: object) -> str:
    """``run_id`` if it is a plain folder name: 1 to 100 letters, digits, ``.``, ``_``, ``-``,
    without ``..`` (so results stay inside the results folder).

    Raises:
        ConfigError: any other run id.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id or run_id == ".":
        raise ConfigError(
            f"run id {quote(run_id)}: a run id is a plain folder name of 1 to 100 letters, digits, '.', '_' and '-', "
            "without '/' or '..'; the run's results go to <results dir>/<run id>"
        )
    return run_id


def run_folder(results_dir: str | os.PathLike[str], run_id: str) -> Path:
    """``results_dir / run_id`` after checking the run id, and that the folder (if it exists)
    is a real folder whose every entry stays inside it (no symbolic link out).

    Raises:
        ConfigError: a bad run id, or a run folder that is a file or holds symbolic links.
    """
    run_dir = Path(results_dir) / check_run_id(run_id)
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise ConfigError(f"{run_dir} exists and is not a run folder (a file or a symbolic link); choose another run id")
    if run_dir.is_dir():
        for path in run_dir.rglob("*"):  # rglob does not follow links into other folders
            if path.is_symlink():
                raise ConfigError(f"{path} is a symbolic link; a run writes only inside its own folder {run_dir}: remove the link or choose another run id")
    return run_dir


def remove_run_folder(run_dir: Path) -> None:
    """Deletes ``run_dir`` (checked by :func:`run_folder`) if it holds only what runs write.

    Raises:
        ConfigError: it holds anything else (then nothing is deleted).
    """
    others = sorted(entry.name for entry in run_dir.iterdir() if entry.name not in RUN_ENTRIES)
    if others:
        raise ConfigError(
            f"{run_dir} holds {quote(others[0])}, which no run writes, so {FORCE_HINT} does not delete it; "
            "move what you want to keep and delete the folder yourself, or choose another run id"
        )
    try:
        shutil.rmtree(run_dir)
    except OSError as exc:
        raise OutputError.from_os_error(run_dir, exc, "The old run folder could not be deleted.") from exc


def _save_checkpoint(folder: Path, model: Any, phases: list[Phase], current: int, *, metrics_rows: int, pending: tuple[str, int] | None) -> None:
    """Writes the checkpoint into a fresh folder, then puts it in place of the previous one
    (a checkpoint is whole or absent, never half old, half new). ``metrics_rows``: the rows
    of ``metrics.csv`` it stands for; ``pending``: the summary row it was computing.

    Raises:
        OutputError: the folder cannot be written (the previous checkpoint is kept).
    """
    draft, old = folder.with_name(f"{folder.name}.tmp"), folder.with_name(f"{folder.name}.old")
    shutil.rmtree(draft, ignore_errors=True)  # what an earlier failure left
    phase_states = io.BytesIO()
    th.save([phase.state() for phase in phases], phase_states)  # in memory: torch reports a full disk without its reason
    state = {
        "phase": current, "phase_name": phases[current].name, "num_timesteps": int(model.num_timesteps), "phases": [p.name for p in phases],
        "metrics_rows": metrics_rows, "pending_summary": pending,
    }  # fmt: skip
    try:
        with writing(draft):
            draft.mkdir()
            model.save(draft / "model.zip")
            if getattr(model, "replay_buffer", None) is not None:  # SAC: its experience goes on too
                model.save_replay_buffer(draft / "replay_buffer.pkl")
            (draft / "phases.pt").write_bytes(phase_states.getvalue())
            (draft / "state.json").write_text(json.dumps(state, indent=2))
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    with writing(folder):
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            folder.rename(old)
        draft.rename(folder)
        shutil.rmtree(old, ignore_errors=True)


def _damaged(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{path}: {problem}, so the run cannot be resumed from its checkpoint. "
        f"Start it anew with {FORCE_HINT} (this deletes {path.parent.parent}), or train under another run id"
    )


def _load_checkpoint(folder: Path, model: Any, phases: list[Phase]) -> dict[str, Any]:
    """Loads the checkpoint into ``model`` and ``phases``; returns its state.

    Raises:
        ConfigError: a file of the checkpoint is missing or damaged (naming it), or it is of another trainer.
    """
    names = [p.name for p in phases]
    path = folder / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        int(state["phase"]), int(state["num_timesteps"]), int(state["metrics_rows"]), list(state["phases"])
        pending = state.get("pending_summary")
        if pending is not None:
            str(pending[0]), int(pending[1])
    except FileNotFoundError:
        raise _damaged(path, "missing") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise _damaged(path, f"damaged or not written by gym_unity_il ({type(exc).__name__})") from None
    if state["phases"] != names:
        raise ConfigError(f"{folder}: the checkpoint is of a run with phases {quote(state['phases'])}, this config trains {names}; use the same trainer to resume")
    if not 0 <= int(state["phase"]) < len(phases):
        raise _damaged(path, f"damaged (phase {quote(state['phase'])} of {len(phases)})")
    path = folder / "model.zip"
    try:
        model.set_parameters(str(path), exact_match=True, device="cpu")
    except FileNotFoundError:
        raise _damaged(path, "missing") from None
    except Exception as exc:  # zip, pickle and torch errors: never their advice, which may suggest an unsafe load
        raise _damaged(path, f"damaged, or of another network than this config's (hidden_units, num_layers, normalize) ({type(exc).__name__})") from None
    model.num_timesteps = int(state["num_timesteps"])
    path = folder / "replay_buffer.pkl"
    if getattr(model, "replay_buffer", None) is not None:
        try:
            model.load_replay_buffer(path)
        except FileNotFoundError:
            raise _damaged(path, "missing") from None
        except Exception as exc:
            raise _damaged(path, f"damaged ({type(exc).__name__})") from None
    path = folder / "phases.pt"
    try:
        phase_states = th.load(path, weights_only=True)
        if not isinstance(phase_states, list) or len(phase_states) != len(phases):
            raise TypeError("not one state per phase")
        for phase, phase_state in zip(phases, phase_states):
            phase.load_state(phase_state)
    except FileNotFoundError:
        raise _damaged(path, "missing") from None
    except Exception as exc:
        raise _damaged(path, f"damaged or not written by gym_unity_il ({type(exc).__name__})") from None
    return state


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
    started = time.perf_counter()
    if not isinstance(config, RunConfig):
        config = load_config(config)
    if max_steps is not None:
        config = config.with_max_steps(max_steps)
    run_dir = run_folder(results_dir, run_id)
    _check_run_folder(run_dir, resume=resume, force=force)
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
            raise ConfigError(f"{RESUME_HINT}: trainer {settings.trainer!r} learns from a live teacher and does not resume; start a new run")
        if force and run_dir.exists():
            remove_run_folder(run_dir)
        if settings.trainer == "online_bc":
            from gym_unity_il.train.online import train_online

            return train_online(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                                behavior_name=behavior_name, seed=seed, progress=progress)  # fmt: skip
        from gym_unity_il.train.dagger import train_dagger

        return train_dagger(config, run_id=run_id, results_dir=results_dir, file_name=file_name, scene=scene, scene_kwargs=scene_kwargs,
                            behavior_name=behavior_name, seed=seed, progress=progress)  # fmt: skip
    if behavior_name or not config.behaviors:  # else the scene's first behavior picks the section
        _check_settings(settings, _section(config, behavior_name or ""))
    if force and run_dir.exists():
        remove_run_folder(run_dir)
    new = not run_dir.exists()
    with writing(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)  # now: a results folder that cannot be written fails before Unity starts
    start = _Start(started)
    try:
        return _train(config, run_dir, behavior_name=behavior_name, resume=resume, seed=seed, progress=progress, start=start,
                      env_kwargs={"file_name": file_name, "scene": scene, "scene_kwargs": scene_kwargs})  # fmt: skip
    except BaseException:
        if new and not start.training:  # nothing trained: no folder to block the next attempt
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _check_run_folder(run_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuses a run folder that does not fit the request: resume needs its checkpoint, a new
    run needs a free run id (or force)."""
    if resume and force:
        raise ConfigError(f"give {RESUME_HINT} or {FORCE_HINT}, not both: resume continues {run_dir}, force deletes it and starts anew")
    has_checkpoint = (run_dir / CHECKPOINT_DIR / "state.json").is_file()
    if resume and not has_checkpoint:
        if (run_dir / CHECKPOINT_DIR).is_dir():
            raise _damaged(run_dir / CHECKPOINT_DIR / "state.json", "missing")
        if run_dir.exists():
            raise ConfigError(f"{RESUME_HINT}: {run_dir} holds no checkpoint to continue from; start it anew with {FORCE_HINT}")
        raise ConfigError(f"{RESUME_HINT}: {run_dir} does not exist, so there is nothing to continue; start the run without resume")
    if not resume and not force and run_dir.exists():
        if has_checkpoint:
            raise ConfigError(
                f"run id {run_dir.name!r}: {run_dir} already exists; pass {RESUME_HINT} to continue it, "
                f"{FORCE_HINT} to delete it and start anew, or choose another run id"
            )
        raise ConfigError(
            f"run id {run_dir.name!r}: {run_dir} already exists and holds no checkpoint to resume; "
            f"pass {FORCE_HINT} to delete it and start anew, or choose another run id"
        )


@dataclass
class _Start:
    """When the run started, and whether it got as far as training."""

    time: float
    training: bool = False


def _train(
    config: RunConfig, run_dir: Path, *, behavior_name: str | None, resume: bool, seed: int, progress: bool, start: _Start, env_kwargs: dict[str, Any]
) -> RunResult:
    """The run of :func:`train` once its folder exists."""
    from imitation.util import logger as imitation_logger
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import unwrap_vec_wrapper

    from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, read_demo
    from gym_unity_il.train.bc import BCPhase, bc_batches, count_transitions
    from gym_unity_il.train.gail import GAILPhase
    from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs, observation_statistics
    from gym_unity_il.train.pretrain import RLPhase, SACActorPretraining

    checkpoint = run_dir / CHECKPOINT_DIR
    settings = config.for_behavior(behavior_name) if behavior_name else config.default
    set_random_seed(seed)
    venv, spec = make_training_env(**env_kwargs, behavior_name=behavior_name, num_envs=settings.num_envs, seed=seed, max_restarts=settings.max_restarts)
    try:
        # Setting up: an error here leaves no run folder behind (see train).
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
        with writing(run_dir / "tensorboard"):
            logger = imitation_logger.configure(run_dir / "tensorboard", ["tensorboard"])
        model.set_logger(logger)
        restart_log = unwrap_vec_wrapper(venv, RestartLog)
        if restart_log is not None:
            restart_log.logger = logger
        recorder = RunRecorder(run_dir=run_dir, logger=logger, summary_freq=settings.summary_freq, progress=progress)

        def evaluate_return() -> float:
            return evaluate(model, policy_venv, episodes=policy_venv.num_envs, seed=HELD_OUT_SEEDS + seed).mean_return

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

        state = _load_checkpoint(checkpoint, model, phases) if resume else None
        with writing(run_dir / "config.yaml"):
            (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

        start.training = True
        current = 0
        try:
            if state is not None:  # the rows the checkpoint had, and the one it was computing
                current = int(state["phase"])
                recorder.truncate(int(state["metrics_rows"]))
                if state.get("pending_summary"):
                    phase_name, step = state["pending_summary"]
                    recorder.summary(phase_name, int(step), evaluate_return)
            for current in range(current, len(phases)):
                recorder.safe_step = None
                phases[current].run(recorder)
            _save_checkpoint(checkpoint, model, phases, len(phases) - 1, metrics_rows=len(recorder.rows), pending=None)
            logger.dump(model.num_timesteps)
            with writing(run_dir / "model.zip"):
                model.save(run_dir / "model.zip")
            evaluation = evaluate(model, policy_venv, episodes=settings.eval_episodes, seed=HELD_OUT_SEEDS + seed)
            wall = time.perf_counter() - start.time
            summary = {
                "behavior": spec.name, "trainer": settings.trainer, "algorithm": type(model).__name__, "model": "model.zip",
                "demo_path": str(settings.demo_path), "demo_transitions": n_transitions, "env_steps": int(model.num_timesteps),
                "phases": [p.name for p in phases], "wall_time_s": wall, "unity_restarts": venv.unwrapped.restart_count, **evaluation.to_dict(),
            }  # fmt: skip
            with writing(run_dir / "learning_curve.png"):
                plot_learning_curve(recorder.metrics_path, run_dir / "learning_curve.png", title=f"{run_dir.name}: {settings.trainer} on {spec.name}")
            with writing(run_dir / "evaluation.json"):  # last: its presence means a finished run
                (run_dir / "evaluation.json").write_text(json.dumps(summary, indent=2))
        except KeyboardInterrupt:
            rows = len(recorder.rows)
            if recorder.safe_step is not None and recorder.safe_step < model.num_timesteps:
                # RL stopped within a rollout: the checkpoint is at the rollout's start, which the parameters belong to;
                # the resumed run collects those steps again (and writes their rows again).
                model.num_timesteps = recorder.safe_step
                rows = recorder.rows_until(phases[current].name, recorder.safe_step)
            _save_checkpoint(checkpoint, model, phases, current, metrics_rows=rows, pending=recorder.pending)
            return RunResult(run_dir, spec.name, settings.trainer, True, None, time.perf_counter() - start.time)
    finally:
        venv.close()
    return RunResult(run_dir, spec.name, settings.trainer, False, evaluation, wall)
