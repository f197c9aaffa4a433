"""Conversion between ML-Agents protobuf messages and numpy arrays plus specs.

This is the single place where observations, actions and behavior specs are decoded and
encoded, for the live link and for `.demo` files alike, so that both hand out identical
arrays. Hot paths avoid per-element Python work: packed float fields are copied with
``np.frombuffer``, all agents of a behavior are decoded into one array per sensor, and
:class:`ObservationEncoder` serializes many agents' vector observations without a protobuf
object per agent. PNGs are written unfiltered with zlib, and unfiltered PNGs are read back
with zlib and numpy; other PNGs (Unity's are filtered) go through Pillow.
"""

from __future__ import annotations

import io
import math
import re
import struct
import zlib
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.spec import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ImageFormat,
    ObservationSpec,
    ObservationType,
    check_image_format,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TE = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE


# ---------------------------------------------------------------------------- versions


def parse_version(version: str) -> tuple[int, int, int]:
    """``"3.0.0-exp.1"`` -> ``(3, 0, 0)``. Raises ValueError when there is no leading number."""
    parts = re.findall(r"\d+", version.split("-")[0])
    if not parts:
        raise ValueError(f"not a version string: {version!r}")
    nums = [int(p) for p in parts[:3]] + [0] * (3 - min(3, len(parts)))
    return nums[0], nums[1], nums[2]


def channels_first_for_package(package_version: str) -> bool:
    """Whether a com.unity.ml-agents release sends rank-3 observations as CHW (3.0.0-exp.1 on)."""
    try:
        return parse_version(package_version)[0] >= 3
    except ValueError:
        return False


# ---------------------------------------------------------------------------- specs


def observation_spec_from_proto(obs: pb.ObservationProto, *, channels_first: bool = False) -> ObservationSpec:
    """The spec of one sensor. A rank-3 layout comes from ``dimension_properties`` when they
    tell it (Unity 2.x: ``[2, 2, 1]`` = HWC; 3.x: ``[1, 2, 2]`` = CHW), else from ``channels_first``."""
    shape = tuple(obs.shape)
    props = tuple(DimensionProperty(p) for p in obs.dimension_properties) if len(obs.dimension_properties) == len(shape) else ()
    if len(shape) == 3 and props:
        te = [bool(p & _TE) for p in props]
        if te == [False, True, True]:
            channels_first = True
        elif te == [True, True, False]:
            channels_first = False
    return ObservationSpec(
        shape=shape,
        dimension_property=props,
        observation_type=ObservationType(obs.observation_type) if obs.observation_type in (0, 1) else ObservationType.DEFAULT,
        name=obs.name,
        channels_first=channels_first and len(shape) == 3,
    )


def action_spec_from_proto(brain: pb.BrainParametersProto) -> ActionSpec:
    """The action spec, falling back to the deprecated fields when ``action_spec`` is empty."""
    spec = brain.action_spec
    if spec.num_continuous_actions or spec.num_discrete_actions:
        return ActionSpec(spec.num_continuous_actions, tuple(spec.discrete_branch_sizes))
    sizes = tuple(brain.vector_action_size_deprecated)
    if brain.vector_action_space_type_deprecated == pb.continuous:
        return ActionSpec(sizes[0] if sizes else 0, ())
    return ActionSpec(0, sizes)


def behavior_spec_from_proto(
    brain: pb.BrainParametersProto, agent_info: pb.AgentInfoProto, *, channels_first: bool = False
) -> BehaviorSpec:
    """A behavior's spec from its announcement plus the first agent's observations."""
    return BehaviorSpec(
        name=brain.brain_name,
        observation_specs=tuple(observation_spec_from_proto(o, channels_first=channels_first) for o in agent_info.observations),
        action_spec=action_spec_from_proto(brain),
    )


def brain_parameters_to_proto(spec: BehaviorSpec, *, is_training: bool) -> pb.BrainParametersProto:
    """The BrainParametersProto Unity sends for ``spec`` (deprecated fields filled as Unity does)."""
    act = spec.action_spec
    brain = pb.BrainParametersProto(brain_name=spec.name, is_training=is_training)
    brain.action_spec.num_continuous_actions = act.continuous_size
    brain.action_spec.num_discrete_actions = act.discrete_size
    brain.action_spec.discrete_branch_sizes.extend(act.discrete_branches)
    if act.is_continuous:
        brain.vector_action_size_deprecated.append(act.continuous_size)
        brain.vector_action_space_type_deprecated = pb.continuous
    elif act.is_discrete:
        brain.vector_action_size_deprecated.extend(act.discrete_branches)
        brain.vector_action_space_type_deprecated = pb.discrete
    return brain


# ---------------------------------------------------------------------------- packed floats


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _packed_float_payload(message: pb.ObservationProto.FloatData) -> bytes:
    """The raw little-endian float32 bytes of a FloatData message (copied once, no Python floats)."""
    raw = message.SerializeToString()
    if not raw:
        return b""
    pos = 1  # tag 0x0A: field 1, length-delimited (protobuf always serialises packed)
    shift = length = 0
    while True:
        byte = raw[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return raw[pos : pos + length]


def float_data_from_array(array: np.ndarray) -> pb.ObservationProto.FloatData:
    """A FloatData message holding ``array`` (any shape) as float32, built from bytes."""
    payload = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return pb.ObservationProto.FloatData.FromString(b"\x0a" + _varint(len(payload)) + payload if payload else b"")


# ---------------------------------------------------------------------------- images


def _png_end(data: bytes, start: int) -> int:
    """Offset just past the IEND chunk of the PNG that starts at ``start``."""
    pos = start + 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    raise UnityProtocolError(f"PNG observation data is truncated (no IEND chunk after offset {start})")


#: PNG colour types read without Pillow, by their number of channels: grey, RGB, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_from_rgb(rgb: np.ndarray) -> bytes:
    """uint8 ``(H, W, 3)`` as an 8-bit RGB PNG: every row with filter type 0 (none), zlib level 1.

    Unfiltered rows cost no per-pixel work on either side (see :func:`_unfiltered_png_pixels`)."""
    h, w, _ = rgb.shape
    rows = np.zeros((h, 1 + 3 * w), np.uint8)  # each row: its filter type byte (0), then its pixels
    rows[:, 1:] = rgb.reshape(h, 3 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # size, bit depth 8, colour type RGB, no interlace
    return PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + _png_chunk(b"IEND", b"")


def _unfiltered_png_pixels(png: bytes) -> np.ndarray | None:
    """The pixels of one PNG read with numpy and zlib alone, when it is 8-bit grey, RGB or RGBA,
    not interlaced, and every row has filter type 0 (as :func:`encode_png` writes them); else None,
    and Pillow decodes it. Both ways give the same array."""
    if len(png) < 33 or png[12:16] != b"IHDR":
        return None
    w, h, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", png, 16)
    channels = _PNG_CHANNELS.get(colour)
    if channels is None or depth != 8 or interlace != 0:
        return None
    compressed = []
    pos = 33  # after the signature and the IHDR chunk
    while pos + 8 <= len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        if png[pos + 4 : pos + 8] == b"IDAT":
            compressed.append(png[pos + 8 : pos + 8 + length])
        pos += 12 + length
    inflate = zlib.decompressobj()
    try:
        first = inflate.decompress(b"".join(compressed), 1)  # the filter type of the first row
        if first != b"\x00":
            return None  # filtered rows, as most encoders (Unity's too) write them
        raw = first + inflate.decompress(inflate.unconsumed_tail) + inflate.flush()
    except zlib.error:
        return None
    if len(raw) != h * (1 + w * channels):
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + w * channels)
    if rows[:, 0].any():
        return None
    return rows[:, 1:].reshape(h, w, channels)


def decode_png_images(data: bytes) -> list[np.ndarray]:
    """Every PNG in ``data`` (several may follow one another) as uint8 ``(H, W, C)`` arrays."""
    images = []
    start = 0
    while True:
        if data[start : start + 8] != PNG_SIGNATURE:
            raise UnityProtocolError(f"compressed observation is not PNG data (bytes at offset {start}: {data[start:start + 8]!r})")
        end = _png_end(data, start)
        png = data[start:end]
        arr = _unfiltered_png_pixels(png)
        if arr is None:
            try:
                with Image.open(io.BytesIO(png)) as img:
                    if img.mode not in ("L", "RGB", "RGBA"):
                        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
                    arr = np.asarray(img)
            except (OSError, ValueError, SyntaxError) as exc:
                raise UnityProtocolError(f"cannot decode the PNG observation at offset {start}: {exc}") from exc
        images.append(arr[:, :, None] if arr.ndim == 2 else arr)
        nxt = data.find(PNG_SIGNATURE, end)
        if nxt < 0:
            return images
        start = nxt


def decode_png(data: bytes) -> np.ndarray:
    """All PNGs in ``data`` stacked along the channel axis: uint8 ``(H, W, sum of channels)``."""
    images = decode_png_images(data)
    return images[0] if len(images) == 1 else np.concatenate(images, axis=2)


def _png_hwc(obs: pb.ObservationProto, h: int, w: int, c: int) -> np.ndarray:
    """Decoded PNG data reduced to ``c`` channels as ML-Agents does; uint8 or float32 (0..255) HWC."""
    images = decode_png_images(obs.compressed_data)
    mapping = list(obs.compressed_channel_mapping)
    if mapping:
        stacked = images[0] if len(images) == 1 else np.concatenate(images, axis=2)
        if len(mapping) != stacked.shape[2]:
            raise UnityProtocolError(
                f"observation {obs.name!r}: channel mapping has {len(mapping)} entries for {stacked.shape[2]} decoded channels"
            )
        out = np.empty(stacked.shape[:2] + (c,), np.float32)
        for k in range(c):
            chosen = [i for i, m in enumerate(mapping) if m == k]
            if not chosen:
                raise UnityProtocolError(f"observation {obs.name!r}: channel mapping {mapping} leaves channel {k} empty")
            out[:, :, k] = stacked[:, :, chosen].mean(axis=2)
        hwc: np.ndarray = out
    elif c == 1:
        first = images[0]
        hwc = first if first.shape[2] == 1 else first.mean(axis=2, dtype=np.float32)[:, :, None]
    else:
        stacked = images[0] if len(images) == 1 else np.concatenate(images, axis=2)
        hwc = stacked[:, :, :c]
    if hwc.shape != (h, w, c):
        raise UnityProtocolError(f"observation {obs.name!r}: PNG data decodes to {hwc.shape}, but its shape says {(h, w, c)} (HWC)")
    return hwc


def _image_out(hwc: np.ndarray, image_format: ImageFormat) -> np.ndarray:
    """``hwc`` (uint8, or float32 on the 0..255 scale) in the requested output format."""
    if image_format == "hwc_uint8":
        return hwc if hwc.dtype == np.uint8 else np.clip(np.rint(hwc), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def decode_observation(obs: pb.ObservationProto, spec: ObservationSpec, image_format: ImageFormat = "hwc_uint8") -> np.ndarray:
    """One sensor's data as the env returns it (see :mod:`gym_unity_il.spec` for the layouts)."""
    if not spec.is_visual:
        data = np.frombuffer(bytearray(_packed_float_payload(obs.float_data)), dtype="<f4")
        if data.size != int(np.prod(spec.shape)):
            raise UnityProtocolError(f"observation {obs.name!r}: {data.size} floats for shape {spec.shape}")
        return data.reshape(spec.shape)
    h, w, c = spec.hwc
    if obs.compression_type == pb.PNG or obs.WhichOneof("observation_data") == "compressed_data":
        return _image_out(_png_hwc(obs, h, w, c), image_format)
    data = np.frombuffer(_packed_float_payload(obs.float_data), dtype="<f4")
    if data.size != h * w * c:
        raise UnityProtocolError(f"observation {obs.name!r}: {data.size} floats for image shape {spec.shape}")
    img = data.reshape(spec.shape)
    if spec.channels_first:
        img = img.transpose(1, 2, 0)
    if image_format == "hwc_uint8":
        return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def encode_png(hwc: np.ndarray) -> tuple[bytes, list[int]]:
    """uint8 ``(H, W, C)`` as PNG bytes the way Unity sends them, and the channel mapping
    (empty unless C > 3). Grayscale goes out as an RGB PNG of equal channels, as Unity does."""
    c = hwc.shape[2]
    if c == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    groups = [hwc[:, :, i : i + 3] for i in range(0, hwc.shape[2], 3)]
    mapping: list[int] = []
    pngs = []
    for gi, group in enumerate(groups):
        n = group.shape[2]
        if n < 3:
            group = np.concatenate([group, np.zeros(group.shape[:2] + (3 - n,), np.uint8)], axis=2)
        pngs.append(_png_from_rgb(group))
        mapping += [gi * 3 + k if k < n else -1 for k in range(3)]
    return b"".join(pngs), (mapping if c > 3 else [])


def encode_observation(
    array: np.ndarray, spec: ObservationSpec, *, image_format: ImageFormat = "hwc_uint8", compress: bool = True
) -> pb.ObservationProto:
    """One sensor's data (in the env's output layout) as the ObservationProto Unity would send.

    Images are PNG-compressed when ``compress`` (else raw floats, value / 255) and declared in
    the spec's wire layout (``spec.channels_first``) with Unity's dimension properties.
    """
    check_image_format(image_format)
    obs = pb.ObservationProto(
        shape=spec.shape,
        dimension_properties=[int(p) for p in spec.dimension_property],
        observation_type=int(spec.observation_type),
        name=spec.name,
    )
    if not spec.is_visual:
        obs.float_data.CopyFrom(float_data_from_array(array))
        return obs
    arr = np.asarray(array)
    if arr.shape != spec.output_shape(image_format):
        raise ValueError(f"observation {spec.name!r}: got an array of shape {arr.shape}, expected {spec.output_shape(image_format)}")
    if image_format == "chw_float":
        hwc = np.clip(np.rint(arr.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    else:
        hwc = arr.astype(np.uint8, copy=False)
    if compress:
        data, mapping = encode_png(hwc)
        obs.compression_type = pb.PNG
        obs.compressed_data = data
        obs.compressed_channel_mapping.extend(mapping)
        return obs
    floats = hwc.astype(np.float32) / np.float32(255.0)
    obs.float_data.CopyFrom(float_data_from_array(floats.transpose(2, 0, 1) if spec.channels_first else floats))
    return obs


# ---------------------------------------------------------------------------- agent batches


@dataclass(frozen=True)
class StepBatch:
    """The agents of one behavior in one message, split as decision or terminal steps.

    Attributes:
        agent_id: ``int32 [n]``.
        obs: one array per sensor, ``[n, *output_shape]``, in the behavior's sensor order.
        reward: ``float32 [n]`` reward since the agent's previous message.
        interrupted: ``bool [n]`` the episode was cut by a step limit (terminal steps only).
        action_mask: ``bool [n, sum(branches)]`` True = action allowed (decision steps of
            discrete behaviors), else None.
        group_id: ``int32 [n]`` multi-agent group (0 = none).
        group_reward: ``float32 [n]``.
    """

    agent_id: np.ndarray
    obs: tuple[np.ndarray, ...]
    reward: np.ndarray
    interrupted: np.ndarray
    action_mask: np.ndarray | None
    group_id: np.ndarray
    group_reward: np.ndarray

    def __len__(self) -> int:
        return len(self.agent_id)

    @classmethod
    def empty(cls, spec: BehaviorSpec, image_format: ImageFormat = "hwc_uint8") -> StepBatch:
        """A batch with no agents, shaped for ``spec``."""
        obs = tuple(np.zeros((0, *o.output_shape(image_format)), o.output_dtype(image_format)) for o in spec.observation_specs)
        return cls(np.zeros(0, np.int32), obs, np.zeros(0, np.float32), np.zeros(0, bool), None, np.zeros(0, np.int32), np.zeros(0, np.float32))


def _stack_sensor(infos: Sequence[pb.AgentInfoProto], index: int, spec: ObservationSpec, image_format: ImageFormat) -> np.ndarray:
    out_shape = (len(infos), *spec.output_shape(image_format))
    if not spec.is_visual:
        raw = b"".join(_packed_float_payload(info.observations[index].float_data) for info in infos)
        data = np.frombuffer(bytearray(raw), dtype="<f4")
        if data.size != math.prod(out_shape):
            raise UnityProtocolError(f"observation {spec.name!r}: {data.size} floats for {len(infos)} agents of shape {spec.shape}")
        return data.reshape(out_shape)
    out = np.empty(out_shape, spec.output_dtype(image_format))
    for i, info in enumerate(infos):
        out[i] = decode_observation(info.observations[index], spec, image_format)
    return out


def _not_finite(behavior: str, what: str) -> UnityProtocolError:
    return UnityProtocolError(f"behavior {behavior!r} sent a NaN or infinite {what}; fix the scene so it stays finite")


def _batch(infos: Sequence[pb.AgentInfoProto], spec: BehaviorSpec, image_format: ImageFormat, with_mask: bool) -> StepBatch:
    if not infos:
        return StepBatch.empty(spec, image_format)
    n_obs = len(spec.observation_specs)
    # One pass over the agents for the scalar fields: a few lists, then one array per field.
    ids, rewards, interrupted, group_ids, group_rewards, counts = zip(
        *[(i.id, i.reward, i.max_step_reached, i.group_id, i.group_reward, len(i.observations)) for i in infos]
    )
    if any(count != n_obs for count in counts):
        bad = next(info for info, count in zip(infos, counts) if count != n_obs)
        raise UnityProtocolError(f"agent {bad.id} of {spec.name!r} sent {len(bad.observations)} observations, its behavior has {n_obs}")
    if not all(map(math.isfinite, rewards)):
        raise _not_finite(spec.name, "reward")
    if not all(map(math.isfinite, group_rewards)):
        raise _not_finite(spec.name, "group reward")
    obs = tuple(_stack_sensor(infos, i, o, image_format) for i, o in enumerate(spec.observation_specs))
    for o, arr in zip(spec.observation_specs, obs):
        if not o.is_visual and not np.isfinite(arr).all():
            raise _not_finite(spec.name, f"observation {o.name!r}")
    mask = None
    branches = spec.action_spec.discrete_branches
    if with_mask and branches:
        total = sum(branches)
        mask = np.ones((len(infos), total), bool)
        for i, info in enumerate(infos):
            if len(info.action_mask) == total:
                mask[i] = ~np.fromiter(info.action_mask, bool, total)
    return StepBatch(
        agent_id=np.array(ids, np.int32),
        obs=obs,
        reward=np.array(rewards, np.float32),
        interrupted=np.array(interrupted, bool),
        action_mask=mask,
        group_id=np.array(group_ids, np.int32),
        group_reward=np.array(group_rewards, np.float32),
    )


def decode_agent_infos(
    infos: Sequence[pb.AgentInfoProto], spec: BehaviorSpec, image_format: ImageFormat = "hwc_uint8"
) -> tuple[StepBatch, StepBatch]:
    """Splits a behavior's agent infos, keeping their order, into (decision steps, terminal steps)."""
    terminal = [info for info in infos if info.done]
    decision = [info for info in infos if not info.done] if terminal else infos
    return _batch(decision, spec, image_format, True), _batch(terminal, spec, image_format, False)


# ---------------------------------------------------------------------------- whole messages


def parse_unity_message(data: bytes) -> pb.UnityMessageProto:
    """Unity's message from its bytes.

    Raises:
        UnityProtocolError: the bytes are not a UnityMessageProto.
    """
    try:
        return pb.UnityMessageProto.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, or its nesting limit on garbage
        raise UnityProtocolError(
            f"Unity sent {len(data)} bytes that are not an ML-Agents message ({exc}); is the other side an ML-Agents "
            "environment of a compatible version?"
        ) from exc


def decode_unity_output(
    output: pb.UnityOutputProto,
    specs: MutableMapping[str, BehaviorSpec],
    *,
    channels_first: bool = False,
    image_format: ImageFormat = "hwc_uint8",
) -> dict[str, tuple[StepBatch, StepBatch]]:
    """Decodes the agent data of one message of Unity (side channels aside).

    Behaviors the message announces (protocol.md §6.3) are added to ``specs``; the result
    holds ``(decision steps, terminal steps)`` for every behavior of ``specs``, empty for
    those without agents in this message.

    Raises:
        UnityProtocolError: the message contradicts itself or the specs (the text says how).
    """
    infos_by_name = output.rl_output.agentInfos
    if output.HasField("rl_initialization_output"):
        for brain in output.rl_initialization_output.brain_parameters:
            name = brain.brain_name
            if name not in infos_by_name or not infos_by_name[name].value:
                raise UnityProtocolError(f"behavior {name!r} was announced without any agent data in the same message (protocol.md §6.3)")
            specs[name] = behavior_spec_from_proto(brain, infos_by_name[name].value[0], channels_first=channels_first)
    for name, infos in infos_by_name.items():
        if name not in specs and infos.value:
            raise UnityProtocolError(f"agents of behavior {name!r} arrived before the behavior was announced (protocol.md §6.3)")
    return {
        name: decode_agent_infos(infos_by_name[name].value if name in infos_by_name else (), spec, image_format)
        for name, spec in specs.items()
    }


# ---------------------------------------------------------------------------- actions


def encode_actions(
    continuous: np.ndarray, discrete: np.ndarray, *, legacy_vector_actions: bool = False
) -> pb.UnityRLInputProto.ListAgentActionProto:
    """One AgentActionProto per row of ``continuous [n, c]`` / ``discrete [n, d]``.

    ``legacy_vector_actions`` also fills the deprecated flat vector (continuous values then
    discrete indices as floats), which Unity releases before communication API 1.3.0 read.
    """
    continuous = np.asarray(continuous, np.float32)
    discrete = np.asarray(discrete, np.int32)
    n = continuous.shape[0] if continuous.ndim == 2 else discrete.shape[0]
    out = pb.UnityRLInputProto.ListAgentActionProto()
    if n == 0:
        return out  # (reshape(0, -1) cannot tell the row length)
    cont_rows = continuous.reshape(n, -1).tolist()
    disc_rows = discrete.reshape(n, -1).tolist()
    for cont, disc in zip(cont_rows, disc_rows):
        action = out.value.add(continuous_actions=cont, discrete_actions=disc)
        if legacy_vector_actions:
            action.vector_actions_deprecated.extend(cont + [float(d) for d in disc])
    return out


def decode_actions(actions: Sequence[pb.AgentActionProto], spec: ActionSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(continuous float32 [n, c], discrete int32 [n, d])`` from AgentActionProtos, reading the
    deprecated flat vector (continuous values then discrete indices) when the typed fields are empty."""
    n, c, d = len(actions), spec.continuous_size, spec.discrete_size
    all_c: list[float] = []
    all_d: list[int] = []
    for i, action in enumerate(actions):
        values_c, values_d = action.continuous_actions, action.discrete_actions
        if not (len(values_c) or len(values_d)):
            flat = list(action.vector_actions_deprecated)
            values_c, values_d = flat[:c], [int(round(v)) for v in flat[c : c + d]]
        if len(values_c) != c or len(values_d) != d:
            raise UnityProtocolError(
                f"action {i} has {len(values_c)} continuous and {len(values_d)} discrete values; the spec wants {c} and {d}"
            )
        all_c.extend(values_c)
        all_d.extend(values_d)
    return np.array(all_c, np.float32).reshape(n, c), np.array(all_d, np.int32).reshape(n, d)


# ---------------------------------------------------------------------------- many agents at once


class ObservationEncoder:
    """Serializes one sensor's observations of many agents, as :func:`encode_observation` would.

    Built once per sensor; :meth:`encode` then turns ``values [n, ...]`` (in the env's output
    layout) into ``n`` serialized ObservationProtos, ready for ``MergeFromString``. For
    non-image sensors the fields that depend only on the spec are serialized once and each
    agent adds just its floats, so no protobuf object is built per agent; images are
    encoded one by one with :func:`encode_observation`.

    Args:
        spec: the sensor's spec in its wire layout.
        image_format: the layout of image values passed to :meth:`encode`.
        compress: PNG-compress images (else raw floats).
    """

    def __init__(self, spec: ObservationSpec, *, image_format: ImageFormat = "hwc_uint8", compress: bool = True) -> None:
        check_image_format(image_format)
        self.spec = spec
        self.image_format: ImageFormat = image_format
        self.compress = compress
        self._row_bytes = 4 * math.prod(spec.shape)
        self._prefix = b""
        if not spec.is_visual:
            header = encode_observation(np.zeros(spec.shape, np.float32), spec)
            header.ClearField("float_data")
            floats = b"\x0a" + _varint(self._row_bytes)  # FloatData.data: field 1, packed
            # ObservationProto.float_data (field 4, length-delimited), its payload to follow per agent.
            self._prefix = header.SerializeToString() + b"\x22" + _varint(len(floats) + self._row_bytes) + floats

    def encode(self, values: np.ndarray) -> list[bytes]:
        """One serialized ObservationProto per row of ``values``.

        Raises:
            ValueError: a row does not have the sensor's shape.
        """
        values = np.asarray(values)
        spec = self.spec
        if spec.is_visual:
            return [encode_observation(v, spec, image_format=self.image_format, compress=self.compress).SerializeToString() for v in values]
        if values.shape[1:] != spec.shape:
            raise ValueError(f"observation {spec.name!r}: got rows of shape {values.shape[1:]}, expected {spec.shape}")
        data = np.ascontiguousarray(values, dtype="<f4").tobytes()
        size = self._row_bytes
        return [self._prefix + data[start : start + size] for start in range(0, len(data), size)] if size else [self._prefix] * len(values)
