"""The options of ML-Agents' ``gym_unity.envs.UnityEnv`` for ``UnityIL-v0``, as gymnasium wrappers.

A script written for gym_unity's ``UnityEnv(environment_filename, worker_id, use_visual,
uint8_visual, multiagent, flatten_branched, allow_multiple_visual_obs)`` ports by renaming::

    env = gym.make("UnityIL-v0", file_name="Builds/Grid.x86_64", worker_id=1,
                   use_visual=True, uint8_visual=True, flatten_branched=True)

``gym.make`` calls :func:`make_unity_env`, which starts a :class:`UnityILEnv` and applies
the wrappers the options ask for (none without options, so ``env.unwrapped`` is always
the ``UnityILEnv``). The wrappers act on spaces and arrays only, so they serve every Unity
era the env speaks, and can also be applied by hand:

* :class:`VisualObservations` (``use_visual=True``): the camera images only, the first
  camera or, with ``all_cameras=True`` (``allow_multiple_visual_obs=True``), every camera
  as a ``Tuple`` in sensor order;
* :class:`FloatImages` (``uint8_visual=False``): ``uint8`` HWC images as ``float32`` HWC
  in ``[0, 1]``, gym_unity's float layout;
* :class:`FlattenBranched` (``flatten_branched=True``): several discrete branches as one
  ``Discrete`` over every combination, action masks included.

``multiagent=True`` (every agent of the scene) is the SB3 VecEnv of
:func:`~gym_unity_il.envs.vec_env.make_unity_vec_env`, which ``gym.make`` cannot return.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.errors import ConfigError


class VisualObservations(gym.ObservationWrapper, RecordConstructorArgs):
    """Observations that are the camera images only (gym_unity's ``use_visual=True``).

    A camera is a rank-3 ``Box`` of the observation: the observation itself, or a value of
    its ``Dict`` (whose keys are in sensor order). The observation becomes the first
    camera's image, or with ``all_cameras=True`` (gym_unity's ``allow_multiple_visual_obs``)
    a tuple of every camera's image in sensor order, with a ``Tuple`` space (even for one
    camera). The images keep the env's layout and dtype (see :class:`FloatImages`).

    Raises:
        ConfigError: the observation has no camera (the message names the sensors).
    """

    def __init__(self, env: gym.Env, *, all_cameras: bool = False) -> None:
        RecordConstructorArgs.__init__(self, all_cameras=all_cameras)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        sensors = space.spaces if isinstance(space, spaces.Dict) else {None: space}
        cameras = [key for key, box in sensors.items() if isinstance(box, spaces.Box) and len(box.shape) == 3]
        if not cameras:
            raise ConfigError(f"use_visual=True needs a camera (an image observation), and there is none: {_describe(env)}")
        self.all_cameras = all_cameras
        #: The keys of the cameras returned, in sensor order (None: the observation is the one camera).
        self.camera_keys: tuple[str | None, ...] = tuple(cameras if all_cameras else cameras[:1])
        boxes = [sensors[key] for key in self.camera_keys]
        self.observation_space = spaces.Tuple(boxes) if all_cameras else boxes[0]

    def observation(self, observation: Any) -> Any:
        images = [observation if key is None else observation[key] for key in self.camera_keys]
        return tuple(images) if self.all_cameras else images[0]


class FloatImages(gym.ObservationWrapper, RecordConstructorArgs):
    """``uint8`` images as ``float32`` in ``[0, 1]``, still HWC (gym_unity's ``uint8_visual=False``).

    Every ``uint8`` rank-3 ``Box`` of the observation (the observation itself, or a value of
    its ``Dict`` or ``Tuple``) becomes ``Box(0, 1, float32)`` of the same shape, its values
    ``image / 255``; other sensors are left as they are. This is not the env's
    ``image_format="chw_float"``, which gives float images in the CHW layout of ML-Agents'
    own trainers and models.
    """

    def __init__(self, env: gym.Env) -> None:
        RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.observation_space = _float_space(env.observation_space)

    def observation(self, observation: Any) -> Any:
        return _float_images(self.env.observation_space, observation)


class FlattenBranched(gym.ActionWrapper, RecordConstructorArgs):
    """Discrete branches as one ``Discrete`` over every combination (gym_unity's ``flatten_branched=True``).

    ``MultiDiscrete(branches)`` becomes ``Discrete(prod(branches))``. Combination ``i`` is
    row ``i`` of :attr:`table`, in row-major order (the last branch changes fastest), as in
    gym_unity's ``ActionFlattener``: :meth:`action` maps an index to its branch values,
    :meth:`reverse_action` maps branch values back to the index. A ``Discrete`` action
    space (one branch) stays as it is.

    The action mask (``info["action_mask"]`` and :meth:`action_masks`, flattened over the
    branches, True = allowed) becomes a mask over the combinations: one is allowed when
    every branch value in it is allowed. sb3-contrib's ``MaskablePPO`` reads it.

    Raises:
        ConfigError: the action space is not discrete (continuous or hybrid actions).
    """

    def __init__(self, env: gym.Env) -> None:
        RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        space = env.action_space
        if isinstance(space, spaces.Discrete):
            branches: tuple[int, ...] = (int(space.n),)
        elif isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
            branches = tuple(int(n) for n in space.nvec)
        else:
            raise ConfigError(f"flatten_branched=True needs discrete actions (Discrete or MultiDiscrete): {_describe(env)}")
        #: The size of each branch.
        self.branches = branches
        #: ``int64 [combinations, branches]``: row ``i`` holds the branch values of action ``i``.
        self.table = np.stack(np.unravel_index(np.arange(int(np.prod(branches))), branches), axis=1).astype(np.int64)
        self._one_branch = isinstance(space, spaces.Discrete)
        self.action_space = spaces.Discrete(len(self.table))

    def action(self, action: Any) -> Any:
        """The branch values of combination ``action`` (an int index), as the env takes them."""
        index = operator.index(action)
        if not 0 <= index < len(self.table):
            raise ValueError(f"action {index} is outside Discrete({len(self.table)}) (branches {list(self.branches)})")
        return index if self._one_branch else self.table[index].copy()

    def reverse_action(self, action: Any) -> int:
        """The index of the combination of branch values ``action`` (one value per branch)."""
        values = np.asarray(action, np.int64).reshape(len(self.branches))
        return int(np.ravel_multi_index(tuple(values), self.branches))

    def flatten_mask(self, mask: np.ndarray) -> np.ndarray:
        """A mask over the branch values (concatenated over branches) as a mask over the combinations."""
        mask = np.asarray(mask, bool)
        if mask.shape != (sum(self.branches),):
            raise ValueError(f"action mask of shape {mask.shape} for branches {list(self.branches)}: expected ({sum(self.branches)},)")
        per_branch = np.split(mask, np.cumsum(self.branches)[:-1])
        return np.logical_and.reduce([allowed[self.table[:, b]] for b, allowed in enumerate(per_branch)])

    def action_masks(self) -> np.ndarray:
        """The current mask over the combinations (True = allowed), as sb3-contrib's MaskablePPO expects."""
        return self.flatten_mask(self.env.get_wrapper_attr("action_masks")())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._info(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.action(action))
        return obs, reward, terminated, truncated, self._info(info)

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        if "action_mask" not in info:
            return info
        return {**info, "action_mask": self.flatten_mask(info["action_mask"])}


def make_unity_env(
    *,
    use_visual: bool = False,
    uint8_visual: bool | None = None,
    multiagent: bool = False,
    flatten_branched: bool = False,
    allow_multiple_visual_obs: bool = False,
    **env_kwargs: Any,
) -> gym.Env:
    """``UnityIL-v0``: a :class:`UnityILEnv`, wrapped as gym_unity's ``UnityEnv`` options ask.

    Without options it returns the ``UnityILEnv`` itself. The options are checked before
    Unity starts, except those that need the behavior's spec (a camera, discrete actions);
    when one of these fails the env is closed again.

    Args:
        use_visual: observations are the camera images only (:class:`VisualObservations`);
            False (default): every sensor, as the env gives them (gym_unity gave the
            vector observation only).
        uint8_visual: images as ``uint8`` 0-255 HWC (True, the default here: gym_unity's
            default was False) or as ``float32`` in ``[0, 1]`` HWC (False,
            :class:`FloatImages`). It sets the images of ``image_format="hwc_uint8"``
            (the default); with ``image_format="chw_float"`` (``float32`` CHW) it must be
            left out.
        multiagent: True is refused: every agent of a behavior is the SB3 VecEnv of
            :func:`~gym_unity_il.envs.vec_env.make_unity_vec_env`. False means nothing.
        flatten_branched: several discrete branches as one ``Discrete`` (:class:`FlattenBranched`).
        allow_multiple_visual_obs: with ``use_visual=True``, every camera as a ``Tuple``
            in sensor order instead of the first camera only.
        **env_kwargs: the arguments of :class:`UnityILEnv` (``file_name`` is gym_unity's
            ``environment_filename``; ``worker_id`` keeps its name).

    Raises:
        ConfigError: ``multiagent=True``; ``allow_multiple_visual_obs`` without
            ``use_visual``; ``uint8_visual`` with ``image_format="chw_float"``; no camera
            with ``use_visual``; continuous or hybrid actions with ``flatten_branched``;
            and whatever :class:`UnityILEnv` raises.
    """
    if multiagent:
        raise ConfigError(
            "multiagent=True: gym.make returns one agent's env; for every agent of a behavior use "
            "gym_unity_il.envs.make_unity_vec_env(...) with the same scene and launch arguments (an SB3 VecEnv)"
        )
    if allow_multiple_visual_obs and not use_visual:
        raise ConfigError("allow_multiple_visual_obs=True needs use_visual=True (as in gym_unity)")
    if uint8_visual is not None and env_kwargs.get("image_format") == "chw_float":
        raise ConfigError(
            f"uint8_visual={uint8_visual} with image_format='chw_float': uint8_visual chooses uint8 or float32 HWC images, "
            "image_format='chw_float' gives float32 CHW images; pass only one of them"
        )
    env: gym.Env = UnityILEnv(**env_kwargs)
    try:
        if use_visual:
            env = VisualObservations(env, all_cameras=allow_multiple_visual_obs)
        if uint8_visual is False:
            env = FloatImages(env)
        if flatten_branched:
            env = FlattenBranched(env)
    except BaseException:
        env.close()
        raise
    return env


#: gym.make reads its entry point's metadata to check ``render_mode`` (and to offer "human"
#: rendering through its own wrapper): the same as the env's.
make_unity_env.metadata = UnityILEnv.metadata  # type: ignore[attr-defined]


def _describe(env: gym.Env) -> str:
    """The env's behavior (sensors and actions) for error messages, or its spaces for another env."""
    unwrapped = env.unwrapped
    if isinstance(unwrapped, UnityILEnv):
        return unwrapped.behavior_spec.describe()
    return f"observation space {env.observation_space}, action space {env.action_space}"


def _is_uint8_image(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


def _float_space(space: spaces.Space) -> spaces.Space:
    """``space`` with every uint8 image Box replaced by ``Box(0, 1, float32)`` of its shape."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict(OrderedDict((key, _float_space(sub)) for key, sub in space.spaces.items()))
    if isinstance(space, spaces.Tuple):
        return spaces.Tuple([_float_space(sub) for sub in space.spaces])
    if _is_uint8_image(space):
        return spaces.Box(0.0, 1.0, space.shape, np.float32)
    return space


def _float_images(space: spaces.Space, observation: Any) -> Any:
    """``observation`` (of ``space``) with every uint8 image divided by 255 as float32."""
    if isinstance(space, spaces.Dict):
        return OrderedDict((key, _float_images(sub, observation[key])) for key, sub in space.spaces.items())
    if isinstance(space, spaces.Tuple):
        return tuple(_float_images(sub, part) for sub, part in zip(space.spaces, observation))
    if _is_uint8_image(space):
        return np.asarray(observation, np.float32) / np.float32(255)
    return observation
