"""The VecEnv training runs on: every agent of one behavior of a Unity build or built-in scene."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from gym_unity_il.spec import BehaviorSpec


def make_training_env(
    *,
    file_name: str | os.PathLike[str] | None = None,
    scene: str | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    num_envs: int = 1,
    seed: int = 0,
) -> tuple[VecEnv, BehaviorSpec]:
    """Every agent of the behavior in ``num_envs`` Unity processes as one VecEnv
    (:func:`~gym_unity_il.envs.make_unity_vec_env`), wrapped in SB3's ``VecMonitor`` so
    episode returns are logged, and the behavior's spec.

    Process ``p`` gets the seed ``seed + p``. Observations are ``hwc_uint8``: images are
    ``uint8`` HWC. Built-in scenes keep their own number of agents (``ball``: 12) unless
    ``scene_kwargs`` sets ``num_agents``.

    Raises:
        ConfigError, GymUnityILError: see :class:`~gym_unity_il.envs.vec_env.UnityVecEnv`.
    """
    from gym_unity_il.envs.vec_env import make_unity_vec_env

    venv = make_unity_vec_env(file_name, scene=scene, n_envs=num_envs, scene_kwargs=scene_kwargs, behavior_name=behavior_name, seed=seed)
    return VecMonitor(venv), venv.behavior_spec
