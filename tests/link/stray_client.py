"""A stray local program calling the trainer's port, for the one-peer-per-session tests.

``python stray_client.py PORT CONNECTIONS [--handshakes]`` opens CONNECTIONS gRPC
connections to ``127.0.0.1:PORT`` (one channel each, with its own connection) and makes
calls on each, one after another, with forged messages in turn: observations of 42 with a
reward of 1000 for the ball scene's behavior, a status 400 (Unity closing), bytes that are
no message, a status 200 without data and, with ``--handshakes``, a valid handshake. It
prints ``calling`` once every connection has made its first call, and when its stdin closes
it cancels the calls still waiting (a sealed port never answers them), stops, and prints the
number of calls that ended with each gRPC status code, as JSON.

``python stray_client.py PORT 1 --handshake-then-release PATH [--host ADDRESS]`` makes one
call only, to ``ADDRESS:PORT`` (default 127.0.0.1), with a valid handshake (waiting for the
port to listen), prints the gRPC status code it ended with and its details as JSON, then
writes a line to PATH (a FIFO a launched player waits on).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading

import grpc
import numpy as np

from gym_unity_il.link.server import EXCHANGE_PATH
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.observations import encode_observation
from gym_unity_il.spec import ObservationSpec

BEHAVIOR = "3DBall?team=0"
FORGED_VALUE = 42.0
FORGED_REWARD = 1000.0


def handshake() -> bytes:
    """A valid ML-Agents handshake, serialized."""
    hello = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    hello.unity_output.rl_initialization_output.communication_version = "1.5.0"
    return hello.SerializeToString()


def handshake_then_release(host: str, port: int, release: str) -> None:
    """One handshake call; prints how it ended, then writes a line to ``release``."""
    with grpc.insecure_channel(f"{host}:{port}", options=[("grpc.max_reconnect_backoff_ms", 200)]) as channel:
        try:
            channel.unary_unary(EXCHANGE_PATH)(handshake(), wait_for_ready=True, timeout=30)
            result = {"code": "OK", "details": ""}
        except grpc.RpcError as exc:
            result = {"code": exc.code().name, "details": exc.details()}
    print(json.dumps(result), flush=True)
    with open(release, "w") as fifo:
        fifo.write("go\n")


def forged_messages(handshakes: bool) -> list[bytes]:
    """The messages a stray sends, serialized."""
    forged = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    agent = forged.unity_output.rl_output.agentInfos[BEHAVIOR].value.add(id=0, reward=FORGED_REWARD)
    agent.observations.append(encode_observation(np.full(8, FORGED_VALUE, np.float32), ObservationSpec((8,))))
    messages = [
        forged.SerializeToString(),
        pb.UnityMessageProto(header=pb.HeaderProto(status=400)).SerializeToString(),
        b"\x0a\xff\xff\xff\xff\x0f not a message",
        pb.UnityMessageProto(header=pb.HeaderProto(status=200)).SerializeToString(),
    ]
    if handshakes:
        messages.append(handshake())
    return messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("connections", type=int)
    parser.add_argument("--handshakes", action="store_true")
    parser.add_argument("--handshake-then-release", metavar="PATH")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if args.handshake_then_release:
        handshake_then_release(args.host, args.port, args.handshake_then_release)
        return
    messages = forged_messages(args.handshakes)
    codes: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()
    started = threading.Semaphore(0)
    waiting: dict[int, grpc.Future] = {}  # each connection's call in flight
    options = [
        ("grpc.use_local_subchannel_pool", 1),  # a connection of its own, not one shared by equal channels
        ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 200),
    ]

    def calls(k: int) -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{args.port}", options=options)
        exchange = channel.unary_unary(EXCHANGE_PATH)
        i = k
        first = True
        while True:
            with lock:
                if stop.is_set():
                    break
                future = waiting[k] = exchange.future(messages[i % len(messages)], wait_for_ready=True, timeout=60)
            if first:
                started.release()
                first = False
            try:
                future.result()
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            except grpc.FutureCancelledError:
                code = "CANCELLED"
            with lock:
                codes[code] += 1
            i += 1
        channel.close()

    threads = [threading.Thread(target=calls, args=(k,), daemon=True) for k in range(args.connections)]
    for thread in threads:
        thread.start()
    for _ in threads:
        started.acquire()
    print("calling", flush=True)
    sys.stdin.read()
    with lock:
        stop.set()
        for future in waiting.values():
            future.cancel()
    for thread in threads:
        thread.join(40)
    with lock:
        print(json.dumps(dict(codes)), flush=True)


if __name__ == "__main__":
    main()
