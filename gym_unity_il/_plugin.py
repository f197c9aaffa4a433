"""The gymnasium plugin hook: registers ``UnityIL-v0``.

Kept free of package imports so that it works whichever of ``gymnasium`` and
``gym_unity_il`` is imported first (gymnasium 0.29 calls it while importing itself).
The entry point is :func:`gym_unity_il.envs.gym_unity_options.make_unity_env`: a
:class:`~gym_unity_il.envs.unity_env.UnityILEnv`, wrapped only when gym_unity's options
(``use_visual``, ``flatten_branched``, ...) are given.
The scenes the env serves are registered by name in :mod:`gym_unity_il.scenes.registry`.
"""

from __future__ import annotations

ENV_ID = "UnityIL-v0"


def register_envs() -> None:
    """Registers ``UnityIL-v0`` with gymnasium (idempotent)."""
    from gymnasium.envs.registration import register, registry

    if ENV_ID not in registry:
        register(id=ENV_ID, entry_point="gym_unity_il.envs.gym_unity_options:make_unity_env")
