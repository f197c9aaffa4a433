"""The fast transport: gRPC's completion queue polled on the caller's thread.

``receive()`` polls the queue until a request has arrived, ``respond()`` starts the batch
that sends the answer and ends the call. There is no serving thread and no handler, so
nothing is handed from one thread to another in a step, and a step costs less than a round
trip through grpc's public server (which runs a Python serving thread and a thread pool,
and waits on conditions between them for every call). This uses ``grpc._cython.cygrpc``,
the layer grpc's own public server is written on. It is not grpcio's public API and has
changed within grpcio 1.x, so :func:`probe` checks, before this transport is chosen, that
what this module uses is there and works (:mod:`gym_unity_il.link.transport`).

The queue takes wall-clock deadlines; the deadlines here are monotonic, converted to the
wall clock as now plus what remains (:func:`_wall_clock`) when a wait starts, so a change of
the system clock moves none of them: at most it lengthens the one wait under way (in a
session, a ``receive()`` of 0.1 s at most).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence

from grpc._cython import cygrpc

from gym_unity_il.link.server import (
    DEFAULT_MAX_MESSAGE_BYTES,
    EXCHANGE_PATHS,
    MESSAGE_BYTES_RANGE,
    OTHER_PEER,
    STOP_MARGIN,
    ExchangeServer,
    bind_error,
    channel_options,
    format_address,
)

# Tags of the completion queue's events (a call's request arriving is tagged with (call, peer)).
_NEW_CALL = "new call"
_ENDED = "ended"
_STOPPED = "stopped"
_EXCHANGE_PATHS_BYTES = frozenset(path.encode() for path in EXCHANGE_PATHS)
_TIMEOUT = cygrpc.CompletionType.queue_timeout
_UNIMPLEMENTED = cygrpc.StatusCode.unimplemented
_REFUSED = cygrpc.StatusCode.permission_denied

#: What this module uses of ``cygrpc``: per owner ("" for the module itself), the names it reads.
_SURFACE = {
    "": (
        "Server", "CompletionQueue", "Call", "CompletionType", "StatusCode", "RequestCallEvent", "BatchOperationEvent",
        "CallDetails", "SendInitialMetadataOperation", "SendMessageOperation", "SendStatusFromServerOperation",
        "ReceiveCloseOnServerOperation", "ReceiveMessageOperation",
    ),
    "Server": ("register_completion_queue", "add_http2_port", "start", "request_call", "shutdown", "cancel_all_calls", "destroy"),
    "CompletionQueue": ("poll", "shutdown"),
    "Call": ("peer", "start_server_batch"),
    "CompletionType": ("queue_timeout", "operation_complete"),
    "StatusCode": ("ok", "unimplemented", "permission_denied"),
    "RequestCallEvent": ("call", "call_details", "completion_type", "success", "tag"),
    "BatchOperationEvent": ("batch_operations", "completion_type", "success", "tag"),
    "CallDetails": ("method",),
    "ReceiveMessageOperation": ("message",),
}  # fmt: skip


def probe() -> str | None:
    """What of ``cygrpc`` this transport needs is missing or changed in the installed grpcio,
    or None when all of it is there and works.

    Checks every name the transport reads, builds every operation as it builds them, and
    takes a server on a free loopback port through its whole life (start, wait for calls,
    stop, free): a grpcio that changed any of it is found here, before a session starts,
    rather than at a call of Unity's.
    """
    for owner, names in _SURFACE.items():
        target = getattr(cygrpc, owner) if owner else cygrpc
        missing = [name for name in names if not hasattr(target, name)]
        if missing:
            return f"grpc._cython.cygrpc{'.' + owner if owner else ''} has no {', '.join(missing)}"
    try:
        _status_operations(cygrpc.StatusCode.ok, b"")
        cygrpc.SendMessageOperation(b"", 0)
        cygrpc.ReceiveMessageOperation(0)
        QueueServer(port=0, max_message_bytes=MESSAGE_BYTES_RANGE[0]).close(grace=0.0)
    except Exception as exc:  # a changed signature: TypeError, ValueError, ...
        return f"{type(exc).__name__}: {exc}"
    return None


def _status_operations(code: cygrpc.StatusCode, details: bytes) -> tuple[cygrpc.Operation, ...]:
    """The batch that ends a call with the status ``code`` and ``details``, and no message."""
    return (
        cygrpc.SendInitialMetadataOperation(None, 0),
        cygrpc.SendStatusFromServerOperation(None, code, details, 0),
        cygrpc.ReceiveCloseOnServerOperation(0),
    )


def _wall_clock(deadline: float) -> float:
    """``deadline``, a ``time.monotonic()``, as the wall-clock deadline the queue takes: now plus what remains."""
    return time.time() + max(deadline - time.monotonic(), 0.0)


def _poll(queue: cygrpc.CompletionQueue, deadline: float) -> cygrpc.BaseEvent:
    """The queue's next event, or its timeout event at ``deadline`` (a ``time.monotonic()``)."""
    return queue.poll(_wall_clock(deadline))


class QueueServer(ExchangeServer["cygrpc.Call"]):
    """:class:`~gym_unity_il.link.server.ExchangeServer` on gRPC's completion queue, driven
    on the caller's thread (see the module docstring). Arguments and errors as there."""

    transport = "fast"

    def __init__(
        self, *, port: int, host: str = "127.0.0.1", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, extra_ports: Sequence[int] = ()
    ) -> None:
        super().__init__(port=port, host=host, max_message_bytes=max_message_bytes, extra_ports=extra_ports)
        self._queue = cygrpc.CompletionQueue()
        self._server = cygrpc.Server(channel_options(self.max_message_bytes), False)
        self._server.register_completion_queue(self._queue)
        bound = [self._server.add_http2_port(format_address(host, p).encode()) for p in self.ports]
        if 0 in bound:
            self._server.destroy()
            raise bind_error(host, self.ports[bound.index(0)])
        self.port, self.ports = bound[0], tuple(bound)
        self._stopped = False
        # The last deadline polled for (a time.monotonic()) and the same on the wall clock, which the queue takes.
        self._deadline = self._wall_deadline = 0.0
        self._server.start()
        self._server.request_call(self._queue, self._queue, _NEW_CALL)
        self._finalizer = weakref.finalize(self, _abandon, self._server, self._queue)

    def _answer(self, call: cygrpc.Call, message: bytes) -> None:
        call.start_server_batch(
            (
                cygrpc.SendInitialMetadataOperation(None, 0),
                cygrpc.SendMessageOperation(message, 0),
                cygrpc.SendStatusFromServerOperation(None, cygrpc.StatusCode.ok, b"", 0),
                cygrpc.ReceiveCloseOnServerOperation(0),
            ),
            _ENDED,
        )

    def _end_refused(self, call: cygrpc.Call, reason: str) -> None:
        call.start_server_batch(_status_operations(_REFUSED, reason.encode()), _ENDED)

    def _await_event(self, deadline: float) -> bool:
        """Handles the queue's next event, waiting until ``deadline`` (a ``time.monotonic()``)
        at most; False if none came."""
        if deadline != self._deadline:  # converted once per deadline: a step polls three times
            self._deadline, self._wall_deadline = deadline, _wall_clock(deadline)
        event = self._queue.poll(self._wall_deadline)
        if event.completion_type == _TIMEOUT:
            return False
        tag = event.tag
        if tag is _NEW_CALL:
            if not self._closed:
                self._server.request_call(self._queue, self._queue, _NEW_CALL)  # be ready for the one after
            if event.success:
                call = event.call
                if event.call_details.method in _EXCHANGE_PATHS_BYTES:
                    peer = call.peer().decode(errors="replace")
                    if self._peer is not None and peer != self._peer:
                        self._refuse(call, peer, OTHER_PEER)  # before its message is read
                    else:
                        call.start_server_batch((cygrpc.ReceiveMessageOperation(0),), (call, peer))
                else:
                    call.start_server_batch(_status_operations(_UNIMPLEMENTED, b"Method not found!"), _ENDED)
        elif tag is _STOPPED:
            self._stopped = True
        elif tag is not _ENDED:  # (call, peer) when a call's request came, or None if the call ended before it
            data = event.batch_operations[0].message()
            if event.success and data is not None:
                self._arrived.append((*tag, data))
        return True

    def close(self, grace: float = 1.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        self._server.shutdown(self._queue, _STOPPED)  # no new calls from here on
        deadline = time.monotonic() + grace
        cancelled = False
        while not self._stopped:
            self._close_calls()
            if not self._await_event(deadline):
                if cancelled:
                    self._warn_stop_overdue(grace)
                    return
                self._server.cancel_all_calls()
                cancelled, deadline = True, time.monotonic() + STOP_MARGIN
        _release(self._server, self._queue)


def _abandon(server: cygrpc.Server, queue: cygrpc.CompletionQueue) -> None:
    """Stops a server that was never closed (collected, or at exit): its calls are cancelled."""
    server.shutdown(queue, _STOPPED)
    server.cancel_all_calls()
    deadline = time.monotonic() + STOP_MARGIN
    while True:
        event = _poll(queue, deadline)
        if event.completion_type == _TIMEOUT:
            return  # left to the process's exit
        if event.tag is _STOPPED:
            break
    _release(server, queue)


def _release(server: cygrpc.Server, queue: cygrpc.CompletionQueue) -> None:
    """Frees a stopped server and empties its queue."""
    server.destroy()
    queue.shutdown()
    while _poll(queue, time.monotonic() + STOP_MARGIN).completion_type == cygrpc.CompletionType.operation_complete:
        pass
