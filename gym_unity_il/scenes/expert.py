"""The policy interface of the built-in scenes' scripted experts.

An expert decides from the observations the env returns, never from the scene's hidden
state, so it can drive the real env, record demonstrations and be imitated. It behaves
like a Stable-Baselines3 policy (``predict``) and like the policy callable that
``imitation.data.rollout`` accepts (``__call__``), on one observation or on a batch.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import numpy as np

from gym_unity_il.spec import ActionSpec, ImageFormat, check_image_format


def to_hwc_uint8(images: np.ndarray, image_format: ImageFormat) -> np.ndarray:
    """A batch of images ``[B, ...]`` in ``image_format`` as ``uint8 [B, H, W, C]``."""
    images = np.asarray(images)
    if image_format == "hwc_uint8":
        if images.dtype != np.uint8:
            raise ValueError(f"images in 'hwc_uint8' must be uint8, got {images.dtype}; pass image_format='chw_float' for float images")
        return images
    if images.dtype.kind != "f":
        raise ValueError(f"images in 'chw_float' must be floats in [0, 1], got {images.dtype}; pass image_format='hwc_uint8' for uint8 images")
    return np.rint(np.moveaxis(images, 1, -1) * 255.0).clip(0, 255).astype(np.uint8)


class ScriptedPolicy(abc.ABC):
    """A deterministic policy over a scene's observations, batched like SB3's ``predict``.

    Args:
        action_spec: the scene's action spec; actions come out in its gymnasium form
            (``Box`` array, ``Discrete`` integer, ``MultiDiscrete`` array, or a dict
            ``{"continuous", "discrete"}`` for hybrid actions).
        observation_ranks: the rank of each sensor's observation, keyed like the env's
            Dict observation (sensor names); a single sensor also accepts a bare array.
        image_format: the layout of image observations, ``"hwc_uint8"`` or ``"chw_float"``.
    """

    def __init__(self, *, action_spec: ActionSpec, observation_ranks: dict[str, int], image_format: ImageFormat = "hwc_uint8") -> None:
        check_image_format(image_format)
        self.action_spec = action_spec
        self.observation_ranks = dict(observation_ranks)
        self.image_format = image_format

    @abc.abstractmethod
    def _decide(self, observations: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(continuous float32 [B, c], discrete int [B, d])`` for a batch of observations."""

    def predict(
        self,
        observation: np.ndarray | Mapping[str, np.ndarray],
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[Any, None]:
        """The actions for one observation or a batch (leading axis), as SB3 returns them.

        Returns:
            ``(actions, None)``: the expert keeps no recurrent state.
        """
        batch, single = self._as_batch(observation)
        continuous, discrete = self._decide(batch)
        return self._format(continuous, discrete, single), None

    def __call__(self, observations: Any, states: Any, episode_starts: np.ndarray | None) -> tuple[Any, None]:
        """The policy-callable form used by ``imitation.data.rollout``."""
        return self.predict(observations, states, episode_starts)

    def _as_batch(self, observation: Any) -> tuple[dict[str, np.ndarray], bool]:
        if hasattr(observation, "unwrap") and not isinstance(observation, np.ndarray):
            observation = observation.unwrap()  # imitation's DictObs
        keys = list(self.observation_ranks)
        if isinstance(observation, Mapping):
            missing = [k for k in keys if k not in observation]
            unnamed = [f"obs_{i}" for i in range(len(keys))]
            if missing and list(observation) == unnamed:  # sensors without names (0.x builds, old .demo files), in the scene's order
                observation = dict(zip(keys, observation.values()))
                missing = []
            if missing:
                raise ValueError(f"observation dict lacks the keys {missing}; this expert reads {keys}")
            arrays = {k: np.asarray(observation[k]) for k in keys}
        elif len(keys) == 1:
            arrays = {keys[0]: np.asarray(observation)}
        else:
            raise ValueError(f"this expert reads several sensors and needs a dict observation with keys {keys}")
        first = keys[0]
        rank = self.observation_ranks[first]
        ndim = arrays[first].ndim
        if ndim not in (rank, rank + 1):
            raise ValueError(f"observation {first!r} has {ndim} dimensions; expected {rank} (one) or {rank + 1} (a batch)")
        single = ndim == rank
        if single:
            arrays = {k: a[None] for k, a in arrays.items()}
        return arrays, single

    def _format(self, continuous: np.ndarray, discrete: np.ndarray, single: bool) -> Any:
        spec = self.action_spec
        continuous = np.asarray(continuous, np.float32)
        discrete = np.asarray(discrete, np.int64)
        if spec.is_hybrid:
            action: Any = {"continuous": continuous, "discrete": discrete}
            return {k: np.asarray(v[0]) for k, v in action.items()} if single else action
        if spec.is_continuous:
            action = continuous
        elif len(spec.discrete_branches) == 1:
            action = discrete[:, 0]
        else:
            action = discrete
        return np.asarray(action[0]) if single else action
