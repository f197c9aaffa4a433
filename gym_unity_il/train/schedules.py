"""Settings that change over an RL run, as ML-Agents' ``*_schedule`` keys ask: the learning
rate, PPO's clip range and entropy coefficient, each ``constant`` or ``linear`` (from its
configured value at step 0 to ML-Agents' floor at ``max_steps``, then held there).

The schedule runs on the run's own step count (env steps of all agents, the model's
``num_timesteps``) against the behavior's ``max_steps``, so it is the same for plain RL,
for GAIL's generator (which `imitation` trains a round at a time) and for a resumed run.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from gym_unity_il.train.config import Schedule, TrainerSettings
from gym_unity_il.train.progress import Helper

#: Where a ``linear`` schedule ends, per setting (ML-Agents' floors).
FLOORS = {"learning_rate": 1.0e-10, "clip_range": 0.1, "ent_coef": 1.0e-5}


def scheduled(value: float, schedule: Schedule, floor: float, step: int, max_steps: int) -> float:
    """``value`` at ``step`` of a run of ``max_steps`` under ``schedule``.

    A linear schedule never raises a value: one already below its floor stays where it is.
    """
    if schedule == "constant" or value <= floor:
        return value
    left = max(0.0, 1.0 - step / max_steps)
    return floor + (value - floor) * left


class Fixed:
    """A schedule function of SB3 (progress remaining -> value) that returns one value: the
    value :class:`Schedules` chose for the coming update."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, progress_remaining: float) -> float:
        return self.value


class Schedules(Helper):
    """Sets the model's scheduled settings at the start of every rollout (SB3 applies them in
    the update that follows) and logs them (``schedule/learning_rate`` ...).

    Args:
        settings: the behavior's settings (``ppo`` or ``sac`` schedules, ``max_steps``).
    """

    def __init__(self, settings: TrainerSettings) -> None:
        super().__init__()
        self.settings = settings

    @staticmethod
    def needed(settings: TrainerSettings, model: BaseAlgorithm) -> bool:
        """Whether any setting of ``model`` is scheduled (else the callback is left out)."""
        if isinstance(model, PPO):
            ppo = settings.ppo
            return "linear" in (ppo.learning_rate_schedule, ppo.clip_range_schedule, ppo.ent_coef_schedule)
        return settings.sac.learning_rate_schedule == "linear"

    def values(self, step: int) -> dict[str, float]:
        """The scheduled settings at ``step``."""
        s, top = self.settings, self.settings.max_steps
        if isinstance(self.model, PPO):
            ppo = s.ppo
            return {
                "learning_rate": scheduled(ppo.learning_rate, ppo.learning_rate_schedule, FLOORS["learning_rate"], step, top),
                "clip_range": scheduled(ppo.clip_range, ppo.clip_range_schedule, FLOORS["clip_range"], step, top),
                "ent_coef": scheduled(ppo.ent_coef, ppo.ent_coef_schedule, FLOORS["ent_coef"], step, top),
            }
        return {"learning_rate": scheduled(s.sac.learning_rate, s.sac.learning_rate_schedule, FLOORS["learning_rate"], step, top)}

    def _on_rollout_start(self) -> None:
        values = self.values(self.model.num_timesteps)
        model: Any = self.model
        model.lr_schedule = Fixed(values["learning_rate"])
        if "clip_range" in values:
            model.clip_range = Fixed(values["clip_range"])
            model.ent_coef = values["ent_coef"]
        for key, value in values.items():
            self.logger.record(f"schedule/{key}", value)

    def _on_step(self) -> bool:
        return True

    def state(self) -> dict[str, Any]:
        return {}  # the values follow from the step count alone

    def load_state(self, state: dict[str, Any]) -> None:
        pass
