"""The local backend: the Unity processes' workers on threads of the learner's process.

The first worker runs on the calling thread, each other one on a thread of its own, so
that all processes are in flight at once (gRPC waits release the GIL). The interface is
described in :mod:`gym_unity_il.envs.backend`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from typing import Any

from gym_unity_il.envs.worker import SessionWorker, WorkerInfo, WorkerResult, restart_worker
from gym_unity_il.errors import EnvClosedError
from gym_unity_il.link.session import UnitySession


class _WorkerThread:
    """A daemon thread that runs submitted calls in order until :meth:`stop`.

    A process started from this thread lives as long as the thread (Linux's parent-death
    signal follows the starting thread), so the thread lives as long as its worker.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        self._jobs.put((future, fn, args))
        return future

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

    def stop(self, timeout: float) -> None:
        self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class LocalBackend:
    """Runs the workers in this process: the first on the calling thread, each other one
    on a thread of its own, so that all processes are in flight at once."""

    def __init__(self) -> None:
        self._workers: list[SessionWorker | None] = []  # None: failed to start
        self._threads: list[_WorkerThread | None] = []
        self._timeout = 60.0

    def start(self, worker_kwargs: Sequence[Mapping[str, Any]]) -> list[WorkerInfo]:
        """Starts every worker at once; if one fails, closes them all and raises its error."""
        self._threads = [None] + [_WorkerThread(f"unity-worker-{i}") for i in range(1, len(worker_kwargs))]
        outcomes = self._run_all([(_open_worker, (kwargs,)) for kwargs in worker_kwargs])
        self._workers = [w if isinstance(w, SessionWorker) else None for w in outcomes]
        self._timeout = max((w.session.timeout_wait for w in self._workers if w is not None), default=60.0) + 10.0
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            self.close()
            raise errors[0]
        return [w.describe() for w in self._workers if w is not None]

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Runs ``method`` on every worker at once; returns each worker's result, or the
        exception it raised (nothing is closed: the caller decides)."""
        if not self._workers:
            raise EnvClosedError("the Unity processes are closed")
        return self._run_all([(getattr(worker, method), a) for worker, a in zip(self._workers, args)])

    def restart(self, index: int, kwargs: Mapping[str, Any], reset_args: tuple[Any, ...]) -> tuple[WorkerInfo, WorkerResult]:
        """Replaces worker ``index`` by a new one started with ``kwargs`` on the same thread
        (:func:`~gym_unity_il.envs.worker.restart_worker`); returns its description and its
        first reset's result."""
        old, self._workers[index] = self._workers[index], None
        thread = self._threads[index]
        if thread is None:
            worker, result = restart_worker(old, kwargs, reset_args)
        else:
            worker, result = thread.submit(restart_worker, old, kwargs, reset_args).result()
        self._workers[index] = worker
        return worker.describe(), result

    @property
    def sessions(self) -> list[UnitySession]:
        return [w.session for w in self._workers if w is not None]

    def close(self) -> None:
        """Closes every worker on its own thread (after any call in flight), then stops the threads."""
        workers, self._workers = self._workers, []
        threads, self._threads = self._threads, []
        pending = [thread.submit(worker.close) for worker, thread in zip(workers, threads) if worker is not None and thread is not None]
        if workers and workers[0] is not None:
            workers[0].close()  # worker 0 runs on the calling thread
        for future in pending:
            try:
                future.result(self._timeout)
            except BaseException:  # closing goes on: a failed session has ended its process already
                pass
        for thread in threads:
            if thread is not None:
                thread.stop(self._timeout)

    def _run_all(self, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Runs call i on worker i's thread (call 0 here), all at once; returns results or exceptions."""
        submitted = [thread.submit(fn, *args) if thread is not None else None for thread, (fn, args) in zip(self._threads, calls)]
        outcomes: list[Any] = []
        for future, (fn, args) in zip(submitted, calls):
            if future is None:
                try:
                    outcomes.append(fn(*args))
                except BaseException as exc:  # raised by the caller once every worker is done
                    outcomes.append(exc)
        for future in submitted[1:]:
            assert future is not None
            try:
                outcomes.append(future.result())
            except BaseException as exc:  # likewise
                outcomes.append(exc)
        return outcomes


def _open_worker(kwargs: Mapping[str, Any]) -> SessionWorker:
    return SessionWorker.open(**kwargs)
