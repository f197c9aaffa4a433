"""Observation, action and spec conversion between protobuf messages and numpy."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.link import codec
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec


def _roundtrip(message):
    return type(message).FromString(message.SerializeToString())


@pytest.mark.parametrize("channels_first", [False, True])
@pytest.mark.parametrize("channels", [1, 3, 4, 7])
@pytest.mark.parametrize("compress", [True, False])
def test_image_roundtrip_every_layout(channels_first: bool, channels: int, compress: bool) -> None:
    rng = np.random.default_rng(channels)
    spec = ObservationSpec(shape=(channels, 5, 6) if channels_first else (5, 6, channels), channels_first=channels_first, name="cam")
    image = rng.integers(0, 256, (5, 6, channels), dtype=np.uint8)
    proto = _roundtrip(codec.encode_observation(image, spec, compress=compress))
    assert proto.compression_type == (pb.PNG if compress else pb.NONE)
    decoded_spec = codec.observation_spec_from_proto(proto)
    assert decoded_spec == spec
    assert np.array_equal(codec.decode_observation(proto, decoded_spec), image)
    as_float = codec.decode_observation(proto, decoded_spec, "chw_float")
    assert as_float.dtype == np.float32 and as_float.shape == (channels, 5, 6)
    np.testing.assert_allclose(as_float, image.transpose(2, 0, 1) / 255.0, atol=1e-6)
    if compress and channels > 3:
        assert list(proto.compressed_channel_mapping)[:channels] == list(range(channels))


def test_layout_falls_back_to_package_version_without_dimension_properties() -> None:
    proto = pb.ObservationProto(shape=[3, 4, 5], float_data=codec.float_data_from_array(np.zeros(60)))
    assert codec.observation_spec_from_proto(proto, channels_first=True).hwc == (4, 5, 3)
    assert codec.observation_spec_from_proto(proto).hwc == (3, 4, 5)
    assert codec.channels_first_for_package("3.0.0-exp.1") and codec.channels_first_for_package("4.0.2")
    assert not codec.channels_first_for_package("2.3.0-exp.3") and not codec.channels_first_for_package("garbage")


def test_grayscale_png_is_the_mean_of_rgb_like_unity() -> None:
    rgb = np.array([[[30, 60, 90], [0, 0, 3]]], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    proto = pb.ObservationProto(shape=[1, 2, 1], compression_type=pb.PNG, compressed_data=buf.getvalue())
    spec = codec.observation_spec_from_proto(proto)
    assert codec.decode_observation(proto, spec)[:, :, 0].tolist() == [[60, 1]]
    np.testing.assert_allclose(codec.decode_observation(proto, spec, "chw_float")[0], [[60 / 255, 1 / 255]], rtol=1e-6)


def test_channel_mapping_averages_and_drops() -> None:
    a = np.full((2, 2, 3), [10, 20, 30], np.uint8)
    b = np.full((2, 2, 3), [40, 50, 60], np.uint8)
    data = b"".join(_png(x) for x in (a, b))
    proto = pb.ObservationProto(shape=[2, 2, 2], compression_type=pb.PNG, compressed_data=data, compressed_channel_mapping=[0, 0, 1, -1, 1, -1])
    out = codec.decode_observation(proto, codec.observation_spec_from_proto(proto))
    assert out[0, 0].tolist() == [15, 40]  # mean(10, 20) and mean(30, 50)


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"not a png at all", "not PNG data"), (_png(np.zeros((2, 2, 3), np.uint8))[:40], "truncated")],
)
def test_bad_png_is_a_protocol_error(data: bytes, message: str) -> None:
    proto = pb.ObservationProto(shape=[2, 2, 3], compression_type=pb.PNG, compressed_data=data)
    with pytest.raises(UnityProtocolError, match=message):
        codec.decode_observation(proto, codec.observation_spec_from_proto(proto))


def test_png_of_wrong_size_is_a_protocol_error() -> None:
    proto = pb.ObservationProto(shape=[3, 2, 3], compression_type=pb.PNG, compressed_data=_png(np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(UnityProtocolError, match=r"decodes to \(2, 2, 3\)"):
        codec.decode_observation(proto, codec.observation_spec_from_proto(proto))


def _behavior() -> BehaviorSpec:
    return BehaviorSpec(
        "Grid?team=0",
        (ObservationSpec(shape=(4, 4, 3), name="Camera"), ObservationSpec(shape=(3,), name="VectorSensor_size3")),
        ActionSpec(0, (3, 2)),
    )


def test_decode_agent_infos_splits_keeps_order_and_inverts_masks() -> None:
    spec = _behavior()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 4, 4, 3), dtype=np.uint8)
    vectors = rng.normal(size=(4, 3)).astype(np.float32)
    infos = []
    for i in range(4):
        info = pb.AgentInfoProto(id=10 + i, reward=0.5 * i, done=i in (1, 2), max_step_reached=i == 2, group_id=i)
        info.observations.extend(codec.encode_observation(x, o) for x, o in zip((images[i], vectors[i]), spec.observation_specs))
        info.action_mask.extend([i == 0, False, False, False, True])
        infos.append(_roundtrip(info))
    decision, terminal = codec.decode_agent_infos(infos, spec)
    assert decision.agent_id.tolist() == [10, 13] and terminal.agent_id.tolist() == [11, 12]
    assert np.array_equal(decision.obs[0], images[[0, 3]]) and np.array_equal(terminal.obs[1], vectors[[1, 2]])
    assert terminal.reward.tolist() == [0.5, 1.0] and terminal.interrupted.tolist() == [False, True]
    assert decision.action_mask.tolist() == [[False, True, True, True, False], [True, True, True, True, False]]
    assert terminal.action_mask is None and terminal.group_id.tolist() == [1, 2]
    assert decision.obs[1].flags.writeable


def test_decode_agent_infos_rejects_nan_and_missing_observations() -> None:
    spec = BehaviorSpec("B?team=0", (ObservationSpec(shape=(2,), name="v"),), ActionSpec(1))
    good = pb.AgentInfoProto(observations=[codec.encode_observation(np.zeros(2, np.float32), spec.observation_specs[0])])
    with pytest.raises(UnityProtocolError, match="NaN"):
        codec.decode_agent_infos([pb.AgentInfoProto(reward=float("nan"), observations=good.observations)], spec)
    with pytest.raises(UnityProtocolError, match="sent 0 observations"):
        codec.decode_agent_infos([pb.AgentInfoProto()], spec)
    empty_decision, empty_terminal = codec.decode_agent_infos([], spec)
    assert len(empty_decision) == 0 and empty_terminal.obs[0].shape == (0, 2)


def test_actions_roundtrip_and_legacy_vector() -> None:
    cont = np.array([[0.5, -1.0], [0.25, 0.0]], np.float32)
    disc = np.array([[2], [0]], np.int32)
    actions = _roundtrip(codec.encode_actions(cont, disc, legacy_vector_actions=True))
    assert list(actions.value[0].vector_actions_deprecated) == [0.5, -1.0, 2.0]
    back_c, back_d = codec.decode_actions(actions.value, ActionSpec(2, (3,)))
    assert np.array_equal(back_c, cont) and np.array_equal(back_d, disc)
    legacy_only = [pb.AgentActionProto(vector_actions_deprecated=[0.5, -1.0, 2.0])]
    c, d = codec.decode_actions(legacy_only, ActionSpec(2, (3,)))
    assert c.tolist() == [[0.5, -1.0]] and d.tolist() == [[2]]
    with pytest.raises(UnityProtocolError, match="the spec wants 3 and 1"):
        codec.decode_actions(legacy_only, ActionSpec(3, (3,)))


def test_brain_parameters_match_demo_format_example_and_read_back() -> None:
    # demo-format.md §9: BrainParameters of "Ball?team=0" with 2 continuous actions
    spec = BehaviorSpec("Ball?team=0", (ObservationSpec(shape=(3,), name="VectorSensor_size3"),), ActionSpec(2))
    brain = codec.brain_parameters_to_proto(spec, is_training=False)
    assert brain.SerializeToString() == bytes.fromhex("1a010230013a0b42616c6c3f7465616d3d304a020802")
    info = pb.AgentInfoProto(observations=[codec.encode_observation(np.zeros(3, np.float32), spec.observation_specs[0])])
    assert codec.behavior_spec_from_proto(_roundtrip(brain), info) == spec
    legacy = pb.BrainParametersProto(vector_action_size_deprecated=[3, 2], vector_action_space_type_deprecated=pb.discrete)
    assert codec.action_spec_from_proto(legacy) == ActionSpec(0, (3, 2))
    hybrid = codec.brain_parameters_to_proto(BehaviorSpec("H", (), ActionSpec(1, (2,))), is_training=True)
    assert list(hybrid.vector_action_size_deprecated) == [] and codec.action_spec_from_proto(hybrid) == ActionSpec(1, (2,))
