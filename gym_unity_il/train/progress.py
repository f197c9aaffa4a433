"""What a run shows and keeps while it trains: the progress bar, ``metrics.csv`` and the
TensorBoard logger, shared by every training phase (BC, GAIL, RL)."""

from __future__ import annotations

import contextlib
import csv
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from gym_unity_il.errors import ConfigError, OutputError

#: Columns of ``metrics.csv``: the phase (bc, ppo, sac, gail, online_bc, dagger), its step count
#: (demo samples for bc, teacher labels for dagger, env steps otherwise), the mean return of the
#: row's episodes and how many there were, and the wall time of the process so far. A row's
#: episodes are those that ended since the previous row, as ``mlagents-learn`` reports them (BC:
#: those of the evaluation it ran; DAgger: those of the round); where none ended, ``return`` is
#: empty and ``episodes`` 0.
METRICS_COLUMNS = ("phase", "step", "return", "episodes", "time_s")


class Phase(Protocol):
    """One stage of a run (BC, GAIL, RL) that can be checkpointed and continued."""

    name: str

    def run(self, recorder: RunRecorder) -> None:
        """Trains until the phase's budget is spent (continuing from a loaded state)."""

    def state(self) -> dict[str, Any]:
        """What the checkpoint keeps besides the SB3 model (``torch.save``-able)."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state`."""


class Helper(BaseCallback):
    """An SB3 callback that acts during an RL phase (a schedule, BC beside the RL) and keeps
    state the run's checkpoint must hold (its phase's state holds it)."""

    def state(self) -> dict[str, Any]:
        """What the checkpoint keeps (``torch.save``-able)."""
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state`."""
        raise NotImplementedError


class KeptState(Helper):
    """Keeps the state of something that is not a callback (a VecEnv wrapper with
    ``state()`` / ``load_state()``: the environment parameters' lessons, the intrinsic
    rewards' models) in the checkpoint of the RL phase it is given to; it does nothing during
    the training."""

    def __init__(self, holder: Any) -> None:
        super().__init__()
        self.holder = holder

    def _on_step(self) -> bool:
        return True

    def state(self) -> dict[str, Any]:
        return self.holder.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self.holder.load_state(state)


def helper_states(helpers: Sequence[Helper]) -> dict[str, Any]:
    """The state of a phase's helpers, for its :meth:`Phase.state`."""
    return {"helpers": [helper.state() for helper in helpers]}


def load_helper_states(helpers: Sequence[Helper], state: dict[str, Any]) -> None:
    """Restores :func:`helper_states`.

    Raises:
        ValueError: a checkpoint of a run with other helpers (the run says it is damaged).
    """
    states = state.get("helpers", [])
    if len(states) != len(helpers):
        raise ValueError(f"{len(states)} helper states for {len(helpers)} helpers")
    for helper, helper_state in zip(helpers, states):
        helper.load_state(helper_state)


class RunRecorder:
    """Progress bar, ``metrics.csv`` (appended to, so a resumed run keeps its history) and
    the `imitation` / SB3 logger writing TensorBoard events.

    Every row (:meth:`summary`) goes to all three: its mean return and episode count to
    ``metrics.csv``, ``summary/<phase>_return`` (when an episode ended) and
    ``summary/<phase>_episodes`` to TensorBoard, and the return to the bar. With progress bars
    shown, it also prints a line in the style of ``mlagents-learn`` beside the bar
    (:meth:`progress_line`).

    It also keeps what a checkpoint needs to resume to the same rows: the rows written so
    far (:attr:`rows`), a summary whose evaluation was running when the run was interrupted
    (:attr:`pending`), and, during RL, the step the model's parameters belong to
    (:attr:`safe_step`, the start of the rollout in progress).

    Args:
        metrics_path: the run's ``metrics.csv``.
        logger: the logger of every trainer in the run.
        summary_freq: steps between rows of ``metrics.csv``.
        progress: show progress bars and progress lines.
        behavior: the behavior trained, as the progress lines name it.

    Raises:
        OutputError: ``metrics.csv`` cannot be written (also from :meth:`summary`).
        ConfigError: an existing ``metrics.csv`` cannot be read, or has other columns.
    """

    def __init__(self, *, metrics_path: Path, logger: Any, summary_freq: int, progress: bool = True, behavior: str = "") -> None:
        self.logger = logger
        self.behavior = behavior
        self.summary_freq = summary_freq
        self.progress = progress
        self.metrics_path = metrics_path
        self.started = time.perf_counter()
        self.pending: tuple[str, int] | None = None
        self.safe_step: int | None = None
        self._bar: tqdm | None = None
        #: (phase, step) of every row of ``metrics.csv``, in order
        self.rows: list[tuple[str, int]] = []
        if self.metrics_path.exists():
            try:
                with open(self.metrics_path, newline="", encoding="utf-8") as f:
                    reader = csv.DictReader(f)
                    self.rows = [(str(row["phase"]), int(row["step"])) for row in reader]
            except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
                raise ConfigError(
                    f"{self.metrics_path}: damaged or not written by gym_unity_il ({type(exc).__name__}), so the run cannot go on "
                    "writing its rows; start it anew with force=True (--force on the command line)"
                ) from None
            if tuple(reader.fieldnames or ()) != METRICS_COLUMNS:
                raise ConfigError(
                    f"{self.metrics_path}: columns {','.join(reader.fieldnames or ()) or 'none'}, not {','.join(METRICS_COLUMNS)} (written by another "
                    "version of gym_unity_il), so the run cannot go on writing its rows; start it anew with force=True (--force on the command line)"
                )
        else:
            with writing(self.metrics_path):
                with open(self.metrics_path, "w", newline="") as f:
                    csv.writer(f).writerow(METRICS_COLUMNS)

    def bar(self, phase: str, *, total: int, initial: int, unit: str) -> tqdm:
        """A progress bar for one phase (steps, return, time left)."""
        self._bar = tqdm(total=total, initial=min(initial, total), desc=phase, unit=unit, disable=not self.progress, dynamic_ncols=True)
        return self._bar

    def summary(self, phase: str, step: int, returns: Sequence[float] | Callable[[], Sequence[float]]) -> None:
        """Appends the row of ``phase`` at ``step``: the mean and the number of ``returns``, the
        returns of the episodes that ended since the previous row (none: an empty return).

        ``returns`` may be a function computing them (an evaluation): while it runs the row is
        :attr:`pending`, so a checkpoint saved after an interrupt knows the row is due, and the
        progress line says it is an evaluation.
        """
        evaluated = False
        if callable(returns):
            self.pending = (phase, step)
            returns, evaluated = returns(), True
        episodes = [float(r) for r in returns]
        mean = float(np.mean(episodes)) if episodes else None
        value = "" if mean is None else f"{mean:.6g}"
        with writing(self.metrics_path):
            with open(self.metrics_path, "a", newline="") as f:
                csv.writer(f).writerow((phase, step, value, len(episodes), f"{time.perf_counter() - self.started:.2f}"))
        self.rows.append((phase, step))
        self.pending = None
        self.logger.record(f"summary/{phase}_episodes", len(episodes))
        if mean is not None:
            self.logger.record(f"summary/{phase}_return", mean)
        if self._bar is not None:
            self._bar.set_postfix(ret="none" if mean is None else f"{mean:.3g}", refresh=False)
        if self.progress:
            tqdm.write(self.progress_line(phase, step, episodes, evaluated=evaluated), file=sys.stderr)

    def progress_line(self, phase: str, step: int, returns: Sequence[float], *, evaluated: bool = False) -> str:
        """The line ``mlagents-learn`` prints every ``summary_freq`` steps, for a row of
        ``phase`` at ``step``: the mean and standard deviation of ``returns``, or that no
        episode was completed since the last row. BC phases count demo samples, and a row
        ``evaluated`` names the episodes it played."""
        head = f"{self.behavior.split('?team=')[0]}. Step: {step}{' samples (bc)' if phase == 'bc' else ''}. Time Elapsed: {time.perf_counter() - self.started:.3f} s."
        if not returns:
            return f"{head} No episode was completed since last summary. Training."
        played = f" Evaluation of {len(returns)} episodes." if evaluated else ""
        return f"{head} Mean Reward: {float(np.mean(returns)):.3f}. Std of Reward: {float(np.std(returns)):.3f}.{played} Training."

    def catch_up(self, phase: str, step: int, returns: Sequence[float] | Callable[[], Sequence[float]]) -> None:
        """Writes the row of ``phase`` at ``step`` (as :meth:`summary`) unless it is the last row
        already: where a row is due that may have been written (an RL phase's last step), also
        on resuming, in case the run was interrupted after the step was counted and before its
        row was written."""
        if self.rows[-1:] != [(phase, step)]:
            self.summary(phase, step, returns)

    def rows_until(self, phase: str, step: int) -> int:
        """How many rows come before any row of ``phase`` past ``step`` at the end of the file
        (the rows a checkpoint at that step keeps)."""
        kept = len(self.rows)
        while kept and self.rows[kept - 1][0] == phase and self.rows[kept - 1][1] > step:
            kept -= 1
        return kept

    def truncate(self, rows: int) -> None:
        """Keeps the first ``rows`` rows of ``metrics.csv`` (a resumed run redoes the others)."""
        if rows >= len(self.rows):
            return
        with open(self.metrics_path, newline="") as f:
            lines = list(csv.reader(f))[: rows + 1]
        with writing(self.metrics_path):
            with open(self.metrics_path, "w", newline="") as f:
                csv.writer(f).writerows(lines)
        del self.rows[rows:]


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Within the block, a failure to write (full disk, read-only folder, no permission)
    is an :class:`~gym_unity_il.errors.OutputError` naming ``path``."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError.from_os_error(path, exc) from exc


class ProgressCallback(BaseCallback):
    """Moves the bar with an SB3 model's env steps and writes a row every ``summary_freq``
    steps (at the first step past each multiple), with the returns of the episodes that
    ended since the previous row; and the row of the phase's last step when the training
    reaches the bar's total (the phase's budget).
    """

    def __init__(self, recorder: RunRecorder, phase: str, bar: tqdm) -> None:
        super().__init__()
        self.recorder = recorder
        self.phase = phase
        self.bar = bar
        self.next_summary: int | None = None
        #: returns of the episodes that ended since the last row
        self.returns: list[float] = []

    def _on_rollout_start(self) -> None:
        self.recorder.safe_step = self.model.num_timesteps  # the parameters are those of this step

    def _on_training_end(self) -> None:
        self.recorder.safe_step = self.model.num_timesteps
        if self.model.num_timesteps >= self.bar.total:  # the phase's last step: its row, after the last update
            self.recorder.catch_up(self.phase, self.model.num_timesteps, self.returns)
            self.returns = []

    def _on_step(self) -> bool:
        self.returns.extend(float(info["episode"]["r"]) for info in self.locals.get("infos", ()) if "episode" in info)
        steps = self.model.num_timesteps
        self.bar.update(max(0, steps - self.bar.n))
        freq = self.recorder.summary_freq
        if self.next_summary is None:
            self.next_summary = (steps // freq + 1) * freq
        if steps >= self.next_summary:
            self.write_summary()
        return True

    def write_summary(self) -> None:
        """Writes the row of the current step."""
        steps = self.model.num_timesteps
        self.recorder.summary(self.phase, steps, self.returns)
        self.returns = []
        self.next_summary = (steps // self.recorder.summary_freq + 1) * self.recorder.summary_freq
