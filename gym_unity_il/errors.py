"""One exception tree for the whole package.

Every error says what went wrong and what to do next. Catch :class:`GymUnityILError` to
catch anything this package raises on purpose; the children name the kind of failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

#: Longest value quoted in an error message, in characters (see :func:`quote`).
QUOTE_CHARS = 200


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long the value is: values
    from a message or a file (names, versions, shapes, lists, numbers) may be megabytes long."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"  # repr() itself is slow (and limited) past 4300 digits
    if isinstance(value, (str, bytes, bytearray)):
        text = repr(value[:limit])  # escapes make a repr up to 10 times longer than its value
        if len(value) <= limit and len(text) <= limit + 3:
            return text
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{text[:limit]}... ({len(value)} {unit})"
    if isinstance(value, Mapping) and len(value) > limit:
        return f"a mapping of {len(value)} items"
    if isinstance(value, (list, tuple, set)) or (hasattr(value, "__len__") and hasattr(value, "__iter__") and not isinstance(value, Mapping)):
        parts: list[str] = []
        size = 0
        for item in itertools.islice(value, limit):  # type: ignore[call-overload]
            text = quote(item, limit)
            size += len(text) + 2
            if size > limit:
                break
            parts.append(text)
        more = len(value) - len(parts)  # type: ignore[arg-type]
        return f"[{', '.join(parts)}]" if not more else f"[{', '.join(parts)}, ... ({len(value)} values)]"  # type: ignore[arg-type]
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


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


class EnvClosedError(GymUnityILError, RuntimeError):
    """A call on an env, VecEnv or session that is closed (Gymnasium's ``ClosedEnvironmentError``):
    create a new one."""


class ResetNeededError(GymUnityILError, RuntimeError):
    """``step()`` before ``reset()``, or after the episode ended (Gymnasium's ``ResetNeeded``):
    call ``reset()`` first."""


class NoAsyncCallError(GymUnityILError, RuntimeError):
    """``step_wait()`` without a ``step_async()`` before it (Gymnasium's ``NoAsyncCallError``)."""


class AgentNeverDecidesError(GymUnityILError, RuntimeError):
    """An agent the env waits for asked for no decision within the bound on messages: it was
    disabled or destroyed without ending its episode, or the scene has no agent of the behavior."""


class DemoFormatError(GymUnityILError, ValueError):
    """A `.demo` file cannot be read: truncated, corrupt, or not a demonstration at all."""


class DemoFormatWarning(UserWarning):
    """Something in a `.demo` file was skipped: a partial last record, unexpected trailing bytes."""


class SpecMismatchError(GymUnityILError, ValueError):
    """Two behavior specs that must agree (demo and env, policy and env) do not."""


class ConfigError(GymUnityILError, ValueError):
    """A training configuration has an unknown key, a wrong type or a bad value."""


class ModelContractError(GymUnityILError, ValueError):
    """An exported model breaks Unity ML-Agents' model contract; the message lists every violation."""


class ExportParityError(GymUnityILError, ValueError):
    """The exported ONNX model and the torch policy disagree on the same observations."""


class OutputError(GymUnityILError, OSError):
    """A file could not be written: a full disk, a read-only folder, a path that cannot be a
    folder, no permission.

    The message names the file, the operating system's reason, what is left on disk and the
    fix. ``errno`` is the failure's (``except OSError`` catches this error too).
    """

    @classmethod
    def from_os_error(cls, path: object, error: OSError, left: str = "") -> OutputError:
        """The error for ``error`` while writing ``path``; ``left`` (a sentence) says what is on disk now."""
        import errno

        fixes = {
            errno.ENOSPC: "free space on that disk, or write to a folder on another disk",
            errno.EDQUOT: "free space within your disk quota, or write to a folder on another disk",
            errno.EFBIG: "the file would be larger than that file system allows: write to a folder on another disk",
            errno.EROFS: "that file system is mounted read-only: write to a folder on a writable disk",
            errno.EACCES: "write to a folder you may write to, or change the folder's permissions",
            errno.EPERM: "write to a folder you may write to, or change the folder's permissions",
            errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
            errno.EEXIST: "a part of the path is a file, not a folder: choose another path",
            errno.EISDIR: "the path is a folder: name a file in it",
            errno.ENOENT: "the folder disappeared while writing: create it again, or choose another path",
            errno.ENAMETOOLONG: "choose a shorter path",
        }
        reason = error.strerror or str(error)
        fix = fixes.get(error.errno or 0, "check the path and the disk, then try again")
        made = cls(f"cannot write {path}: {reason}. {left + ' ' if left else ''}Fix: {fix}.")
        made.errno = error.errno
        return made


class MissingExtraError(GymUnityILError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the
    extra of this package that installs it (``pip install 'gym_unity_il[train]'``)."""
