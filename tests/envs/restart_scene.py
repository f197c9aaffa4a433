"""A scene for restart tests: the "ball" scene whose number of agents follows its seed.

Two agents with an even seed, three with an odd one, so a Unity process restarted with
the next seed comes back with more agents than it had (a changed scene).
"""

from __future__ import annotations

from typing import Any

from gym_unity_il.scenes.ball import BallScene


class SeedSizedBall(BallScene):
    """See the module docstring; other arguments are the ball scene's."""

    def __init__(self, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(num_agents=2 + seed % 2, seed=seed, **kwargs)
