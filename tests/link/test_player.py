"""The built-in scene player: command line, scene lookup, wire layouts, and leaving with the trainer."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from gym_unity_il.errors import ConfigError
from gym_unity_il.link.launcher import ChildProcess, environment_with_import_path
from gym_unity_il.link.server import SERVICES
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.handshake import handshake_response
from gym_unity_il.scenes import SCENES
from gym_unity_il.scenes.player import Faults, wire_observation_spec
from gym_unity_il.scenes.registry import resolve_scene
from gym_unity_il.spec import DimensionProperty, ObservationSpec


def test_fault_flags_parse_and_unknown_ones_list_the_choices() -> None:
    faults = Faults.parse(["crash-at-step:4", "hang-at-step:2", "quit-at-step:9", "never-connect"])
    assert faults == Faults(crash_at_step=4, hang_at_step=2, quit_at_step=9, never_connect=True)
    with pytest.raises(ConfigError, match="crash-at-step:N.*never-connect"):
        Faults.parse(["explode"])


def test_scenes_resolve_by_name_or_module_path() -> None:
    assert resolve_scene("ball") is SCENES["ball"]
    assert resolve_scene("echo_scene:EchoScene").__name__ == "EchoScene"
    with pytest.raises(ConfigError, match="not a subclass"):
        resolve_scene("gym_unity_il.spec:ActionSpec")
    with pytest.raises(ConfigError, match="choose one of"):
        resolve_scene("nope")


def test_images_are_declared_like_the_unity_release() -> None:
    camera = ObservationSpec((6, 5, 3), name="Camera")  # a scene's HWC image
    modern = wire_observation_spec(camera, channels_first=True)
    assert modern.shape == (3, 6, 5) and modern.channels_first and modern.hwc == (6, 5, 3)
    assert [int(p) for p in modern.dimension_property] == [1, 2, 2]
    legacy = wire_observation_spec(modern, channels_first=False)
    assert legacy.shape == (6, 5, 3) and [int(p) for p in legacy.dimension_property] == [2, 2, 1]
    vector = wire_observation_spec(ObservationSpec((8,)), channels_first=True)
    assert vector.dimension_property == (DimensionProperty.NONE,)


def test_bad_scene_kwargs_stop_the_player_with_a_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gym_unity_il.scenes", "ball", "--mlagents-port", "1", "--scene-kwargs", "[1]", "-nographics"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment_with_import_path(),
    )
    assert result.returncode == 2 and "--scene-kwargs must be a JSON object" in result.stderr


def test_player_quits_when_the_trainer_goes_away(tmp_path: Path, assert_released) -> None:
    """A trainer that vanishes without the status-400 goodbye (no parent-death signal involved)."""
    calls: list[pb.UnityMessageProto] = []
    second_call = threading.Event()
    release = threading.Event()

    def exchange(request: pb.UnityMessageProto, context: grpc.ServicerContext) -> pb.UnityMessageProto:
        calls.append(request)
        if len(calls) == 1:
            return handshake_response(seed=0, package_version="test")
        second_call.set()
        release.wait(30)  # hold the second call until the server is torn down
        return pb.UnityMessageProto()

    handler = grpc.unary_unary_rpc_method_handler(
        exchange, request_deserializer=pb.UnityMessageProto.FromString, response_serializer=pb.UnityMessageProto.SerializeToString
    )
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers(tuple(grpc.method_handlers_generic_handler(service, {method: handler}) for service, method in SERVICES))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    log = tmp_path / "Player-0.log"
    player = ChildProcess(
        args=[sys.executable, "-m", "gym_unity_il.scenes", "ball", "--mlagents-port", str(port), "-logFile", str(log)],
        env=environment_with_import_path(),
    )
    try:
        assert second_call.wait(30)
        server.stop(None).wait()  # gone: the pending call fails on the player's side
        release.set()
        assert player.wait(30) == 0
        assert "went away" in log.read_text()
    finally:
        release.set()
        player.stop()
    assert_released(port)
