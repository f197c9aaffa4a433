"""The player process: serves a built-in :class:`~gym_unity_il.scenes.base.Scene` over Unity's protocol.

By default it behaves like a Unity player built with com.unity.ml-agents 3.0.0: it is a
gRPC client of the trainer on ``localhost:<port>``, runs the two-call handshake, announces
each behavior with its BrainParameters the first time one of its agents has data, sends
visual observations as PNG in CHW order (protocol.md §9.3), applies side-channel messages
and RESET/STEP commands, and quits when the trainer answers with status 400 or goes away.
With ``--protocol 0.4`` ... ``--protocol 0.11`` it is an ML-Agents 0.4 ... 0.11 player
instead (communication API ``API-4`` ... ``API-11``, protocol-legacy.md), whose brains are
the scene's behaviors: :mod:`gym_unity_il.scenes.legacy_player`. The loop, the scene and its
parameters, and the test aids below are the same in every era; what differs (method path,
handshake, reading an input, building an output) is the :class:`Wire` spoken.
Command line (normally started by the env, not by hand)::

    python -m gym_unity_il.scenes <name or module:Class> (--mlagents-port N | --port N)
        [--protocol 0.4|...|0.11 [--stacked-vectors N]] [--scene-kwargs JSON] [--frame-time S]
        [-logFile F] [-nographics] [-batchmode]

The port comes from ``--mlagents-port`` (what a player of ML-Agents 1.0 and later reads) or
``--port`` (what a 0.x player reads); given both, the one of the era spoken wins.
``--stacked-vectors N`` (0.x only, default 1) makes each agent send its last N vector
frames. ``--frame-time S`` makes every step (and reset) take S seconds more before the
player answers, standing in for the frame a Unity player renders (benchmarks of several
processes use it). ``-nographics`` and ``-batchmode`` are accepted and ignored, as are unknown
arguments. ``-logFile F`` creates F's folder when it is missing; when F cannot be written
the log goes to stderr (with a warning saying why), as a Unity player does.

Environment parameters (side channel; 0.x: a RESET's reset parameters) go to
:meth:`Scene.set_parameter` before the next reset; a sampler parameter gets a new draw from
its own seeded generator at every reset. The reserved parameter ``gym_unity_il.seed``
rebuilds the scene with that seed before the RESET that follows, which makes
``env.reset(seed=s)`` deterministic. Engine settings are logged (scenes are not rendered in
real time). A scene may define ``take_stats() -> dict[str, float]``; the player sends those
values on the stats channel after every step. A request on the scene picture channel
(:class:`~gym_unity_il.protocol.channels.ScenePictureChannel`) is answered in the next
output with :meth:`Scene.render` of the state that output shows. A scene may also define
``player_decides(behavior) -> policy or None``: as ML-Agents 0.4 ... 0.10 the behaviors it
gives a policy for are Player brains (not controlled by the trainer) decided in the player,
such as the ``Teacher`` of ``BallScene(teacher_student=True)``; 0.11 and later ignore it.

Test aids (fault injection, used by the package's own tests):

* ``--fault crash-at-step:N``  exit abruptly (code 3) on receiving the N-th STEP;
* ``--fault hang-at-step:N``   stop answering on the N-th STEP (the process stays alive);
* ``--fault quit-at-step:N``   close the connection like a quitting Unity (status 400);
* ``--fault never-connect``    never contact the trainer;
* ``--fault crash-at-reset:N`` exit abruptly (code 3) on receiving the N-th RESET;
* ``--fault crash-in-handshake`` exit abruptly (code 3) between the two calls of the handshake;
* ``--fault malformed-at-step:N`` answer the N-th STEP with bytes that are not a message, then quit;
* ``--fault oversized-at-step:N`` answer the N-th STEP with a message of over 1 MiB (refused by a
  trainer whose ``max_message_bytes`` is lower; the player then quits on the gRPC error);
* ``--fault once:PATH``        the other faults hit only the first process given PATH (it
  creates the file at start); a later one finds the file and runs clean, like a restarted player;
* ``--communication-version X`` / ``--package-version X``  report other versions in the
  handshake (``--package-version 2.3.0-exp.3`` also sends images in HWC order, like Release 20);
  not with ``--protocol``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import grpc
import numpy as np

from gym_unity_il.errors import ConfigError, UnityProtocolError
from gym_unity_il.link.server import DEFAULT_MAX_MESSAGE_BYTES, EXCHANGE_PATH
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.actions import decode_actions
from gym_unity_il.protocol.channels import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    SCENE_PICTURE_CHANNEL_ID,
    SEED_PARAMETER,
    STATS_CHANNEL_ID,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    Sampler,
    SamplerType,
    ScenePictureChannel,
    StatsSideChannel,
)
from gym_unity_il.protocol.handshake import COMMUNICATION_VERSION, channels_first_for_package
from gym_unity_il.protocol.messages import STATUS_CLOSING, STATUS_OK
from gym_unity_il.protocol.observations import ObservationEncoder
from gym_unity_il.protocol.side_channels import frame_messages, split_messages
from gym_unity_il.protocol.specs import brain_parameters_to_proto
from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.scenes.legacy_player import LEGACY_PROTOCOLS, LegacyWire
from gym_unity_il.scenes.registry import MAX_FRAME_TIME, check_scene_kwargs, resolve_scene
from gym_unity_il.spec import BehaviorSpec, DimensionProperty, ObservationSpec

logger = logging.getLogger("gym_unity_il.scenes.player")

#: Unity's own trainer (mlagents_envs) sends its settings on this channel; players only read them for analytics.
TRAINING_ANALYTICS_CHANNEL_ID = uuid.UUID("b664a4a9-d86f-5a5f-95cb-e8353a7e8356")
UNITY_PACKAGE_VERSION = "3.0.0"
#: Seconds the player waits for the trainer to accept its first call.
CONNECT_TIMEOUT = 60.0
_TE = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
_NONE = DimensionProperty.NONE


def wire_observation_spec(spec: ObservationSpec, *, channels_first: bool) -> ObservationSpec:
    """The spec as a Unity player declares it: images in CHW (3.x) or HWC (2.x) with Unity's
    dimension properties, other sensors with NONE where the scene left them unspecified."""
    if spec.is_visual:
        h, w, c = spec.hwc
        if channels_first:
            return dataclasses.replace(spec, shape=(c, h, w), channels_first=True, dimension_property=(_NONE, _TE, _TE))
        return dataclasses.replace(spec, shape=(h, w, c), channels_first=False, dimension_property=(_TE, _TE, _NONE))
    if all(p == DimensionProperty.UNSPECIFIED for p in spec.dimension_property):
        return dataclasses.replace(spec, dimension_property=(_NONE,) * len(spec.shape))
    return spec


_NUMBERED_FAULTS = ("crash-at-step", "hang-at-step", "quit-at-step", "crash-at-reset", "malformed-at-step", "oversized-at-step")
#: Size of the message sent by the ``oversized-at-step`` fault.
OVERSIZED_MESSAGE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Faults:
    """Fault injection for tests: which STEP or RESET (1-based) fails and how (see the module docstring)."""

    crash_at_step: int | None = None
    hang_at_step: int | None = None
    quit_at_step: int | None = None
    never_connect: bool = False
    crash_at_reset: int | None = None
    crash_in_handshake: bool = False
    malformed_at_step: int | None = None
    oversized_at_step: int | None = None
    #: a file claimed at start; when it exists already the process runs without faults
    once_marker: str | None = None

    @classmethod
    def parse(cls, specs: Sequence[str]) -> Faults:
        values: dict[str, object] = {}
        for spec in specs:
            kind, _, number = spec.partition(":")
            if kind in ("never-connect", "crash-in-handshake") and not number:
                values[kind.replace("-", "_")] = True
            elif kind in _NUMBERED_FAULTS and number.isdigit():
                values[kind.replace("-", "_")] = int(number)
            elif kind == "once" and number:
                values["once_marker"] = number
            else:
                raise ConfigError(
                    f"--fault {spec!r} is not understood; use {', '.join(f'{k}:N' for k in _NUMBERED_FAULTS)}, never-connect or "
                    "crash-in-handshake (plus once:PATH)"
                )
        return cls(**values)  # type: ignore[arg-type]

    def first_life(self) -> Faults:
        """These faults for the first process to claim ``once_marker`` (creating the file),
        no faults for any later one; unchanged without ``once_marker``."""
        if self.once_marker is None:
            return self
        try:
            with open(self.once_marker, "x", encoding="utf-8"):
                pass
        except FileExistsError:
            logger.info("test faults off: %s exists, an earlier process had them", self.once_marker)
            return Faults()
        return self


def _draw(sampler: Sampler, rng: np.random.Generator) -> float:
    """One value from an environment-parameter sampler."""
    args = sampler.arguments
    if sampler.sampler_type == SamplerType.UNIFORM:
        return float(rng.uniform(args[0], args[1]))
    if sampler.sampler_type == SamplerType.GAUSSIAN:
        return float(rng.normal(args[0], args[1]))
    lows, highs = np.asarray(args[0::2], np.float64), np.asarray(args[1::2], np.float64)
    if lows.size == 0:
        return 0.0
    widths = highs - lows
    index = int(rng.choice(lows.size, p=widths / widths.sum())) if widths.sum() > 0 else 0
    return float(rng.uniform(lows[index], highs[index]))


class Wire(Protocol):
    """What differs between the protocol eras a :class:`ScenePlayer` speaks: the method path, the
    messages, the handshake, how an input is read and how an output is built. The loop, the
    scene, its parameters and the faults are the player's. :class:`ModernWire` speaks
    communication API 1.x; :class:`~gym_unity_il.scenes.legacy_player.LegacyWire` ML-Agents 0.4 ... 0.11.

    A message holding only a header has the same bytes in every era, so the player sends those
    as modern messages; what the trainer answers is read by :meth:`parse`.
    """

    #: The HTTP/2 path of the Exchange call.
    method_path: str

    def parse(self, data: bytes) -> Any:
        """The trainer's message from its bytes (an ``UnityMessageProto`` of the era)."""

    def hello(self) -> Any:
        """The first message of the handshake."""

    def connected(self, first: Any) -> tuple[int, str]:
        """The seed the trainer's handshake answer ``first`` carries, and a description of the trainer for the log."""

    def scene_built(self, scene: Scene) -> None:
        """Takes note of a new scene (the first, or one rebuilt with another seed)."""

    def scene_reset(self) -> None:
        """Takes note that the scene was reset (a RESET command)."""

    def read_input(self, rl_input: Any) -> list[tuple[str, float | Sampler]]:
        """The environment parameters an input sets, in order; the era's other contents are kept for :meth:`output`."""

    def actions(self, rl_input: Any, scene: Scene) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The actions for :meth:`Scene.act`, per behavior, from a STEP input answering the last output."""

    def output(self, scene: Scene) -> Any:
        """The message carrying what the scene observes now."""


class ModernWire:
    """The wire of communication API 1.x (protocol.md), as a com.unity.ml-agents player speaks it:
    behaviors announced with their first agents, observations as ObservationProtos (images PNG,
    CHW from package 3 on), environment parameters, statistics and pictures on side channels.

    Args:
        communication_version: the API version reported in the handshake.
        package_version: the com.unity.ml-agents version reported; below 3 images go out HWC.
    """

    method_path = EXCHANGE_PATH

    def __init__(self, *, communication_version: str = COMMUNICATION_VERSION, package_version: str = UNITY_PACKAGE_VERSION) -> None:
        self.communication_version = communication_version
        self.package_version = package_version
        self._channels_first = channels_first_for_package(package_version)
        self._specs: dict[str, BehaviorSpec] = {}
        self._encoders: dict[str, tuple[ObservationEncoder, ...]] = {}  # per behavior, one per sensor
        self._announced: set[str] = set()
        self._deciding: dict[str, int] = {}  # per behavior, agents awaiting a decision in the last output
        self._picture_requests: list[tuple[str, int, int, int]] = []  # (behavior, agent id, height, width) for the next output

    @staticmethod
    def parse(data: bytes) -> pb.UnityMessageProto:
        return pb.UnityMessageProto.FromString(data)

    def hello(self) -> pb.UnityMessageProto:
        hello = pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_OK))
        init = hello.unity_output.rl_initialization_output
        init.name = "AcademySingleton"
        init.communication_version = self.communication_version
        init.package_version = self.package_version
        for field in init.capabilities.DESCRIPTOR.fields:
            setattr(init.capabilities, field.name, True)
        return hello

    @staticmethod
    def connected(first: pb.UnityMessageProto) -> tuple[int, str]:
        trainer = first.unity_input.rl_initialization_input
        return trainer.seed, f"trainer {trainer.package_version} (communication API {trainer.communication_version})"

    def scene_built(self, scene: Scene) -> None:
        self._specs = dict(scene.behavior_specs())
        self._encoders = {
            name: tuple(ObservationEncoder(wire_observation_spec(o, channels_first=self._channels_first)) for o in spec.observation_specs)
            for name, spec in self._specs.items()
        }

    def scene_reset(self) -> None:
        """Nothing to note: a modern output says all there is."""

    def read_input(self, rl_input: pb.UnityRLInputProto) -> list[tuple[str, float | Sampler]]:
        parameters: list[tuple[str, float | Sampler]] = []
        for channel_id, payload in split_messages(rl_input.side_channel):
            if channel_id == ENVIRONMENT_PARAMETERS_CHANNEL_ID:
                parameters.append(EnvironmentParametersChannel.parse(payload))
            elif channel_id == SCENE_PICTURE_CHANNEL_ID:
                self._picture_requests.append(ScenePictureChannel.parse_request(payload))
            elif channel_id == TRAINING_ANALYTICS_CHANNEL_ID:
                logger.info("training analytics from the trainer (%d bytes, not used)", len(payload))
            elif channel_id == ENGINE_CONFIGURATION_CHANNEL_ID:
                logger.info("engine configuration: %s", EngineConfigurationChannel.parse(payload))
            else:
                logger.warning("ignoring a message for unknown side channel %s", channel_id)
        return parameters

    def actions(self, rl_input: pb.UnityRLInputProto, scene: Scene) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        actions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, deciding in self._deciding.items():
            if deciding == 0 or name not in rl_input.agent_actions or not rl_input.agent_actions[name].value:
                continue
            received = rl_input.agent_actions[name].value
            if len(received) < deciding:
                raise UnityProtocolError(f"behavior {name!r}: {len(received)} actions for {deciding} agents awaiting a decision")
            actions[name] = decode_actions(received[:deciding], self._specs[name].action_spec)
        return actions

    def output(self, scene: Scene) -> pb.UnityMessageProto:
        batches = {name: batch for name, batch in scene.observe().items() if len(batch)}
        self._deciding = {name: len(batch) - int(np.count_nonzero(batch.done)) for name, batch in batches.items()}
        message = pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_OK))
        rl_output = message.unity_output.rl_output
        for name, batch in batches.items():
            if name not in self._specs:
                raise UnityProtocolError(f"scene {type(scene).__name__} produced agents of undeclared behavior {name!r}")
            if name not in self._announced:
                brain = brain_parameters_to_proto(self._specs[name], is_training=True)
                message.unity_output.rl_initialization_output.brain_parameters.append(brain)
                self._announced.add(name)
            ScenePlayer._fill_agent_infos(rl_output.agentInfos[name].value, batch, self._encoders[name])
        side_messages = []
        stats = getattr(scene, "take_stats", None)
        if callable(stats):
            side_messages += [(STATS_CHANNEL_ID, StatsSideChannel.encode(k, v)) for k, v in stats().items()]
        side_messages += [(SCENE_PICTURE_CHANNEL_ID, self._picture(scene, batches, *request)) for request in self._picture_requests]
        self._picture_requests = []
        if side_messages:
            rl_output.side_channel = frame_messages(side_messages)
        return message

    @staticmethod
    def _picture(scene: Scene, batches: dict[str, AgentBatch], behavior: str, agent_id: int, height: int, width: int) -> bytes:
        """The answer to one picture request: agent -1 is the first agent of ``behavior``
        (else of any behavior) asking for a decision in this output."""
        for name, batch in batches.items():
            if agent_id >= 0:
                break
            deciding = batch.agent_ids[~np.asarray(batch.done, bool)]
            if behavior in ("", name, name.split("?")[0]) and len(deciding):
                agent_id = int(deciding[0])
        picture = scene.render(agent_id, height, width) if agent_id >= 0 else None
        if picture is not None and (picture.shape != (height, width, 3) or picture.dtype != np.uint8):
            raise TypeError(f"{type(scene).__name__}.render drew {picture.dtype} {picture.shape}, not uint8 {(height, width, 3)}")
        return ScenePictureChannel.encode_picture(agent_id, picture)


#: A message of a header alone: the same bytes in every era.
_STATUS_OK_ONLY = pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_OK))


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


class ScenePlayer:
    """Runs one scene against a trainer, the way a Unity player runs its Academy.

    Args:
        scene_class: the scene to build (with ``seed=`` and ``scene_kwargs``).
        scene_kwargs: keyword arguments of the scene's constructor.
        port: the trainer's port on localhost.
        wire: the protocol era spoken (default: communication API 1.x, :class:`ModernWire`).
        faults: fault injection for tests.
        frame_time: seconds every step and reset waits before the answer (a rendered frame's time).
    """

    def __init__(
        self,
        *,
        scene_class: type[Scene],
        scene_kwargs: dict[str, object],
        port: int,
        wire: Wire | None = None,
        faults: Faults = Faults(),
        frame_time: float = 0.0,
    ) -> None:
        self.scene_class = scene_class
        self.frame_time = frame_time
        self.scene_kwargs = scene_kwargs
        self.port = port
        self.wire: Wire = wire if wire is not None else ModernWire()
        self.faults = faults
        self._scene: Scene | None = None
        self._floats: dict[str, float] = {}
        self._samplers: dict[str, tuple[Sampler, np.random.Generator]] = {}
        self._pending_seed: int | None = None
        self._steps = 0
        self._resets = 0

    def run(self) -> int:
        """Connects, serves until the trainer closes or goes away, and returns the exit code."""
        if self.faults.never_connect:
            logger.info("test fault: never connecting to the trainer")
            threading.Event().wait()
        channel = grpc.insecure_channel(
            f"localhost:{self.port}",
            options=[
                ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ],
        )
        path = self.wire.method_path
        exchange = channel.unary_unary(path, request_serializer=_serialize, response_deserializer=self.wire.parse)
        raw_exchange = channel.unary_unary(path)  # bytes in, bytes out: for the malformed-message fault
        try:
            return self._serve(exchange, raw_exchange)
        except grpc.RpcError as exc:
            details = exc.details() if hasattr(exc, "details") else ""
            logger.info("the trainer went away or refused the call (%s: %s); quitting", exc.code() if hasattr(exc, "code") else exc, details)
            return 0
        finally:
            channel.close()

    def _serve(self, exchange: grpc.UnaryUnaryMultiCallable, raw_exchange: grpc.UnaryUnaryMultiCallable) -> int:
        first = exchange(self.wire.hello(), wait_for_ready=True, timeout=CONNECT_TIMEOUT)
        if self.faults.crash_in_handshake:
            self._crash("between the two calls of the handshake")
        second = exchange(_STATUS_OK_ONLY)
        if first.header.status != STATUS_OK or second.header.status != STATUS_OK:
            logger.info("the trainer refused the connection during the handshake (versions?); quitting")
            return 0
        seed, trainer = self.wire.connected(first)
        logger.info("connected to %s, seed %d, port %d", trainer, seed, self.port)
        self._build_scene(seed)
        rl_input = second.unity_input.rl_input
        has_reset = False
        while True:
            for key, value in self.wire.read_input(rl_input):
                self._set_parameter(key, value)
            if rl_input.command == pb.QUIT:
                logger.info("QUIT received; quitting")
                return 0
            if rl_input.command == pb.RESET or not has_reset:
                self._resets += 1
                if self._resets == self.faults.crash_at_reset:
                    self._crash(f"at reset {self._resets}")
                self._reset()
                has_reset = True
            else:
                self._steps += 1
                self._check_faults(exchange, raw_exchange)
                assert self._scene is not None
                self._scene.act(self.wire.actions(rl_input, self._scene))
            assert self._scene is not None
            if self.frame_time:
                time.sleep(self.frame_time)  # the time a Unity player spends on its frame
            response = exchange(self.wire.output(self._scene))
            if response.header.status != STATUS_OK:
                logger.info("the trainer closed the connection (status %d); quitting", response.header.status)
                return 0
            rl_input = response.unity_input.rl_input

    @staticmethod
    def _crash(when: str) -> None:
        logger.info("test fault: crashing %s", when)
        logging.shutdown()
        os._exit(3)

    def _check_faults(self, exchange: grpc.UnaryUnaryMultiCallable, raw_exchange: grpc.UnaryUnaryMultiCallable) -> None:
        step = self._steps
        if step == self.faults.crash_at_step:
            self._crash(f"at step {step}")
        if step == self.faults.hang_at_step:
            logger.info("test fault: hanging at step %d", step)
            threading.Event().wait()
        if step == self.faults.quit_at_step:
            logger.info("test fault: quitting at step %d like a closing Unity (status 400)", step)
            exchange(pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_CLOSING)))
            logging.shutdown()
            os._exit(0)
        if step == self.faults.malformed_at_step:
            logger.info("test fault: sending bytes that are not a message at step %d", step)
            answer = raw_exchange(b"\x0a\xff\xff\xff\xff\x0f not a message")
            logger.info("the trainer answered %r; quitting", answer)
            logging.shutdown()
            os._exit(0)
        if step == self.faults.oversized_at_step:
            logger.info("test fault: sending a message of %d bytes at step %d", OVERSIZED_MESSAGE_BYTES, step)
            exchange(pb.UnityMessageProto(header=pb.HeaderProto(status=STATUS_OK, message="x" * OVERSIZED_MESSAGE_BYTES)))
            logger.info("the trainer accepted it; quitting")
            logging.shutdown()
            os._exit(0)

    # ------------------------------------------------------------------ scene

    def _build_scene(self, seed: int) -> None:
        self._scene = self.scene_class(seed=seed, **self.scene_kwargs)
        for key, value in self._floats.items():
            self._scene.set_parameter(key, value)
        self.wire.scene_built(self._scene)

    def _reset(self) -> None:
        if self._pending_seed is not None:
            logger.info("reseeding the scene with %d", self._pending_seed)
            self._build_scene(self._pending_seed)
            self._pending_seed = None
        assert self._scene is not None
        for key, (sampler, rng) in self._samplers.items():
            self._scene.set_parameter(key, _draw(sampler, rng))
        self._scene.reset()
        self.wire.scene_reset()

    def _set_parameter(self, key: str, value: float | Sampler) -> None:
        """An environment parameter from the trainer: the seed for the next reset, a sampler
        drawn at every reset, or a value passed on to the scene now."""
        if key == SEED_PARAMETER:
            self._pending_seed = int(value) if isinstance(value, float) else None
        elif isinstance(value, Sampler):
            self._samplers[key] = (value, np.random.default_rng(value.seed))
            self._floats.pop(key, None)
        else:
            self._floats[key] = value
            self._samplers.pop(key, None)
            assert self._scene is not None
            self._scene.set_parameter(key, value)

    # ------------------------------------------------------------------ output

    @staticmethod
    def _fill_agent_infos(out: object, batch: AgentBatch, encoders: tuple[ObservationEncoder, ...]) -> None:
        done = np.asarray(batch.done, bool).tolist()
        max_step = np.asarray(batch.max_step_reached, bool).tolist()
        rewards = np.asarray(batch.rewards, np.float32).tolist()
        ids = np.asarray(batch.agent_ids).tolist()
        masked = None if batch.action_mask is None else (~np.asarray(batch.action_mask, bool)).tolist()
        sensors = [encoder.encode(values) for encoder, values in zip(encoders, batch.observations)]
        for i in range(len(batch)):
            info = out.add(reward=rewards[i], done=done[i], max_step_reached=max_step[i], id=ids[i])  # type: ignore[attr-defined]
            if masked is not None and not done[i]:
                info.action_mask.extend(masked[i])
            for rows in sensors:
                info.observations.add().MergeFromString(rows[i])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gym_unity_il.scenes",
        description="Serve a built-in scene over Unity ML-Agents' protocol, like a Unity player.",
        allow_abbrev=False,
    )
    parser.add_argument("scene", help="a built-in scene name or module:Class")
    parser.add_argument("--mlagents-port", type=int, default=None, help="the trainer's port on localhost (ML-Agents 1.0 and later)")
    parser.add_argument("--port", type=int, default=None, help="the trainer's port on localhost (ML-Agents 0.x)")
    parser.add_argument("--protocol", choices=sorted(LEGACY_PROTOCOLS), default=None, help="be a player of this ML-Agents 0.x release")
    parser.add_argument("--stacked-vectors", type=int, default=1, help="with --protocol: vector frames each agent sends (default 1)")
    parser.add_argument("--scene-kwargs", default="{}", help="JSON object of keyword arguments for the scene")
    parser.add_argument("--frame-time", type=float, default=0.0, help="seconds every step waits before the answer, like a rendered frame")
    parser.add_argument("-logFile", dest="log_file", default=None, help="write the log here")
    parser.add_argument("-nographics", action="store_true", help="accepted and ignored")
    parser.add_argument("-batchmode", action="store_true", help="accepted and ignored")
    parser.add_argument("--fault", action="append", default=[], help="test aid, repeatable: see the module docstring")
    parser.add_argument("--communication-version", default=COMMUNICATION_VERSION, help="test aid: API version to report")
    parser.add_argument("--package-version", default=UNITY_PACKAGE_VERSION, help="test aid: com.unity.ml-agents version to report")
    return parser


def _port(args: argparse.Namespace) -> int:
    """The trainer's port: the flag of the era spoken, else the other one.

    Raises:
        ConfigError: neither flag given.
    """
    own, other = (args.port, args.mlagents_port) if args.protocol else (args.mlagents_port, args.port)
    port = own if own is not None else other
    if port is None:
        raise ConfigError("give the trainer's port: --mlagents-port N (ML-Agents 1.0 and later) or --port N (ML-Agents 0.x)")
    return port


def _log_to_file(path: str) -> str | None:
    """Sends stderr (the log and tracebacks) to ``path``, creating its folder, like Unity's
    ``-logFile``; returns why it could not (stderr stays as it is), else None."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        sys.stderr = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    except OSError as exc:
        return f"cannot write the log file {path!r} ({exc.strerror or exc})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gym_unity_il.scenes``; returns the exit code (2 for bad arguments)."""
    args, unknown = _parser().parse_known_args(argv)
    log_problem = _log_to_file(args.log_file) if args.log_file else None
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    if log_problem:
        logger.warning("%s; logging to stderr instead", log_problem)
    if unknown:
        logger.info("ignoring arguments %s", unknown)
    try:
        kwargs = json.loads(args.scene_kwargs)
        if not isinstance(kwargs, dict):
            raise ConfigError(f"--scene-kwargs must be a JSON object, got {args.scene_kwargs!r}")
        scene_class = resolve_scene(args.scene)
        check_scene_kwargs(scene_class, kwargs)
        faults = Faults.parse(args.fault).first_life()
        port = _port(args)
        if not 0 <= args.frame_time <= MAX_FRAME_TIME:
            raise ConfigError(f"--frame-time must be from 0 to {MAX_FRAME_TIME} seconds, got {args.frame_time}")
        if args.protocol:
            wire: Wire = LegacyWire.for_scene(LEGACY_PROTOCOLS[args.protocol], scene_class, kwargs, stacked=args.stacked_vectors)
        elif args.stacked_vectors != 1:
            raise ConfigError(f"--stacked-vectors applies to ML-Agents 0.x only: give --protocol ({', '.join(LEGACY_PROTOCOLS)}) with it")
        else:
            wire = ModernWire(communication_version=args.communication_version, package_version=args.package_version)
    except (json.JSONDecodeError, ConfigError) as exc:
        logger.error("%s", exc)
        return 2
    player = ScenePlayer(scene_class=scene_class, scene_kwargs=kwargs, port=port, wire=wire, faults=faults, frame_time=args.frame_time)
    return player.run()
