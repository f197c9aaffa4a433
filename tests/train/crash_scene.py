"""A scene for restart tests of the trainers: the "ball" scene, whose process crashes once.

Its process exits abruptly (code 3, like a crashing Unity player) at the scene's
``crash_at_step``-th step, unless the file ``marker`` exists; it creates the file first, so
the process started again after the crash runs clean.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from gym_unity_il.scenes.ball import BallScene


class CrashOnceBall(BallScene):
    """See the module docstring; other arguments are the ball scene's."""

    def __init__(self, *, crash_at_step: int, marker: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._crash_at_step = crash_at_step
        self._marker = marker
        self._acted = 0

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self._acted += 1
        if self._acted == self._crash_at_step:
            try:
                with open(self._marker, "x", encoding="utf-8"):
                    pass
            except FileExistsError:
                pass  # crashed in an earlier life already
            else:
                logging.shutdown()
                os._exit(3)
        super().act(actions)
