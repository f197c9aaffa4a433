"""What a run shows and keeps while it trains: the progress bar, ``metrics.csv`` and the
TensorBoard logger, shared by every training phase (BC, GAIL, RL)."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any, Protocol

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import safe_mean
from tqdm import tqdm

#: Columns of ``metrics.csv``: the phase (bc, ppo, sac, gail), its step count (demo samples
#: for bc, env steps otherwise), the return, and the wall time of the process so far.
METRICS_COLUMNS = ("phase", "step", "return", "time_s")


class Phase(Protocol):
    """One stage of a run (BC, GAIL, RL) that can be checkpointed and continued."""

    name: str

    def run(self, recorder: RunRecorder) -> None:
        """Trains until the phase's budget is spent (continuing from a loaded state)."""

    def state(self) -> dict[str, Any]:
        """What the checkpoint keeps besides the SB3 model (``torch.save``-able)."""

    def load_state(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state`."""


class RunRecorder:
    """Progress bar, ``metrics.csv`` (appended to, so a resumed run keeps its history) and
    the `imitation` / SB3 logger writing TensorBoard events.

    Args:
        run_dir: the run's results folder.
        logger: the logger of every trainer in the run.
        summary_freq: steps between rows of ``metrics.csv``.
        progress: show progress bars.
    """

    def __init__(self, *, run_dir: Path, logger: Any, summary_freq: int, progress: bool = True) -> None:
        self.run_dir = run_dir
        self.logger = logger
        self.summary_freq = summary_freq
        self.progress = progress
        self.metrics_path = run_dir / "metrics.csv"
        self.started = time.perf_counter()
        self.last_return: float | None = None
        self._bar: tqdm | None = None
        if not self.metrics_path.exists():
            with open(self.metrics_path, "w", newline="") as f:
                csv.writer(f).writerow(METRICS_COLUMNS)

    def bar(self, phase: str, *, total: int, initial: int, unit: str) -> tqdm:
        """A progress bar for one phase (steps, return, time left)."""
        self._bar = tqdm(total=total, initial=min(initial, total), desc=phase, unit=unit, disable=not self.progress, dynamic_ncols=True)
        return self._bar

    def summary(self, phase: str, step: int, mean_return: float | None) -> None:
        """Appends a row to ``metrics.csv``, logs the return and shows it on the bar."""
        value = "" if mean_return is None or math.isnan(mean_return) else f"{mean_return:.6g}"
        with open(self.metrics_path, "a", newline="") as f:
            csv.writer(f).writerow((phase, step, value, f"{time.perf_counter() - self.started:.2f}"))
        if value:
            self.last_return = float(mean_return)  # type: ignore[arg-type]
            self.logger.record(f"summary/{phase}_return", self.last_return)
            if self._bar is not None:
                self._bar.set_postfix(ret=f"{self.last_return:.3g}", refresh=False)


class ProgressCallback(BaseCallback):
    """Moves the bar with an SB3 model's env steps and writes a summary (mean return of the
    last 100 finished episodes) every ``summary_freq`` steps."""

    def __init__(self, recorder: RunRecorder, phase: str, bar: tqdm) -> None:
        super().__init__()
        self.recorder = recorder
        self.phase = phase
        self.bar = bar
        self.next_summary: int | None = None
        self.written = -1

    def _on_step(self) -> bool:
        steps = self.model.num_timesteps
        self.bar.update(max(0, steps - self.bar.n))
        freq = self.recorder.summary_freq
        if self.next_summary is None:
            self.next_summary = (steps // freq + 1) * freq
        if steps >= self.next_summary:
            self.write_summary()
        return True

    def write_summary(self) -> None:
        """Writes the summary of the current step (also at the end of a phase)."""
        steps = self.model.num_timesteps
        returns = [info["r"] for info in self.model.ep_info_buffer]
        self.recorder.summary(self.phase, steps, safe_mean(returns) if returns else None)
        self.next_summary = (steps // self.recorder.summary_freq + 1) * self.recorder.summary_freq
        self.written = steps
