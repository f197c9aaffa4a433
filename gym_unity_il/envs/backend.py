"""Where the Unity processes of a VecEnv run: the interface of the two backends.

A backend holds one :class:`~gym_unity_il.envs.worker.SessionWorker` per Unity process:

* :class:`~gym_unity_il.envs.local_backend.LocalBackend`: on threads of the learner's
  process, all in flight at once (gRPC waits release the GIL);
* :class:`~gym_unity_il.envs.ray_backend.RayBackend`: each in a Ray actor, on whichever
  node Ray places it (``pip install gym_unity_il[ray]``).

Both run the workers' calls with numpy arrays in and out, and the VecEnv above them does
not know which one it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gym_unity_il.envs.local_backend import LocalBackend
from gym_unity_il.envs.ray_backend import RayBackend
from gym_unity_il.envs.worker import WorkerInfo, WorkerResult
from gym_unity_il.errors import ConfigError
from gym_unity_il.link.session import UnitySession


class WorkerBackend(Protocol):
    """The calls a VecEnv makes on its backend.

    ``worker_kwargs`` are the arguments of :meth:`SessionWorker.open
    <gym_unity_il.envs.worker.SessionWorker.open>`, one mapping per Unity process.
    """

    def start(self, worker_kwargs: Sequence[Mapping[str, Any]]) -> list[WorkerInfo]:
        """Starts every worker at once; if one fails, closes them all and raises its error."""

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Runs ``method`` on every worker at once (worker ``i`` with ``args[i]``); returns each
        worker's result, or the exception it raised (nothing is closed: the caller decides).

        Raises:
            EnvClosedError: the backend is closed.
        """

    def restart(self, index: int, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, WorkerResult]:
        """Replaces worker ``index`` by a new one started with ``kwargs`` and reset with
        ``reset_args`` (:func:`~gym_unity_il.envs.worker.restart_worker`); returns its
        description and its first reset's result."""

    @property
    def sessions(self) -> list[UnitySession]:
        """The live sessions, when they are reachable from the learner.

        Raises:
            ConfigError: they live elsewhere (in Ray actors).
        """

    def close(self) -> None:
        """Closes every worker and its Unity process (idempotent)."""


def make_backend(*, ray: bool = False, actor_options: Mapping[str, Any] | None = None) -> WorkerBackend:
    """The local backend, or with ``ray=True`` the Ray backend with ``actor_options``.

    Raises:
        ConfigError: ``actor_options`` without ``ray=True``; Ray is not installed.
    """
    if ray:
        return RayBackend(actor_options=actor_options)
    if actor_options:
        raise ConfigError("ray_actor_options needs ray=True")
    return LocalBackend()
