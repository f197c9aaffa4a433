"""gym_unity_il: Unity ML-Agents scenes as Gymnasium envs, `.demo` files as `imitation` data.

Importing the package registers the ``UnityIL-v0`` env id with gymnasium::

    import gymnasium as gym
    import gym_unity_il  # noqa: F401  (with gymnasium 0.29 the plugin entry point does this)

    env = gym.make("UnityIL-v0")                      # the default built-in scene
    env = gym.make("UnityIL-v0", file_name="Builds/MyGame.x86_64")

How a Unity process is launched (build or Editor, ports, timeout, ...) is one
:class:`LaunchSettings`, which every env takes as ``launch=`` or as its fields.
"""

from __future__ import annotations

from gym_unity_il.errors import (
    AgentNeverDecidesError,
    ConfigError,
    DemoFormatError,
    DemoFormatWarning,
    EnvClosedError,
    ExportParityError,
    GymUnityILError,
    MissingExtraError,
    ModelContractError,
    NoAsyncCallError,
    OutputError,
    PortInUseError,
    ResetNeededError,
    SpecMismatchError,
    UnityExecutableNotFoundError,
    UnityProcessExitedError,
    UnityProtocolError,
    UnityTimeoutError,
    UnityVersionError,
)
from gym_unity_il._plugin import ENV_ID, register_envs
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.spec import ActionSpec, BehaviorSpec, CameraResolution, ObservationSpec
from gym_unity_il.version import __version__

register_envs()

__all__ = [
    "ENV_ID",
    "ActionSpec",
    "AgentNeverDecidesError",
    "BehaviorSpec",
    "CameraResolution",
    "ConfigError",
    "DemoFormatError",
    "DemoFormatWarning",
    "EnvClosedError",
    "ExportParityError",
    "GymUnityILError",
    "MissingExtraError",
    "LaunchSettings",
    "ModelContractError",
    "NoAsyncCallError",
    "ObservationSpec",
    "OutputError",
    "PortInUseError",
    "ResetNeededError",
    "SpecMismatchError",
    "UnityExecutableNotFoundError",
    "UnityProcessExitedError",
    "UnityProtocolError",
    "UnityTimeoutError",
    "UnityVersionError",
    "__version__",
    "register_envs",
]
