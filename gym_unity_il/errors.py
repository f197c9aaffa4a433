"""One exception tree for the whole package.

Every error says what went wrong and what to do next. Catch :class:`GymUnityILError` to
catch anything this package raises on purpose; the children name the kind of failure.
"""

from __future__ import annotations


class GymUnityILError(Exception):
    """Base class of every error raised on purpose by gym_unity_il."""


class UnityTimeoutError(GymUnityILError, TimeoutError):
    """The Unity process (or built-in scene) did not answer within the timeout."""


class UnityVersionError(GymUnityILError):
    """The Unity side speaks a communication API version this package cannot talk to."""


class PortInUseError(GymUnityILError, OSError):
    """The port the trainer wants to listen on is already taken."""


class UnityProcessExitedError(GymUnityILError):
    """The Unity process (or built-in scene) exited or crashed."""


class UnityExecutableNotFoundError(GymUnityILError, FileNotFoundError):
    """No Unity executable could be found at the given path."""


class UnityProtocolError(GymUnityILError):
    """The Unity side sent a message that does not follow the protocol."""


class DemoFormatError(GymUnityILError, ValueError):
    """A `.demo` file cannot be read: truncated, corrupt, or not a demonstration at all."""


class SpecMismatchError(GymUnityILError, ValueError):
    """Two behavior specs that must agree (demo and env, policy and env) do not."""


class ConfigError(GymUnityILError, ValueError):
    """A training configuration has an unknown key, a wrong type or a bad value."""


class ModelContractError(GymUnityILError, ValueError):
    """An exported model breaks Unity ML-Agents' model contract; the message lists every violation."""


class ExportParityError(GymUnityILError, ValueError):
    """The exported ONNX model and the torch policy disagree on the same observations."""
