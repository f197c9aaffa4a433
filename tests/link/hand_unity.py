"""A hand-made Unity for session tests: a bare gRPC client that sends prepared messages like a
Unity player (each after the trainer's answer to the previous one) and keeps the raw answers."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from typing import Any

import grpc

from gym_unity_il.link.server import EXCHANGE_PATH

#: The trainer's closing answer, ``header { status: 400 }``.
CLOSE = bytes.fromhex("0A 03 08 90 03")


def play_unity(pool: futures.ThreadPoolExecutor, port: int, messages: Sequence[Any], path: str = EXCHANGE_PATH) -> futures.Future[list[bytes]]:
    """Sends ``messages`` (protobuf messages of any era) to ``localhost:port`` on the method ``path``
    and returns the raw answers; stops after a status-400 answer."""

    def run() -> list[bytes]:
        # Unity starts before the trainer listens: retry the connection quickly.
        channel = grpc.insecure_channel(f"localhost:{port}", options=[("grpc.initial_reconnect_backoff_ms", 50)])
        call = channel.unary_unary(path)
        answers: list[bytes] = []
        try:
            for message in messages:
                answers.append(call(message.SerializeToString(), wait_for_ready=True, timeout=30))
                if answers[-1] == CLOSE:
                    break
        finally:
            channel.close()
        return answers

    return pool.submit(run)
