"""One live connection to a Unity process: server, launch, handshake, exchanges, close.

:class:`UnitySession` is what every env of this package stands on. It starts the gRPC
server, launches a Unity build or a :class:`~gym_unity_il.link.launch.PlayerCommand` (or
waits for the Unity Editor), as its :class:`~gym_unity_il.link.launch.LaunchSettings` say, runs
the two-call handshake, learns behaviors as Unity announces them (§6.3), and turns each
RESET or STEP into one exchange carrying the actions of all agents of all behaviors at once.
The build's era (ML-Agents 0.4 ... 0.11, or communication API 1.x) is read from its
handshake: it picks the :class:`~gym_unity_il.protocol.codec.Codec` every later message goes
through (:func:`~gym_unity_il.protocol.eras.open_codec`, with each era's exact version
check), so that nothing above the session meets the era. Failures become errors of
:mod:`gym_unity_il.errors` that say what to do; after such an error the session has
already closed itself (child ended, port free).

Example::

    with UnitySession(file_name="Builds/3DBall.x86_64", auto_port=True) as session:
        steps = session.reset()
        name = next(iter(session.behavior_specs))
        decision, terminal = steps[name]
        steps = session.step({name: (np.zeros((len(decision), 2), np.float32), np.zeros((len(decision), 0), np.int32))})
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import tempfile
import time
import types
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from gym_unity_il.errors import (
    ConfigError,
    EnvClosedError,
    GymUnityILError,
    SpecMismatchError,
    UnityProcessExitedError,
    UnityProtocolError,
    UnityTimeoutError,
    UnityVersionError,
)
from gym_unity_il.link.launch import LaunchSettings, PlayerCommand
from gym_unity_il.link.launcher import ChildProcess, OwnershipUnknown, find_executable, unity_arguments
from gym_unity_il.link.server import ExchangeServer, peer_address
from gym_unity_il.link.transport import make_exchange_server
from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.protocol.channels import (
    SEED_MODULUS,
    SEED_PARAMETER,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    ScenePictureChannel,
    StatsAggregationMethod,
    StatsSideChannel,
)
from gym_unity_il.protocol.codec import RESET, STEP, Codec, Steps
from gym_unity_il.protocol.eras import open_codec
from gym_unity_il.protocol.handshake import UnityInfo, handshake_response
from gym_unity_il.protocol.messages import STATUS_OK
from gym_unity_il.protocol.side_channels import SideChannel, SideChannelManager
from gym_unity_il.spec import BehaviorSpec, ImageFormat, check_image_format
from gym_unity_il.timers import phase
from gym_unity_il.version import __version__

logger = logging.getLogger(__name__)

#: How often a wait for Unity checks whether the launched process is still alive, in seconds.
_POLL_INTERVAL = 0.1
_LOG_TAIL_LINES = 20
#: Why a handshake from a process other than the launched one is refused (also sent to that caller).
NOT_THE_LAUNCHED_PLAYER = (
    "not the launched player: the connection belongs to no process of the tree the trainer launched. A player that "
    "leaves that tree (double fork, daemon) is refused too: pass the player executable itself as file_name"
)

__all__ = ["NOT_THE_LAUNCHED_PLAYER", "Steps", "UnitySession"]


def _log_tail(log_file: Path | None) -> str:
    """The last lines of the log file, formatted for an error message ('' when unreadable)."""
    if log_file is None:
        return ""
    try:
        lines = log_file.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    except OSError:
        return ""
    return "\nLast lines of the log:\n    " + "\n    ".join(lines) if lines else ""


def _release(server: ExchangeServer, child: ChildProcess | None, child_timeout: float, temp_folder: str | None) -> None:
    """Answers Unity's pending call with status 400, stops the server, ends the child, and
    deletes the temporary log folder (if given)."""
    server.close()
    if child is not None:
        child.stop(child_timeout)
    if temp_folder is not None:
        shutil.rmtree(temp_folder, ignore_errors=True)


def _check_launched_peer(child: ChildProcess, port: int, describe: str, peer: str) -> str | None:
    """None when the connection ``peer`` (gRPC's peer string of a handshake to ``port``)
    belongs to ``child`` or one of its descendants, or when that cannot be checked (then with
    a warning saying why); else the reason to refuse it."""
    address = peer_address(peer)
    try:
        if address is None:
            raise OwnershipUnknown("gRPC gives no TCP address for it")
        if child.owns_connection(address, port):
            return None
    except OwnershipUnknown as exc:
        logger.warning(
            "cannot check that the handshake from %s comes from %s: %s. Accepting it, as the first valid handshake "
            "(see 'One peer per session' in docs/reliability.md)", peer, describe, exc,
        )  # fmt: skip
        return None
    return NOT_THE_LAUNCHED_PLAYER


class UnitySession:
    """A live connection to one Unity player, Unity Editor or other player.

    The launch settings (``launch=LaunchSettings(...)`` or its fields as keywords) select
    the other side: ``file_name`` (a Unity build) or ``editor=True``; or else ``player``, a
    command that starts a player (the envs make one for each built-in scene). The
    constructor returns once the handshake is done; the first call is normally :meth:`reset`.

    A launched player is the only program the session serves: a handshake from a
    connection that neither the launched process nor one of its descendants holds is
    refused (see "One peer per session" in docs/reliability.md). With the Editor, which the
    session does not launch, the first valid handshake is served.

    Args:
        launch: the :class:`~gym_unity_il.link.launch.LaunchSettings` (ports, timeout,
            log folder, ...); fields given as keywords replace its values.
        player: the command that starts the player, instead of ``file_name`` or ``editor``.
        seed: the seed sent in the handshake (Unity's ``Random.InitState``; scenes' RNG).
        num_areas: training-area copies for scenes using Unity's TrainingAreaReplicator.
        image_format: ``"hwc_uint8"`` or ``"chw_float"`` for visual observations.
        env_parameters: environment parameters sent with the first RESET (to a 0.x build:
            reset parameters, only those it announces).
        side_channels: extra side channels (ids must differ from the built-in ones;
            communication API 1.x only: a 0.x build has none).
        **launch_fields: fields of :class:`~gym_unity_il.link.launch.LaunchSettings`.

    Raises:
        UnityExecutableNotFoundError: ``file_name`` names no executable (raised before any wait).
        PortInUseError: the port is taken; the message names it and the fix.
        UnityTimeoutError: nothing connected within ``timeout_wait``; names the log file.
        UnityProcessExitedError: the process exited before the handshake finished.
        UnityVersionError: Unity speaks a communication API version of an era this package
            does not speak (the message names it and the supported ones).
        ConfigError: contradictory or invalid arguments, an unknown keyword; ``side_channels``
            or ``num_areas`` with a 0.x build.
    """

    def __init__(
        self,
        *,
        launch: LaunchSettings | None = None,
        player: PlayerCommand | None = None,
        seed: int = 0,
        num_areas: int = 1,
        image_format: ImageFormat = "hwc_uint8",
        env_parameters: Mapping[str, float] | None = None,
        side_channels: Iterable[SideChannel] = (),
        **launch_fields: object,
    ) -> None:
        self._closed = True  # until the constructor succeeds, close() has nothing to do
        check_image_format(image_format)
        launch = LaunchSettings.from_kwargs(launch, **launch_fields)
        if player is not None and (launch.file_name is not None or launch.editor):
            raise ConfigError("give only one of file_name (a Unity build), player (a command that starts one) or editor=True")
        if player is None and launch.file_name is None and not launch.editor:
            raise ConfigError("nothing to connect to: give file_name (a Unity build), player (a command that starts one) or editor=True")
        executable = find_executable(launch.file_name) if launch.file_name is not None else None

        #: The settings this session was launched with.
        self.launch = launch
        self.timeout_wait = float(launch.timeout_wait)
        self.image_format: ImageFormat = image_format
        self.worker_id = launch.worker_id
        port = launch.port(auto_port=player is not None and player.auto_port)

        self._engine_channel = EngineConfigurationChannel()
        self._parameters_channel = EnvironmentParametersChannel()
        self._stats_channel = StatsSideChannel()
        #: Pictures the player draws on request (``request()``, then ``pictures``): a player
        #: whose command says ``draws_pictures`` (built-in scenes); None for Unity.
        self.scene_pictures: ScenePictureChannel | None = ScenePictureChannel() if player is not None and player.draws_pictures else None
        builtin = [self._engine_channel, self._parameters_channel, self._stats_channel, *([self.scene_pictures] if self.scene_pictures is not None else [])]
        self._side_channels = SideChannelManager([*builtin, *side_channels])
        if launch.engine_config is not None:
            self._engine_channel.set_configuration(launch.engine_config)  # type: ignore[arg-type]  # a mapping became an EngineConfig
        self._user_channels = tuple(side_channels)
        #: Parameters for the next RESET: every era takes parameters with a RESET.
        self._parameters: dict[str, float] = dict(env_parameters or {})

        self._specs: dict[str, BehaviorSpec] = {}
        self._steps: Steps = {}
        self._has_reset = False
        self._failed = False
        self._keep_log = True
        self.unity_info: UnityInfo | None = None
        self._codec: Codec | None = None
        self._child: ChildProcess | None = None
        self._temp_log_folder: str | None = None
        self.log_file: Path | None = None

        self._server = make_exchange_server(
            port=port, host=launch.host, max_message_bytes=launch.max_message_bytes, extra_ports=launch.extra_ports()
        )
        self.port: int = self._server.port
        self._closed = False
        self._finalizer = weakref.finalize(self, _release, self._server, None, 0.0, None)
        self._describe = "the Unity Editor" if launch.editor else player.description if player is not None else f"Unity executable {executable}"
        try:
            if not launch.editor:
                if launch.log_folder is None:
                    self._temp_log_folder = tempfile.mkdtemp(prefix="gym_unity_il-")
                folder = Path(launch.log_folder if launch.log_folder is not None else self._temp_log_folder)  # type: ignore[arg-type]
                folder.mkdir(parents=True, exist_ok=True)
                flags = unity_arguments(
                    port=self.port, worker_id=launch.worker_id, no_graphics=launch.no_graphics, log_folder=folder,
                    additional_args=launch.additional_args,
                )  # fmt: skip
                if player is not None:
                    self._child = ChildProcess(args=[*player.argv, *flags], env=player.environment)
                else:
                    self._child = ChildProcess(args=[str(executable), *flags])
                self.log_file = self._child.log_file
                # (not a method of self: the server must not keep the session alive)
                self._server.peer_check = functools.partial(_check_launched_peer, self._child, self.port, self._describe)
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _release, self._server, self._child, 0.0, self._temp_log_folder)
            self._handshake(seed=seed, num_areas=num_areas)
        except BaseException:
            self._fail()
            raise

    # ------------------------------------------------------------------ public API

    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        """The behaviors Unity announced so far, in announcement order (read-only)."""
        return types.MappingProxyType(self._specs)

    @property
    def steps(self) -> Mapping[str, tuple[StepBatch, StepBatch]]:
        """The ``(decision, terminal)`` batches of the last message, per known behavior (read-only)."""
        return types.MappingProxyType(self._steps)

    @property
    def refused_calls(self) -> int:
        """Calls the server refused: from other connections than Unity's, or before the
        handshake without being one (see :mod:`gym_unity_il.link.server`)."""
        return self._server.refused_calls

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def process_id(self) -> int | None:
        """The pid of the launched process (None with the Editor)."""
        return self._child.pid if self._child is not None else None

    @property
    def environment_parameters(self) -> EnvironmentParametersChannel:
        """The channel for samplers and parameters; queued messages travel with the next
        exchange (communication API 1.x; a 0.x build has no side channels: use
        :meth:`reset`'s ``env_parameters``)."""
        return self._parameters_channel

    @property
    def has_side_channels(self) -> bool:
        """Whether the build takes side-channel messages (communication API 1.x): False for a
        0.x build, whose parameters go with :meth:`reset` only."""
        return self._codec is not None and self._codec.side_channels

    @property
    def engine_configuration(self) -> EngineConfigurationChannel:
        """The engine settings channel; queued messages travel with the next exchange
        (communication API 1.x; a 0.x build takes its train mode from the launch's ``engine_config``)."""
        return self._engine_channel

    def takes_actions(self, behavior: str) -> bool:
        """Whether the trainer decides for ``behavior``. False for brains a 0.x build decides
        itself (a Player brain, a brain the Broadcast Hub does not let Python control): their
        agents are observed, their actions come as ``stored_actions``, and none is sent."""
        return self._codec is None or self._codec.takes_actions(behavior)

    def take_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        """The stats Unity recorded since the last call: key -> [(value, aggregation), ...]."""
        return self._stats_channel.take_stats()

    def reset(self, *, seed: int | None = None, env_parameters: Mapping[str, float] | None = None) -> Steps:
        """Sends RESET (all agents start new episodes) and returns Unity's next message.

        Args:
            seed: reseeds the scene first, through the environment parameter
                ``gym_unity_il.seed`` (value ``seed % 2**24``). Built-in scenes honour it;
                a Unity build honours it if its code reads that parameter (a 0.x build: if
                its Academy announces it as a reset parameter; else it is not sent, with a warning).
            env_parameters: float environment parameters to set before the reset.

        Raises:
            ConfigError: a parameter a 0.x build did not announce; nothing is sent, and the
                parameters given in this call are dropped.
        """
        self._check_open()
        queued = dict(self._parameters)
        self._parameters.update(env_parameters or {})
        if seed is not None:
            self._parameters[SEED_PARAMETER] = int(seed) % SEED_MODULUS
        try:
            steps = self._exchange(RESET)
        except ConfigError:
            self._parameters = queued
            raise
        self._has_reset = True
        return steps

    def step(self, actions: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Steps:
        """Sends STEP with actions for every agent awaiting a decision and returns Unity's next message.

        Args:
            actions: per behavior, ``(continuous float32 [n, c], discrete int32 [n, d])`` for
                the ``n`` agents of its last decision steps, in their order. Behaviors left
                out get all-zero actions; behaviors the build decides itself
                (:meth:`takes_actions`) get none, and what is given for them is not sent.

        Raises:
            SpecMismatchError: an unknown behavior or actions of the wrong shape.
        """
        self._check_open()
        if not self._has_reset:
            return self.reset()
        actions = actions or {}
        for name in actions:
            if name not in self._specs:
                raise SpecMismatchError(f"actions for unknown behavior {name!r}; known behaviors: {list(self._specs)}")
        chosen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, (decision, _) in self._steps.items():
            n = len(decision)
            if n == 0 or not self.takes_actions(name):
                continue
            act = self._specs[name].action_spec
            if name in actions:
                continuous = np.asarray(actions[name][0], np.float32)
                discrete = np.asarray(actions[name][1], np.int32)
                if continuous.shape != (n, act.continuous_size) or discrete.shape != (n, act.discrete_size):
                    raise SpecMismatchError(
                        f"behavior {name!r}: actions of shapes {continuous.shape} and {discrete.shape}, expected "
                        f"({n}, {act.continuous_size}) continuous and ({n}, {act.discrete_size}) discrete for its {n} deciding agent(s)"
                    )
            else:
                continuous = np.zeros((n, act.continuous_size), np.float32)
                discrete = np.zeros((n, act.discrete_size), np.int32)
            chosen[name] = (continuous, discrete)
        return self._exchange(STEP, chosen)

    def close(self) -> None:
        """Closes the way Unity expects: status 400 on the pending call, server stopped, process
        given ``timeout_wait`` seconds to quit and then killed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        if self._failed:  # end at once, and keep the log the error message points to
            _release(self._server, self._child, 0.0, None if self._keep_log else self._temp_log_folder)
        else:
            _release(self._server, self._child, self.timeout_wait, self._temp_log_folder)

    def __enter__(self) -> UnitySession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"port {self.port}"
        return f"UnitySession({self._describe}, {state})"

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise EnvClosedError(f"{self!r} is closed; create a new env or session")

    def _fail(self, *, keep_log: bool = True) -> None:
        """Closes at once after an error, keeping the log folder for the user to read unless
        ``keep_log`` is False (a Ctrl+C: no error to explain)."""
        self._failed = True
        self._keep_log = keep_log
        self.close()

    def _receive(self, waiting_for: str) -> pb.UnityMessageProto:
        """Unity's next call (left pending), within ``timeout_wait``, watching the process."""
        deadline = time.monotonic() + self.timeout_wait
        while True:
            try:
                message = self._server.receive(min(_POLL_INTERVAL, max(deadline - time.monotonic(), 0.0)))
            except UnityProtocolError as exc:
                raise UnityProtocolError(f"{self._describe}, while the trainer was waiting for {waiting_for}: {exc}{self._log_hint()}") from exc
            if message is not None:
                if message.header.status != STATUS_OK:
                    raise UnityProcessExitedError(
                        f"{self._describe} closed the connection (status {message.header.status}) while the trainer was "
                        f"waiting for {waiting_for}: the application quit or the Editor left play mode{self._log_hint()}"
                    )
                return message
            if self._child is not None and (code := self._child.poll()) is not None:
                raise UnityProcessExitedError(
                    f"{self._describe} exited with code {code} while the trainer was waiting for {waiting_for}{self._log_hint()}"
                )
            if time.monotonic() >= deadline:
                raise UnityTimeoutError(self._timeout_message(waiting_for))

    def _log_hint(self) -> str:
        if self.log_file is None:
            return self._refusal_hint()
        return f"{self._refusal_hint()}; see the log file {self.log_file}" + _log_tail(self.log_file)

    def _refusal_hint(self) -> str:
        """Before the handshake: the calls refused so far (another program on the port?), else ''."""
        server = self._server
        if server.peer is not None or not server.refused_calls:
            return ""
        return f"; the trainer refused {server.refused_calls} call(s) on its port, the last from {server.last_refusal}"

    def _timeout_message(self, waiting_for: str) -> str:
        if self._child is None:
            return (
                f"no message from the Unity Editor on port {' or '.join(map(str, self._server.ports))} within {self.timeout_wait:g} s while waiting for "
                f"{waiting_for}: press Play in the Editor, and check that the Agent's Behavior Type is Default and that "
                f"ML-Agents' Editor port matches base_port{self._refusal_hint()}"
            )
        return (
            f"{self._describe} sent no message within {self.timeout_wait:g} s while the trainer was waiting for {waiting_for} "
            f"on port {self.port}. Check the log file {self.log_file}; make sure the build contains ML-Agents agents with "
            f"Behavior Type Default and was built for this platform, or raise timeout_wait{self._refusal_hint()}." + _log_tail(self.log_file)
        )

    def _handshake(self, *, seed: int, num_areas: int) -> None:
        self._receive("the first message (handshake)")  # the server returns only a handshake here, and keeps its bytes
        data = self._server.handshake_data
        assert data is not None
        try:
            codec = open_codec(data, who=self._describe, engine_config=self.launch.engine_config)  # type: ignore[arg-type]
        except (UnityVersionError, UnityProtocolError):
            # Refused as the reference trainers do: the handshake is answered, the second message gets status 400.
            self._server.respond(handshake_response(seed=seed, package_version=__version__, num_areas=num_areas).SerializeToString())
            with contextlib.suppress(GymUnityILError):
                self._receive("the second message of the handshake")
            raise
        answer = codec.handshake_response(seed=seed, num_areas=num_areas, package_version=__version__)
        if not codec.side_channels and self._user_channels:
            raise ConfigError(
                f"{self._describe} is an ML-Agents {codec.unity.package_version} build, which has no side channels: "
                "leave side_channels out (reset parameters go with reset(env_parameters=...))"
            )
        self._server.respond(answer)
        codec.expect(self._specs, self.image_format)
        self._server.parse = codec.parse
        self._receive("the second message of the handshake")
        self.unity_info = codec.unity
        if codec.side_channels and not codec.unity.capabilities.get("baseRLCapabilities", False):
            logger.warning("%s does not report the base RL capabilities; it may not work as expected", self._describe)
        if not codec.side_channels:
            self.scene_pictures = None  # pictures are asked for on a side channel
        self._codec = codec

    def _exchange(self, command: int, actions: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Steps:
        """Answers the pending call with ``command``, ``actions`` (arrays per behavior), the
        parameters (with a RESET) and the queued side-channel messages, and decodes Unity's next message."""
        codec = self._codec
        assert codec is not None
        # What the build cannot take (0.x: a parameter it did not announce) is refused while
        # encoding, before anything is sent: the session goes on.
        with phase("encode"):
            side_channel = self._side_channels.outgoing_bytes() if codec.side_channels else b""
            message = codec.encode(command, actions or {}, parameters=self._parameters if command == RESET else {}, side_channel=side_channel)
        try:
            with phase("transport"):
                self._server.respond(message)
                if command == RESET:
                    self._parameters = {}
                reply = self._receive("the answer to RESET" if command == RESET else "the next step")
            with phase("decode"):
                steps, incoming = codec.decode(reply, self._specs, self.image_format)
            if incoming:
                self._side_channels.process_incoming(incoming)
            self._steps = steps
            return dict(self._steps)  # a new dict per message: the caller may keep it
        except KeyboardInterrupt:
            self._fail(keep_log=False)
            raise
        except BaseException:
            self._fail()
            raise

