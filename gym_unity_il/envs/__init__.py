"""Gymnasium, SB3 and PettingZoo environments over the link.

* :class:`UnityILEnv` (``UnityIL-v0``): one agent as a Gymnasium env;
* :func:`make_unity_env` (``UnityIL-v0``'s entry point) and the wrappers
  :class:`VisualObservations`, :class:`FloatImages` and :class:`FlattenBranched`: the
  options of gym_unity's ``UnityEnv`` (:mod:`~gym_unity_il.envs.gym_unity_options`);
* :class:`UnityVecEnv` / :func:`make_unity_vec_env`: every agent of one behavior across
  one or more Unity processes (optionally in Ray actors) as one SB3 VecEnv;
* :class:`UnityParallelEnv`: every agent of every behavior of one process as a PettingZoo
  ``ParallelEnv`` (needs ``pip install gym_unity_il[pettingzoo]``).

The VecEnv and the PettingZoo env are imported on first use: Stable-Baselines3 (which
loads torch) and PettingZoo are not needed by ``UnityIL-v0``.

Under them, from the bottom: :mod:`~gym_unity_il.envs.slots` (which agent is in which
slot, no I/O), :mod:`~gym_unity_il.envs.worker` (one session driving the slots of N
behaviors) and :mod:`~gym_unity_il.envs.backend` (where the VecEnv's workers run: threads
of this process, :mod:`~gym_unity_il.envs.local_backend`, or Ray actors,
:mod:`~gym_unity_il.envs.ray_backend`).
"""

from __future__ import annotations

import importlib
from typing import Any

from gym_unity_il.envs.gym_unity_options import FlattenBranched, FloatImages, VisualObservations, make_unity_env
from gym_unity_il.envs.unity_env import UnityILEnv

_LAZY = {
    "UnityVecEnv": "gym_unity_il.envs.vec_env",
    "make_unity_vec_env": "gym_unity_il.envs.vec_env",
    "UnityParallelEnv": "gym_unity_il.envs.pettingzoo_env",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FlattenBranched",
    "FloatImages",
    "UnityILEnv",
    "UnityParallelEnv",
    "UnityVecEnv",
    "VisualObservations",
    "make_unity_env",
    "make_unity_vec_env",
]
