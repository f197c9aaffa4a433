"""Policies with memory, as ML-Agents' ``network_settings.memory`` (``use_recurrent`` in 0.x
configs), and behavioral cloning of them on whole episodes.

The policy is sb3-contrib's ``RecurrentActorCriticPolicy``, RecurrentPPO's: the features of
every sensor (:class:`~gym_unity_il.train.policies.SensorExtractor`), then an LSTM of
``memory_size // 2`` units, then the hidden layers and the action head; the value has an
LSTM of its own. Unity keeps ``memory_size`` floats per agent for it, the LSTM's hidden and
cell state side by side, as ML-Agents defines the size (:mod:`gym_unity_il.export` writes
them as ``recurrent_in`` / ``recurrent_out``). :func:`recurrent_model` builds the
RecurrentPPO model a run trains (``ppo``, ``bc_then_ppo``, ``gail``: its policy is also
what BC, DAgger and online BC train, so every result loads as a RecurrentPPO model).

:class:`SequenceCloning` is behavioral cloning of such a policy, which `imitation`'s BC (one
transition at a time) cannot do. Every update takes ``batch_size // sequence_length``
demonstration episodes (at least one) and runs the policy over them from their first step,
a window of ``sequence_length`` steps at a time: each window's loss (the demos' negative
log-likelihood minus ``ent_weight`` times the entropy, plus the L2 penalty, over the steps
the episodes really have) is one optimizer step, and the LSTM's state at its end, cut from
the gradient, starts the next window of the same episodes (truncated backpropagation
through time). The policy thus sees, in training, every step with the memory of its whole
episode, as it will when it acts; gradients reach back ``sequence_length`` steps at most,
so a cue must be acted on within that many steps for the LSTM to learn to keep it.
Action masks are not part of the loss: demonstrations never take a masked action, so the
likelihood already teaches the policy to avoid them (evaluation and Unity apply the masks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv

from gym_unity_il.errors import ConfigError
from gym_unity_il.extras import require
from gym_unity_il.train.config import SAC_TRAINERS, TrainerSettings

#: What needs sb3-contrib, in its error message.
FEATURE = "memory (network_settings.memory / use_recurrent)"


def check_memory(settings: TrainerSettings, where: str) -> None:
    """Raises ConfigError when ``settings`` ask for memory where it cannot be had (SAC)."""
    if settings.memory.enabled and settings.trainer in SAC_TRAINERS:
        raise ConfigError(
            f"{where}.memory: memory_size {settings.memory.memory_size}, but {settings.trainer!r} has no recurrent policy (SB3 and "
            "sb3-contrib have no recurrent SAC); use 'ppo' / 'bc_then_ppo' (RecurrentPPO), or drop memory (use_recurrent: false)"
        )


def recurrent_model(settings: TrainerSettings, venv: VecEnv, policy_kwargs: dict[str, Any], *, seed: int) -> Any:
    """sb3-contrib's RecurrentPPO on ``venv`` with ``settings``' PPO hyperparameters and an LSTM
    of ``memory.memory_size // 2`` units after the features (``policy_kwargs``: the features
    extractor and hidden layers). RecurrentPPO backpropagates through each env's rollout, cut
    at episode starts, by its own rule (``sequence_length`` is BC's)."""
    contrib = require("sb3_contrib", "contrib", FEATURE)
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    ppo = settings.ppo
    kwargs = {**policy_kwargs, "lstm_hidden_size": settings.memory.hidden_size, "n_lstm_layers": 1, "shared_lstm": False, "enable_critic_lstm": True}
    return contrib.RecurrentPPO(RecurrentActorCriticPolicy, venv, n_steps=ppo.steps_per_agent(venv.num_envs), batch_size=ppo.batch_size,
                                n_epochs=ppo.n_epochs, learning_rate=ppo.learning_rate, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda,
                                ent_coef=ppo.ent_coef, clip_range=ppo.clip_range, policy_kwargs=kwargs, seed=seed, device="cpu")  # fmt: skip


def is_recurrent(policy: Any) -> bool:
    """Whether an SB3 policy (or algorithm) carries an LSTM state between steps."""
    return hasattr(getattr(policy, "policy", policy), "lstm_actor")


class _Episode:
    """One demonstration episode: its observations (an array, or a dict of arrays) and actions."""

    def __init__(self, obs: Any, acts: np.ndarray) -> None:
        self.obs = obs
        self.acts = acts

    def __len__(self) -> int:
        return len(self.acts)


def _episodes(trajectories: Sequence[Any]) -> list[_Episode]:
    """`imitation` trajectories as episodes (the final observation, which has no action, dropped)."""
    from imitation.data import types

    out = []
    for t in trajectories:
        obs = t.obs.unwrap() if isinstance(t.obs, types.DictObs) else t.obs
        n = len(t.acts)
        out.append(_Episode({k: v[:n] for k, v in obs.items()} if isinstance(obs, dict) else obs[:n], np.asarray(t.acts)))
    return out


def _padded(values: Sequence[np.ndarray], length: int) -> np.ndarray:
    """``[len(values), length, ...]``: each array's rows, then zeros."""
    first = values[0]
    out = np.zeros((len(values), length, *first.shape[1:]), first.dtype)
    for i, v in enumerate(values):
        out[i, : len(v)] = v
    return out


def sequences_per_update(settings: TrainerSettings) -> int:
    """Episodes each update of :class:`SequenceCloning` runs side by side: ``batch_size //
    sequence_length``, at least one (as ML-Agents counts a recurrent batch)."""
    return max(1, settings.batch_size // settings.memory.sequence_length)


def updates_per_pass(lengths: Sequence[int], sequences: int, window: int) -> int:
    """Updates of one pass over episodes of ``lengths`` taken ``sequences`` at a time in
    windows of ``window`` steps, in this order (the longest episode of a group sets its
    windows, so a shuffled pass may take a few more or fewer)."""
    lengths = [n for n in lengths if n]
    groups = [lengths[i : i + sequences] for i in range(0, len(lengths), sequences)]
    return sum(-(-max(g) // window) for g in groups)


class SequenceCloning:
    """Behavioral cloning of a recurrent policy on demonstration episodes (see the module
    docstring). It takes `imitation` BC's place in :class:`~gym_unity_il.train.bc.BCPhase`
    and has its interface: :attr:`batch_size`, :attr:`optimizer`, :meth:`train`.

    Args:
        policy: a ``RecurrentActorCriticPolicy``, trained in place.
        trajectories: demonstration episodes (`imitation` trajectories, each one whole
            episode in order; observations adapted to the policy).
        settings: ``batch_size``, ``memory.sequence_length``, ``learning_rate``,
            ``ent_weight``, ``l2_weight``.
        rng: the episodes' order.
        logger: an `imitation` logger for ``bc/*`` figures (None: none).
    """

    def __init__(self, *, policy: Any, trajectories: Sequence[Any], settings: TrainerSettings, rng: np.random.Generator, logger: Any = None) -> None:
        if not is_recurrent(policy):
            raise ConfigError(f"SequenceCloning trains recurrent policies; {type(policy).__name__} has no LSTM")
        self.policy = policy
        self.window = settings.memory.sequence_length
        self.sequences = sequences_per_update(settings)
        self.ent_weight = settings.ent_weight
        self.l2_weight = settings.l2_weight
        self.rng = rng
        self.logger = logger
        self.optimizer = th.optim.Adam(policy.parameters(), lr=settings.learning_rate)
        self.episodes: list[_Episode] = []
        self.add(trajectories)
        #: updates taken so far
        self.updates = 0
        self._windows_left: Iterator[tuple[Any, np.ndarray, np.ndarray, bool]] | None = None
        self._state: tuple[th.Tensor, th.Tensor] | None = None

    @property
    def batch_size(self) -> int:
        """Demonstration steps of a full update: ``sequences`` episodes of a whole window."""
        return self.sequences * self.window

    def add(self, trajectories: Sequence[Any]) -> None:
        """More demonstration episodes (DAgger's rounds, a teacher's episodes)."""
        self.episodes.extend(e for e in _episodes(trajectories) if len(e))

    def __len__(self) -> int:
        """Updates of one pass over the episodes."""
        return updates_per_pass([len(e) for e in self.episodes], self.sequences, self.window)

    def _groups(self) -> Iterator[list[_Episode]]:
        """Episodes in groups of :attr:`sequences`, in a new random order each pass (episodes
        added meanwhile join the next pass), forever."""
        while True:
            if not self.episodes:
                raise ConfigError("behavioral cloning with memory has no demonstration episodes to learn from; record some first")
            order = self.rng.permutation(len(self.episodes))
            for start in range(0, len(order), self.sequences):
                yield [self.episodes[i] for i in order[start : start + self.sequences]]

    def _windows(self, group: list[_Episode]) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
        """The group's windows in order: observations and actions flattened sequence by
        sequence (``[n * window, ...]``, as the policy's LSTM reads them), and which steps are real."""
        n, window = len(group), self.window
        length = -(-max(len(e) for e in group) // window) * window
        valid = np.zeros((n, length), bool)
        for i, e in enumerate(group):
            valid[i, : len(e)] = True
        acts = _padded([e.acts for e in group], length)
        first = group[0].obs
        obs: Any = {k: _padded([e.obs[k] for e in group], length) for k in first} if isinstance(first, dict) else _padded([e.obs for e in group], length)

        def cut(a: np.ndarray, k: int) -> np.ndarray:
            return a[:, k * window : (k + 1) * window].reshape(n * window, *a.shape[2:])

        for k in range(length // window):
            window_obs = {key: cut(v, k) for key, v in obs.items()} if isinstance(obs, dict) else cut(obs, k)
            yield window_obs, cut(acts, k), cut(valid, k)

    def _stream(self) -> Iterator[tuple[Any, np.ndarray, np.ndarray, bool]]:
        """Every window of every group, forever; the flag marks a group's first window."""
        for group in self._groups():
            for k, window in enumerate(self._windows(group)):
                yield (*window, k == 0)

    def _update(self, obs: Any, acts: np.ndarray, valid: np.ndarray, state: tuple[th.Tensor, th.Tensor]) -> tuple[dict[str, float], tuple[th.Tensor, th.Tensor]]:
        policy = self.policy
        obs_t, _ = policy.obs_to_tensor(obs)
        acts_t = th.as_tensor(acts, device=policy.device)
        weight = th.as_tensor(valid, dtype=th.float32, device=policy.device)
        starts = th.zeros(len(valid), device=policy.device)  # each episode's first window starts from zeros, later ones carry
        distribution, state = policy.get_distribution(obs_t, state, starts)
        count = weight.sum()
        neglogp = -(distribution.log_prob(acts_t) * weight).sum() / count
        entropy = (distribution.entropy() * weight).sum() / count
        l2_norm = sum(th.sum(th.square(w)) for w in policy.parameters()) / 2
        loss = neglogp - self.ent_weight * entropy + self.l2_weight * l2_norm
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        figures = {"loss": float(loss.item()), "neglogp": float(neglogp.item()), "entropy": float(entropy.item()), "l2_norm": float(l2_norm.item())}
        return figures, (state[0].detach(), state[1].detach())

    def _zeros(self, n: int) -> tuple[th.Tensor, th.Tensor]:
        hidden = self.policy.lstm_actor.hidden_size
        return th.zeros(1, n, hidden, device=self.policy.device), th.zeros(1, n, hidden, device=self.policy.device)

    def _run(self, windows: Iterator[tuple[Any, np.ndarray, np.ndarray, bool]], n_batches: int | None, on_batch_end: Callable[[], None] | None,
             log_interval: int) -> float:  # fmt: skip
        """Updates on ``windows`` (all of them when ``n_batches`` is None); the mean loss."""
        self.policy.set_training_mode(True)
        losses: list[float] = []
        while n_batches is None or len(losses) < n_batches:
            try:
                obs, acts, valid, first = next(windows)
            except StopIteration:
                break
            if first or self._state is None:
                self._state = self._zeros(len(valid) // self.window)
            figures, self._state = self._update(obs, acts, valid, self._state)
            losses.append(figures["loss"])
            self.updates += 1
            if self.logger is not None and self.updates % log_interval == 0:
                for key, value in figures.items():
                    self.logger.record(f"bc/{key}", value)
                self.logger.dump(self.updates)
            if on_batch_end is not None:
                on_batch_end()
        return float(np.mean(losses)) if losses else float("nan")

    def train(self, *, n_batches: int, on_batch_end: Callable[[], None] | None = None, log_interval: int = 500, progress_bar: bool = False) -> float:
        """``n_batches`` updates (one per window) over the episodes, going on where the last
        call stopped; calls ``on_batch_end`` after each and logs ``bc/*`` every
        ``log_interval`` updates (``progress_bar`` is not drawn: the run's bar counts the
        updates). Returns the mean loss."""
        if self._windows_left is None:
            self._windows_left = self._stream()
        return self._run(self._windows_left, n_batches, on_batch_end, log_interval)

    def train_group(self, trajectories: Sequence[Any]) -> tuple[float, int]:
        """One pass over these episodes side by side, from their first steps (online BC's
        batches of teacher episodes; :meth:`train`'s episodes are left as they are).
        Returns the mean loss and the updates taken."""
        group = [e for e in _episodes(trajectories) if len(e)]
        if not group:
            return float("nan"), 0
        before = self.updates
        windows = ((*window, k == 0) for k, window in enumerate(self._windows(group)))
        return self._run(windows, None, None, 500), self.updates - before


__all__ = ["FEATURE", "SequenceCloning", "check_memory", "is_recurrent", "recurrent_model", "sequences_per_update", "updates_per_pass"]
