"""Where a run writes: run ids, run folders, and the checkpoint that ``resume`` continues from.

A run id is a plain folder name (letters, digits, ``.``, ``_``, ``-``), so a run writes only
inside ``<results dir>/<run id>/``, whose names :class:`~gym_unity_il.export.saved.RunFiles`
defines. The checkpoint is written beside the old one and then swapped in, so it is whole
or absent; loading it names any missing or damaged file and the way on.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch as th

from gym_unity_il.errors import ConfigError, OutputError, quote
from gym_unity_il.export.saved import CheckpointFiles, RunFiles
from gym_unity_il.train.progress import Phase, writing

#: What a run id may be: a plain folder name (no separator, not ``.`` or ``..``).
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
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


def remove_run_folder(files: RunFiles) -> None:
    """Deletes the run folder (checked by :func:`run_folder`) if it holds only what runs write.

    Raises:
        ConfigError: it holds anything else (then nothing is deleted).
    """
    run_dir = files.root
    others = sorted(entry.name for entry in run_dir.iterdir() if entry.name not in files.entries)
    if others:
        raise ConfigError(
            f"{run_dir} holds {quote(others[0])}, which no run writes, so {FORCE_HINT} does not delete it; "
            "move what you want to keep and delete the folder yourself, or choose another run id"
        )
    try:
        shutil.rmtree(run_dir)
    except OSError as exc:
        raise OutputError.from_os_error(run_dir, exc, "The old run folder could not be deleted.") from exc


def check_run_folder(files: RunFiles, *, resume: bool, force: bool, trainer: str, resumable: bool) -> None:
    """Refuses a run folder that does not fit the request: resume needs its checkpoint, a new
    run needs a free run id (or force); a ``trainer`` that is not ``resumable`` never resumes.

    Raises:
        ConfigError: naming the way on.
    """
    run_dir, checkpoint = files.root, files.checkpoint
    if resume and not resumable:
        raise ConfigError(f"{RESUME_HINT}: trainer {trainer!r} keeps no checkpoint and does not resume; start a new run")
    if resume and force:
        raise ConfigError(f"give {RESUME_HINT} or {FORCE_HINT}, not both: resume continues {run_dir}, force deletes it and starts anew")
    has_checkpoint = checkpoint.state.is_file()
    if resume and not has_checkpoint:
        if checkpoint.root.is_dir():
            raise _damaged(checkpoint.state, "missing")
        if run_dir.exists():
            raise ConfigError(f"{RESUME_HINT}: {run_dir} holds no checkpoint to continue from; start it anew with {FORCE_HINT}")
        raise ConfigError(f"{RESUME_HINT}: {run_dir} does not exist, so there is nothing to continue; start the run without resume")
    if not resume and not force and run_dir.exists():
        if not resumable:
            raise ConfigError(
                f"run id {run_dir.name!r}: {run_dir} already exists; pass {FORCE_HINT} to delete it and start anew, "
                f"or choose another run id ({trainer} runs do not resume)"
            )
        if has_checkpoint:
            raise ConfigError(
                f"run id {run_dir.name!r}: {run_dir} already exists; pass {RESUME_HINT} to continue it, "
                f"{FORCE_HINT} to delete it and start anew, or choose another run id"
            )
        raise ConfigError(
            f"run id {run_dir.name!r}: {run_dir} already exists and holds no checkpoint to resume; "
            f"pass {FORCE_HINT} to delete it and start anew, or choose another run id"
        )


def save_checkpoint(checkpoint: CheckpointFiles, model: Any, phases: Sequence[Phase], current: int, *, metrics_rows: int, pending: tuple[str, int] | None) -> None:
    """Writes the checkpoint into a fresh folder, then puts it in place of the previous one
    (a checkpoint is whole or absent, never half old, half new). ``metrics_rows``: the rows
    of ``metrics.csv`` it stands for; ``pending``: the summary row it was computing.

    Raises:
        OutputError: the folder cannot be written (the previous checkpoint is kept).
    """
    draft, old = checkpoint.draft, checkpoint.old
    shutil.rmtree(draft.root, ignore_errors=True)  # what an earlier failure left
    phase_states = io.BytesIO()
    th.save([phase.state() for phase in phases], phase_states)  # in memory: torch reports a full disk without its reason
    state = {
        "phase": current, "phase_name": phases[current].name, "num_timesteps": int(model.num_timesteps), "phases": [p.name for p in phases],
        "metrics_rows": metrics_rows, "pending_summary": pending,
    }  # fmt: skip
    try:
        with writing(draft.root):
            draft.root.mkdir()
            model.save(draft.model)
            if getattr(model, "replay_buffer", None) is not None:  # SAC: its experience goes on too
                model.save_replay_buffer(draft.replay_buffer)
            draft.phases.write_bytes(phase_states.getvalue())
            draft.state.write_text(json.dumps(state, indent=2))
    except BaseException:
        shutil.rmtree(draft.root, ignore_errors=True)
        raise
    with writing(checkpoint.root):
        if old.root.exists():
            shutil.rmtree(old.root)
        if checkpoint.root.exists():
            checkpoint.root.rename(old.root)
        draft.root.rename(checkpoint.root)
        shutil.rmtree(old.root, ignore_errors=True)


def _damaged(path: Path, problem: str) -> ConfigError:
    return ConfigError(
        f"{path}: {problem}, so the run cannot be resumed from its checkpoint. "
        f"Start it anew with {FORCE_HINT} (this deletes {path.parent.parent}), or train under another run id"
    )


def load_checkpoint(checkpoint: CheckpointFiles, model: Any, phases: Sequence[Phase]) -> dict[str, Any]:
    """Loads the checkpoint into ``model`` and ``phases``; returns its state.

    Raises:
        ConfigError: a file of the checkpoint is missing or damaged (naming it), or it is of another trainer.
    """
    names = [p.name for p in phases]
    path = checkpoint.state
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
        raise ConfigError(f"{checkpoint.root}: the checkpoint is of a run with phases {quote(state['phases'])}, this config trains {names}; use the same trainer to resume")
    if not 0 <= int(state["phase"]) < len(phases):
        raise _damaged(path, f"damaged (phase {quote(state['phase'])} of {len(phases)})")
    path = checkpoint.model
    try:
        model.set_parameters(str(path), exact_match=True, device="cpu")
    except FileNotFoundError:
        raise _damaged(path, "missing") from None
    except Exception as exc:  # zip, pickle and torch errors: never their advice, which may suggest an unsafe load
        raise _damaged(path, f"damaged, or of another network than this config's (hidden_units, num_layers, normalize) ({type(exc).__name__})") from None
    model.num_timesteps = int(state["num_timesteps"])
    path = checkpoint.replay_buffer
    if getattr(model, "replay_buffer", None) is not None:
        try:
            model.load_replay_buffer(path)
        except FileNotFoundError:
            raise _damaged(path, "missing") from None
        except Exception as exc:
            raise _damaged(path, f"damaged ({type(exc).__name__})") from None
    path = checkpoint.phases
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


def initialize_from(model: Any, results_dir: str | os.PathLike[str], run_id: str) -> None:
    """Starts ``model`` from the trained model of another run of ``results_dir`` (ML-Agents'
    ``--initialize-from``): its policy's weights and optimizer state, from that run's
    ``model.zip`` (read as weights only); the step count starts at 0.

    Raises:
        ConfigError: a bad run id, no ``model.zip`` there, or one of another network or
            algorithm than this run's.
    """
    path = RunFiles.at(run_folder(results_dir, run_id)).model
    if not path.is_file():
        raise ConfigError(f"initialize_from {run_id!r} (--initialize-from): no trained model at {path}; name a finished run of the same "
                          "results folder (--results-dir)")  # fmt: skip
    try:
        model.set_parameters(str(path), exact_match=False, device="cpu")
    except Exception as exc:  # zip, pickle and torch errors: never their advice, which may suggest an unsafe load
        raise ConfigError(f"initialize_from {run_id!r} (--initialize-from): {path} is damaged, or of another algorithm or network than this "
                          f"run's (trainer, hidden_units, num_layers, normalize, the behavior's observations) ({type(exc).__name__})") from None
