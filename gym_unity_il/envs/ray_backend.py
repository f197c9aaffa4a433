"""The Ray backend: each Unity process's worker in a Ray actor.

Each worker lives in a Ray actor (:class:`WorkerHost`) on whichever node Ray places it, so
a Ray cluster runs the Unity builds and the learner stays where it is. Needs
``pip install gym_unity_il[ray]``; uses the cluster ``ray.init()`` connected to, or starts
a local one. Builds must exist at ``file_name`` on every node that may host an actor
(place actors with options such as ``{"resources": {"unity": 1}}``). The interface is
described in :mod:`gym_unity_il.envs.backend`.

This module imports neither Stable-Baselines3 nor torch, so the actors start quickly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gym_unity_il.envs.worker import EnvParameters, SessionWorker, WorkerInfo, WorkerResult, restart_worker
from gym_unity_il.errors import ConfigError, EnvClosedError
from gym_unity_il.extras import require
from gym_unity_il.link.session import UnitySession

#: Seconds ``close()`` waits for an actor to close its Unity process before killing the actor.
CLOSE_TIMEOUT = 30.0


class WorkerHost:
    """The actor class: holds one :class:`~gym_unity_il.envs.worker.SessionWorker`.

    The worker is built by :meth:`start` rather than the constructor, so that its errors
    (a missing build, a timeout) reach the learner as themselves.
    """

    def __init__(self) -> None:
        self._worker: SessionWorker | None = None

    def start(self, kwargs: Mapping[str, Any]) -> WorkerInfo:
        self._worker = SessionWorker.open(**kwargs)
        return self._worker.describe()

    def reset(self, seed: int | None, env_parameters: EnvParameters | None) -> WorkerResult:
        return self._require().reset(seed, env_parameters)

    def set_env_parameters(self, parameters: EnvParameters) -> None:
        self._require().set_env_parameters(parameters)

    def step(self, actions: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> WorkerResult:
        return self._require().step(actions)

    def restart(self, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, WorkerResult]:
        """Replaces the worker by a new one (:func:`~gym_unity_il.envs.worker.restart_worker`), in this actor."""
        old, self._worker = self._worker, None
        self._worker, result = restart_worker(old, kwargs, reset_args)
        return self._worker.describe(), result

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def _require(self) -> SessionWorker:
        if self._worker is None:
            raise EnvClosedError("this Ray actor holds no Unity process (closed, or it failed to start)")
        return self._worker


class RayBackend:
    """Runs each worker in its own Ray actor.

    Args:
        actor_options: options for ``ActorClass.options(...)``, e.g. ``{"num_cpus": 1}``.

    Raises:
        MissingExtraError: Ray is not installed (the ray extra).
    """

    def __init__(self, *, actor_options: Mapping[str, Any] | None = None) -> None:
        ray = require("ray", "ray", "ray=True")
        self._ray = ray
        self._actor_class = ray.remote(WorkerHost).options(**dict(actor_options or {}))
        self._actors: list[Any] = []

    def start(self, worker_kwargs: Sequence[Mapping[str, Any]]) -> list[WorkerInfo]:
        """Starts every worker at once; if one fails, closes them all and raises its error."""
        self._actors = [self._actor_class.remote() for _ in worker_kwargs]
        try:
            outcomes = self.call("start", [(kwargs,) for kwargs in worker_kwargs])
        except BaseException:
            self.close()
            raise
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            self.close()  # each actor closes after its call in flight: actors run calls in order
            raise errors[0]
        return outcomes

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Calls ``method`` on every actor at once; returns each actor's result, or the
        exception its call raised (nothing is closed: the caller decides). Ray re-raises
        an actor's exception as an instance of the original class too, so
        ``isinstance(outcome, UnityProcessExitedError)`` holds for a crashed process."""
        if not self._actors:
            raise EnvClosedError("the Unity processes are closed")
        refs = [getattr(actor, method).remote(*a) for actor, a in zip(self._actors, args)]
        outcomes: list[Any] = []
        for ref in refs:
            try:
                outcomes.append(self._ray.get(ref))
            except Exception as exc:  # handed to the caller, which closes everything or restarts the worker
                outcomes.append(exc)
        return outcomes

    def restart(self, index: int, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, WorkerResult]:
        """Replaces the worker of actor ``index`` (in the same actor) by a new one started
        with ``kwargs``; returns its description and its first reset's result."""
        return self._ray.get(self._actors[index].restart.remote(kwargs, reset_args))

    @property
    def sessions(self) -> list[UnitySession]:
        raise ConfigError("the sessions live in Ray actors; they are not reachable from the learner (they are with ray=False)")

    def close(self) -> None:
        """Asks every actor to close its Unity process, then ends the actors (idempotent)."""
        actors, self._actors = self._actors, []
        ray = self._ray
        if not actors or not ray.is_initialized():
            return  # with the cluster gone, its actors and their processes are gone too
        refs = [actor.close.remote() for actor in actors]
        try:
            ray.wait(refs, num_returns=len(refs), timeout=CLOSE_TIMEOUT)
        finally:
            for actor in actors:
                ray.kill(actor)
