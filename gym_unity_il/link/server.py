"""The trainer's end of the Exchange RPC: Unity is the client, so the trainer answers Unity's calls.

Unity calls the one unary method ``/communicator_objects.UnityToExternalProto/Exchange``
(``/communicator_objects.UnityToExternal/Exchange`` in ML-Agents 0.10 and older: the server
answers both, :data:`~gym_unity_il.protocol.eras.EXCHANGE_PATHS`) with its data in the
request and waits for the trainer's data in the response (protocol.md §1.1). An :class:`ExchangeServer` gives each request to the caller (:meth:`ExchangeServer.receive`)
and holds the call open until the caller answers it (:meth:`ExchangeServer.respond`).

**Two transports** implement it; :func:`gym_unity_il.link.transport.make_exchange_server` is
the one way to get a server and chooses between them:

* ``fast`` (:class:`gym_unity_il.link.queue_server.QueueServer`): gRPC's completion queue
  polled on the caller's thread, through ``grpc._cython.cygrpc``, the internal layer grpc's
  own public server is written on. No serving thread, no handler: nothing is handed from one
  thread to another in a step.
* ``public`` (:class:`gym_unity_il.link.public_server.PublicServer`): grpc's public
  ``grpc.server``, whose handler hands each request to the caller's thread and waits for its
  answer. Slower per step (a serving thread and a handler thread wake for every call), but
  built on grpcio's public API only.

The fast transport is used when a probe at the first server of the process finds the
``cygrpc`` surface it needs unchanged; else the public one, with one warning naming the
grpcio version. ``GYM_UNITY_IL_TRANSPORT=fast|public`` overrides the choice.

The method is matched by its path: the protobuf package of the generated messages differs
from Unity's on purpose (see ``protos/communicator.proto``), the path does not.

**One peer per session.** Both transports follow the rules written here once. Any local
process can connect to the port, so the server serves one connection only: the first caller
whose message is a handshake (status 200 with an initialization output, protocol.md §5)
becomes the peer, identified by gRPC's peer string (``ipv4:127.0.0.1:54321``: Unity, like
the built-in player, makes all its calls on one channel, hence one connection). Every other
call gets the gRPC status PERMISSION_DENIED at once and never reaches the caller: before the
handshake, calls whose message is not a handshake (garbage, a status 400, agent data); after
it, every call from another connection, which is refused before its message is parsed (the
fast transport does not even read it). Refusals are counted
(:attr:`ExchangeServer.refused_calls`) and logged (the first, then at 10, 100, 1000, ...).
Once the peer is fixed, the port is also closed to everyone else below gRPC, so that a flood
costs the session nothing (Linux; see :func:`seal_port`): the kernel drops new connections'
first packets, and every other connection open at that time is shut down (its calls end
with UNAVAILABLE); a connection the kernel had already queued is shut down after its first
refused call.
:attr:`ExchangeServer.peer_check` may also refuse a handshake by its caller's address (the
session accepts only the process it launched); it runs only until the peer is fixed.
"""

from __future__ import annotations

import abc
import collections
import ctypes
import ipaddress
import logging
import numbers
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import psutil

from gym_unity_il.errors import ConfigError, PortInUseError, UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.eras import EXCHANGE_PATH, EXCHANGE_PATHS
from gym_unity_il.protocol.messages import STATUS_CLOSING, STATUS_OK, parse_unity_message

logger = logging.getLogger(__name__)

#: The Exchange RPC's service and method names, one pair per path of :data:`EXCHANGE_PATHS`.
SERVICES = tuple(sorted(tuple(path.strip("/").split("/")) for path in EXCHANGE_PATHS))

#: Default limit for messages in both directions (Unity's requests carry every agent's
#: observations: many cameras can make them large).
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: The range of ``max_message_bytes``: 1 KiB (a handshake fits) to 2 GiB - 1 (gRPC's limit is an int32).
MESSAGE_BYTES_RANGE = (1 << 10, (1 << 31) - 1)

#: Seconds past the grace period that :meth:`ExchangeServer.close` waits for gRPC's stop.
STOP_MARGIN = 10.0

PORT_ADVICE = "pass another worker_id (the port is base_port + worker_id), another base_port, or auto_port=True"

#: Why a call from another connection than the peer's is refused (also sent to that caller).
OTHER_PEER = "this trainer serves another Unity connection (one per session)"
_NOT_A_HANDSHAKE = "the first message of a connection must be an ML-Agents handshake (protocol.md §5)"


def check_max_message_bytes(value: object) -> int:
    """``value`` as an int when it is a whole number of bytes in :data:`MESSAGE_BYTES_RANGE`.

    Raises:
        ConfigError: naming the value and the range.
    """
    low, high = MESSAGE_BYTES_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ConfigError(
            f"max_message_bytes={value!r} is out of range: give a whole number of bytes from {low} (1 KiB) to {high} (2 GiB - 1); "
            f"the default is {DEFAULT_MAX_MESSAGE_BYTES} (256 MiB)"
        )
    return int(value)


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_free(host: str, port: int) -> bool:
    try:
        check_port_free(host, port)
    except PortInUseError:
        logger.info("port %d of %s is taken; not listening on it", port, host)
        return False
    return True


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


def peer_address(peer: str) -> tuple[str, int] | None:
    """The (host, port) of gRPC's peer string (``ipv4:127.0.0.1:54321``, ``ipv6:%5B::1%5D:54321``),
    None when it names no TCP address."""
    kind, _, address = urllib.parse.unquote(peer).partition(":")
    host, _, port = address.rpartition(":")
    if kind not in ("ipv4", "ipv6") or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


# A classic BPF socket filter of one instruction, "return 0": every packet is dropped.
_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # BPF_RET | BPF_K, jt, jf, k = 0
_SO_ATTACH_FILTER = 26  # Linux, <asm-generic/socket.h>


def _same_address(a: tuple[str, int], b: tuple[str, int]) -> bool:
    """Whether two (host, port) pairs name one TCP end, an IPv4-mapped IPv6 host being its IPv4 host."""

    def host(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        address = ipaddress.ip_address(text.partition("%")[0])
        return getattr(address, "ipv4_mapped", None) or address

    return a[1] == b[1] and host(a[0]) == host(b[0])


def seal_port(port: int, peer: tuple[str, int]) -> int:
    """Closes this process's TCP port ``port`` to everyone but the connection from ``peer``.

    Below gRPC, so that none of gRPC's work is done for anyone else: a socket filter on each of
    the process's listening sockets on ``port`` makes the kernel drop the first packet of every
    new connection (the caller's attempt goes unanswered until it gives up), then every
    connection to ``port`` whose remote end is not ``peer`` is shut down. Linux only; elsewhere,
    and when the operating system refuses, nothing changes (the server's own check still
    refuses other connections' calls).

    Returns:
        The number of connections shut down, or -1 when the port could not be sealed.
    """
    if not sys.platform.startswith("linux"):
        return -1
    try:
        mine = [c for c in psutil.Process().net_connections("tcp") if c.laddr and c.laddr.port == port and c.fd >= 0]
    except (psutil.Error, OSError) as exc:
        logger.debug("cannot seal port %d: %s", port, exc)
        return -1
    instruction = ctypes.create_string_buffer(_DROP_ALL)
    program = struct.pack("HL", 1, ctypes.addressof(instruction))  # struct sock_fprog
    listening = [c.fd for c in mine if c.status == psutil.CONN_LISTEN]
    others = [c.fd for c in mine if c.status != psutil.CONN_LISTEN and c.raddr and not _same_address(tuple(c.raddr), peer)]
    try:
        for fd in listening:  # first, so that no new connection comes while the others are shut
            with socket.socket(fileno=os.dup(fd)) as sock:  # the same socket as gRPC's
                sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
    except OSError as exc:  # the kernel refuses filters
        logger.debug("cannot seal port %d: %s", port, exc)
        return -1
    closed = 0
    for fd in others:
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
            closed += 1
        except OSError:  # gRPC closed it meanwhile
            pass
    return closed


def channel_options(max_message_bytes: int) -> tuple[tuple[str, int], ...]:
    """gRPC's arguments for a server of either transport: the message limit in both directions,
    and no ``SO_REUSEPORT`` (a second server on the port must fail, not share it)."""
    return (
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    )


def bind_error(host: str, port: int) -> PortInUseError:
    """The error for a port gRPC could not listen on."""
    return PortInUseError(f"cannot listen on port {port} of {host}; {PORT_ADVICE}")


#: A transport's handle of one call.
CallT = TypeVar("CallT")


class ExchangeServer(abc.ABC, Generic[CallT]):
    """A gRPC server holding Unity's pending ``Exchange`` call for the caller.

    Not thread-safe, like the env it serves: use it from one thread at a time (any thread).
    Serves one peer (see the module docstring): :attr:`peer` is None until a handshake came.
    Get one from :func:`gym_unity_il.link.transport.make_exchange_server`. A transport
    listens in its constructor and implements :meth:`close` and the three methods that
    take in, answer and refuse calls; the rules of the exchange and of the peer are here.

    Args:
        port: the port to listen on; 0 picks a free port (read it back from :attr:`port`).
        host: the address to bind; loopback unless the Unity process runs elsewhere.
        max_message_bytes: the largest message accepted or sent, in bytes (1 KiB to 2 GiB - 1).
        extra_ports: ports to listen on as well, those that are free (the Editor's port of
            another ML-Agents era); the first handshake on any of them fixes the peer.

    Raises:
        PortInUseError: the port is taken.
        ConfigError: ``max_message_bytes`` is out of range.
    """

    #: The transport's name, as ``GYM_UNITY_IL_TRANSPORT`` names it.
    transport: ClassVar[str]

    def __init__(
        self, *, port: int, host: str = "127.0.0.1", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, extra_ports: Sequence[int] = ()
    ) -> None:
        #: The largest message accepted or sent, in bytes.
        self.max_message_bytes = check_max_message_bytes(max_message_bytes)
        if port:
            check_port_free(host, port)
        self.port: int = port  # the transport sets the port it listens on
        #: Every port listened on: :attr:`port`, then those of ``extra_ports`` that were free.
        self.ports: tuple[int, ...] = (port, *(p for p in extra_ports if p != port and _is_free(host, p)))
        self.host = host
        # Requests not yet received: (the transport's call, its peer, its message).
        self._arrived: collections.deque[tuple[CallT, str, bytes]] = collections.deque()
        self._pending: CallT | None = None
        self._peer: str | None = None
        self._closed = False
        # Whether the port is closed below gRPC to all but the peer (seal_port), and the
        # connections shut down since, after a refused call from them (each is shut once).
        self._sealed = False
        self._shut: set[str] = set()
        self._refusals = threading.Lock()  # a transport may refuse calls on threads of its own
        #: Calls refused because they came from another connection than the peer's, or came
        #: before the handshake without being one.
        self.refused_calls = 0
        #: The last refusal: the caller's address and why (None until one).
        self.last_refusal: str | None = None
        #: Called with the caller's peer string for each valid handshake until the peer is
        #: fixed: returns None to accept that caller as the peer, or the reason to refuse it.
        #: None accepts the first handshake.
        self.peer_check: Callable[[str], str | None] | None = None
        #: Parses the peer's messages after the handshake (the session sets its era's codec's
        #: parser). The handshake itself is read as a modern message: every era puts its
        #: header, status and version string in the same fields.
        self.parse: Callable[[bytes], Any] = parse_unity_message
        #: The handshake's bytes as they came (None before it): the era's codec reads them with
        #: its own messages, which a modern parse would have re-encoded (ML-Agents 0.4 / 0.5 brains).
        self.handshake_data: bytes | None = None

    @property
    def peer(self) -> str | None:
        """gRPC's address of the connection served (``ipv4:127.0.0.1:54321``), None before the handshake."""
        return self._peer

    @property
    def has_pending_call(self) -> bool:
        """Whether a received call still waits for :meth:`respond`."""
        return self._pending is not None

    def receive(self, timeout: float) -> Any:
        """Waits for Unity's next call and returns its request (a message, see :attr:`parse`), or
        None after ``timeout`` seconds.

        The call stays open until :meth:`respond` answers it, except a closing message
        (status other than 200), which is answered at once. Before the handshake only a
        handshake is returned (and its caller becomes the peer); after it only the peer's calls.

        Raises:
            UnityProtocolError: the request is not an ML-Agents message (the call is
                answered with status 400).
            RuntimeError: the previous call has not been answered yet.
        """
        if self._pending is not None:
            raise RuntimeError("receive() called while Unity's previous call is still unanswered; call respond() first")
        deadline = time.monotonic() + timeout
        while True:
            while not self._arrived:
                if not self._await_event(deadline):
                    return None
            call, peer, data = self._arrived.popleft()
            if self._peer is None:
                message = self._handshake_or_none(data)
                if message is None:
                    self._refuse(call, peer, _NOT_A_HANDSHAKE)
                    continue
                reason = self.peer_check(peer) if self.peer_check is not None else None
                if reason is not None:
                    self._refuse(call, peer, reason)
                    continue
                self._peer = peer
                self._pending = call
                self.handshake_data = data
                self._seal()
                return message
            if peer == self._peer:
                break
            self._refuse(call, peer, OTHER_PEER)  # it started before the handshake
        self._pending = call
        try:
            message = self.parse(data)
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
        """
        if self._pending is None:
            raise RuntimeError("respond() called without a pending call from Unity; call receive() first")
        call, self._pending = self._pending, None
        self._answer(call, message)

    @abc.abstractmethod
    def close(self, grace: float = 1.0) -> None:
        """Answers open calls with status 400, stops the server and frees the port (idempotent).

        Args:
            grace: seconds to let answered calls finish sending before they are cancelled.
        """

    @abc.abstractmethod
    def _await_event(self, deadline: float) -> bool:
        """Takes in what the transport has for the server, appending requests that came to
        ``_arrived``; waits until ``deadline`` (a ``time.monotonic()``) at most. False if nothing came."""

    @abc.abstractmethod
    def _answer(self, call: CallT, message: bytes) -> None:
        """Ends ``call`` with status OK and ``message``, a serialized UnityMessageProto."""

    @abc.abstractmethod
    def _end_refused(self, call: CallT, reason: str) -> None:
        """Ends ``call`` with PERMISSION_DENIED and ``reason``."""

    @staticmethod
    def _handshake_or_none(data: bytes) -> pb.UnityMessageProto | None:
        """The message when ``data`` is a handshake (status 200, an initialization output), else None."""
        try:
            message = parse_unity_message(data)
        except UnityProtocolError:
            return None
        if message.header.status != STATUS_OK or not message.unity_output.HasField("rl_initialization_output"):
            return None
        return message

    def _seal(self) -> None:
        """Closes the port to every connection but the peer's, below gRPC (:func:`seal_port`)."""
        address = peer_address(self._peer) if self._peer is not None else None
        self._sealed = address is not None and min(seal_port(port, address) for port in self.ports) >= 0

    def _refuse(self, call: CallT, peer: str, reason: str) -> None:
        """Ends ``call`` with PERMISSION_DENIED and ``reason``; counts and logs it (:meth:`_count_refusal`)."""
        self._end_refused(call, reason)
        self._count_refusal(peer, reason)

    def _count_refusal(self, peer: str, reason: str) -> None:
        """Counts and logs a call refused for ``reason``. A call from another connection than the
        peer's also shuts that connection down (:meth:`_seal`). Safe on any thread."""
        with self._refusals:
            if self._sealed and peer not in self._shut:  # a connection the kernel had let in before the seal
                self._shut.add(peer)
                self._seal()
            self.refused_calls += 1
            count = self.refused_calls
            self.last_refusal = f"{peer}: {reason}"
        if count == 10 ** (len(str(count)) - 1):  # the first, then at 10, 100, 1000, ...
            logger.warning(
                "the trainer on port %d refused call number %d, from %s: %s. Another program is calling this port "
                "(see 'One peer per session' in docs/reliability.md)",
                self.port, count, peer, reason,
            )  # fmt: skip

    def _close_calls(self) -> None:
        """Answers the pending call and the calls that came but were never received with status
        400, except those of another connection than the peer's, which are refused."""
        if self._pending is not None:
            self.respond(CLOSING_MESSAGE)
        while self._arrived:
            call, peer, _ = self._arrived.popleft()
            if self._peer is not None and peer != self._peer:
                self._refuse(call, peer, OTHER_PEER)
            else:
                self._answer(call, CLOSING_MESSAGE)

    def _warn_stop_overdue(self, grace: float) -> None:
        """Says that gRPC's stop was not seen within ``grace`` and :data:`STOP_MARGIN` seconds (close() goes on)."""
        logger.warning("the gRPC server on port %d did not report its stop within %g s; going on", self.port, grace + STOP_MARGIN)
