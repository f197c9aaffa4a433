"""Behavioral cloning on an SB3 ``ActorCriticPolicy`` (the policy of a PPO model, so the
result loads with ``PPO.load`` and can be fine-tuned with PPO): as a phase of its own with
`imitation`'s BC (:class:`BCPhase`), or beside PPO's updates as ML-Agents'
``behavioral_cloning`` does it (:class:`RolloutCloning`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy

from gym_unity_il.errors import ConfigError
from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.memory import SequenceCloning, is_recurrent
from gym_unity_il.train.progress import Helper, RunRecorder
from gym_unity_il.train.schedules import FLOORS, scheduled

#: Epochs of BC pretraining (``bc_then_ppo`` / ``bc_then_sac``) when ``num_epoch`` is null.
PRETRAIN_EPOCHS = 10
#: Batches a BC phase trains at least between two evaluations, per env step an evaluation
#: plays (:func:`evaluation_interval`). On the built-in ball a step of its 12 agents takes
#: about 0.7 of a batch of 64, so the evaluations take about a quarter of a long phase's time.
BATCHES_PER_EVALUATION_STEP = 2


def count_transitions(trajectories: Sequence[Any]) -> int:
    """The number of (observation, action) pairs in `imitation` trajectories."""
    return int(sum(len(t.acts) for t in trajectories))


def bc_batches(settings: TrainerSettings, n_transitions: int, *, pretraining: bool, where: str = "config", per_pass: int | None = None) -> int:
    """The number of BC batches a run trains (see :class:`TrainerSettings` for the rules);
    ``per_pass``: the batches of one pass over the demos when not ``n_transitions // batch_size``
    (with memory: :func:`~gym_unity_il.train.memory.updates_per_pass`).

    Raises:
        ConfigError: the demos hold fewer transitions than one batch.
    """
    if n_transitions < settings.batch_size:
        raise ConfigError(
            f"{where}: batch_size {settings.batch_size} is larger than the {n_transitions} transitions of the demos; "
            "lower batch_size or record more demonstrations"
        )
    per_epoch = settings.batches_per_epoch or per_pass or n_transitions // settings.batch_size  # DemoBatches drops a partial batch
    if settings.num_epoch is not None:
        return settings.num_epoch * per_epoch
    if pretraining:
        return PRETRAIN_EPOCHS * per_epoch
    return math.ceil(settings.max_steps / settings.batch_size)


def evaluation_interval(summary_freq: int, batch_size: int, trajectories: Sequence[Any]) -> int:
    """The batches between two rows of a BC phase, each of which evaluates the policy on the
    env: ``summary_freq`` demo samples, but at least :data:`BATCHES_PER_EVALUATION_STEP` batches
    per step of a demo episode (their mean length). An evaluation plays one episode per env
    copy, all at once, so about that many env steps: apart from the row after its last batch,
    a BC phase of any length plays at most one env step evaluating per that many batches it
    trains."""
    episode_steps = float(np.mean([len(t.acts) for t in trajectories])) if len(trajectories) else 0.0
    return max(1, summary_freq // batch_size, math.ceil(BATCHES_PER_EVALUATION_STEP * episode_steps))


class DemoBatches:
    """Shuffled batches of (observation, action) pairs of demonstrations, one epoch per
    iteration (the last partial batch is dropped). Faster than a torch ``DataLoader`` over
    single transitions, and what `imitation`'s BC accepts as demonstrations: several
    sensors come as `imitation`'s ``DictObs`` (whose ``len`` is the batch's, where a plain
    dict's would be the number of sensors).

    Args:
        trajectories: `imitation` trajectories.
        batch_size: pairs per batch.
        rng: the shuffling generator.
    """

    def __init__(self, trajectories: Sequence[Any], *, batch_size: int, rng: np.random.Generator) -> None:
        from imitation.data import rollout, types

        transitions = rollout.flatten_trajectories(list(trajectories))
        obs = transitions.obs
        self.obs: np.ndarray | dict[str, np.ndarray] = obs.unwrap() if isinstance(obs, types.DictObs) else obs
        self.acts = transitions.acts
        self.batch_size = batch_size
        self.rng = rng

    def __len__(self) -> int:
        return len(self.acts) // self.batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from imitation.data import types

        order = self.rng.permutation(len(self.acts))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            rows = order[start : start + self.batch_size]
            obs = types.DictObs({k: v[rows] for k, v in self.obs.items()}) if isinstance(self.obs, dict) else self.obs[rows]
            yield {"obs": obs, "acts": self.acts[rows]}


class BCPhase:
    """Behavioral cloning of ``policy`` on demonstrations, ``batches`` batches in all: with
    `imitation`'s BC, or, for a policy with memory, :class:`~gym_unity_il.train.memory.SequenceCloning`
    (a batch: one window of episodes).

    Every ``summary_freq`` demo samples, or less often when a demo episode is long
    (:func:`evaluation_interval`), and after its last batch, it evaluates the policy
    (``evaluate_return``) and writes a row of ``metrics.csv``.

    Args:
        policy: the policy to train (in place).
        trajectories: demonstrations, observations already adapted to the policy.
        settings: batch size, learning rate, entropy and L2 weights.
        batches: the budget.
        rng: random generator of `imitation`'s BC.
        logger: the run's `imitation` logger.
        evaluate_return: the returns of the current policy's episodes on the env (an evaluation).
    """

    name = "bc"

    def __init__(
        self,
        *,
        policy: ActorCriticPolicy,
        trajectories: Sequence[Any],
        settings: TrainerSettings,
        batches: int,
        rng: np.random.Generator,
        logger: Any,
        evaluate_return: Callable[[], Sequence[float]],
    ) -> None:
        from imitation.algorithms import bc

        self.trainer: Any
        if is_recurrent(policy):
            self.trainer = SequenceCloning(policy=policy, trajectories=trajectories, settings=settings, rng=rng, logger=logger)
        else:
            self.trainer = bc.BC(
                observation_space=policy.observation_space,
                action_space=policy.action_space,
                rng=rng,
                policy=policy,
                demonstrations=DemoBatches(trajectories, batch_size=settings.batch_size, rng=rng),
                batch_size=settings.batch_size,
                optimizer_kwargs={"lr": settings.learning_rate},
                ent_weight=settings.ent_weight,
                l2_weight=settings.l2_weight,
                device=policy.device,
                custom_logger=logger,
            )
        self.total = batches
        self.done = 0
        self.evaluate_return = evaluate_return
        self.trajectories = trajectories

    def run(self, recorder: RunRecorder) -> None:
        size = self.trainer.batch_size
        every = evaluation_interval(recorder.summary_freq, size, self.trajectories)
        bar = recorder.bar(self.name, total=self.total * size, initial=self.done * size, unit="sample")

        def due() -> bool:
            return self.done % every == 0 or self.done == self.total

        def on_batch_end() -> None:
            self.done += 1
            if due():
                recorder.summary(self.name, self.done * size, self.evaluate_return)
            bar.update(size)

        if self.done and due():  # resumed: the row of the last counted batch may be missing
            recorder.catch_up(self.name, self.done * size, self.evaluate_return)

        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
                # imitation's BC.train unwraps a DictObs batch, then its loss tries to again
                warnings.filterwarnings("ignore", message="trying to unwrap object of type", category=UserWarning)
                if self.done < self.total:
                    self.trainer.train(n_batches=self.total - self.done, on_batch_end=on_batch_end, log_interval=every, progress_bar=False)
        finally:
            bar.close()

    def state(self) -> dict[str, Any]:
        return {"done": self.done, "optimizer": self.trainer.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.done = int(state["done"])
        self.trainer.optimizer.load_state_dict(state["optimizer"])


class RolloutCloning(Helper):
    """Behavioral cloning beside PPO's updates, as ML-Agents' ``behavioral_cloning``: at the
    end of every rollout, ``num_epoch`` epochs (default: PPO's ``n_epochs``) of
    ``batches_per_epoch`` batches (default: one pass over the demos) on the policy, with an
    Adam optimizer of its own whose learning rate starts at ``learning_rate`` and falls
    linearly to nothing over ``cloning.steps`` env steps (0: it stays). Once it is down to
    nothing, BC stops. The loss is the demos' negative log-likelihood minus ``ent_weight``
    times the entropy, as :class:`BCPhase`'s (ML-Agents fits sampled continuous actions by
    squared error instead). ``bc/loss`` and ``bc/learning_rate`` are logged with PPO's figures.

    Args:
        policy: the PPO model's policy.
        trajectories: demonstrations, observations adapted to the policy.
        settings: the behavior's settings.
        rng: the shuffling generator.
    """

    def __init__(self, *, policy: ActorCriticPolicy, trajectories: Sequence[Any], settings: TrainerSettings, rng: np.random.Generator) -> None:
        super().__init__()
        self.policy = policy
        #: a recurrent policy's cloning over episodes (else the batches of ``loader``)
        self.sequences = SequenceCloning(policy=policy, trajectories=trajectories, settings=settings, rng=rng) if is_recurrent(policy) else None
        self.loader = None if self.sequences is not None else DemoBatches(trajectories, batch_size=settings.batch_size, rng=rng)
        epochs = settings.num_epoch if settings.num_epoch is not None else settings.ppo.n_epochs
        self.batches = epochs * (settings.batches_per_epoch or len(self.sequences if self.sequences is not None else self.loader))  # type: ignore[arg-type]
        self.start_lr = settings.learning_rate
        self.anneal_steps = settings.cloning.steps
        self.ent_weight = settings.ent_weight
        self.optimizer = self.sequences.optimizer if self.sequences else th.optim.Adam(policy.parameters(), lr=self.start_lr)

    def learning_rate(self, step: int) -> float:
        """BC's learning rate at env step ``step``."""
        if not self.anneal_steps:
            return self.start_lr
        return scheduled(self.start_lr, "linear", FLOORS["learning_rate"], step, self.anneal_steps)

    def _on_rollout_end(self) -> None:
        lr = self.learning_rate(self.model.num_timesteps)
        self.logger.record("bc/learning_rate", lr)
        if lr <= FLOORS["learning_rate"]:
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.sequences is not None:
            self.logger.record("bc/loss", self.sequences.train(n_batches=self.batches))
            return
        self.policy.set_training_mode(True)
        losses, done = [], 0
        while done < self.batches:
            for batch in self.loader:  # type: ignore[union-attr]
                losses.append(self._step(batch))
                done += 1
                if done == self.batches:
                    break
        self.logger.record("bc/loss", float(np.mean(losses)))

    def _step(self, batch: dict[str, Any]) -> float:
        from imitation.data import types

        obs, _ = self.policy.obs_to_tensor(types.maybe_unwrap_dictobs(batch["obs"]))
        acts = th.as_tensor(batch["acts"], device=self.policy.device)
        _, log_prob, entropy = self.policy.evaluate_actions(obs, acts)
        loss = -log_prob.mean() - self.ent_weight * (entropy.mean() if entropy is not None else 0.0)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def _on_step(self) -> bool:
        return True

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
