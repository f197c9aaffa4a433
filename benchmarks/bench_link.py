"""Env steps per second over the live link, against a bare gRPC ping-pong measured in the same run.

What is measured: ``UnityILEnv.step`` calls per second (action in, observation out; resets
not counted) in this process, driving a scene served from its own process over the real
gRPC protocol, next to the round trips per second of a bare gRPC ping-pong between two
processes exchanging the very same message bytes. Figures are medians over interleaved
rounds (the measurements alternate, so a busy machine slows them alike); ours / floor is
the median of the ratio within each round, the env measured right before its floor:

* ping-pongs: a bare client process calling a bare server that parses the request and
  answers at once with a prebuilt message: no env, no session, no scene. Two servers:
  grpc's public ``grpc.server`` (a Python serving thread hands each call to a thread pool),
  and the link's fast transport, :class:`QueueServer` (gRPC's completion queue polled on the
  caller's thread), the floor for any Python server.
* link: the env on ``LinkScene`` (below), which sends the ball scene's messages (one agent,
  8 floats in, 2 continuous actions out) but simulates nothing, so the figure is the cost of
  the link itself: env, session, protocol, server and the player process. Its ratio to the
  grpc-server ping-pong (a raw gRPC exchange through grpc's public API) is the figure of
  merit (aim: >= 0.8); its ratio to the queue-server ping-pong shows what the layers above
  the transport cost.
* ball: the env on the built-in scene ``ball`` with one agent: the same messages plus the
  scene's physics.
* floor: :class:`ZeroWorkTrainer`, a trainer that does no work (grpc's public server answering
  every call inline with pre-serialized random actions, counting the agents only), on the very
  player process the env would drive (link, ball, grid), which both drive with random actions:
  ours / floor shows what our trainer side costs (aim: >= 1.0 with one agent, >= 0.95 with images);
* the same again with every process pinned to one core (Linux), where a round trip does
  not pay for waking threads on the other core;
* images: the env on the scene ``grid`` with 84x84x3 PNG observations, against its floor and a ping-pong
  of the same message sizes;
* strays: the env on ``ball`` while another local program floods the port from 20 connections
  (each calling again the moment a call ends), against the same env alone: once the session's
  peer is fixed, the port is sealed and the flood should cost the session nothing (ratio ~1).
* eras: the env on ``LinkScene`` served as a player of ML-Agents 0.10, 0.11 and of communication
  API 1.x, against the queue-server ping-pong of the 0.10 messages (a trainer that does no work):
  the seed eras go through the same link, their own codec (:mod:`gym_unity_il.protocol.legacy`) aside.
* transports: the link's two transports, fast (the default, above) and public (grpc's public
  server, the fallback on a grpcio whose internals changed: :mod:`gym_unity_il.link.transport`),
  each as a bare ping-pong and under the env on ``LinkScene``.

Run: ``python benchmarks/bench_link.py [--steps N] [--rounds R]`` (about a minute and a half).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from functools import partial
from typing import Any
from unittest import mock

import grpc
import numpy as np

from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.link.launcher import environment_with_import_path
from gym_unity_il.link.public_server import PublicServer
from gym_unity_il.link.queue_server import QueueServer
from gym_unity_il.link.server import EXCHANGE_PATH, SERVICES, ExchangeServer
from gym_unity_il.link.transport import TRANSPORT_VARIABLE
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol.actions import encode_action_list
from gym_unity_il.protocol.legacy import API_10
from gym_unity_il.protocol.observations import encode_observation
from gym_unity_il.protocol.codec import RESET, STEP
from gym_unity_il.protocol.handshake import handshake_response
from gym_unity_il.protocol.messages import encode_trainer_message
from gym_unity_il.scenes import make_scene
from gym_unity_il.scenes.registry import resolve_scene, scene_command, scene_target
from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.scenes.player import wire_observation_spec
from gym_unity_il.spec import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec
from gym_unity_il.version import __version__

BALL_BEHAVIOR = "3DBall?team=0"
BALL_SPEC = BehaviorSpec(
    BALL_BEHAVIOR, (ObservationSpec((8,), (DimensionProperty.NONE,), name="VectorSensor_size8"),), ActionSpec.create_continuous(2)
)
#: The minimal scene, as the scene process imports it (this file's folder is on its import path).
LINK_SCENE = "bench_link:LinkScene"


class LinkScene(Scene):
    """The ball scene's messages without its physics: one agent with a constant 8-float
    observation and reward 0.1; actions are received and dropped; episodes never end."""

    name = "link"

    def __init__(self, *, num_agents: int = 1, seed: int = 0) -> None:
        n = num_agents
        self._batch = AgentBatch(
            agent_ids=np.arange(n, dtype=np.int32),
            observations=[np.tile(np.linspace(-1, 1, 8, dtype=np.float32), (n, 1))],
            rewards=np.full(n, 0.1, np.float32),
            done=np.zeros(n, bool),
            max_step_reached=np.zeros(n, bool),
        )

    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return {BALL_BEHAVIOR: BALL_SPEC}

    def reset(self) -> None:
        pass

    def observe(self) -> dict[str, AgentBatch]:
        return {BALL_BEHAVIOR: self._batch}

    def act(self, actions: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        pass


def step_messages(kind: str) -> tuple[Any, Any]:
    """One step of the ``"ball"`` or ``"grid"`` scene (``"ball-0.10"``: the ball's in ML-Agents 0.10's
    messages): Unity's message (one agent) and the trainer's answer."""
    if kind == "ball-0.10":
        legacy_request = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
        legacy_request.unity_output.rl_output.agentInfos["3DBall"].value.add(id=0, reward=0.1, stacked_vector_observation=np.linspace(-1, 1, 8))
        legacy_answer = lpb.UnityMessageProto(header=lpb.HeaderProto(status=200))
        legacy_answer.unity_input.rl_input.agent_actions["3DBall"].value.add(vector_actions=[0.3, -0.7])
        return legacy_request, legacy_answer
    request = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    answer = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    if kind == "ball":
        name, observations = BALL_BEHAVIOR, [np.linspace(-1, 1, 8, dtype=np.float32)]
        specs = BALL_SPEC.observation_specs
        actions = encode_action_list(np.array([[0.3, -0.7]], np.float32), np.zeros((1, 0), np.int32))
    else:
        scene = make_scene("grid", num_agents=1, camera_height=84, camera_width=84)
        (name, spec), batch = next(iter(scene.behavior_specs().items())), next(iter(scene.observe().values()))
        specs = tuple(wire_observation_spec(o, channels_first=True) for o in spec.observation_specs)
        observations = [o[0] for o in batch.observations]
        actions = encode_action_list(np.zeros((1, 0), np.float32), np.array([[2]], np.int32))
    info = request.unity_output.rl_output.agentInfos[name].value.add(id=0, reward=0.1)
    info.observations.extend(encode_observation(values, spec) for values, spec in zip(observations, specs))
    answer.unity_input.rl_input.agent_actions[name].MergeFromString(actions)
    return request, answer


def stray_client(port: int, connections: int) -> None:
    """A flood of calls to ``port`` from ``connections`` connections, each calling again the
    moment its call ends, until stdin closes; prints a line once every connection calls."""
    request, _ = step_messages("ball")
    data = request.SerializeToString()
    started = threading.Barrier(connections + 1)
    pending: list[grpc.Future] = []
    lock = threading.Lock()
    stop = threading.Event()

    def flood() -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        call = channel.unary_unary(EXCHANGE_PATH)
        first = True
        while True:
            with lock:
                if stop.is_set():
                    break
                future = call.future(data, wait_for_ready=True, timeout=600)
                pending.append(future)
            if first:
                started.wait()
                first = False
            try:
                future.result()
            except (grpc.RpcError, grpc.FutureCancelledError):
                pass
        channel.close()

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    started.wait()
    print("calling", flush=True)
    sys.stdin.read()
    with lock:
        stop.set()
        for future in pending:
            future.cancel()


def ping_client(port: int, kind: str) -> None:
    """The client half of the ping-pong, in its own process like a Unity player: for each
    number N read from stdin, makes N calls and then prints a line."""
    request, _ = step_messages(kind)
    era = API_10 if kind == "ball-0.10" else None
    parse = type(request).FromString
    channel = grpc.insecure_channel(f"localhost:{port}")
    call = channel.unary_unary(era.method_path if era is not None else EXCHANGE_PATH)  # bytes in, bytes out
    hello = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    hello.unity_output.rl_initialization_output.communication_version = era.version if era is not None else "1.5.0"
    call(hello.SerializeToString(), wait_for_ready=True, timeout=30)  # the handshake, which makes this connection the queue server's peer
    data = request.SerializeToString()
    for line in sys.stdin:
        for _ in range(int(line)):
            parse(call(data))
        print("done", flush=True)
    channel.close()


def ping_server(kind: str) -> None:
    """The server half of the grpc-server ping-pong, in its own process: grpc's public server
    parsing each request as ExchangeServer.receive() does and answering with the prebuilt
    bytes; prints its port, serves until stdin ends."""
    request, answer = step_messages(kind)
    data = answer.SerializeToString()
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: data, request_deserializer=type(request).FromString)
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers(tuple(grpc.method_handlers_generic_handler(svc, {method: handler}) for svc, method in SERVICES))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(None)


class PingPong:
    """A bare server that parses each request and answers at once with the prebuilt answer
    of ``kind``, and its client process. ``server`` is ``"grpc"`` (grpc's public server: a
    serving thread and a thread pool run the handler, in a process of its own: no gRPC server
    idles beside the env measured here), ``"queue"`` (the link's fast transport,
    :class:`QueueServer`, driving gRPC's completion queue on this thread) or ``"public"`` (the
    link's public transport, :class:`PublicServer`)."""

    def __init__(self, kind: str, server: str) -> None:
        request, answer = step_messages(kind)
        self.answer = answer.SerializeToString()
        self.exchange: ExchangeServer | None = None
        self.server: subprocess.Popen[str] | None = None
        if server == "grpc":
            self.server = subprocess.Popen([sys.executable, __file__, "--ping-server", kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           env=environment_with_import_path())  # fmt: skip
            port = int(self.server.stdout.readline())  # type: ignore[union-attr]
        else:
            self.exchange = QueueServer(port=0) if server == "queue" else PublicServer(port=0)
            self.exchange.parse = type(request).FromString  # the era's messages, as a session parses them
            port = self.exchange.port
        self.client = subprocess.Popen(
            [sys.executable, __file__, "--ping-client", str(port), "--kind", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment_with_import_path(),
        )
        self._answer(1)  # the client's first call, made as soon as it starts

    def _answer(self, calls: int) -> None:
        if self.exchange is not None:
            for _ in range(calls):
                self.exchange.receive(30)
                self.exchange.respond(self.answer)

    def rate(self, calls: int) -> float:
        """Round trips per second over ``calls`` round trips."""
        start = time.perf_counter()
        self.client.stdin.write(f"{calls}\n")  # type: ignore[union-attr]
        self.client.stdin.flush()  # type: ignore[union-attr]
        self._answer(calls)
        self.client.stdout.readline()  # type: ignore[union-attr]
        return calls / (time.perf_counter() - start)

    def close(self) -> None:
        self.client.stdin.close()  # type: ignore[union-attr]
        self.client.wait(30)
        if self.exchange is not None:
            self.exchange.close()
        if self.server is not None:
            self.server.stdin.close()  # type: ignore[union-attr]
            self.server.wait(30)


class _ZeroWork:
    """The zero-work trainer itself, in the process of :func:`zero_work_trainer` (see :class:`ZeroWorkTrainer`)."""

    def __init__(self, scene: str, scene_kwargs: dict[str, Any]) -> None:
        kwargs = {"num_agents": 1, **scene_kwargs}
        scene_kwargs_only = {k: v for k, v in kwargs.items() if k != "frame_time"}
        spec = next(iter(resolve_scene(scene_target(scene))(**scene_kwargs_only).behavior_specs().values()))
        self._action = spec.action_spec
        self._answers: dict[tuple[tuple[str, int], ...], list[bytes]] = {}
        self._rng = np.random.default_rng(0)
        self._calls = 0
        self._left = 0
        self._permits = threading.Semaphore(0)
        self._finished = threading.Event()
        handler = grpc.unary_unary_rpc_method_handler(self._answer)  # bytes in, bytes out
        self.server = grpc.server(futures.ThreadPoolExecutor(1))
        self.server.add_generic_rpc_handlers(tuple(grpc.method_handlers_generic_handler(svc, {method: handler}) for svc, method in SERVICES))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        command = scene_command(scene, kwargs)
        assert command is not None
        self.player = subprocess.Popen([*command.argv, "--mlagents-port", str(port)], env=command.environment, stderr=subprocess.DEVNULL)

    def _answer(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._calls += 1
        if self._calls == 1:
            return handshake_response(seed=0, package_version=__version__).SerializeToString()
        if self._calls == 2:
            return encode_trainer_message(command=RESET)
        self._permits.acquire()
        infos = pb.UnityMessageProto.FromString(request).unity_output.rl_output.agentInfos
        key = tuple((name, sum(not info.done for info in agents.value)) for name, agents in infos.items())
        answers = self._answers.get(key)
        if answers is None:
            answers = self._answers[key] = [encode_trainer_message(command=STEP, actions=self._random_actions(key)) for _ in range(ZeroWorkTrainer.ANSWERS)]
        answer = answers[self._calls % ZeroWorkTrainer.ANSWERS]
        self._left -= 1
        if self._left == 0:
            self._finished.set()
        return answer

    def _random_actions(self, key: tuple[tuple[str, int], ...]) -> dict[str, bytes]:
        act = self._action
        branches = np.array(act.discrete_branches, np.int64)
        return {
            name: encode_action_list(self._rng.uniform(-1, 1, (n, act.continuous_size)).astype(np.float32),
                                     self._rng.integers(0, branches, (n, len(branches))).astype(np.int32))  # fmt: skip
            for name, n in key
        }

    def rate(self, calls: int) -> float:
        self._finished.clear()
        self._left = calls
        start = time.perf_counter()
        self._permits.release(calls)
        if not self._finished.wait(600):
            raise RuntimeError("the scene player stopped calling; is it still running?")
        return calls / (time.perf_counter() - start)

    def close(self) -> None:
        self.player.kill()
        self.player.wait(30)
        self._permits.release(1)  # the call waiting for a permit ends at once
        self.server.stop(None)


def zero_work_trainer(scene: str, scene_kwargs: dict[str, Any]) -> None:
    """The process of a :class:`ZeroWorkTrainer`: for each number N read from stdin, answers N
    calls and prints the round trips per second; ends with stdin."""
    work = _ZeroWork(scene, scene_kwargs)
    try:
        for line in sys.stdin:
            print(work.rate(int(line)), flush=True)
    finally:
        work.close()


class ZeroWorkTrainer:
    """The floor for any Python trainer of a scene: a trainer that does no work at all.

    In a process of its own, as a trainer is (no other gRPC server beside it, and none beside
    the env measured here), it starts the scene's own player process as the env starts it,
    and grpc's public server's handler answers every call inline with pre-serialized bytes: the
    handshake answer, RESET, then STEP with random actions for as many agents as the request
    holds decisions (the request is parsed only to count them): the next of :attr:`ANSWERS`
    answers drawn beforehand as the benchmarks draw the env's actions (uniform over the action
    space), so that the player does the same work for both. Nothing is decoded, nothing is
    handed to another thread. A call waits for a permit before it is answered, so that
    :meth:`rate` measures a given number of round trips (the permit costs both sides the same:
    a semaphore); the rate is measured in that process.
    """

    #: Random answers drawn per count of deciding agents, used in turn.
    ANSWERS = 64

    def __init__(self, scene: str, scene_kwargs: dict[str, Any] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--zero-work-trainer", scene, "--scene-kwargs", json.dumps(scene_kwargs or {})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment_with_import_path(),
        )  # fmt: skip

    def rate(self, calls: int) -> float:
        """Round trips per second over ``calls`` round trips."""
        self.process.stdin.write(f"{calls}\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the zero-work trainer ended (exit code {self.process.wait(30)})")
        return float(line)

    def close(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(60)


def env_rate(env: UnityILEnv, steps: int) -> float:
    """``env.step`` calls per second with random actions (action sampling and resets not counted)."""
    elapsed = 0.0
    for _ in range(steps):
        action = env.action_space.sample()
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset()
    return steps / elapsed


def interleaved(measures: dict[str, Callable[[int], float]], steps: int, rounds: int, ratios: dict[str, tuple[str, str]] | None = None) -> dict[str, float]:
    """The median of each measurement (a function of the number of steps returning a rate) over
    ``rounds`` rounds in which the measurements take turns (in reverse order every other
    round), after a warm-up; and for each of ``ratios`` (label: ``(numerator, denominator)``,
    two measurements that follow each other in a round) the median of their ratio within each
    round, which drifts of the machine's speed between rounds leave out."""
    for measure in measures.values():
        measure(100)
    runs: dict[str, list[float]] = {label: [] for label in measures}
    for i in range(rounds):
        for label, measure in list(measures.items())[:: -1 if i % 2 else 1]:  # every other round backwards: no measurement always goes first
            runs[label].append(measure(steps))
    medians = {label: statistics.median(values) for label, values in runs.items()}
    return medians | {label: statistics.median(a / b for a, b in zip(runs[top], runs[bottom])) for label, (top, bottom) in (ratios or {}).items()}


def make_env(scene: str, transport: str = "", **scene_kwargs: object) -> UnityILEnv:
    """The env on ``scene``, its server on ``transport`` ('' for the default choice), reset and seeded."""
    with mock.patch.dict(os.environ, {TRANSPORT_VARIABLE: transport}):  # read when the session starts its server
        env = UnityILEnv(scene=scene, scene_kwargs=scene_kwargs, seed=0)
    env.action_space.seed(0)
    env.reset(seed=0)
    return env


def _rates(env: float, grpc_pong: float, queue_pong: float) -> str:
    return f"{env:5.0f} ({env / grpc_pong:4.2f} | {env / queue_pong:4.2f})"


def compare_vector(steps: int, rounds: int, label: str) -> None:
    """Both ping-pongs, link and ball, and the zero-work trainer on each of the two scenes,
    interleaved; prints the medians and the ratios."""
    grpc_ping, queue_ping = PingPong("ball", "grpc"), PingPong("ball", "queue")
    link, ball = make_env(LINK_SCENE), make_env("ball")
    floors = {"link": ZeroWorkTrainer(LINK_SCENE), "ball": ZeroWorkTrainer("ball")}
    try:
        measures = {"grpc": grpc_ping.rate, "queue": queue_ping.rate}
        for k, floor in floors.items():
            measures |= {k: partial(env_rate, link if k == "link" else ball), f"{k} floor": floor.rate}
        rate = interleaved(measures, steps, rounds, {f"{k} / floor": (k, f"{k} floor") for k in floors})
    finally:
        for closing in (link, ball, grpc_ping, queue_ping, *floors.values()):
            closing.close()
    pongs = rate["grpc"], rate["queue"]
    floor = " ".join(f"{rate[f'{k} floor']:6.0f} ({rate[f'{k} / floor']:4.2f})" for k in floors)
    print(f"{label:<15} {pongs[0]:8.0f} {pongs[1]:9.0f}    {_rates(rate['link'], *pongs)}    {_rates(rate['ball'], *pongs)}    {floor}")


def compare_images(steps: int, rounds: int) -> None:
    """Both ping-pongs with the grid scene's message sizes and the zero-work trainer on the grid
    scene against the env on it."""
    grpc_ping, queue_ping = PingPong("grid", "grpc"), PingPong("grid", "queue")
    grid = make_env("grid", camera_height=84, camera_width=84)
    floor = ZeroWorkTrainer("grid", {"camera_height": 84, "camera_width": 84})
    try:
        measures = {"grpc": grpc_ping.rate, "queue": queue_ping.rate, "grid": partial(env_rate, grid), "floor": floor.rate}
        rate = interleaved(measures, steps, rounds, {"ours / floor": ("grid", "floor")})
    finally:
        for closing in (grid, grpc_ping, queue_ping, floor):
            closing.close()
    request, answer = step_messages("grid")
    print(
        f"images (grid, 84x84x3 PNG + 2 floats; {request.ByteSize()} B / {answer.ByteSize()} B per step): ping-pong {rate['grpc']:5.0f} | "
        f"{rate['queue']:5.0f} round trips/s, env {_rates(rate['grid'], rate['grpc'], rate['queue'])} steps/s; zero-work trainer "
        f"{rate['floor']:5.0f} steps/s, ours / floor {rate['ours / floor']:4.2f} (aim >= 0.95)"
    )


def compare_strays(steps: int, rounds: int, connections: int = 20) -> None:
    """The env on ball alone and while a stray program floods its port, interleaved."""
    alone, flooded = make_env("ball"), make_env("ball")
    strays = subprocess.Popen(
        [sys.executable, __file__, "--stray-client", str(flooded.session.port), "--connections", str(connections)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment_with_import_path(),
    )
    try:
        strays.stdout.readline()  # type: ignore[union-attr]
        rate = interleaved({"alone": partial(env_rate, alone), "flooded": partial(env_rate, flooded)}, steps, rounds)
        refused = flooded.session.refused_calls
    finally:
        strays.stdin.close()  # type: ignore[union-attr]
        strays.wait(60)
        alone.close()
        flooded.close()
    print(
        f"strays (ball, {connections} other connections calling without pause after the handshake): alone {rate['alone']:5.0f} steps/s, "
        f"flooded {rate['flooded']:5.0f} steps/s (ratio {rate['flooded'] / rate['alone']:4.2f}); calls refused by the session: {refused}"
    )


def compare_transports(steps: int, rounds: int) -> None:
    """The link's two transports, as bare ping-pongs and under the env on the link scene, interleaved."""
    pongs = {transport: PingPong("ball", server) for transport, server in (("fast", "queue"), ("public", "public"))}
    envs = {transport: make_env(LINK_SCENE, transport) for transport in pongs}
    try:
        measures = {f"{t} pong": pong.rate for t, pong in pongs.items()} | {f"{t} link": partial(env_rate, env) for t, env in envs.items()}
        rate = interleaved(measures, steps, rounds)
    finally:
        for closing in (*envs.values(), *pongs.values()):
            closing.close()
    fast, public = rate["fast link"], rate["public link"]
    print(
        f"transports (ball messages): ping-pong fast {rate['fast pong']:5.0f} | public {rate['public pong']:5.0f} round trips/s; "
        f"link fast {fast:5.0f} | public {public:5.0f} steps/s (public/fast {public / fast:4.2f})"
    )


def compare_eras(steps: int, rounds: int) -> None:
    """The env on the link scene served as a player of each protocol era, against the bare queue-server
    ping-pong of the 0.10 messages (the floor: a trainer that does no work), interleaved."""
    pong = PingPong("ball-0.10", "queue")
    envs = {era: make_env(LINK_SCENE, **({"protocol": era} if era != "modern" else {})) for era in ("modern", "0.11", "0.10")}
    try:
        rate = interleaved({"pong": pong.rate} | {era: partial(env_rate, env) for era, env in envs.items()}, steps, rounds)
    finally:
        for closing in (*envs.values(), pong):
            closing.close()
    floor = rate["pong"]
    figures = " | ".join(f"{era} {rate[era]:5.0f} ({rate[era] / floor:4.2f})" for era in envs)
    print(
        f"eras (link scene, ball messages): ping-pong of the 0.10 bytes (queue server, no work) {floor:5.0f} round trips/s; "
        f"env steps/s (ratio to it): {figures}; 0.10 / modern {rate['0.10'] / rate['modern']:4.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="round trips per round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per comparison")
    parser.add_argument("--ping-client", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="ball", help=argparse.SUPPRESS)
    parser.add_argument("--stray-client", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--zero-work-trainer", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scene-kwargs", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--ping-server", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.zero_work_trainer is not None:
        zero_work_trainer(args.zero_work_trainer, json.loads(args.scene_kwargs))
        return
    if args.ping_server is not None:
        ping_server(args.ping_server)
        return
    if args.ping_client is not None:
        ping_client(args.ping_client, args.kind)
        return
    if args.stray_client is not None:
        stray_client(args.stray_client, args.connections)
        return
    request, answer = step_messages("ball")
    print(
        "Measured: UnityILEnv.step calls/s in this process, driving a scene in its own process over gRPC, against round\n"
        "trips/s of bare gRPC ping-pongs between two processes exchanging the same bytes; medians of "
        f"{args.rounds} interleaved rounds of {args.steps}; {os.cpu_count()} CPUs.\n"
        "  ping-pong, grpc server: grpc's public server (serving thread, thread pool) answering a bare client at once\n"
        "  ping-pong, queue server: the link's fast transport, its default (gRPC's completion queue on the caller's thread), likewise\n"
        "  link: a scene that sends the ball scene's messages (one agent, 8 floats in, 2 continuous actions out; Unity -> trainer\n"
        f"        {request.ByteSize()} B, trainer -> Unity {answer.ByteSize()} B) and simulates nothing: the cost of the link itself\n"
        "  ball: the built-in scene ball with one agent: the same messages plus its physics\n"
        "  floor: the zero-work trainer (ZeroWorkTrainer) on the link and ball scenes' own player processes: the most steps/s\n"
        "         any Python trainer gets from them\n"
        "Env figures are steps/s (ratio to the grpc-server ping-pong, aim for link >= 0.8 | ratio to the queue-server ping-pong);\n"
        "floors are steps/s (ours / floor, aim >= 1.0).\n"
        f"{'':<15} {'ping-pong round trips/s':>23}    {'link':<18}    {'ball':<18}    {'floor: link, ball':<27}\n"
        f"{'':<15} {'grpc':>8} {'queue':>9}"
    )
    compare_vector(args.steps, args.rounds, "all cores")
    if hasattr(os, "sched_setaffinity"):
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(allowed)})  # children started from now on inherit it
        compare_vector(args.steps, args.rounds, "pinned, 1 core")
        os.sched_setaffinity(0, allowed)
    compare_images(args.steps, max(3, args.rounds // 2))
    compare_strays(args.steps, args.rounds)
    compare_transports(args.steps, args.rounds)
    compare_eras(args.steps, args.rounds)


if __name__ == "__main__":
    main()
