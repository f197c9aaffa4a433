"""The committed generated protobuf code is exactly what protos/generate.py produces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gym_unity_il.proto import communicator_pb2 as pb

REPO = Path(__file__).resolve().parents[1]


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate", REPO / "protos" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regeneration_reproduces_committed_code(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    written = _load_generator().generate(tmp_path)
    committed = REPO / "gym_unity_il" / "proto"
    names = sorted(p.name for p in written)
    assert names == sorted(p.name for p in committed.glob("*_pb2.py*"))
    for name in names:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), f"{name} is stale: run python protos/generate.py"


def test_handshake_response_bytes_match_protocol_example() -> None:
    # protocol.md §11: handshake response #1 (seed 0, versions 1.5.0 / 1.1.0, all capabilities, 1 area)
    msg = pb.UnityMessageProto()
    msg.header.status = 200
    init = msg.unity_input.rl_initialization_input
    init.communication_version = "1.5.0"
    init.package_version = "1.1.0"
    for field in pb.UnityRLCapabilitiesProto.DESCRIPTOR.fields:
        setattr(init.capabilities, field.name, True)
    init.num_areas = 1
    expected = bytes.fromhex(
        "0a0308c801" "1a22" "1220" "1205312e352e30" "1a05312e312e30" "220e0801100118012001280130013801" "2801"
    )
    assert msg.SerializeToString() == expected


def test_step_message_bytes_match_protocol_example() -> None:
    # protocol.md §11: STEP with continuous action [0.5, -1.0] for behavior "Ball?team=0"
    msg = pb.UnityMessageProto()
    msg.header.status = 200
    action = msg.unity_input.rl_input.agent_actions["Ball?team=0"].value.add()
    action.vector_actions_deprecated.extend([0.5, -1.0])
    action.continuous_actions.extend([0.5, -1.0])
    expected = bytes.fromhex(
        "0a0308c801" "1a290a27" "0a25" "0a0b42616c6c3f7465616d3d30" "12160a14"
        "0a080000003f000080bf" "32080000003f000080bf"
    )
    assert msg.SerializeToString() == expected
    assert pb.UnityMessageProto(header=pb.HeaderProto(status=400)).SerializeToString() == bytes.fromhex("0a03089003")
