"""The trainer's gRPC server: Unity is the client, so the trainer answers Unity's calls.

Unity calls the one unary method ``/communicator_objects.UnityToExternalProto/Exchange``
with its data in the request and waits for the trainer's data in the response (protocol.md
§1.1). :class:`ExchangeServer` gives each request to the caller (:meth:`ExchangeServer.receive`)
and holds the call open until the caller answers it (:meth:`ExchangeServer.respond`).

gRPC runs a handler to completion, but the answer to Unity's call only exists once the
user's next ``step()`` computes it. The handler therefore runs on the caller's own thread,
inside a greenlet: :meth:`~ExchangeServer.receive` starts gRPC's work for the call, the
handler suspends itself with the request in hand, and :meth:`~ExchangeServer.respond`
resumes it with the answer, which gRPC then sends. No thread hands anything over to
another, so a step costs what a bare gRPC round trip costs plus the caller's own work. The
price is a rule: a server (and the session and env built on it) answers Unity from the
thread that received the call, so each env is used from one thread.

The method is registered by its path: the protobuf package of the generated messages
differs from Unity's on purpose (see ``protos/communicator.proto``), the path does not.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import greenlet
import grpc

from gym_unity_il.errors import GymUnityILError, PortInUseError, UnityProtocolError
from gym_unity_il.link.codec import parse_unity_message
from gym_unity_il.proto import communicator_pb2 as pb

logger = logging.getLogger(__name__)

SERVICE_NAME = "communicator_objects.UnityToExternalProto"
METHOD_NAME = "Exchange"
EXCHANGE_PATH = f"/{SERVICE_NAME}/{METHOD_NAME}"

#: Default limit for messages in both directions (Unity's requests carry every agent's
#: observations: many cameras can make them large).
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

STATUS_OK = 200
STATUS_CLOSING = 400

#: Seconds past the grace period that :meth:`ExchangeServer.close` waits for gRPC's stop.
_STOP_MARGIN = 10.0

PORT_ADVICE = "pass another worker_id (the port is base_port + worker_id), another base_port, or auto_port=True"

#: gRPC's work for one call: (future, function, args, kwargs), as ``Executor.submit`` got it.
_Work = tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(host: str, port: int) -> None:
    """Raises :class:`PortInUseError` when something listens on ``host:port`` already.

    Like the reference trainer, binds a plain TCP socket (with ``SO_REUSEADDR`` on POSIX,
    so ports in TIME_WAIT count as free) and closes it again.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(f"port {port} on {host} is already in use ({exc.strerror}): {PORT_ADVICE}") from exc


#: The message that tells the peer the sender is closing, serialized: ``header { status: 400 }``.
CLOSING_MESSAGE = pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_CLOSING)).SerializeToString()


class _CallQueue(futures.Executor):
    """The executor gRPC gets: it only queues each call's work for :meth:`ExchangeServer.receive`."""

    def __init__(self) -> None:
        self.work: queue.SimpleQueue[_Work] = queue.SimpleQueue()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        self.work.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # nothing runs on threads of its own


def _run_work(work: _Work) -> None:
    """Runs gRPC's work for one call (receive the request, call the handler, send the answer)."""
    future, fn, args, kwargs = work
    if not future.set_running_or_notify_cancel():
        return
    try:
        fn(*args, **kwargs)
    except BaseException as exc:  # Ctrl+C while waiting for the request, or the greenlet collected
        future.set_exception(exc)
        raise
    future.set_result(None)


class _SignalDeferral:
    """Holds SIGINT and SIGTERM back while gRPC's own bookkeeping runs on the main thread.

    A KeyboardInterrupt raised in the middle of that code (between starting a batch and
    recording it, say) breaks gRPC's serving thread, and stopping the server then never
    ends. Each :class:`ExchangeServer` used on the main thread wraps the Python handlers of
    both signals once (a per-process setting, like the handlers themselves); the wrapper
    only notes a signal that arrives inside :meth:`held` and runs the original handler
    when the block ends, where the server's state is whole again.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._noted: list[tuple[Callable[[int, Any], Any], int]] = []

    def install(self) -> None:
        """Wraps the current Python handlers of SIGINT and SIGTERM (main thread only; idempotent)."""
        if threading.current_thread() is not threading.main_thread():
            return  # Python runs signal handlers on the main thread only: nothing to hold elsewhere
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if callable(handler) and getattr(getattr(handler, "func", None), "__self__", None) is not self:
                signal.signal(signum, functools.partial(self._handle, handler))

    def _handle(self, original: Callable[[int, Any], Any], signum: int, frame: Any) -> Any:
        if self._depth:
            self._noted.append((original, signum))
            return None
        return original(signum, frame)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Signals arriving inside the block are handled when it ends (on the main thread)."""
        if threading.get_ident() != threading.main_thread().ident:
            yield
            return
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._noted:
                noted, self._noted = self._noted, []
                for original, signum in noted:
                    original(signum, None)


#: One for the process, as signal handlers are.
_DEFERRAL = _SignalDeferral()


class ExchangeServer:
    """A gRPC server holding Unity's pending ``Exchange`` call for the caller.

    Use it from one thread: :meth:`respond` must run on the thread whose :meth:`receive`
    returned the call (see the module docstring).

    Args:
        port: the port to listen on; 0 picks a free port (read it back from :attr:`port`).
        host: the address to bind; loopback unless the Unity process runs elsewhere.
        max_message_bytes: the largest message accepted or sent, in bytes.

    Raises:
        PortInUseError: the port is taken.
    """

    def __init__(self, *, port: int, host: str = "127.0.0.1", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if port:
            check_port_free(host, port)
        self._calls = _CallQueue()
        self._pending: greenlet.greenlet | None = None
        self._pending_thread = 0
        self._closed = False
        self._server = grpc.server(
            self._calls,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        # Both directions stay bytes: receive() parses requests, so a malformed one is an
        # error the caller sees rather than a call gRPC rejects behind its back, and the
        # caller's answers come serialized.
        handler = grpc.unary_unary_rpc_method_handler(self._exchange)
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {METHOD_NAME: handler}),))
        try:
            bound = self._server.add_insecure_port(format_address(host, port))
        except RuntimeError as exc:
            bound = 0
            reason = f": {exc}"
        else:
            reason = ""
        if bound == 0:
            self._server.stop(None)
            raise PortInUseError(f"cannot listen on port {port} of {host}{reason}; {PORT_ADVICE}")
        self.port: int = bound
        self.host = host
        _DEFERRAL.install()
        self._server.start()

    @staticmethod
    def _exchange(request: bytes, context: grpc.ServicerContext) -> bytes:
        # Runs inside the greenlet receive() started: hands the request to receive() and
        # sleeps until respond() (or close()) comes back with the answer.
        return greenlet.getcurrent().parent.switch(request)

    @property
    def has_pending_call(self) -> bool:
        """Whether a received call still waits for :meth:`respond`."""
        return self._pending is not None

    def receive(self, timeout: float) -> pb.UnityMessageProto | None:
        """Waits for Unity's next call and returns its request, or None after ``timeout`` seconds.

        The call stays open until :meth:`respond` answers it, except a closing message
        (status other than 200), which is answered at once.

        Raises:
            UnityProtocolError: the request is not an ML-Agents message (the call is
                answered with status 400).
            RuntimeError: the previous call has not been answered yet.
        """
        if self._pending is not None:
            raise RuntimeError("receive() called while Unity's previous call is still unanswered; call respond() first")
        deadline = time.monotonic() + timeout
        while True:
            try:
                work = self._calls.work.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return None
            call = greenlet.greenlet(_run_work)
            with _DEFERRAL.held():  # a Ctrl+C is handled once the call is pending, which close() answers
                data = call.switch(work)
                if not call.dead:
                    self._pending, self._pending_thread = call, threading.get_ident()
                    break
            # else the call ended before its request arrived (the client went away)
        try:
            message = parse_unity_message(data)
        except UnityProtocolError:
            self.respond(CLOSING_MESSAGE)
            raise
        if message.header.status != STATUS_OK:
            self.respond(CLOSING_MESSAGE)  # Unity is closing and ignores the answer
        return message

    def respond(self, message: bytes) -> None:
        """Answers Unity's pending call with ``message``, a serialized UnityMessageProto.

        Raises:
            RuntimeError: there is no pending call.
            GymUnityILError: called from another thread than the one that received the call.
        """
        if self._pending is None:
            raise RuntimeError("respond() called without a pending call from Unity; call receive() first")
        self.check_thread()
        call, self._pending = self._pending, None
        self._answer(call, message)

    def check_thread(self) -> None:
        """Raises unless the pending call (if any) can be answered from this thread.

        Raises:
            GymUnityILError: the call was received on another thread.
        """
        if self._pending is not None and self._pending_thread != threading.get_ident():
            raise GymUnityILError(
                f"Unity's call was received on thread {self._pending_thread} and must be answered there, not on thread "
                f"{threading.get_ident()}: use each env (and its session) from one thread"
            )

    @staticmethod
    def _answer(call: greenlet.greenlet, message: bytes) -> None:
        """Resumes the handler suspended in ``call`` with ``message``; gRPC sends it before this returns."""
        call.parent = greenlet.getcurrent()
        with _DEFERRAL.held():
            call.switch(message)

    def close(self, grace: float = 1.0) -> None:
        """Answers open calls with status 400, stops the server and frees the port (idempotent).

        A pending call received on another thread cannot be answered from this one; the
        server's stop cancels it instead.

        Args:
            grace: seconds to let answered calls finish sending before they are cancelled.
        """
        if self._closed:
            return
        self._closed = True
        call, self._pending = self._pending, None
        if call is not None and self._pending_thread == threading.get_ident():
            self._answer(call, CLOSING_MESSAGE)
        stopped = self._server.stop(grace)  # no new calls from here on
        while True:  # calls that arrived but were never received: answer them too
            try:
                work = self._calls.work.get_nowait()
            except queue.Empty:
                break
            waiting = greenlet.greenlet(_run_work)
            with _DEFERRAL.held():
                waiting.switch(work)
            if not waiting.dead:
                self._answer(waiting, CLOSING_MESSAGE)
        if not stopped.wait(grace + _STOP_MARGIN):
            logger.warning("the gRPC server on port %d did not report its stop within %g s; going on", self.port, grace + _STOP_MARGIN)
