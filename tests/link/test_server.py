"""The trainer's gRPC server against a raw gRPC client over loopback."""

from __future__ import annotations

import gc
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from gym_unity_il.errors import PortInUseError, UnityProtocolError
from gym_unity_il.link.server import EXCHANGE_PATH, ExchangeServer, check_port_free
from gym_unity_il.proto import communicator_pb2 as pb

CLOSE_BYTES = bytes.fromhex("0A 03 08 90 03")  # header { status: 400 } (protocol.md §11)
OK_BYTES = bytes.fromhex("0A 03 08 C8 01")  # header { status: 200 }


def _raw_call(port: int):
    """A bytes-in, bytes-out Exchange callable, as Unity's client would make the call."""
    channel = grpc.insecure_channel(f"localhost:{port}")
    return channel, channel.unary_unary(EXCHANGE_PATH)


def test_request_reaches_the_caller_and_its_answer_returns() -> None:
    server = ExchangeServer(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, OK_BYTES, wait_for_ready=True, timeout=10)
        request = server.receive(timeout=10)
        assert request is not None and request.header.status == 200
        assert server.has_pending_call and not reply.done()
        answer = pb.UnityMessageProto(header=pb.HeaderProto(status=200, message="hello")).SerializeToString()
        server.respond(answer)
        assert reply.result(timeout=10) == answer
    assert not server.has_pending_call
    channel.close()
    server.close()


def test_close_answers_the_pending_call_with_status_400() -> None:
    server = ExchangeServer(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, OK_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None
        server.close()
        assert reply.result(timeout=10) == CLOSE_BYTES
    channel.close()
    server.close()  # idempotent


def test_a_closing_peer_is_answered_when_received_and_reported() -> None:
    server = ExchangeServer(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, CLOSE_BYTES, wait_for_ready=True, timeout=10)
        request = server.receive(timeout=10)
        assert request is not None and request.header.status == 400
        assert not server.has_pending_call  # not held open: Unity ignores the answer
        assert reply.result(timeout=10) == CLOSE_BYTES
    channel.close()
    server.close()


def test_malformed_request_is_a_protocol_error_and_the_call_is_closed() -> None:
    server = ExchangeServer(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, b"\x0a\xff\xff\xff\xff\x0f garbage", wait_for_ready=True, timeout=10)
        with pytest.raises(UnityProtocolError, match="not an ML-Agents message"):
            server.receive(timeout=10)
        assert reply.result(timeout=10) == CLOSE_BYTES
        assert not server.has_pending_call
    channel.close()
    server.close()


def test_a_call_received_on_one_thread_can_be_answered_on_another() -> None:
    server = ExchangeServer(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(2) as pool:
        reply = pool.submit(call, OK_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None
        pool.submit(server.respond, CLOSE_BYTES).result(timeout=10)
        assert reply.result(timeout=10) == CLOSE_BYTES
        second = pool.submit(call, OK_BYTES, timeout=10)
        assert pool.submit(server.receive, 10).result(timeout=20) is not None
        server.respond(OK_BYTES)
        assert second.result(timeout=10) == OK_BYTES
    channel.close()
    server.close()


def test_close_answers_calls_that_were_never_received() -> None:
    server = ExchangeServer(port=0)
    channel, call = _raw_call(server.port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, OK_BYTES, wait_for_ready=True, timeout=10)
        deadline = time.time() + 10
        while not server._arrived:  # until the request is in, not yet received
            assert server._next_event(deadline) and not reply.done()
        server.close()
        assert reply.result(timeout=10) == CLOSE_BYTES
    channel.close()


def test_other_methods_are_unimplemented_and_never_reach_the_caller() -> None:
    server = ExchangeServer(port=0)
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


def test_receive_returns_none_after_the_timeout_and_misuse_is_named() -> None:
    server = ExchangeServer(port=0)
    assert server.receive(timeout=0.05) is None
    with pytest.raises(RuntimeError, match="receive"):
        server.respond(OK_BYTES)
    server.close()


def test_messages_above_the_explicit_limit_are_refused() -> None:
    server = ExchangeServer(port=0, max_message_bytes=1024)
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


def test_a_taken_port_is_a_port_in_use_error_naming_port_and_fix() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"port {port}.*worker_id.*base_port.*auto_port"):
            ExchangeServer(port=port)
        other = ExchangeServer(port=0)  # the automatic port never collides
        assert other.port not in (0, port)
        other.close()
    check_port_free("127.0.0.1", port)


def test_a_server_never_closed_frees_its_port_when_collected() -> None:
    server = ExchangeServer(port=0)
    port = server.port
    channel, call = _raw_call(port)
    with futures.ThreadPoolExecutor(1) as pool:
        reply = pool.submit(call, OK_BYTES, wait_for_ready=True, timeout=10)
        assert server.receive(timeout=10) is not None  # a call left pending
        del server
        gc.collect()
        with pytest.raises(grpc.RpcError):  # cancelled, not left hanging
            reply.result(timeout=10)
    channel.close()
    check_port_free("127.0.0.1", port)


def test_port_is_free_again_right_after_close() -> None:
    server = ExchangeServer(port=0)
    port = server.port
    channel, call = _raw_call(port)
    done = threading.Event()

    def unity() -> None:
        call(OK_BYTES, wait_for_ready=True, timeout=10)
        done.set()

    thread = threading.Thread(target=unity)
    thread.start()
    assert server.receive(timeout=10) is not None
    server.close()
    thread.join(10)
    assert done.is_set()
    channel.close()
    again = ExchangeServer(port=port)
    assert again.port == port
    again.close()
