"""The public transport: grpc's public ``grpc.server``, for a grpcio the fast transport cannot use.

A generic handler serves ``/communicator_objects.UnityToExternalProto/Exchange``. It runs on
a thread of the server's, hands the request to the caller's thread (``receive()`` waits on
a condition for it) and waits until the caller answers it (``respond()``), then returns the
answer. Peers are ``context.peer()``; a refused call ends with
``context.abort(PERMISSION_DENIED, ...)``. The rules of the peer are the ones of
:mod:`gym_unity_il.link.server`, the same as on the fast transport, with one difference:
grpc reads a call's message before any handler runs, so a call from another connection than
the peer's is refused before its message is parsed, not before it is read. A step costs a
wake-up of grpc's serving thread and one of the handler's thread more than on the fast
transport (see ``benchmarks/bench_link.py``).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc

from gym_unity_il.link.server import (
    CLOSING_MESSAGE,
    DEFAULT_MAX_MESSAGE_BYTES,
    OTHER_PEER,
    SERVICES,
    STOP_MARGIN,
    ExchangeServer,
    bind_error,
    channel_options,
    format_address,
)


class HandlerThreads(futures.ThreadPoolExecutor):
    """The executor of grpc's handlers (``grpc.server`` takes a ThreadPoolExecutor), running
    them on daemon threads: as many threads as handlers run at once, idle ones reused.

    A handler waits for the caller's answer as long as the caller takes, and the interpreter
    joins the threads of a plain ThreadPoolExecutor when it exits, before any finalizer could
    answer the call: a program that exits without closing its env would hang there.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=1)  # its own threads are never started: submit() is replaced
        self._tasks: queue.SimpleQueue[tuple[futures.Future[object], Callable[[], object]] | None] = queue.SimpleQueue()
        self._count_lock = threading.Lock()
        self._started = 0
        self._idle = 0

    def submit(self, fn: Callable[..., object], /, *args: object, **kwargs: object) -> futures.Future[object]:
        future: futures.Future[object] = futures.Future()
        with self._count_lock:
            if self._idle:
                self._idle -= 1
            else:
                self._started += 1
                threading.Thread(target=self._work, name="gym_unity_il exchange handler", daemon=True).start()
        self._tasks.put((future, functools.partial(fn, *args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Lets every thread end once its task is done (without waiting for them)."""
        with self._count_lock:
            count, self._started, self._idle = self._started, 0, 0
        for _ in range(count):
            self._tasks.put(None)

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, run = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(run())
                except BaseException as exc:  # the future carries it, as in a ThreadPoolExecutor
                    future.set_exception(exc)
            with self._count_lock:
                self._idle += 1


class _Call:
    """One Exchange call, held by its handler's thread until the caller answers or refuses it."""

    __slots__ = ("ended", "answer", "refusal")

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.answer = CLOSING_MESSAGE  # what a call cancelled before an answer returns (gRPC drops it)
        self.refusal: str | None = None


class PublicServer(ExchangeServer[_Call]):
    """:class:`~gym_unity_il.link.server.ExchangeServer` on grpc's public server (see the
    module docstring). Arguments and errors as there."""

    transport = "public"

    def __init__(
        self, *, port: int, host: str = "127.0.0.1", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, extra_ports: Sequence[int] = ()
    ) -> None:
        super().__init__(port=port, host=host, max_message_bytes=max_message_bytes, extra_ports=extra_ports)
        self._arrival = threading.Condition()  # notified when a request joins _arrived
        self._threads = HandlerThreads()
        # The handler holds the server weakly, so that a server never closed is collected (and stops).
        handler = grpc.unary_unary_rpc_method_handler(functools.partial(_handle, weakref.ref(self)))
        self._server = grpc.server(
            self._threads,
            handlers=tuple(grpc.method_handlers_generic_handler(service, {method: handler}) for service, method in SERVICES),
            options=channel_options(self.max_message_bytes),
        )
        bound = []
        for wanted in self.ports:
            try:
                bound.append(self._server.add_insecure_port(format_address(host, wanted)))
            except RuntimeError:  # grpcio's way to say it cannot listen (older ones return 0)
                bound.append(0)
            if bound[-1] == 0:
                raise bind_error(host, wanted)
        self.port, self.ports = bound[0], tuple(bound)
        self._server.start()
        self._finalizer = weakref.finalize(self, _abandon, self._server, self._threads)

    def _arrive(self, call: _Call, peer: str, data: bytes) -> None:
        """Hands a request that came to the caller's thread; or ends its call at once: refused
        when it comes from another connection than the peer's, answered with status 400 when
        the server is closed. On the handler's thread."""
        if self._peer is not None and peer != self._peer:
            self._refuse(call, peer, OTHER_PEER)
            return
        with self._arrival:
            if not self._closed:
                self._arrived.append((call, peer, data))
                self._arrival.notify()
                return
        self._answer(call, CLOSING_MESSAGE)

    def _answer(self, call: _Call, message: bytes) -> None:
        call.answer = message
        call.ended.set()

    def _end_refused(self, call: _Call, reason: str) -> None:
        call.refusal = reason
        call.ended.set()

    def _await_event(self, deadline: float) -> bool:
        """Waits until a request has come or ``deadline`` (a ``time.monotonic()``); False if none came."""
        with self._arrival:
            return bool(self._arrival.wait_for(lambda: self._arrived, max(deadline - time.monotonic(), 0.0)))

    def close(self, grace: float = 1.0) -> None:
        with self._arrival:
            if self._closed:
                return
            self._closed = True  # requests that come from here on are answered at once (_arrive)
        self._finalizer.detach()
        stopped = self._server.stop(grace)  # no new calls from here on
        self._close_calls()
        if not stopped.wait(grace + STOP_MARGIN):
            self._warn_stop_overdue(grace)
        self._threads.shutdown()


def _handle(server_ref: weakref.ref[PublicServer], request: bytes, context: grpc.ServicerContext) -> bytes:
    """The Exchange handler: hands the request to the caller's thread and returns its answer."""
    call = _Call()
    if not context.add_callback(call.ended.set):  # a call cancelled while it waits ends the wait
        return call.answer  # already over
    server = server_ref()
    if server is None:  # collected: its finalizer is stopping grpc's server
        context.abort(grpc.StatusCode.UNAVAILABLE, "the trainer's server is closed")
    server._arrive(call, context.peer(), request)
    del server  # the wait must not keep the server alive
    call.ended.wait()
    if call.refusal is not None:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, call.refusal)
    return call.answer


def _abandon(server: grpc.Server, threads: HandlerThreads) -> None:
    """Stops a server that was never closed (collected, or at exit): its calls are cancelled,
    which ends their handlers' waits."""
    server.stop(None).wait(STOP_MARGIN)
    threads.shutdown()
