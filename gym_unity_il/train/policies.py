"""What the networks see: env observations turned into policy observations, the features
extractor shared by policies and discriminators, the GAIL discriminator, and the SB3 model
a run trains (:func:`make_model`).

The env returns images as ``uint8`` HWC (``image_format="hwc_uint8"``); SB3's convolutions
want CHW. :class:`ObservationAdapter` transposes them, in exactly the same way for the
env (a VecEnv wrapper) and for the demonstrations (the trajectories' arrays), so a policy
trained on demos sees what the env gives. For `imitation`'s GAIL, which only takes array
observations, it can also pack a ``Dict`` observation into one float vector (images
scaled to [0, 1]); :class:`SensorExtractor` unpacks it again.

:class:`SensorExtractor` handles every sensor the env supports: vectors and rank-2
buffers are flattened (and standardized with the demos' statistics when asked), images go
through a CNN: NatureCNN's layers for images of at least 36 x 36 pixels, a smaller
stride-1 CNN below that.

The observation layout itself (:class:`~gym_unity_il.export.layout.ObservationLayout`) is
saved with every trained model; :class:`SensorLayout` is importable from here as well,
where the models of older versions name it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from imitation.rewards.reward_nets import RewardNet
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from gym_unity_il.export.layout import ObservationLayout, SensorLayout, sensor_spaces
from gym_unity_il.train.config import SAC_TRAINERS, TrainerSettings
from gym_unity_il.train.memory import recurrent_model

#: Images with a smaller side than this use the small CNN (NatureCNN's kernels need it).
NATURE_CNN_MIN_SIZE = 36
#: Width of the features each image's CNN produces.
CNN_FEATURES = 256

Normalization = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _is_env_image(space: spaces.Space) -> bool:
    """A ``uint8`` rank-3 Box: an image the env returns as HWC."""
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


class ObservationAdapter:
    """Turns env observations into policy observations as its
    :class:`~gym_unity_il.export.layout.ObservationLayout` says: HWC ``uint8`` images to
    CHW, and, with ``pack``, a Dict observation into one ``float32`` vector. The layout is
    saved with the trained model.

    Args:
        env_space: the env's observation space (a Box or a Dict of Boxes).
        pack: pack a Dict observation into one vector (for `imitation`'s GAIL and DAgger);
            ignored for a Box.
    """

    def __init__(self, env_space: spaces.Space, *, pack: bool = False) -> None:
        self.env_space = env_space
        self.observation_layout = ObservationLayout.from_env_space(env_space, pack=pack)
        self.space = self.observation_layout.policy_space(env_space)

    @property
    def pack(self) -> bool:
        return self.observation_layout.packed

    @property
    def layout(self) -> tuple[SensorLayout, ...]:
        """The sensors, as the policy takes them."""
        return self.observation_layout.sensors

    def __call__(self, obs: Any) -> Any:
        """A batch of env observations (array, mapping of arrays, or `imitation` ``DictObs``)
        as policy observations (a ``DictObs`` stays one)."""
        from imitation.data import types

        if not isinstance(obs, types.DictObs):
            return self.observation_layout.to_policy(obs)
        adapted = self.observation_layout.to_policy(obs.unwrap())
        return types.DictObs(dict(adapted)) if isinstance(adapted, Mapping) else adapted

    def trajectories(self, trajectories: Sequence[Any]) -> list[Any]:
        """`imitation` trajectories with their observations adapted."""
        return [dataclasses.replace(t, obs=self(t.obs)) for t in trajectories]

    def wrap(self, venv: VecEnv) -> VecEnv:
        """``venv`` returning policy observations (itself when nothing changes)."""
        return venv if self.observation_layout.is_identity else _AdaptedVecEnv(venv, self)


class _AdaptedVecEnv(VecEnvWrapper):
    """A VecEnv whose observations (and terminal observations in infos) go through an adapter."""

    def __init__(self, venv: VecEnv, adapter: ObservationAdapter) -> None:
        super().__init__(venv, observation_space=adapter.space)
        self.adapter = adapter

    def reset(self) -> Any:
        return self.adapter(self.venv.reset())

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = self.adapter.observation_layout.to_policy(info["terminal_observation"])
        return self.adapter(obs), rewards, dones, infos


def observation_statistics(trajectories: Sequence[Any], env_space: spaces.Space) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean and standard deviation of every non-image sensor over the demos' observations
    (standard deviations below 1e-6 become 1: such inputs are left unscaled)."""
    from imitation.data import types

    stats = {}
    for key, space in sensor_spaces(env_space).items():
        if _is_env_image(space):
            continue
        arrays = [t.obs.get(key) if isinstance(t.obs, types.DictObs) else t.obs for t in trajectories]
        values = np.concatenate(arrays).astype(np.float64)
        std = values.std(axis=0)
        stats[key] = (values.mean(axis=0).astype(np.float32), np.where(std < 1e-6, 1.0, std).astype(np.float32))
    return stats


def _cnn(shape: tuple[int, ...]) -> nn.Module:
    """A CNN for CHW images ending in :data:`CNN_FEATURES` features."""
    channels, height, width = shape
    if min(height, width) >= NATURE_CNN_MIN_SIZE:
        layers: list[nn.Module] = [
            nn.Conv2d(channels, 32, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
        ]  # fmt: skip
    else:
        layers = [
            nn.Conv2d(channels, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
        ]  # fmt: skip
    convolutions = nn.Sequential(*layers, nn.Flatten())
    with th.no_grad():
        flat = convolutions(th.zeros(1, *shape)).shape[1]
    return nn.Sequential(convolutions, nn.Linear(flat, CNN_FEATURES), nn.ReLU())


class SensorExtractor(BaseFeaturesExtractor):
    """Features of every sensor, concatenated: a CNN per image, the flattened (optionally
    standardized) values of every other sensor.

    Args:
        observation_space: the policy's observation space (a Box, a Dict, or the packed
            vector of :class:`ObservationAdapter`).
        layout: the sensors of a packed vector (None when not packed).
        normalization: sensor key -> (mean, std) of non-image sensors to standardize.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        layout: Sequence[SensorLayout] | None = None,
        normalization: Normalization | None = None,
    ) -> None:
        self.packed = layout is not None
        if layout is None:
            sensors = sensor_spaces(observation_space)
            layout = [SensorLayout(k, s.shape, len(s.shape) == 3 and s.dtype == np.uint8) for k, s in sensors.items()]
        self.layout = tuple(layout)
        sizes = [CNN_FEATURES if part.is_image else part.size for part in self.layout]
        super().__init__(observation_space, features_dim=int(sum(sizes)))
        self.encoders = nn.ModuleDict({str(i): _cnn(part.shape) for i, part in enumerate(self.layout) if part.is_image})
        normalization = dict(normalization or {})
        for i, part in enumerate(self.layout):
            if part.key in normalization and not part.is_image:
                mean, std = normalization[part.key]
                self.register_buffer(f"mean_{i}", th.as_tensor(np.asarray(mean, np.float32).reshape(-1)))
                self.register_buffer(f"std_{i}", th.as_tensor(np.asarray(std, np.float32).reshape(-1)))

    def _parts(self, observations: th.Tensor | Mapping[str, th.Tensor]) -> list[th.Tensor]:
        if isinstance(observations, Mapping):
            return [observations[part.key] for part in self.layout]
        if not self.packed:
            return [observations]
        n = observations.shape[0]
        pieces = th.split(observations, [part.size for part in self.layout], dim=1)
        return [piece.reshape(n, *part.shape) for piece, part in zip(pieces, self.layout)]

    def forward(self, observations: th.Tensor | Mapping[str, th.Tensor]) -> th.Tensor:
        features = []
        for i, (part, value) in enumerate(zip(self.layout, self._parts(observations))):
            if part.is_image:
                features.append(self.encoders[str(i)](value.float()))
                continue
            flat = value.float().reshape(value.shape[0], -1)
            if hasattr(self, f"mean_{i}"):
                flat = (flat - getattr(self, f"mean_{i}")) / getattr(self, f"std_{i}")
            features.append(flat)
        return th.cat(features, dim=1)


def extractor_kwargs(adapter: ObservationAdapter, normalization: Normalization | None) -> dict[str, Any]:
    """``features_extractor_class`` and ``features_extractor_kwargs`` for SB3 policies, and
    with an image sensor ``activation_fn=ReLU``: CNN features are unbounded, and the Tanh of
    SB3's default MLP saturates on them (behavioral cloning then learns only the actions'
    frequencies)."""
    kwargs: dict[str, Any] = {
        "features_extractor_class": SensorExtractor,
        "features_extractor_kwargs": {"layout": list(adapter.layout) if adapter.pack else None, "normalization": dict(normalization or {})},
    }
    if any(part.is_image for part in adapter.layout):
        kwargs["activation_fn"] = nn.ReLU
    return kwargs


def make_model(settings: TrainerSettings, venv: VecEnv, adapter: ObservationAdapter, *, seed: int, logger: Any,
               normalization: Normalization | None = None) -> Any:  # fmt: skip
    """The SB3 model a run trains on ``venv`` (policy observations, through ``adapter``):
    SAC for ``sac`` and ``bc_then_sac``, else PPO (whose policy BC, GAIL, online BC and DAgger train, so
    every result loads with ``PPO.load``), or sb3-contrib's RecurrentPPO with ``memory``
    (:mod:`gym_unity_il.train.memory`), logging to the run's ``logger``."""
    policy_kwargs = {"net_arch": settings.net_arch(), **extractor_kwargs(adapter, normalization)}
    if settings.memory.enabled:
        model: Any = recurrent_model(settings, venv, policy_kwargs, seed=seed)
    elif settings.trainer in SAC_TRAINERS:
        sac = settings.sac
        model = SAC(SACPolicy, venv, learning_rate=sac.learning_rate, buffer_size=sac.buffer_size, batch_size=sac.batch_size,
                               learning_starts=sac.learning_starts, gamma=sac.gamma, policy_kwargs=policy_kwargs, seed=seed, device="cpu")  # fmt: skip
    else:
        ppo = settings.ppo
        model = PPO(ActorCriticPolicy, venv, n_steps=ppo.steps_per_agent(venv.num_envs), batch_size=ppo.batch_size, n_epochs=ppo.n_epochs, learning_rate=ppo.learning_rate,
                    gamma=ppo.gamma, gae_lambda=ppo.gae_lambda, ent_coef=ppo.ent_coef, clip_range=ppo.clip_range,
                    policy_kwargs=policy_kwargs, seed=seed, device="cpu")  # fmt: skip
    model.set_logger(logger)
    return model


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class SensorRewardNet(RewardNet):
    """The GAIL discriminator: :class:`SensorExtractor` features of the observation and the
    (one-hot, for discrete) action through an MLP to one logit.

    Args:
        adapter: how the env's observations reach the network.
        action_space: the env's action space.
        hidden: hidden layer sizes of the MLP.
        normalization: see :class:`SensorExtractor`.
    """

    def __init__(self, adapter: ObservationAdapter, action_space: spaces.Space, *, hidden: Sequence[int], normalization: Normalization | None = None) -> None:
        super().__init__(adapter.space, action_space, normalize_images=True)
        self.extractor = SensorExtractor(adapter.space, **extractor_kwargs(adapter, normalization)["features_extractor_kwargs"])
        self.mlp = _mlp([self.extractor.features_dim + get_flattened_obs_dim(action_space), *hidden, 1])

    def forward(self, state: Any, action: th.Tensor, next_state: Any, done: th.Tensor) -> th.Tensor:
        features = self.extractor(state)
        return self.mlp(th.cat([features, action.float().reshape(action.shape[0], -1)], dim=1)).squeeze(1)


__all__ = [
    "CNN_FEATURES",
    "NATURE_CNN_MIN_SIZE",
    "ObservationAdapter",
    "SensorExtractor",
    "SensorLayout",
    "extractor_kwargs",
    "make_model",
    "SensorRewardNet",
    "observation_statistics",
]
