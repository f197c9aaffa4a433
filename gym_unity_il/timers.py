"""Where a step's time goes: per-phase timers, off unless ``GYM_UNITY_IL_TIMERS=1``.

With the variable set when the package is imported, every ``with phase("decode"):`` adds its
wall time to a process-wide table; :func:`report` reads it and :func:`clear` empties it. Off
(the default), :func:`phase` returns one shared context that does nothing, so the timed code
costs a ``with`` statement and no clock reads. Phases of the link:

* ``encode``: the trainer's answer to bytes (actions, parameters, side channels);
* ``transport``: answering Unity's pending call and waiting for its next one (the player's
  own work included);
* ``decode``: Unity's message to arrays;
* ``slots``: the VecEnv's bookkeeping of agents and slots (:mod:`gym_unity_il.envs.slots`).

Example::

    GYM_UNITY_IL_TIMERS=1 python benchmarks/bench_vecenv.py --timers
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import ContextManager

#: The variable that turns the timers on (read once, at import).
TIMERS_VARIABLE = "GYM_UNITY_IL_TIMERS"
ENABLED = os.environ.get(TIMERS_VARIABLE, "") == "1"

_lock = threading.Lock()
_table: dict[str, list[float]] = {}  # phase -> [calls, seconds]
_OFF = contextlib.nullcontext()


@contextlib.contextmanager
def _timed(name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        with _lock:
            entry = _table.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += elapsed


def phase(name: str) -> ContextManager[None]:
    """A context that adds its wall time to phase ``name`` (does nothing when the timers are off)."""
    return _timed(name) if ENABLED else _OFF


def report() -> dict[str, tuple[int, float]]:
    """Per phase: ``(calls, seconds)`` since the last :func:`clear` (empty when the timers are off)."""
    with _lock:
        return {name: (int(calls), seconds) for name, (calls, seconds) in _table.items()}


def clear() -> None:
    """Empties the table."""
    with _lock:
        _table.clear()
