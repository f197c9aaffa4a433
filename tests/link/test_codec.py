"""Observation, action and spec conversion between protobuf messages and numpy."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from gym_unity_il.errors import UnityProtocolError, UnityVersionError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import handshake, images, messages, observations, specs
from gym_unity_il.protocol.actions import decode_actions, encode_action_list
from gym_unity_il.protocol.agents import decode_agent_infos
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
    proto = _roundtrip(observations.encode_observation(image, spec, compress=compress))
    assert proto.compression_type == (pb.PNG if compress else pb.NONE)
    decoded_spec = specs.observation_spec_from_proto(proto)
    assert decoded_spec == spec
    assert np.array_equal(observations.decode_observation(proto, decoded_spec), image)
    as_float = observations.decode_observation(proto, decoded_spec, "chw_float")
    assert as_float.dtype == np.float32 and as_float.shape == (channels, 5, 6)
    np.testing.assert_allclose(as_float, image.transpose(2, 0, 1) / 255.0, atol=1e-6)
    if compress and channels > 3:
        assert list(proto.compressed_channel_mapping)[:channels] == list(range(channels))


def test_layout_falls_back_to_package_version_without_dimension_properties() -> None:
    proto = pb.ObservationProto(shape=[3, 4, 5], float_data=observations.float_data_from_array(np.zeros(60)))
    assert specs.observation_spec_from_proto(proto, channels_first=True).hwc == (4, 5, 3)
    assert specs.observation_spec_from_proto(proto).hwc == (3, 4, 5)
    assert handshake.channels_first_for_package("3.0.0-exp.1") and handshake.channels_first_for_package("4.0.2")
    assert not handshake.channels_first_for_package("2.3.0-exp.3") and not handshake.channels_first_for_package("garbage")


def _hello(communication_version: str, package_version: str, *, base: bool = True) -> pb.UnityMessageProto:
    message = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
    init = message.unity_output.rl_initialization_output
    init.name, init.communication_version, init.package_version = "AcademySingleton", communication_version, package_version
    init.capabilities.baseRLCapabilities = base
    return message


def test_read_handshake_takes_versions_and_capabilities_and_checks_the_version() -> None:
    """The handshake as a pure function: what the session and the fuzzers both call."""
    modern = handshake.read_handshake(_hello("1.5.0", "3.0.0"))
    assert modern.unity.package_version == "3.0.0" and modern.unity.capabilities["baseRLCapabilities"] and modern.base_capabilities
    assert modern.channels_first and not modern.legacy_actions
    old = handshake.read_handshake(_hello("1.0.0", "1.9.1", base=False))
    assert not old.channels_first and old.legacy_actions and not old.base_capabilities
    with pytest.raises(UnityVersionError, match=r"the Editor speaks ML-Agents communication API '2\.0\.0' .*1\.5\.0"):
        handshake.read_handshake(_hello("2.0.0", "4.0.0"), who="the Editor")
    with pytest.raises(UnityProtocolError, match="initialization output"):
        handshake.read_handshake(pb.UnityMessageProto(header=pb.HeaderProto(status=200)))


def test_grayscale_png_is_the_mean_of_rgb_like_unity() -> None:
    rgb = np.array([[[30, 60, 90], [0, 0, 3]]], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    proto = pb.ObservationProto(shape=[1, 2, 1], compression_type=pb.PNG, compressed_data=buf.getvalue())
    spec = specs.observation_spec_from_proto(proto)
    assert observations.decode_observation(proto, spec)[:, :, 0].tolist() == [[60, 1]]
    np.testing.assert_allclose(observations.decode_observation(proto, spec, "chw_float")[0], [[60 / 255, 1 / 255]], rtol=1e-6)


def test_channel_mapping_averages_and_drops() -> None:
    a = np.full((2, 2, 3), [10, 20, 30], np.uint8)
    b = np.full((2, 2, 3), [40, 50, 60], np.uint8)
    data = b"".join(_png(x) for x in (a, b))
    proto = pb.ObservationProto(shape=[2, 2, 2], compression_type=pb.PNG, compressed_data=data, compressed_channel_mapping=[0, 0, 1, -1, 1, -1])
    out = observations.decode_observation(proto, specs.observation_spec_from_proto(proto))
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
        observations.decode_observation(proto, specs.observation_spec_from_proto(proto))


def test_png_of_wrong_size_is_a_protocol_error() -> None:
    proto = pb.ObservationProto(shape=[3, 2, 3], compression_type=pb.PNG, compressed_data=_png(np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(UnityProtocolError, match=r"decodes to \(2, 2, 3\)"):
        observations.decode_observation(proto, specs.observation_spec_from_proto(proto))


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
        info.observations.extend(observations.encode_observation(x, o) for x, o in zip((images[i], vectors[i]), spec.observation_specs))
        info.action_mask.extend([i == 0, False, False, False, True])
        infos.append(_roundtrip(info))
    decision, terminal = decode_agent_infos(infos, spec)
    assert decision.agent_id.tolist() == [10, 13] and terminal.agent_id.tolist() == [11, 12]
    assert np.array_equal(decision.obs[0], images[[0, 3]]) and np.array_equal(terminal.obs[1], vectors[[1, 2]])
    assert terminal.reward.tolist() == [0.5, 1.0] and terminal.interrupted.tolist() == [False, True]
    assert decision.action_mask.tolist() == [[False, True, True, True, False], [True, True, True, True, False]]
    assert terminal.action_mask is None and terminal.group_id.tolist() == [1, 2]
    assert decision.obs[1].flags.writeable


def test_decode_agent_infos_rejects_nan_and_missing_observations() -> None:
    spec = BehaviorSpec("B?team=0", (ObservationSpec(shape=(2,), name="v"),), ActionSpec(1))
    good = pb.AgentInfoProto(observations=[observations.encode_observation(np.zeros(2, np.float32), spec.observation_specs[0])])
    with pytest.raises(UnityProtocolError, match="NaN"):
        decode_agent_infos([pb.AgentInfoProto(reward=float("nan"), observations=good.observations)], spec)
    with pytest.raises(UnityProtocolError, match="sent 0 observations"):
        decode_agent_infos([pb.AgentInfoProto()], spec)
    empty_decision, empty_terminal = decode_agent_infos([], spec)
    assert len(empty_decision) == 0 and empty_terminal.obs[0].shape == (0, 2)


@pytest.mark.parametrize("agents", [1, 12])  # 8 and 96 floats: checked in Python and with numpy
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_observations_that_are_not_finite_are_refused_whatever_their_size(agents: int, bad: float) -> None:
    spec = BehaviorSpec("B?team=0", (ObservationSpec(shape=(8,), name="v"),), ActionSpec(1))
    values = np.linspace(-3e38, 3e38, agents * 8, dtype=np.float32).reshape(agents, 8)  # finite, and their sum too
    infos = [pb.AgentInfoProto(id=i, observations=[observations.encode_observation(v, spec.observation_specs[0])]) for i, v in enumerate(values)]
    decision, _ = decode_agent_infos(infos, spec)
    assert np.array_equal(decision.obs[0], values) and decision.obs[0].flags.writeable
    values[-1, 3] = bad
    infos[-1] = pb.AgentInfoProto(id=agents - 1, observations=[observations.encode_observation(values[-1], spec.observation_specs[0])])
    with pytest.raises(UnityProtocolError, match="NaN or infinite observation 'v'"):
        decode_agent_infos(infos, spec)


def _action_list(continuous: np.ndarray, discrete: np.ndarray, **kwargs: bool) -> pb.UnityRLInputProto.ListAgentActionProto:
    return pb.UnityRLInputProto.ListAgentActionProto.FromString(encode_action_list(continuous, discrete, **kwargs))


def test_actions_roundtrip_and_legacy_vector() -> None:
    cont = np.array([[0.5, -1.0], [0.25, 0.0]], np.float32)
    disc = np.array([[2], [0]], np.int32)
    actions = _action_list(cont, disc, legacy_vector_actions=True)
    assert list(actions.value[0].vector_actions_deprecated) == [0.5, -1.0, 2.0]
    back_c, back_d = decode_actions(actions.value, ActionSpec(2, (3,)))
    assert np.array_equal(back_c, cont) and np.array_equal(back_d, disc)
    legacy_only = [pb.AgentActionProto(vector_actions_deprecated=[0.5, -1.0, 2.0])]
    c, d = decode_actions(legacy_only, ActionSpec(2, (3,)))
    assert c.tolist() == [[0.5, -1.0]] and d.tolist() == [[2]]
    with pytest.raises(UnityProtocolError, match="the spec wants 3 and 1"):
        decode_actions(legacy_only, ActionSpec(3, (3,)))
    none = _action_list(np.zeros((0, 2), np.float32), np.zeros((0, 1), np.int32))
    assert len(none.value) == 0
    c, d = decode_actions(none.value, ActionSpec(2, (3,)))
    assert c.shape == (0, 2) and d.shape == (0, 1)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize(
    ("cont", "disc"),
    [
        (np.array([[0.5, -1.0]], np.float32), np.zeros((1, 0), np.int32)),
        (np.zeros((3, 0), np.float32), np.array([[2, 0], [1, 300], [0, -1]], np.int32)),  # multi-byte and negative varints
        (np.arange(40, dtype=np.float32).reshape(2, 20), np.array([[4], [0]], np.int32)),  # 80-byte rows: two-byte lengths
        (np.zeros((2, 0), np.float32), np.zeros((2, 0), np.int32)),  # agents without actions
        (np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2], np.arange(9, dtype=np.int32).reshape(3, 3)[:, 1:]),  # strided views
    ],
)
def test_action_bytes_are_what_protobuf_writes(cont: np.ndarray, disc: np.ndarray, legacy: bool) -> None:
    expected = pb.UnityRLInputProto.ListAgentActionProto()
    for c, d in zip(cont.tolist(), disc.tolist()):
        action = expected.value.add(continuous_actions=c, discrete_actions=d)
        if legacy:
            action.vector_actions_deprecated.extend(c + [float(v) for v in d])
    assert encode_action_list(cont, disc, legacy_vector_actions=legacy) == expected.SerializeToString()


def test_trainer_message_bytes_are_what_protobuf_writes() -> None:
    actions = {"A?team=0": encode_action_list(np.array([[0.5]], np.float32), np.zeros((1, 0), np.int32)), "B?team=1": b""}
    for command, side_channel in [(pb.STEP, b""), (pb.RESET, b"\x01" * 200), (pb.QUIT, b"x")]:
        expected = pb.UnityMessageProto(header=pb.HeaderProto(status=200))
        rl_input = expected.unity_input.rl_input
        rl_input.command, rl_input.side_channel = command, side_channel
        for name, data in actions.items():
            rl_input.agent_actions[name].MergeFromString(data)
        data = messages.encode_trainer_message(command=command, actions=actions, side_channel=side_channel)
        assert pb.UnityMessageProto.FromString(data) == expected
    # one behavior: byte for byte (map order cannot differ)
    expected.unity_input.rl_input.agent_actions.pop("B?team=1")
    del actions["B?team=1"]
    assert messages.encode_trainer_message(command=pb.QUIT, actions=actions, side_channel=b"x") == expected.SerializeToString()


def test_brain_parameters_match_demo_format_example_and_read_back() -> None:
    # demo-format.md §9: BrainParameters of "Ball?team=0" with 2 continuous actions
    spec = BehaviorSpec("Ball?team=0", (ObservationSpec(shape=(3,), name="VectorSensor_size3"),), ActionSpec(2))
    brain = specs.brain_parameters_to_proto(spec, is_training=False)
    assert brain.SerializeToString() == bytes.fromhex("1a010230013a0b42616c6c3f7465616d3d304a020802")
    info = pb.AgentInfoProto(observations=[observations.encode_observation(np.zeros(3, np.float32), spec.observation_specs[0])])
    assert specs.behavior_spec_from_proto(_roundtrip(brain), info) == spec
    legacy = pb.BrainParametersProto(vector_action_size_deprecated=[3, 2], vector_action_space_type_deprecated=pb.discrete)
    assert specs.action_spec_from_proto(legacy) == ActionSpec(0, (3, 2))
    hybrid = specs.brain_parameters_to_proto(BehaviorSpec("H", (), ActionSpec(1, (2,))), is_training=True)
    assert list(hybrid.vector_action_size_deprecated) == [] and specs.action_spec_from_proto(hybrid) == ActionSpec(1, (2,))


def _pngs(data: bytes) -> list[bytes]:
    """The PNGs one after another in ``data``, as separate byte strings."""
    pieces, start = [], 0
    while start < len(data):
        end = images._png_end(data, start)
        pieces.append(data[start:end])
        start = end
    return pieces


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """``(kind, payload)`` of every chunk of one PNG."""
    out, pos = [], len(images.PNG_SIGNATURE)
    while pos < len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        out.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _pillow_pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img)


@pytest.mark.parametrize("channels", [1, 3, 4, 7])
def test_written_pngs_read_back_exactly_as_pillow_reads_them(channels: int) -> None:
    image = np.random.default_rng(channels).integers(0, 256, (9, 13, channels), dtype=np.uint8)
    data, _ = images.encode_png(image)
    pieces = _pngs(data)
    assert len(pieces) == max(1, -(-channels // 3))
    for png in pieces:
        assert np.array_equal(images.decode_png(png), _pillow_pixels(png))
    assert np.array_equal(images.decode_png(data)[:, :, :channels], image)


def _unfiltered_png(pixels: np.ndarray, colour_type: int) -> bytes:
    """An 8-bit PNG with filter type 0 on every row, built chunk by chunk."""
    h, w, c = pixels.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, w * c)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        images.PNG_SIGNATURE
        + images.png_chunk(b"IHDR", header)
        + images.png_chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + images.png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("channels", "colour_type"), [(1, 0), (3, 2), (4, 6)])
def test_unfiltered_grey_rgb_and_rgba_pngs_decode_to_their_pixels(channels: int, colour_type: int) -> None:
    pixels = np.random.default_rng(colour_type).integers(0, 256, (5, 7, channels), dtype=np.uint8)
    png = _unfiltered_png(pixels, colour_type)
    pillow = _pillow_pixels(png)
    assert np.array_equal(pillow[:, :, None] if pillow.ndim == 2 else pillow, pixels)
    assert np.array_equal(images.decode_png(png), pixels)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_filtered_pngs_decode_as_pillow_reads_them(mode: str) -> None:
    # A smooth gradient: Pillow's encoder filters its rows, as Unity's does.
    y, x = np.mgrid[0:16, 0:20]
    pixels = np.stack([(y * 9 + x * 5) % 256, (x * 11) % 256, (y * 13) % 256, 255 - y * 3], axis=2).astype(np.uint8)
    pixels = pixels[:, :, : len(mode)]
    buf = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode=mode).save(buf, format="PNG")
    png = buf.getvalue()
    idat = b"".join(data for kind, data in _chunks(png) if kind == b"IDAT")
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(16, 1 + 20 * len(mode))
    assert rows[:, 0].any()  # filtered rows: the case of Unity's PNGs
    assert np.array_equal(images.decode_png(png), pixels)


@pytest.mark.parametrize(("mode", "channels"), [("1", 1), ("P", 3), ("LA", 4), ("I;16", 3)])
def test_other_png_modes_decode_to_8_bit_grey_rgb_or_rgba(mode: str, channels: int) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    img = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    decoded = images.decode_png(buf.getvalue())
    assert decoded.dtype == np.uint8 and decoded.shape == (6, 5, channels)
    expected = np.asarray(img.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels]))
    if mode != "I;16":  # Pillow clips 16-bit grey when it converts; libspng scales it to 8 bits
        assert np.array_equal(decoded, expected.reshape(decoded.shape))


@pytest.mark.parametrize(
    "spec",
    [
        ObservationSpec((8,), name="VectorSensor_size8"),
        ObservationSpec((2,), observation_type=1, name="GoalSensor"),
        ObservationSpec((3, 4), name="Grid2d"),
        ObservationSpec((0,), name="Empty"),
        ObservationSpec((6, 5, 3), name="Camera"),
        ObservationSpec((2, 6, 5), channels_first=True, name="CameraChw"),
    ],
)
def test_observation_encoder_gives_the_messages_of_encode_observation(spec: ObservationSpec) -> None:
    shape = spec.output_shape()
    rng = np.random.default_rng(len(spec.name))
    values = rng.integers(0, 256, (4, *shape)).astype(np.uint8) if spec.is_visual else rng.normal(size=(4, *shape)).astype(np.float32)
    rows = observations.ObservationEncoder(spec).encode(values)
    assert len(rows) == 4
    for row, value in zip(rows, values):
        assert pb.ObservationProto.FromString(row) == observations.encode_observation(value, spec)
    if not spec.is_visual:
        with pytest.raises(ValueError, match="expected"):
            observations.ObservationEncoder(spec).encode(np.zeros((4, 9), np.float32))


def test_batched_decode_equals_decoding_each_observation() -> None:
    spec = BehaviorSpec(
        "Mixed?team=0",
        (ObservationSpec((5, 4, 3), name="Camera"), ObservationSpec((3,), name="Ray"), ObservationSpec((2, 2), name="Pairs")),
        ActionSpec(1),
    )
    rng = np.random.default_rng(7)
    infos = []
    for i in range(6):
        info = pb.AgentInfoProto(id=i, reward=float(rng.normal()), done=i % 3 == 2, group_id=i % 2, group_reward=0.5)
        values = (rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), rng.normal(size=3), rng.normal(size=(2, 2)))
        info.observations.extend(observations.encode_observation(v, o) for v, o in zip(values, spec.observation_specs))
        infos.append(_roundtrip(info))
    for image_format in ("hwc_uint8", "chw_float"):
        for batch, done in zip(decode_agent_infos(infos, spec, image_format), (False, True)):
            mine = [info for info in infos if info.done == done]
            assert batch.agent_id.tolist() == [info.id for info in mine]
            assert np.array_equal(batch.reward, np.array([info.reward for info in mine], np.float32))
            assert batch.group_id.tolist() == [info.group_id for info in mine] and batch.group_reward.tolist() == [0.5] * len(mine)
            for k, o in enumerate(spec.observation_specs):
                one_by_one = np.stack([observations.decode_observation(info.observations[k], o, image_format) for info in mine])
                assert batch.obs[k].dtype == one_by_one.dtype and np.array_equal(batch.obs[k], one_by_one)


def _vector_info(agent: int, values: np.ndarray, spec: ObservationSpec, *, name: str | None = None, unpacked: bool = False) -> pb.AgentInfoProto:
    obs = observations.encode_observation(values, spec)
    if name is not None:
        obs.name = name
    info = pb.AgentInfoProto(id=agent, reward=0.25, observations=[obs])
    if unpacked:  # the floats as separate fixed32 fields: valid protobuf, laid out differently
        data = b"".join(b"\x0d" + struct.pack("<f", v) for v in values.ravel().tolist())
        info.observations[0].float_data.Clear()
        info.observations[0].float_data.MergeFromString(data)
    return _roundtrip(info)


@pytest.mark.parametrize("odd", [None, "name", "unpacked", "short"])
def test_vector_rows_laid_out_alike_or_not_decode_as_each_observation(odd: str | None) -> None:
    """Agents whose observations differ only in their values are read as one table; any other
    difference (another sensor name, floats that protobuf reads the same from other bytes, a
    wrong count) goes agent by agent, with the same values or the same error."""
    spec = BehaviorSpec("V?team=0", (ObservationSpec((2, 3), name="v"),), ActionSpec(1))
    values = np.random.default_rng(5).normal(size=(5, 2, 3)).astype(np.float32)
    infos = [_vector_info(i, values[i], spec.observation_specs[0]) for i in range(5)]
    if odd == "name":
        infos[3] = _vector_info(3, values[3], spec.observation_specs[0], name="other")
    elif odd == "unpacked":
        infos[3] = _vector_info(3, values[3], spec.observation_specs[0], unpacked=True)
    elif odd == "short":
        infos[3].observations[0].float_data.data.pop()
    for _ in range(2):  # the second time with the layout the first one learned
        if odd == "short":
            with pytest.raises(UnityProtocolError, match="29 floats for 5 agents of shape"):
                decode_agent_infos(infos, spec)
            continue
        decision, _ = decode_agent_infos(infos, spec)
        assert np.array_equal(decision.obs[0], values) and decision.obs[0].flags.writeable
        one_by_one = np.stack([observations.decode_observation(info.observations[0], spec.observation_specs[0]) for info in infos])
        assert np.array_equal(decision.obs[0], one_by_one)


def test_float_span_finds_the_packed_values_or_says_none() -> None:
    spec = ObservationSpec((4,), name="v")
    data = observations.encode_observation(np.arange(4, dtype=np.float32), spec).SerializeToString()
    at = observations.float_span(data, 4)
    assert at is not None and np.array_equal(np.frombuffer(data[at : at + 16], "<f4"), np.arange(4))
    assert observations.float_span(data, 3) is None  # another count
    assert observations.float_span(data[:-10], 4) is None  # cut inside the values
    twice = data + b"\x22\x00"  # a second, empty float_data field (protobuf merges the two)
    assert observations.float_span(twice, 4) is None


@pytest.mark.parametrize("parallel", [False, True])
def test_image_batches_decode_alike_on_one_thread_or_several(parallel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch decoded on the pool's threads and this one gives the images of decoding each, and
    of several broken ones the first in order is reported, whichever thread met it."""
    limit = 0 if parallel else 1 << 40
    monkeypatch.setattr(observations, "PARALLEL_MIN_IMAGES", limit)
    monkeypatch.setattr(observations, "PARALLEL_MIN_BYTES", limit)
    spec = ObservationSpec((6, 5, 3), name="cam")
    pictures = np.random.default_rng(2).integers(0, 256, (9, 6, 5, 3), dtype=np.uint8)
    protos = [observations.encode_observation(p, spec) for p in pictures]
    for image_format in ("hwc_uint8", "chw_float"):
        one_by_one = np.stack([observations.decode_observation(p, spec, image_format) for p in protos])
        assert np.array_equal(observations.decode_images(protos, spec, image_format), one_by_one)
    for broken in (6, 3):  # on different threads when there are two (parts are every other image)
        protos[broken] = pb.ObservationProto(shape=[6, 5, 3], compression_type=pb.PNG, compressed_data=b"not a png")
    with pytest.raises(observations.ImageBatchError) as caught:
        observations.decode_images(protos, spec)
    assert caught.value.index == 3 and isinstance(caught.value.cause, UnityProtocolError) and "not PNG data" in str(caught.value)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("image_format", ["hwc_uint8", "chw_float"])
def test_a_batch_of_one_image_is_an_array_of_its_own(compress: bool, image_format: str) -> None:
    """One image comes back as a batch of one that the caller may write to (a raw float image's
    values are not left viewing the message's bytes), equal to decoding it alone."""
    spec = ObservationSpec((3, 6, 5), name="cam", channels_first=True)
    picture = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    values = picture if image_format == "hwc_uint8" else picture.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    proto = observations.encode_observation(values, spec, image_format=image_format, compress=compress)  # type: ignore[arg-type]
    batch = observations.decode_images([proto], spec, image_format)  # type: ignore[arg-type]
    assert batch.shape == (1, *spec.output_shape(image_format)) and batch.flags.writeable and batch.flags.c_contiguous  # type: ignore[arg-type]
    np.testing.assert_array_equal(batch[0], observations.decode_observation(proto, spec, image_format))  # type: ignore[arg-type]
    batch[0] = 0  # its own: writing to it changes nothing else
    np.testing.assert_array_equal(observations.decode_images([proto], spec, image_format)[0], observations.decode_observation(proto, spec, image_format))  # type: ignore[arg-type]
