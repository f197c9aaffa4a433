"""Intrinsic rewards for exploration, as ML-Agents' reward signals ``curiosity`` and ``rnd``
compute them, added to the env's reward on the policy's side of the VecEnv.

* :class:`CuriosityModel`: ML-Agents' curiosity, an intrinsic curiosity module (ICM, Pathak
  et al. 2017). An encoder turns observations into a state encoding of ``encoding_size``; a
  forward model predicts the next encoding from the encoding and the action, an inverse
  model predicts the action from both encodings (which keeps the encoding about what the
  agent controls). The reward is the forward model's error, half the squared distance of
  the encodings; as in ML-Agents it is capped so that ``strength`` times it is at most 1,
  and is 0 until the first update. The loss is 10 x (0.2 x forward + 0.8 x inverse).
* :class:`RNDModel`: random network distillation (Burda et al. 2018). A fixed random
  network and a trained predictor of the same shape map observations to ``encoding_size``
  values; the reward is the squared prediction error, large on observations seldom seen.
  It is taken on the observation the step reaches (ML-Agents takes the step's own, one
  step earlier).
* :class:`IntrinsicRewards`: the VecEnv wrapper that adds ``strength`` times each reward to
  the env's and trains the models on the transitions, once per PPO rollout as ML-Agents
  updates its reward signals with the policy.

The models see observations as the policy does: vectors flattened (standardized when the
policy's are, where ML-Agents' RND keeps running statistics of its own), images through a
CNN (:class:`~gym_unity_il.train.policies.SensorExtractor`).

Two approximations, since an SB3 algorithm learns one reward with one discount: the signals'
own ``gamma`` is not used (the algorithm's applies to the sum), and an episode's end cuts
the intrinsic return too, where ML-Agents lets intrinsic returns run on past it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn
from torch.nn import functional as F

from gym_unity_il.errors import ConfigError
from gym_unity_il.train.config import IntrinsicSettings
from gym_unity_il.train.policies import Normalization, ObservationAdapter, SensorExtractor, extractor_kwargs

#: Width of the hidden layer of the forward and inverse models (ML-Agents': 256).
HIDDEN = 256
#: ML-Agents' curiosity loss: ``LOSS_SCALE x (FORWARD_WEIGHT x forward + (1 - FORWARD_WEIGHT) x inverse)``.
FORWARD_WEIGHT = 0.2
LOSS_SCALE = 10.0


class Transitions(NamedTuple):
    """A batch of transitions as the models take them: observations (a tensor, or a dict of
    tensors per sensor) preprocessed as SB3 does for the policy (images scaled to [0, 1]),
    the actions as the env took them, and the observations the steps reached."""

    obs: th.Tensor | dict[str, th.Tensor]
    actions: th.Tensor
    next_obs: th.Tensor | dict[str, th.Tensor]


def to_transitions(space: spaces.Space, obs: Any, actions: np.ndarray, next_obs: Any) -> Transitions:
    """Policy observations (arrays, or dicts of arrays, of the policy's ``space``), actions
    and next observations as :class:`Transitions`."""

    def observations(value: Any) -> Any:
        tensor = {key: th.as_tensor(array) for key, array in value.items()} if isinstance(value, Mapping) else th.as_tensor(value)
        return preprocess_obs(tensor, space, normalize_images=True)

    return Transitions(observations(obs), th.as_tensor(actions), observations(next_obs))


def _encoder(adapter: ObservationAdapter, normalization: Normalization | None, width: int, layers: int) -> nn.Sequential:
    """Observations to ``width`` features: the policy's sensor features, then ``layers``
    linear layers of ``width``, each followed by SiLU (ML-Agents' Swish)."""
    extractor = SensorExtractor(adapter.space, **extractor_kwargs(adapter, normalization)["features_extractor_kwargs"])
    modules: list[nn.Module] = [extractor]
    size = extractor.features_dim
    for _ in range(layers):
        modules += [nn.Linear(size, width), nn.SiLU()]
        size = width
    return nn.Sequential(*modules)


class ActionCoding:
    """The actions of a Box, Discrete or MultiDiscrete space as the curiosity models take
    and predict them: continuous values as they are, each discrete branch one-hot.

    Raises:
        ConfigError: another action space (hybrid actions: a Dict).
    """

    def __init__(self, space: spaces.Space) -> None:
        if isinstance(space, spaces.Box):
            self.continuous, self.branches = int(np.prod(space.shape)), []
        elif isinstance(space, spaces.Discrete):
            self.continuous, self.branches = 0, [int(space.n)]
        elif isinstance(space, spaces.MultiDiscrete):
            self.continuous, self.branches = 0, [int(n) for n in np.asarray(space.nvec).reshape(-1)]
        else:
            raise ConfigError(f"curiosity needs continuous (Box) or discrete (Discrete, MultiDiscrete) actions, got {space}")
        self.size = self.continuous + sum(self.branches)

    def encode(self, actions: th.Tensor) -> th.Tensor:
        """``float [n, size]``: the actions, discrete branches one-hot."""
        actions = actions.reshape(actions.shape[0], -1)
        if self.continuous:
            return actions.float()
        return th.cat([F.one_hot(actions[:, i].long(), n).float() for i, n in enumerate(self.branches)], dim=1)

    def prediction_error(self, predicted: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``[n]``: the squared error of predicted continuous actions, or the cross-entropy
        of predicted branch logits summed over the branches."""
        actions = actions.reshape(actions.shape[0], -1)
        if self.continuous:
            return ((predicted - actions.float()) ** 2).sum(dim=1)
        logits = th.split(predicted, self.branches, dim=1)
        return sum(F.cross_entropy(part, actions[:, i].long(), reduction="none") for i, part in enumerate(logits))


class CuriosityModel(nn.Module):
    """ML-Agents' curiosity reward: an ICM (see the module docstring), with its own Adam.

    Args:
        adapter: how the env's observations reach the networks (the policy's).
        action_space: the env's action space.
        settings: the ``curiosity`` section (``strength`` caps the reward).
        normalization: standardization of vector sensors, as the policy's.
    """

    def __init__(self, adapter: ObservationAdapter, action_space: spaces.Space, settings: IntrinsicSettings,
                 normalization: Normalization | None = None) -> None:  # fmt: skip
        super().__init__()
        size = settings.encoding_size
        self.actions = ActionCoding(action_space)
        self.cap = 1.0 / settings.strength if settings.strength > 0 else float("inf")
        self.encoder = _encoder(adapter, normalization, size, layers=2)
        self.forward_model = nn.Sequential(nn.Linear(size + self.actions.size, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, size))
        self.inverse_model = nn.Sequential(nn.Linear(2 * size, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, self.actions.size))
        self.register_buffer("updated", th.zeros((), dtype=th.bool))
        self.optimizer = th.optim.Adam(self.parameters(), lr=settings.learning_rate)

    def _forward_error(self, state: th.Tensor, actions: th.Tensor, next_state: th.Tensor) -> th.Tensor:
        predicted = self.forward_model(th.cat([state, self.actions.encode(actions)], dim=1))
        return 0.5 * ((next_state - predicted) ** 2).sum(dim=1)

    def reward(self, batch: Transitions) -> th.Tensor:
        """``[n]``: the forward model's error, capped at ``1 / strength``; 0 before the first update."""
        with th.no_grad():
            error = self._forward_error(self.encoder(batch.obs), batch.actions, self.encoder(batch.next_obs))
        return error.clamp(max=self.cap) * self.updated

    def update(self, batch: Transitions) -> dict[str, float]:
        """One Adam step on ``batch``; the forward and inverse losses."""
        state, next_state = self.encoder(batch.obs), self.encoder(batch.next_obs)
        forward = self._forward_error(state, batch.actions, next_state).mean()
        inverse = self.actions.prediction_error(self.inverse_model(th.cat([state, next_state], dim=1)), batch.actions).mean()
        loss = LOSS_SCALE * (FORWARD_WEIGHT * forward + (1.0 - FORWARD_WEIGHT) * inverse)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updated.fill_(True)
        return {"forward_loss": forward.item(), "inverse_loss": inverse.item()}


class RNDModel(nn.Module):
    """ML-Agents' RND reward (see the module docstring): a fixed random target network and a
    predictor trained with its own Adam, each of three layers of ``encoding_size``.

    Args:
        adapter: how the env's observations reach the networks (the policy's).
        settings: the ``rnd`` section.
        normalization: standardization of vector sensors, as the policy's.
    """

    def __init__(self, adapter: ObservationAdapter, settings: IntrinsicSettings, normalization: Normalization | None = None) -> None:
        super().__init__()
        self.target = _encoder(adapter, normalization, settings.encoding_size, layers=3).requires_grad_(False)
        self.predictor = _encoder(adapter, normalization, settings.encoding_size, layers=3)
        self.optimizer = th.optim.Adam(self.predictor.parameters(), lr=settings.learning_rate)

    def _error(self, obs: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        return ((self.predictor(obs) - self.target(obs)) ** 2).sum(dim=1)

    def reward(self, batch: Transitions) -> th.Tensor:
        """``[n]``: the predictor's squared error on the observations the steps reached."""
        with th.no_grad():
            return self._error(batch.next_obs)

    def update(self, batch: Transitions) -> dict[str, float]:
        """One Adam step on ``batch``; the loss."""
        loss = self._error(batch.next_obs).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


def _concat(parts: list[Any]) -> Any:
    """Arrays (or dicts of arrays) of several steps, one after the other."""
    if isinstance(parts[0], Mapping):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _take(obs: Any, rows: np.ndarray) -> Any:
    return {key: value[rows] for key, value in obs.items()} if isinstance(obs, Mapping) else obs[rows]


def _copy(obs: Any) -> Any:
    return {key: np.array(value) for key, value in obs.items()} if isinstance(obs, Mapping) else np.array(obs)


class IntrinsicRewards(VecEnvWrapper):
    """Adds intrinsic rewards to the rewards of ``venv`` (the policy-side VecEnv).

    Each step adds ``sum(strength_i x reward_i(obs, action, next_obs))`` over the signals with
    a strength above 0, where ``next_obs`` of an env whose episode ended is its
    ``terminal_observation``. Infos pass through untouched, so a ``VecMonitor`` below this
    wrapper keeps logging the env's own episode returns. Every ``update_every`` steps (give
    PPO's rollout length: one update per rollout) the models train ``epochs`` passes over
    the transitions of those steps in shuffled batches of ``batch_size`` (PPO's), as
    ML-Agents updates its reward signals on the policy's minibatches; then the transitions
    are dropped, so at most one update's worth is kept. A reset starts the count anew (a
    rollout starts with it). With :attr:`logger` set (an SB3 or `imitation` logger), each
    update records ``<signal>/mean_reward`` (``strength`` times the reward, per step) and
    the losses: ``curiosity/forward_loss``, ``curiosity/inverse_loss``, ``rnd/loss``.

    Args:
        venv: the VecEnv the policy steps (observations as ``adapter`` makes them).
        adapter: the policy's observation adapter, whose :meth:`~ObservationAdapter.wrap`
            made ``venv``'s observations.
        curiosity: the ``curiosity`` section (None or strength 0: off).
        rnd: the ``rnd`` section (None or strength 0: off).
        update_every: steps of the VecEnv between updates of the models.
        batch_size: transitions per Adam step.
        epochs: passes over the kept transitions per update.
        seed: seeds the models' initial weights and the batches' order.
        normalization: standardization of vector sensors, as the policy's.
        logger: where the losses and mean rewards go (may be set later).

    Raises:
        ConfigError: no signal with a strength above 0; curiosity on hybrid actions.
        ValueError: ``venv``'s observations are not ``adapter``'s; ``update_every``,
            ``batch_size`` or ``epochs`` below 1.
    """

    def __init__(
        self,
        venv: VecEnv,
        adapter: ObservationAdapter,
        *,
        curiosity: IntrinsicSettings | None = None,
        rnd: IntrinsicSettings | None = None,
        update_every: int,
        batch_size: int = 64,
        epochs: int = 1,
        seed: int = 0,
        normalization: Normalization | None = None,
        logger: Any = None,
    ) -> None:
        super().__init__(venv)
        if venv.observation_space != adapter.space:
            raise ValueError(f"the VecEnv's observations ({venv.observation_space}) are not the adapter's ({adapter.space}); wrap the VecEnv with the adapter first")
        if min(update_every, batch_size, epochs) < 1:
            raise ValueError(f"update_every, batch_size and epochs must be at least 1, got {update_every}, {batch_size}, {epochs}")
        self.strengths = {name: s.strength for name, s in (("curiosity", curiosity), ("rnd", rnd)) if s is not None and s.strength > 0}
        if not self.strengths:
            raise ConfigError("curiosity.strength and rnd.strength are both 0, so there is no intrinsic reward to add; set a strength above 0")
        self.update_every, self.batch_size, self.epochs = update_every, batch_size, epochs
        self.logger = logger
        with th.random.fork_rng(devices=[]):  # the models' initial weights come from the seed, not from the global generator
            th.manual_seed(seed)
            self.models: dict[str, CuriosityModel | RNDModel] = {}
            if "curiosity" in self.strengths:
                self.models["curiosity"] = CuriosityModel(adapter, venv.action_space, curiosity, normalization)  # type: ignore[arg-type]
            if "rnd" in self.strengths:
                self.models["rnd"] = RNDModel(adapter, rnd, normalization)  # type: ignore[arg-type]
        self.generator = th.Generator().manual_seed(seed)
        self._obs: Any = None
        self._actions: np.ndarray | None = None
        self._kept: list[tuple[Any, np.ndarray, Any]] = []
        self._reward_sums = dict.fromkeys(self.models, 0.0)

    def rewards(self, obs: Any, actions: np.ndarray, next_obs: Any) -> dict[str, np.ndarray]:
        """Each signal's reward times its strength, per transition (what a step adds)."""
        batch = to_transitions(self.observation_space, obs, actions, next_obs)
        return {name: self.strengths[name] * model.reward(batch).numpy().astype(np.float32) for name, model in self.models.items()}

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._obs = _copy(obs)
        self._kept.clear()
        self._reward_sums = dict.fromkeys(self.models, 0.0)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        next_obs = _copy(obs)
        for i in np.flatnonzero(dones):
            terminal = infos[i]["terminal_observation"]
            if isinstance(next_obs, Mapping):
                for key in next_obs:
                    next_obs[key][i] = terminal[key]
            else:
                next_obs[i] = terminal
        bonus = self.rewards(self._obs, self._actions, next_obs)
        for name, values in bonus.items():
            self._reward_sums[name] += float(values.sum())
        self._kept.append((self._obs, self._actions, next_obs))
        self._obs = _copy(obs)
        if len(self._kept) == self.update_every:
            self._update()
        return obs, (np.asarray(rewards, np.float32) + sum(bonus.values())).astype(np.float32), dones, infos

    def _update(self) -> None:
        """Trains the models on the kept transitions, logs, and drops them."""
        obs, actions, next_obs = (_concat(list(part)) for part in zip(*self._kept))
        self._kept.clear()
        n = len(actions)
        size = min(self.batch_size, n)
        stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(self.epochs):
            order = th.randperm(n, generator=self.generator).numpy()
            for start in range(0, n - size + 1, size):
                rows = order[start : start + size]
                batch = to_transitions(self.observation_space, _take(obs, rows), actions[rows], _take(next_obs, rows))
                for name, model in self.models.items():
                    for key, value in model.update(batch).items():
                        stats[f"{name}/{key}"].append(value)
        if self.logger is not None:
            for name, total in self._reward_sums.items():
                self.logger.record(f"{name}/mean_reward", total / n)
            for key, values in stats.items():
                self.logger.record(key, float(np.mean(values)))
        self._reward_sums = dict.fromkeys(self.models, 0.0)

    def state(self) -> dict[str, Any]:
        """The models' weights, their optimizers and the batches' generator, for the run's
        checkpoint (``torch.save``-able; the kept transitions are not: a resumed run starts
        a new rollout)."""
        return {
            "models": {name: model.state_dict() for name, model in self.models.items()},
            "optimizers": {name: model.optimizer.state_dict() for name, model in self.models.items()},
            "generator": self.generator.get_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state`.

        Raises:
            ValueError: a state of other signals than this wrapper's.
        """
        if set(state["models"]) != set(self.models):
            raise ValueError(f"the state holds the signals {sorted(state['models'])}, this run has {sorted(self.models)}")
        for name, model in self.models.items():
            model.load_state_dict(state["models"][name])
            model.optimizer.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"])


__all__ = ["ActionCoding", "CuriosityModel", "IntrinsicRewards", "RNDModel", "Transitions", "to_transitions"]
