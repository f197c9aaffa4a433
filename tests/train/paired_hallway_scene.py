"""A scene for online BC with memory: the "hallway" scene with a ``Teacher`` behavior (agent 0)
and a ``Student`` behavior (``num_agents`` agents), as "ball" and "grid" offer with
``teacher_student=True``. Other arguments are the hallway scene's."""

from __future__ import annotations

from typing import Any

from gym_unity_il.scenes.hallway import HallwayScene
from gym_unity_il.spec import BehaviorSpec


class PairedHallway(HallwayScene):
    """See the module docstring."""

    def __init__(self, *, num_agents: int = 1, **kwargs: Any) -> None:
        super().__init__(num_agents=num_agents + 1, **kwargs)

    def _behavior_layout(self) -> list[tuple[BehaviorSpec, int]]:
        ((spec, count),) = super()._behavior_layout()
        return [
            (BehaviorSpec("Teacher?team=0", spec.observation_specs, spec.action_spec), 1),
            (BehaviorSpec("Student?team=0", spec.observation_specs, spec.action_spec), count - 1),
        ]
