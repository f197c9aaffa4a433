"""The trainer's gRPC server against a raw gRPC client over loopback, on each transport."""

from __future__ import annotations

import gc
import os
import re
import socket
import sys
import threading
import time
import types
from concurrent import futures

import grpc
import pytest

from gym_unity_il.errors import ConfigError, PortInUseError, UnityProtocolError
from gym_unity_il.link import queue_server, transport
from gym_unity_il.link import server as server_module
from gym_unity_il.link.server import EXCHANGE_PATH, ExchangeServer, check_port_free, peer_address, seal_port
from gym_unity_il.link.transport import TRANSPORT_VARIABLE, TRANSPORTS, make_exchange_server
from gym_unity_il.proto import communicator_pb2 as pb

CLOSE_BYTES = bytes.fromhex("0A 03 08 90 03")  # header { status: 400 } (protocol.md §11)
OK_BYTES = bytes.fromhex("0A 03 08 C8 01")  # header { status: 200 }
# header { status: 200 } unity_output { rl_initialization_output { communication_version: "1.5.0" } }: a handshake
HELLO_BYTES = OK_BYTES + bytes.fromhex("12 09 12 07 12 05") + b"1.5.0"


#: The transports under test: the one GYM_UNITY_IL_TRANSPORT names (the CI's run on the public transport), else each.
TESTED_TRANSPORTS = [os.environ[TRANSPORT_VARIABLE]] if os.environ.get(TRANSPORT_VARIABLE) else list(TRANSPORTS)


@pytest.fixture(params=TESTED_TRANSPORTS)
def serve(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The factory of servers, set to one transport (the test runs once per transport)."""
    monkeypatch.setenv(TRANSPORT_VARIABLE, request.param)

    def make(**kwargs) -> ExchangeServer:
        server = make_exchange_server(**kwargs)
        assert server.transport == request.param
        return server

    return make


def _raw_call(port: int):
    """A bytes-in, bytes-out Exchange callable, as Unity's client would make the call."""
    channel = grpc.insecure_channel(f"localhost:{port}")
    return channel, channel.unary_unary(EXCHANGE_PATH)


def test_request_reaches_the_caller_and_its_answer_returns(serve) -> None:
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, HELLO_BYTES, wait_for_ready=True, timeout=10)
        request = server.receive(timeout=10)
        assert request is not None and request.SerializeToString() == HELLO_BYTES
        assert server.has_pending_call and not reply.done()
        assert server.peer is not None and server.peer.startswith("ipv4:127.0.0.1:")
        answer = pb.UnityMessageProto(header=pb.HeaderProto(status=200, message="hello")).SerializeToString()
        server.respond(answer)
        assert reply.result(timeout=10) == answer
    assert not server.has_pending_call
    channel.close()
    server.close()


def test_close_answers_the_pending_call_with_status_400(serve) -> None:
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, HELLO_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None
        server.close()
        assert reply.result(timeout=10) == CLOSE_BYTES
    channel.close()
    server.close()  # idempotent


def _handshake(server: ExchangeServer, call) -> None:
    """Makes ``call``'s connection the server's peer."""
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, HELLO_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None
        server.respond(OK_BYTES)
        assert reply.result(timeout=10) == OK_BYTES


def test_a_closing_peer_is_answered_when_received_and_reported(serve) -> None:
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    _handshake(server, call)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, CLOSE_BYTES, wait_for_ready=True, timeout=10)
        request = server.receive(timeout=10)
        assert request is not None and request.header.status == 400
        assert not server.has_pending_call  # not held open: Unity ignores the answer
        assert reply.result(timeout=10) == CLOSE_BYTES
    channel.close()
    server.close()


def test_malformed_request_is_a_protocol_error_and_the_call_is_closed(serve) -> None:
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    _handshake(server, call)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, b"\x0a\xff\xff\xff\xff\x0f garbage", wait_for_ready=True, timeout=10)
        with pytest.raises(UnityProtocolError, match="not an ML-Agents message"):
            server.receive(timeout=10)
        assert reply.result(timeout=10) == CLOSE_BYTES
        assert not server.has_pending_call
    channel.close()
    server.close()


def test_a_call_received_on_one_thread_can_be_answered_on_another(serve) -> None:
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(2) as pool:
        reply = pool.submit(call, HELLO_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None
        pool.submit(server.respond, CLOSE_BYTES).result(timeout=10)
        assert reply.result(timeout=10) == CLOSE_BYTES
        second = pool.submit(call, OK_BYTES, timeout=10)
        assert pool.submit(server.receive, 10).result(timeout=20) is not None
        server.respond(OK_BYTES)
        assert second.result(timeout=10) == OK_BYTES
    channel.close()
    server.close()


def test_close_answers_calls_that_were_never_received(serve) -> None:
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, HELLO_BYTES, wait_for_ready=True, timeout=10)
        deadline = time.monotonic() + 10
        while not server._arrived:  # until the request is in, not yet received
            assert server._await_event(deadline) and not reply.done()
        server.close()
        assert reply.result(timeout=10) == CLOSE_BYTES
    channel.close()


def test_other_methods_are_unimplemented_and_never_reach_the_caller(serve) -> None:
    server = serve(port=0)
    channel = grpc.insecure_channel(f"localhost:{server.port}")
    other = channel.unary_unary("/communicator_objects.UnityToExternalProto/Other")
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(other, OK_BYTES, wait_for_ready=True, timeout=10)
        deadline = time.monotonic() + 10
        while not reply.done():  # calls are handled while the caller waits for Unity
            assert server.receive(timeout=0.05) is None and time.monotonic() < deadline
        with pytest.raises(grpc.RpcError) as info:
            reply.result()
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()
    server.close()


def test_receive_returns_none_after_the_timeout_and_misuse_is_named(serve) -> None:
    server = serve(port=0)
    assert server.receive(timeout=0.05) is None
    with pytest.raises(RuntimeError, match="receive"):
        server.respond(OK_BYTES)
    server.close()


def test_messages_above_the_explicit_limit_are_refused(serve) -> None:
    server = serve(port=0, max_message_bytes=1024)
    channel, call = _raw_call(server.port)
    big = pb.UnityMessageProto(header=pb.HeaderProto(status=200, message="x" * 4096)).SerializeToString()
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, big, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=2) is None  # the call never reaches the caller
        with pytest.raises(grpc.RpcError) as info:
            reply.result(timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()
    server.close()


def test_a_taken_port_is_a_port_in_use_error_naming_port_and_fix(serve) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"port {port}.*worker_id.*base_port.*auto_port"):
            serve(port=port)
        other = serve(port=0)  # the automatic port never collides
        assert other.port not in (0, port)
        other.close()
    check_port_free("127.0.0.1", port)


def test_a_server_never_closed_frees_its_port_when_collected(serve) -> None:
    server = serve(port=0)
    port = server.port
    channel, call = _raw_call(port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, HELLO_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None  # a call left pending
        del server
        gc.collect()
        with pytest.raises(grpc.RpcError):  # cancelled, not left hanging
            reply.result(timeout=10)
    channel.close()
    check_port_free("127.0.0.1", port)


def test_port_is_free_again_right_after_close(serve) -> None:
    server = serve(port=0)
    port = server.port
    channel, call = _raw_call(port)
    done = threading.Event()

    def unity() -> None:
        call(HELLO_BYTES, wait_for_ready=True, timeout=10)
        done.set()

    thread = threading.Thread(target=unity)
    thread.start()
    assert server.receive(timeout=10) is not None
    server.close()
    thread.join(10)
    assert done.is_set()
    channel.close()
    again = serve(port=port)
    assert again.port == port
    again.close()


# ---------------------------------------------------------------------------- one peer per session


def _stray_call(port: int):
    """Like :func:`_raw_call`, on a connection of its own (equal channels of one process share one)."""
    channel = grpc.insecure_channel(f"localhost:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, channel.unary_unary(EXCHANGE_PATH)


def _refused(server: ExchangeServer, replies: list[futures.Future]) -> list[grpc.StatusCode]:
    """Polls the server (nothing may reach the caller) until every reply came; their status codes."""
    deadline = time.monotonic() + 20
    while not all(r.done() for r in replies):
        assert server.receive(timeout=0.05) is None and time.monotonic() < deadline
    codes = []
    for reply in replies:
        with pytest.raises(grpc.RpcError) as info:
            reply.result()
        codes.append(info.value.code())
    return codes


@pytest.fixture
def peer_and_stray(serve, monkeypatch: pytest.MonkeyPatch):
    """A server, a call of the connection that will be its peer, and a call of another connection.

    The port is not sealed (as where the operating system cannot, see ``seal_port``), so that
    the strays' calls reach the server's own check."""
    monkeypatch.setattr(server_module, "seal_port", lambda port, peer: -1)
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    stray_channel, stray = _stray_call(server.port)
    yield server, call, stray
    channel.close()
    stray_channel.close()
    server.close()


FORGED = [CLOSE_BYTES, OK_BYTES, b"\x0a\xff\xff\xff\xff\x0f garbage", HELLO_BYTES]


def test_calls_from_another_connection_are_refused_and_never_reach_the_caller(peer_and_stray, caplog: pytest.LogCaptureFixture) -> None:
    server, call, stray = peer_and_stray
    _handshake(server, call)
    with futures.ThreadPoolExecutor(4) as pool, caplog.at_level("WARNING", logger="gym_unity_il.link.server"):
        replies = [pool.submit(stray, FORGED[i % 4], wait_for_ready=True, timeout=10) for i in range(12)]
        peer_reply = pool.submit(call, OK_BYTES, timeout=10)
        received = []  # only the peer's message, whenever it comes among the strays'
        deadline = time.monotonic() + 20
        while not all(r.done() for r in replies) or not received:
            request = server.receive(timeout=0.05)
            if request is not None:
                received.append(request.SerializeToString())
                server.respond(CLOSE_BYTES)
            assert time.monotonic() < deadline
        assert _refused(server, replies) == [grpc.StatusCode.PERMISSION_DENIED] * 12
        assert received == [OK_BYTES] and peer_reply.result(timeout=10) == CLOSE_BYTES
        assert server.refused_calls == 12
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "refused call number 1," in warnings[0] and "refused call number 10," in warnings[1]
    assert "ipv4:127.0.0.1:" in warnings[0] and "another Unity connection" in warnings[0]


def test_before_the_handshake_only_a_handshake_is_received_and_its_caller_becomes_the_peer(peer_and_stray) -> None:
    server, call, stray = peer_and_stray
    with futures.ThreadPoolExecutor(4) as pool:
        strays = [pool.submit(stray, message, wait_for_ready=True, timeout=10) for message in FORGED[:3]]
        assert _refused(server, strays) == [grpc.StatusCode.PERMISSION_DENIED] * 3
        assert server.peer is None and server.refused_calls == 3
        assert server.last_refusal is not None and "must be an ML-Agents handshake" in server.last_refusal
        _handshake(server, call)
        assert server.peer is not None
        assert _refused(server, [pool.submit(stray, HELLO_BYTES, timeout=10)]) == [grpc.StatusCode.PERMISSION_DENIED]
        assert "another Unity connection" in server.last_refusal


def test_peer_check_refuses_handshakes_until_it_accepts_one_and_is_not_asked_after(peer_and_stray) -> None:
    server, call, stray = peer_and_stray
    asked: list[str] = []

    def check(peer: str) -> str | None:  # refuses the first connection asked about, accepts others
        asked.append(peer)
        return "not you" if peer == asked[0] else None

    server.peer_check = check
    with futures.ThreadPoolExecutor(4) as pool:
        assert _refused(server, [pool.submit(stray, HELLO_BYTES, wait_for_ready=True, timeout=10)]) == [grpc.StatusCode.PERMISSION_DENIED]
        assert server.peer is None and server.last_refusal == f"{asked[0]}: not you"
        _handshake(server, call)
        assert server.peer is not None and server.peer != asked[0]
        assert _refused(server, [pool.submit(stray, HELLO_BYTES, timeout=10)]) == [grpc.StatusCode.PERMISSION_DENIED]
        assert "another Unity connection" in server.last_refusal
    assert len(asked) == 2 and asked[1] == server.peer  # only handshakes before the peer was fixed
    assert server.refused_calls == 2


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ports are sealed on Linux only")


def _connects(port: int) -> bool:
    """Whether a TCP connection to ``port`` is accepted within a second (an unanswered attempt is not)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except TimeoutError:
        return False
    return True


@linux_only
def test_seal_port_drops_new_connections_and_shuts_all_but_the_peers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        peer = socket.create_connection(("127.0.0.1", port))
        other = socket.create_connection(("127.0.0.1", port))
        accepted = [listener.accept()[0] for _ in range(2)]
        assert seal_port(port, peer.getsockname()) == 1
        assert other.recv(1) == b""  # shut down: end of stream at once
        peer.sendall(b"still here")
        assert accepted[0].recv(10) == b"still here"
        assert not _connects(port)
        for sock in (peer, other, *accepted):
            sock.close()


@linux_only
def test_after_the_handshake_no_other_connection_gets_in_and_open_ones_are_shut(serve) -> None:
    """Below gRPC, so that a flood costs the session no work: the stray's connection, open
    before the handshake, is shut down; new connections go unanswered; the peer goes on."""
    server = serve(port=0)
    channel, call = _raw_call(server.port)
    stray_channel, stray = _stray_call(server.port)
    try:
        with futures.ThreadPoolExecutor(2) as pool:
            assert _refused(server, [pool.submit(stray, OK_BYTES, wait_for_ready=True, timeout=10)]) == [grpc.StatusCode.PERMISSION_DENIED]
            assert _connects(server.port)
            _handshake(server, call)
            again = pool.submit(stray, OK_BYTES, timeout=3)
            peer_reply = pool.submit(call, OK_BYTES, timeout=10)
            request = server.receive(timeout=10)
            assert request is not None and request.SerializeToString() == OK_BYTES
            server.respond(CLOSE_BYTES)
            assert peer_reply.result() == CLOSE_BYTES
            with pytest.raises(grpc.RpcError) as info:
                again.result()
            assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            assert server.refused_calls == 1  # the stray's call after the handshake never reached gRPC's server
            assert not _connects(server.port)
    finally:
        channel.close()
        stray_channel.close()
        server.close()


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:54321", ("127.0.0.1", 54321)),
        ("ipv6:%5B::1%5D:54321", ("::1", 54321)),
        ("ipv6:[::ffff:127.0.0.1]:7", ("::ffff:127.0.0.1", 7)),
        ("unix:/tmp/socket", None),
        ("ipv4:127.0.0.1", None),
        ("", None),
    ],
)
def test_peer_address_reads_grpc_peer_strings(peer: str, address: tuple[str, int] | None) -> None:
    assert peer_address(peer) == address


@pytest.mark.parametrize("value", [0, -1, 1023, 2**31, 2**40, 1.5e6, True, "1000000", None])
def test_max_message_bytes_out_of_range_is_a_config_error_naming_value_and_range(serve, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"max_message_bytes={re.escape(repr(value))} .*1024 \(1 KiB\) to 2147483647"):
        serve(port=0, max_message_bytes=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [1024, 2**31 - 1])
def test_max_message_bytes_at_the_ends_of_the_range_are_accepted(serve, value: int) -> None:
    serve(port=0, max_message_bytes=value).close()


# ---------------------------------------------------------------------------- choice of transport


def test_the_probe_finds_the_fast_transport_whole_on_the_installed_grpcio() -> None:
    assert queue_server.probe() is None
    assert transport.fast_transport_problem() is None


def _cygrpc_with(monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    """Makes the fast transport see a cygrpc with ``changes`` (None removes a name), as a grpcio that changed it."""
    names = {name: getattr(queue_server.cygrpc, name) for name in dir(queue_server.cygrpc)}
    names.update(changes)
    monkeypatch.setattr(queue_server, "cygrpc", types.SimpleNamespace(**{k: v for k, v in names.items() if v is not None}))


def test_the_probe_names_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _cygrpc_with(monkeypatch, CompletionQueue=None)
    assert queue_server.probe() == "grpc._cython.cygrpc has no CompletionQueue"


def test_the_probe_names_a_changed_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    _cygrpc_with(monkeypatch, SendMessageOperation=lambda message, flags, compression: None)
    assert queue_server.probe().startswith("TypeError: ")


def test_a_failed_probe_chooses_the_public_transport_with_one_warning_naming_grpcio(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(TRANSPORT_VARIABLE, raising=False)
    monkeypatch.setattr(transport, "fast_transport_problem", lambda: "grpc._cython.cygrpc has no Server (in this test)")
    with caplog.at_level("WARNING", logger="gym_unity_il.link.transport"):
        servers = [make_exchange_server(port=0) for _ in range(2)]
    assert [s.transport for s in servers] == ["public", "public"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"grpcio {grpc.__version__}" in warning and "has no Server (in this test)" in warning
    assert f"{TRANSPORT_VARIABLE}=public" in warning
    monkeypatch.setenv(TRANSPORT_VARIABLE, "fast")
    with pytest.raises(ConfigError, match=rf"{TRANSPORT_VARIABLE}=fast.*grpcio {re.escape(grpc.__version__)}: .*has no Server"):
        make_exchange_server(port=0)
    for server in servers:
        server.close()


def test_the_default_transport_is_the_fast_one() -> None:
    if os.environ.get(TRANSPORT_VARIABLE):
        pytest.skip(f"{TRANSPORT_VARIABLE} chooses the transport of this run")
    server = make_exchange_server(port=0)
    assert server.transport == "fast"
    server.close()


@pytest.mark.parametrize("value", ["quick", "FAST", " public"])
def test_a_transport_variable_naming_no_transport_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(TRANSPORT_VARIABLE, value)
    with pytest.raises(ConfigError, match=rf"{TRANSPORT_VARIABLE}={re.escape(repr(value))} names no transport.*'fast'.*'public'"):
        make_exchange_server(port=0)
