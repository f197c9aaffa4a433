"""BC-then-RL: a policy initialised by behavioral cloning, then fine-tuned with the env's
reward by SB3's PPO or SAC.

For PPO the BC phase is :class:`~gym_unity_il.train.bc.BCPhase` on the PPO model's own
policy. SAC's actor is not an ``ActorCriticPolicy``, so :class:`SACActorPretraining`
clones the demonstrations into it directly: the actor's deterministic (squashed mean)
action is fitted to the expert's by mean squared error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList

from gym_unity_il.train.bc import DemoBatches, evaluation_interval
from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.progress import Helper, ProgressCallback, RunRecorder, helper_states, load_helper_states


class SACActorPretraining:
    """Fits SAC's actor to demonstrations for ``batches`` batches.

    Args:
        model: the SAC model whose actor is trained (in place).
        trajectories: demonstrations, observations adapted to the policy.
        settings: ``batch_size`` and ``learning_rate``.
        batches: the budget.
        rng: the shuffling generator.
        evaluate_return: the returns of the current policy's episodes on the env (an evaluation).

    Its rows come as :class:`~gym_unity_il.train.bc.BCPhase`'s (:func:`~gym_unity_il.train.bc.evaluation_interval`).
    """

    name = "bc"

    def __init__(
        self,
        *,
        model: SAC,
        trajectories: Sequence[Any],
        settings: TrainerSettings,
        batches: int,
        rng: np.random.Generator,
        evaluate_return: Callable[[], Sequence[float]],
    ) -> None:
        self.model = model
        self.batch_size = settings.batch_size
        self.loader = DemoBatches(trajectories, batch_size=self.batch_size, rng=rng)
        self.optimizer = th.optim.Adam(model.actor.parameters(), lr=settings.learning_rate)
        self.total = batches
        self.done = 0
        self.evaluate_return = evaluate_return
        self.trajectories = trajectories

    def _batches(self) -> Iterator[dict[str, Any]]:
        while True:
            yield from self.loader

    def run(self, recorder: RunRecorder) -> None:
        from imitation.data import types
        from imitation.util import util

        size = self.batch_size
        every = evaluation_interval(recorder.summary_freq, size, self.trajectories)
        bar = recorder.bar(self.name, total=self.total * size, initial=self.done * size, unit="sample")
        device = self.model.device
        batches = self._batches()
        if self.done and (self.done % every == 0 or self.done == self.total):  # resumed: its row may be missing
            recorder.catch_up(self.name, self.done * size, self.evaluate_return)
        try:
            while self.done < self.total:
                batch = next(batches)
                obs = types.map_maybe_dict(lambda x: util.safe_to_tensor(x, device=device), types.maybe_unwrap_dictobs(batch["obs"]))
                target = util.safe_to_tensor(batch["acts"], device=device).float().clamp(-1.0, 1.0)
                self.model.actor.set_training_mode(True)
                loss = th.nn.functional.mse_loss(self.model.actor(obs, deterministic=True), target)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self.done += 1
                if self.done % every == 0 or self.done == self.total:
                    recorder.logger.record("bc/loss", loss.item())
                    recorder.summary(self.name, self.done * size, self.evaluate_return)
                bar.update(size)
        finally:
            bar.close()

    def state(self) -> dict[str, Any]:
        return {"done": self.done, "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.done = int(state["done"])
        self.optimizer.load_state_dict(state["optimizer"])


class RLPhase:
    """Trains an SB3 model on its env's reward up to ``total_steps`` env steps in all.

    Args:
        name: the phase's name in ``metrics.csv`` (``ppo`` or ``sac``).
        model: the SB3 algorithm, with its env.
        total_steps: the budget.
        helpers: what else acts during the training (:class:`Helper`: schedules, BC beside
            the RL); their state is the phase's.
    """

    def __init__(self, *, name: str, model: BaseAlgorithm, total_steps: int, helpers: Sequence[Helper] = ()) -> None:
        self.name = name
        self.model = model
        self.total = total_steps
        self.helpers = list(helpers)

    def run(self, recorder: RunRecorder) -> None:
        bar = recorder.bar(self.name, total=self.total, initial=self.model.num_timesteps, unit="step")
        try:
            remaining = self.total - self.model.num_timesteps
            if remaining > 0:
                callback = CallbackList([ProgressCallback(recorder, self.name, bar), *self.helpers])
                self.model.learn(remaining, reset_num_timesteps=False, callback=callback)
            # learning wrote the last row (ProgressCallback); resumed after the last step and before
            # its row, the run writes it here, without the episodes that ended before the interrupt
            recorder.catch_up(self.name, self.model.num_timesteps, ())
        finally:
            bar.close()

    def state(self) -> dict[str, Any]:
        return helper_states(self.helpers)

    def load_state(self, state: dict[str, Any]) -> None:
        load_helper_states(self.helpers, state)
