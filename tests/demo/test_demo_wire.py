"""The vectorised wire scanner: every encoding protobuf allows reads like protobuf reads it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from demo_helpers import spec_of, vector
from gym_unity_il.demo import read_demo
from gym_unity_il.demo.writer import demo_brain_parameters
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import observations
from gym_unity_il.protocol.scan import scan
from gym_unity_il.protocol.wire import WireError, encode_varint


def _field(num: int, wire_type: int, payload: bytes) -> bytes:
    tag = encode_varint(num << 3 | wire_type)
    return tag + (encode_varint(len(payload)) + payload if wire_type == 2 else payload)


def _unpacked_record(values: list[float], action: int, mask: list[bool], agent_id: int) -> bytes:
    """An AgentInfoActionPairProto written field by field: repeated scalars unpacked, an
    unknown fixed64 field and an unknown varint field that readers must skip."""
    float_data = b"".join(_field(1, 5, struct.pack("<f", v)) for v in values)
    obs = _field(1, 0, encode_varint(len(values))) + _field(4, 2, float_data) + _field(6, 0, b"\x01") + _field(8, 2, b"v")
    info = (
        _field(7, 5, struct.pack("<f", 0.5))
        + _field(10, 0, encode_varint(agent_id & 0xFFFFFFFFFFFFFFFF))
        + b"".join(_field(11, 0, bytes([m])) for m in mask)
        + _field(13, 2, obs)
        + _field(99, 1, bytes(8))  # unknown fixed64
    )
    action_info = _field(7, 0, encode_varint(action)) + _field(50, 0, encode_varint(300))
    return _field(1, 2, info) + _field(2, 2, action_info)


def test_unpacked_repeated_fields_read_like_protobuf(tmp_path: Path) -> None:
    spec = spec_of(vector(3, "v"), branches=(4,))
    records = [_unpacked_record([1.5, -2.0, float(i)], i % 4, [i == 1, False, True, False], -i) for i in range(3)]
    meta = pb.DemonstrationMetaProto(api_version=1, demonstration_name="u", number_steps=3, number_episodes=1).SerializeToString()
    brain = demo_brain_parameters(spec).SerializeToString()
    body = b"".join(encode_varint(len(r)) + r for r in records)
    path = tmp_path / "unpacked.demo"
    path.write_bytes(encode_varint(len(meta)) + meta + bytes(32 - len(meta)) + encode_varint(len(brain)) + brain + body + meta)
    demo = read_demo(path)
    for i, raw in enumerate(records):
        pair = pb.AgentInfoActionPairProto.FromString(raw)
        expected = observations.decode_observation(pair.agent_info.observations[0], demo.behavior_spec.observation_specs[0])
        assert np.array_equal(demo.observations[0][i], expected)
        assert demo.stored_discrete_actions[i].tolist() == list(pair.action_info.discrete_actions)
        assert demo.action_masks[i].tolist() == [not m for m in pair.agent_info.action_mask]
        assert demo.agent_ids[i] == pair.agent_info.id == -i
        assert demo.rewards[i] == 0.5


def test_scan_finds_every_field_in_order() -> None:
    msgs = [pb.AgentActionProto(continuous_actions=[0.5] * k, discrete_actions=list(range(k)), value=k).SerializeToString() for k in range(4)]
    data = b"".join(msgs)
    ends = np.cumsum([len(m) for m in msgs])
    fields = scan(np.frombuffer(data, np.uint8), ends - [len(m) for m in msgs], ends)
    buf = np.frombuffer(data, np.uint8)
    values, counts = fields.repeated_varint(buf, 7)
    assert counts.tolist() == [0, 1, 2, 3] and values.tolist() == [0, 0, 1, 0, 1, 2]
    assert fields.fixed32(buf, 4).tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x0a\x05ab", "runs past"),  # length beyond the message
        (b"\x0b", "invalid field tag"),  # wire type 3 (group start)
        (b"\x08\xff\xff", "truncated varint"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x00\x01", "invalid field tag"),  # field number 0
    ],
)
def test_malformed_bytes_raise_wire_errors(data: bytes, what: str) -> None:
    with pytest.raises(WireError, match=what):
        scan(np.frombuffer(data, np.uint8), np.array([0]), np.array([len(data)]))


def test_legacy_0_11_compressed_observations(tmp_path: Path) -> None:
    """0.11 records carry images as CompressedObservationProto (field 13) sized by their own
    shape, the brain has no camera resolutions; stacked vectors are size x stack floats."""
    import io

    from PIL import Image

    from gym_unity_il.demo import DemoEra
    from gym_unity_il.proto import legacy_pb2 as lpb

    rng = np.random.default_rng(5)
    grays = [rng.integers(0, 256, (4, 5), dtype=np.uint8) for _ in range(3)]
    brain = lpb.BrainParametersProto(vector_observation_size=2, num_stacked_vector_observations=2, vector_action_size=[3],
                                     vector_action_space_type=lpb.discrete, brain_name="OldBrain")  # fmt: skip
    records = []
    for k, gray in enumerate(grays):
        png = io.BytesIO()
        Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2)).save(png, format="PNG")
        info = lpb.AgentInfoProto(stacked_vector_observation=[k, k + 0.5, -k, 1.0], stored_vector_actions=[float(k % 3)],
                                  reward=0.25 * k, done=k == 2, id=11, action_mask=[False, k == 1, False])  # fmt: skip
        info.compressed_observations.add(shape=[4, 5, 1], compression_type=lpb.PNG, data=png.getvalue())
        records.append(info.SerializeToString())
    meta = pb.DemonstrationMetaProto(api_version=1, demonstration_name="old", number_steps=3, number_episodes=2).SerializeToString()
    raw_brain = brain.SerializeToString()
    body = b"".join(encode_varint(len(r)) + r for r in records)
    path = tmp_path / "old.demo"
    path.write_bytes(encode_varint(len(meta)) + meta + bytes(32 - len(meta)) + encode_varint(len(raw_brain)) + raw_brain + body + meta)
    demo = read_demo(path)
    assert demo.meta.era is DemoEra.V0_6
    assert [o.shape for o in demo.behavior_spec.observation_specs] == [(4, 5, 1), (4,)]
    assert demo.behavior_spec.action_spec.discrete_branches == (3,)
    assert np.array_equal(demo.observations[0][:, :, :, 0], np.stack(grays))
    assert demo.observations[1][2].tolist() == [2.0, 2.5, -2.0, 1.0]
    assert demo.stored_discrete_actions[:, 0].tolist() == [0, 1, 2]
    assert demo.action_masks[1].tolist() == [True, False, True] and demo.done.tolist() == [False, False, True]
