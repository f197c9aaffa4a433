"""Env steps per second over the live link, against a bare gRPC ping-pong measured in the same run.

Prints, as medians over interleaved rounds (the two measurements alternate, so a busy
machine slows both alike):

* ping-pong: a bare gRPC client process calling a bare server that answers at once, with
  the bytes of one real step (Unity's message with one agent and 8 floats; the answer with
  2 continuous actions). No env, no session, no scene: the floor the gRPC stack sets.
* env: ``UnityILEnv`` on the built-in scene ``ball`` (one agent, 8 floats in, 2 continuous
  actions out), counting ``env.step`` calls, and its ratio to the ping-pong (aim: >= 0.8).
* the same two with every process pinned to one core (Linux), where the round trip does
  not pay for waking threads across cores;
* images: ``UnityILEnv`` on the scene ``grid`` with 84x84x3 PNG observations.

Run: ``python benchmarks/bench_link.py [--steps N] [--rounds R]`` (about half a minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent import futures

import grpc
import numpy as np

from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.link import codec
from gym_unity_il.link.launcher import environment_with_import_path
from gym_unity_il.link.server import EXCHANGE_PATH, METHOD_NAME, SERVICE_NAME
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.spec import ObservationSpec

BEHAVIOR = "3DBall?team=0"


def step_messages() -> tuple[pb.UnityMessageProto, pb.UnityMessageProto]:
    """One ball step: Unity's message (one agent, 8 floats) and the trainer's answer (2 actions)."""
    request = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    info = request.unity_output.rl_output.agentInfos[BEHAVIOR].value.add(id=0, reward=0.1)
    spec = ObservationSpec((8,), (1,), name="VectorSensor_size8")
    info.observations.append(codec.encode_observation(np.linspace(-1, 1, 8, dtype=np.float32), spec))
    answer = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    answer.unity_input.rl_input.agent_actions[BEHAVIOR].CopyFrom(codec.encode_actions(np.array([[0.3, -0.7]], np.float32), np.zeros((1, 0), np.int32)))
    return request, answer


def ping_client(port: int) -> None:
    """The client half of the ping-pong, in its own process like a Unity player: for each
    number N read from stdin, makes N calls and then prints a line."""
    request, _ = step_messages()
    channel = grpc.insecure_channel(f"localhost:{port}")
    call = channel.unary_unary(
        EXCHANGE_PATH, request_serializer=pb.UnityMessageProto.SerializeToString, response_deserializer=pb.UnityMessageProto.FromString
    )
    call(request, wait_for_ready=True, timeout=30)
    for line in sys.stdin:
        for _ in range(int(line)):
            call(request)
        print("done", flush=True)
    channel.close()


class PingPong:
    """A bare server answering at once, and its client process."""

    def __init__(self) -> None:
        _, answer = step_messages()
        handler = grpc.unary_unary_rpc_method_handler(
            lambda request, context: answer,
            request_deserializer=pb.UnityMessageProto.FromString,
            response_serializer=pb.UnityMessageProto.SerializeToString,
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(4))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {METHOD_NAME: handler}),))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.client = subprocess.Popen(
            [sys.executable, __file__, "--ping-client", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment_with_import_path(),
        )

    def rate(self, calls: int) -> float:
        """Round trips per second over ``calls`` round trips."""
        start = time.perf_counter()
        self.client.stdin.write(f"{calls}\n")  # type: ignore[union-attr]
        self.client.stdin.flush()  # type: ignore[union-attr]
        self.client.stdout.readline()  # type: ignore[union-attr]
        return calls / (time.perf_counter() - start)

    def close(self) -> None:
        self.client.stdin.close()  # type: ignore[union-attr]
        self.client.wait(30)
        self.server.stop(None)


def env_rate(env: UnityILEnv, steps: int) -> float:
    """``env.step`` calls per second with random actions (resets not counted)."""
    elapsed = 0.0
    for _ in range(steps):
        action = env.action_space.sample()
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset()
    return steps / elapsed


def compare(steps: int, rounds: int, label: str) -> None:
    """Interleaved rounds of ping-pong and env steps; prints the medians and their ratio."""
    ping = PingPong()
    env = UnityILEnv(seed=0)
    env.action_space.seed(0)
    try:
        env.reset(seed=0)
        ping.rate(100)  # warm up both
        env_rate(env, 100)
        pongs, envs = [], []
        for _ in range(rounds):
            pongs.append(ping.rate(steps))
            envs.append(env_rate(env, steps))
    finally:
        env.close()
        ping.close()
    pong, step = statistics.median(pongs), statistics.median(envs)
    print(f"{label}: bare gRPC ping-pong {pong:6.0f} round trips/s | env (ball) {step:6.0f} steps/s | ratio {step / pong:4.2f} (aim >= 0.8)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="round trips per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per comparison")
    parser.add_argument("--ping-client", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ping_client is not None:
        ping_client(args.ping_client)
        return
    request, answer = step_messages()
    print(f"one step: Unity -> trainer {request.ByteSize()} B, trainer -> Unity {answer.ByteSize()} B; {os.cpu_count()} CPUs")
    compare(args.steps, args.rounds, "all cores       ")
    if hasattr(os, "sched_setaffinity"):
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(allowed)})  # children started from now on inherit it
        compare(args.steps, args.rounds, "pinned, 1 core  ")
        os.sched_setaffinity(0, allowed)
    env = UnityILEnv(scene="grid", scene_kwargs={"camera_height": 84, "camera_width": 84}, seed=0)
    env.action_space.seed(0)
    try:
        env.reset(seed=0)
        rate = env_rate(env, args.steps * 2)
    finally:
        env.close()
    print(f"images: env (grid, 84x84x3 PNG observations) {rate:6.0f} steps/s")


if __name__ == "__main__":
    main()
