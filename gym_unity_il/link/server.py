"""The trainer's gRPC server: Unity is the client, so the trainer answers Unity's calls.

Unity calls the one unary method ``/communicator_objects.UnityToExternalProto/Exchange``
with its data in the request and waits for the trainer's data in the response (protocol.md
§1.1). :class:`ExchangeServer` hands each request to the caller's thread
(:meth:`ExchangeServer.receive`) and holds the call open until the caller answers it
(:meth:`ExchangeServer.respond`). It uses a synchronous ``grpc.server`` and plain
``threading`` primitives: no event loop, no extra serialisation, no extra hop.

The method is registered by its path: the protobuf package of the generated messages
differs from Unity's on purpose (see ``protos/communicator.proto``), the path does not.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc

from gym_unity_il.errors import PortInUseError
from gym_unity_il.proto import communicator_pb2 as pb

SERVICE_NAME = "communicator_objects.UnityToExternalProto"
METHOD_NAME = "Exchange"
EXCHANGE_PATH = f"/{SERVICE_NAME}/{METHOD_NAME}"

#: Default limit for messages in both directions (Unity's requests carry every agent's
#: observations: many cameras can make them large).
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

STATUS_OK = 200
STATUS_CLOSING = 400

PORT_ADVICE = "pass another worker_id (the port is base_port + worker_id), another base_port, or auto_port=True"


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


class _DaemonThreadPool(futures.Executor):
    """A fixed pool of daemon threads for gRPC's handlers.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads before ``atexit`` runs, so
    a handler still holding Unity's call would block interpreter exit (after Ctrl+C, say)
    before the exit hooks that answer the call could run. Daemon threads do not.
    """

    def __init__(self, max_workers: int) -> None:
        self._work: queue.SimpleQueue[tuple[futures.Future[object], Callable[..., object], tuple, dict] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"unity-exchange-{i}", daemon=True) for i in range(max_workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., object], /, *args: object, **kwargs: object) -> futures.Future[object]:
        future: futures.Future[object] = futures.Future()
        self._work.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


class _PendingCall:
    """One of Unity's calls, waiting for the trainer's answer.

    The answer travels through a ``SimpleQueue``: its ``put`` and ``get`` are C code, so the
    hand-over between the caller's thread and the gRPC thread runs as little Python as possible.
    """

    __slots__ = ("request", "answered", "abandoned", "_answer")

    def __init__(self, request: pb.UnityMessageProto) -> None:
        self.request = request
        self.answered = False
        self.abandoned = False
        self._answer: queue.SimpleQueue[pb.UnityMessageProto] = queue.SimpleQueue()

    def answer(self, response: pb.UnityMessageProto) -> None:
        """Hands ``response`` to the waiting handler; later answers are ignored."""
        if not self.answered:
            self.answered = True
            self._answer.put(response)

    def wait(self) -> pb.UnityMessageProto:
        """Blocks until the call is answered and returns the answer."""
        return self._answer.get()

    def end(self) -> None:
        """The RPC is over (answered, cancelled, or the client vanished): release the handler."""
        if not self.answered:
            self.abandoned = True
            self.answer(closing_message())


def closing_message() -> pb.UnityMessageProto:
    """The message that tells the peer the sender is closing: ``header { status: 400 }``."""
    return pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_CLOSING))


class ExchangeServer:
    """A gRPC server holding Unity's pending ``Exchange`` call for the caller's thread.

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
        self._incoming: queue.SimpleQueue[_PendingCall] = queue.SimpleQueue()
        self._pending: _PendingCall | None = None
        self._lock = threading.Lock()
        self._open_calls: set[_PendingCall] = set()
        self._closed = False
        self._pool = _DaemonThreadPool(4)
        self._server = grpc.server(
            self._pool,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._exchange,
            request_deserializer=pb.UnityMessageProto.FromString,
            response_serializer=pb.UnityMessageProto.SerializeToString,
        )
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
            self._pool.shutdown(wait=False)
            raise PortInUseError(f"cannot listen on port {port} of {host}{reason}; {PORT_ADVICE}")
        self.port: int = bound
        self.host = host
        self._server.start()

    # Runs on a gRPC worker thread, once per call of Unity.
    def _exchange(self, request: pb.UnityMessageProto, context: grpc.ServicerContext) -> pb.UnityMessageProto:
        call = _PendingCall(request)
        with self._lock:
            if self._closed:
                return closing_message()
            self._open_calls.add(call)
        context.add_callback(call.end)
        if request.header.status != STATUS_OK:
            # Unity is closing and ignores the answer; do not keep its call open.
            call.answer(closing_message())
        self._incoming.put(call)  # the caller's thread takes it from here: nothing else to do but wait
        response = call.wait()
        with self._lock:
            self._open_calls.discard(call)
        return response

    @property
    def has_pending_call(self) -> bool:
        """Whether a received call still waits for :meth:`respond`."""
        return self._pending is not None

    def receive(self, timeout: float) -> pb.UnityMessageProto | None:
        """Waits for Unity's next call and returns its request, or None after ``timeout`` seconds.

        The call stays open until :meth:`respond` answers it.

        Raises:
            RuntimeError: the previous call has not been answered yet.
        """
        if self._pending is not None:
            raise RuntimeError("receive() called while Unity's previous call is still unanswered; call respond() first")
        deadline = time.monotonic() + timeout
        while True:
            try:
                call = self._incoming.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return None
            if not call.abandoned:
                break  # else the client vanished before its call was seen: nobody waits for an answer
        if not call.answered:
            self._pending = call
        return call.request

    def respond(self, message: pb.UnityMessageProto) -> None:
        """Answers Unity's pending call with ``message``.

        Raises:
            RuntimeError: there is no pending call.
        """
        call, self._pending = self._pending, None
        if call is None:
            raise RuntimeError("respond() called without a pending call from Unity; call receive() first")
        call.answer(message)

    def close(self, grace: float = 1.0) -> None:
        """Answers every open call with status 400, stops the server and frees the port (idempotent).

        Args:
            grace: seconds to let answered calls finish sending before they are cancelled.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            open_calls = list(self._open_calls)
        self._pending = None
        for call in open_calls:
            call.answer(closing_message())
        self._server.stop(grace).wait()
        self._pool.shutdown(wait=False)
