"""Conversion between ML-Agents protobuf messages and numpy arrays plus specs.

This is the single place where observations, actions and behavior specs are decoded and
encoded, for the live link and for `.demo` files alike, so that both hand out identical
arrays. Hot paths avoid per-element Python work: packed float fields are copied with
``np.frombuffer``, all agents of a behavior are decoded into one array per sensor, and
:class:`ObservationEncoder` serializes many agents' vector observations without a protobuf
object per agent. PNGs are written unfiltered with zlib, and unfiltered PNGs are read back
with zlib and numpy; other PNGs (Unity's are filtered) go through Pillow.

What a message of Unity makes the trainer allocate is bounded (docs/reliability.md): sizes
and counts are checked before anything is built from them. A behavior spec may declare at
most :data:`MAX_OBSERVATION_RANK` dimensions per sensor, :data:`MAX_SENSORS` sensors,
:data:`MAX_OBSERVATION_VALUES` values per sensor and :data:`MAX_ACTION_VALUES` actions; a
session knows at most :data:`MAX_BEHAVIORS` behaviors. The agents of one message may cost
the decoder at most :data:`DECODE_FIXED_BYTES` plus :data:`DECODE_BYTES_PER_BYTE` times the
message's size in Python objects, and decode to at most :data:`MAX_DECODED_BYTES` of arrays
(images and masks can be far larger than their bytes on the wire). Error messages quote
values from the message through :func:`quote`, so they stay short.
"""

from __future__ import annotations

import io
import math
import re
import struct
import sys
import zlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gym_unity_il.errors import UnityProtocolError, quote
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
#: Most values one observation may declare (16M: 64 MB as float32). Larger shapes come from
#: damaged data, and arrays for them would take gigabytes.
MAX_OBSERVATION_VALUES = 1 << 24
#: Most continuous actions, and most discrete actions over all branches, a behavior may declare.
MAX_ACTION_VALUES = 1 << 16
#: Most dimensions of one observation. ML-Agents sends 1 (vectors), 2 (buffers) or 3 (images).
MAX_OBSERVATION_RANK = 8
#: Most sensors (observations) of one agent.
MAX_SENSORS = 256
#: Most behaviors one session knows (each is a name and its team: ``3DBall?team=0``).
MAX_BEHAVIORS = 1024
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
    tell it (Unity 2.x: ``[2, 2, 1]`` = HWC; 3.x: ``[1, 2, 2]`` = CHW), else from ``channels_first``.

    Raises:
        UnityProtocolError: more than :data:`MAX_OBSERVATION_RANK` dimensions (checked first).
    """
    if len(obs.shape) > MAX_OBSERVATION_RANK:
        raise UnityProtocolError(
            f"observation {quote(obs.name)} declares {len(obs.shape)} dimensions, more than the {MAX_OBSERVATION_RANK} accepted "
            "(ML-Agents sends 1 to 3); the data is damaged or not from ML-Agents"
        )
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
    """The action spec, falling back to the deprecated fields when ``action_spec`` is empty.

    Raises:
        UnityProtocolError: more than :data:`MAX_ACTION_VALUES` branches (checked first).
    """
    spec = brain.action_spec
    branches = max(len(spec.discrete_branch_sizes), len(brain.vector_action_size_deprecated))
    if branches > MAX_ACTION_VALUES:
        raise UnityProtocolError(
            f"behavior {quote(brain.brain_name)} declares {branches} discrete branches, more than the {MAX_ACTION_VALUES} accepted; "
            "the data is damaged or not from ML-Agents"
        )
    if spec.num_continuous_actions or spec.num_discrete_actions:
        return ActionSpec(spec.num_continuous_actions, tuple(spec.discrete_branch_sizes))
    sizes = tuple(brain.vector_action_size_deprecated)
    if brain.vector_action_space_type_deprecated == pb.continuous:
        return ActionSpec(sizes[0] if sizes else 0, ())
    return ActionSpec(0, sizes)


def behavior_spec_from_proto(
    brain: pb.BrainParametersProto, agent_info: pb.AgentInfoProto, *, channels_first: bool = False
) -> BehaviorSpec:
    """A behavior's spec from its announcement plus the first agent's observations.

    Raises:
        UnityProtocolError: a negative size, or a size or count :func:`check_spec_sizes`,
            :func:`observation_spec_from_proto` or :func:`action_spec_from_proto` rejects.
    """
    if len(agent_info.observations) > MAX_SENSORS:
        raise UnityProtocolError(
            f"behavior {quote(brain.brain_name)} is announced with {len(agent_info.observations)} sensors, more than the "
            f"{MAX_SENSORS} accepted; the data is damaged or not from ML-Agents"
        )
    try:
        spec = BehaviorSpec(
            name=brain.brain_name,
            observation_specs=tuple(observation_spec_from_proto(o, channels_first=channels_first) for o in agent_info.observations),
            action_spec=action_spec_from_proto(brain),
        )
    except ValueError as exc:  # the specs' own checks: negative dimensions, branches of size 0 or less
        raise UnityProtocolError(
            f"behavior {quote(brain.brain_name)} is announced with {quote(str(exc))}; the data is damaged or not from ML-Agents"
        ) from None
    check_spec_sizes(spec)
    return spec


def check_spec_sizes(spec: BehaviorSpec) -> None:
    """Raises UnityProtocolError, naming the sensor or the actions, when ``spec`` declares an
    observation of more than :data:`MAX_OBSERVATION_VALUES` values, or more than
    :data:`MAX_ACTION_VALUES` continuous or discrete actions."""
    for o in spec.observation_specs:
        if math.prod(o.shape) > MAX_OBSERVATION_VALUES:
            raise UnityProtocolError(
                f"behavior {quote(spec.name)}: observation {quote(o.name)} declares the shape {list(o.shape)}, more than the "
                f"{MAX_OBSERVATION_VALUES} values accepted; the data is damaged or not from ML-Agents"
            )
    act = spec.action_spec
    if max(act.continuous_size, sum(act.discrete_branches)) > MAX_ACTION_VALUES:
        raise UnityProtocolError(
            f"behavior {quote(spec.name)} declares {act.continuous_size} continuous actions and discrete branches "
            f"{quote(list(act.discrete_branches))}, more than the {MAX_ACTION_VALUES} accepted; the data is damaged or not from ML-Agents"
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
    if n < 0x80:
        return bytes((n,))
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
    if not raw or raw[0] != 0x0A:  # no values (maybe unknown fields only: protobuf writes them after the known ones)
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
    size = h * (1 + w * channels)
    inflate = zlib.decompressobj()
    try:
        first = inflate.decompress(b"".join(compressed), 1)  # the filter type of the first row
        if first != b"\x00":
            return None  # filtered rows, as most encoders (Unity's too) write them
        # Never more than the header's size: a stream that inflates further (a zlib bomb) stops here.
        raw = first + inflate.decompress(inflate.unconsumed_tail, max(size - 1, 1))
    except zlib.error:
        return None
    if len(raw) != size:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + w * channels)
    if rows[:, 0].any():
        return None
    return rows[:, 1:].reshape(h, w, channels)


def decode_png_images(data: bytes, *, max_pixels: int = Image.MAX_IMAGE_PIXELS) -> list[np.ndarray]:
    """Every PNG in ``data`` (several may follow one another) as uint8 ``(H, W, C)`` arrays.

    Raises:
        UnityProtocolError: not PNG data, a damaged PNG, or one whose header declares more
            than ``max_pixels`` pixels (checked before anything is decoded).
    """
    images = []
    start = 0
    while True:
        if data[start : start + 8] != PNG_SIGNATURE:
            raise UnityProtocolError(f"compressed observation is not PNG data (bytes at offset {start}: {data[start:start + 8]!r})")
        end = _png_end(data, start)
        png = data[start:end]
        if png[12:16] == b"IHDR" and len(png) >= 24:
            w, h = struct.unpack_from(">II", png, 16)
            if w * h > max_pixels:
                raise UnityProtocolError(f"the PNG observation at offset {start} declares {w}x{h} pixels, more than the {max_pixels} expected")
        arr = _unfiltered_png_pixels(png)
        if arr is None:
            try:
                with Image.open(io.BytesIO(png)) as img:
                    if img.mode not in ("L", "RGB", "RGBA"):
                        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
                    arr = np.asarray(img)
            except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, EOFError, ...) on damaged data
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
    images = decode_png_images(obs.compressed_data, max_pixels=h * w)
    mapping = list(obs.compressed_channel_mapping)
    if mapping:
        stacked = images[0] if len(images) == 1 else np.concatenate(images, axis=2)
        if len(mapping) != stacked.shape[2]:
            raise UnityProtocolError(
                f"observation {quote(obs.name)}: channel mapping has {len(mapping)} entries for {stacked.shape[2]} decoded channels"
            )
        out = np.empty(stacked.shape[:2] + (c,), np.float32)
        for k in range(c):
            chosen = [i for i, m in enumerate(mapping) if m == k]
            if not chosen:
                raise UnityProtocolError(f"observation {quote(obs.name)}: channel mapping {quote(mapping)} leaves channel {k} empty")
            out[:, :, k] = stacked[:, :, chosen].mean(axis=2)
        hwc: np.ndarray = out
    elif c == 1:
        first = images[0]
        hwc = first if first.shape[2] == 1 else first.mean(axis=2, dtype=np.float32)[:, :, None]
    else:
        stacked = images[0] if len(images) == 1 else np.concatenate(images, axis=2)
        hwc = stacked[:, :, :c]
    if hwc.shape != (h, w, c):
        raise UnityProtocolError(f"observation {quote(obs.name)}: PNG data decodes to {hwc.shape}, but its shape says {(h, w, c)} (HWC)")
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
            raise UnityProtocolError(f"observation {quote(obs.name)}: {data.size} floats for shape {spec.shape}")
        return data.reshape(spec.shape)
    h, w, c = spec.hwc
    if obs.compression_type == pb.PNG or obs.WhichOneof("observation_data") == "compressed_data":
        return _image_out(_png_hwc(obs, h, w, c), image_format)
    data = np.frombuffer(_packed_float_payload(obs.float_data), dtype="<f4")
    if data.size != h * w * c:
        raise UnityProtocolError(f"observation {quote(obs.name)}: {data.size} floats for image shape {spec.shape}")
    if not np.isfinite(data).all():
        raise UnityProtocolError(f"observation {quote(obs.name)}: a raw float image holds NaN or infinite values")
    img = data.reshape(spec.shape)
    if spec.channels_first:
        img = img.transpose(1, 2, 0)
    if image_format == "hwc_uint8":
        return np.rint(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)  # clipped first: a float32 near its maximum would overflow
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


@dataclass(slots=True)
class StepBatch:
    """The agents of one behavior in one message, split as decision or terminal steps.
    Read-only by convention (batches without agents are shared).

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
        """A batch with no agents, shaped for ``spec``. Made once per spec and shared: arrays
        with no rows hold nothing to change."""
        return _empty_batch(spec, image_format)


def _empty_batch(spec: BehaviorSpec, image_format: ImageFormat) -> StepBatch:
    return _facts(spec, image_format)[0]


#: Per (spec, image format): the empty batch and the decoded bytes of one agent. Keyed by the
#: spec's identity, because hashing a spec costs more than decoding a small message; entries
#: hold their spec, so an id is never reused while its entry lives.
_FACTS: dict[tuple[int, str], tuple[StepBatch, int, BehaviorSpec]] = {}


def _facts(spec: BehaviorSpec, image_format: ImageFormat) -> tuple[StepBatch, int, BehaviorSpec]:
    entry = _FACTS.get((id(spec), image_format))
    if entry is None:
        if len(_FACTS) >= 4 * MAX_BEHAVIORS:
            _FACTS.clear()
        obs = tuple(np.zeros((0, *o.output_shape(image_format)), o.output_dtype(image_format)) for o in spec.observation_specs)
        empty = StepBatch(np.zeros(0, np.int32), obs, np.zeros(0, np.float32), np.zeros(0, bool), None, np.zeros(0, np.int32), np.zeros(0, np.float32))
        per_agent = sum(math.prod(o.output_shape(image_format)) * o.output_dtype(image_format).itemsize for o in spec.observation_specs)
        entry = _FACTS[(id(spec), image_format)] = (empty, per_agent + sum(spec.action_spec.discrete_branches) + 24, spec)
    return entry


def _stack_sensor(infos: Sequence[pb.AgentInfoProto], index: int, spec: ObservationSpec, image_format: ImageFormat, behavior: str) -> np.ndarray:
    out_shape = (len(infos), *spec.output_shape(image_format))
    if not spec.is_visual:
        payload = b"".join([_packed_float_payload(info.observations[index].float_data) for info in infos])
        if len(payload) != 4 * math.prod(out_shape):
            raise UnityProtocolError(f"observation {quote(spec.name)}: {len(payload) // 4} floats for {len(infos)} agents of shape {spec.shape}")
        if not _finite(payload):
            raise _not_finite(behavior, f"observation {quote(spec.name)}")
        return np.frombuffer(bytearray(payload), _F32).reshape(out_shape)  # a writable array of its own
    out = np.empty(out_shape, spec.output_dtype(image_format))
    for i, info in enumerate(infos):
        out[i] = decode_observation(info.observations[index], spec, image_format)
    return out


_F32 = np.dtype("<f4")
#: Up to this many float32 values are checked in Python (a sum of finite float32 values is
#: finite as a double); numpy's fixed cost only pays off for more.
_FEW_FLOATS = 64


def _finite(payload: bytes) -> bool:
    """Whether the little-endian float32 values in ``payload`` are all finite."""
    if len(payload) <= 4 * _FEW_FLOATS and sys.byteorder == "little":
        return math.isfinite(sum(memoryview(payload).cast("f")))
    return bool(np.isfinite(np.frombuffer(payload, _F32)).all())


def _not_finite(behavior: str, what: str) -> UnityProtocolError:
    return UnityProtocolError(f"behavior {quote(behavior)} sent a NaN or infinite {what}; fix the scene so it stays finite")


def _batch(infos: Sequence[pb.AgentInfoProto], spec: BehaviorSpec, image_format: ImageFormat, with_mask: bool) -> StepBatch:
    if not infos:
        return _empty_batch(spec, image_format)
    specs = spec.observation_specs
    # One pass over the agents for the scalar fields: a few tuples, then one array per field.
    ids, rewards, interrupted, group_ids, group_rewards, counts = zip(
        *[(i.id, i.reward, i.max_step_reached, i.group_id, i.group_reward, len(i.observations)) for i in infos]
    )
    if counts.count(len(specs)) != len(counts):
        bad = next(info for info, count in zip(infos, counts) if count != len(specs))
        raise UnityProtocolError(f"agent {bad.id} of {quote(spec.name)} sent {len(bad.observations)} observations, its behavior has {len(specs)}")
    if len(ids) > 1 and len(set(ids)) != len(ids):
        seen: set[int] = set()
        twice = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        kind = "decision" if with_mask else "terminal"
        raise UnityProtocolError(
            f"agent {twice} of {quote(spec.name)} appears twice among the {kind} steps of one message; each agent sends one "
            "step per message (the data is damaged or not from ML-Agents)"
        )
    if not math.isfinite(sum(rewards) + sum(group_rewards)):  # float32 values: their sum overflows no double
        raise _not_finite(spec.name, "reward" if not math.isfinite(sum(rewards)) else "group reward")
    obs = tuple([_stack_sensor(infos, i, o, image_format, spec.name) for i, o in enumerate(specs)])
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
    """Splits a behavior's agent infos, keeping their order, into (decision steps, terminal steps).

    An agent may be in both (its episode ended and the next one asks for a decision), but
    not twice in either.

    Raises:
        UnityProtocolError: an agent twice in the decision or the terminal steps, an agent
            with another number of sensors than ``spec``, data that does not fit the spec,
            NaN or infinite values.
    """
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


#: Most bytes of arrays one message may decode to, over all its behaviors: images and action
#: masks can take far more than their bytes on the wire (a message of empty agent infos must
#: not make masks of gigabytes).
MAX_DECODED_BYTES = 1 << 30
#: What decoding costs in Python objects (bytes, as tracemalloc counts them) per agent and per
#: sensor of an agent: upper bounds of the measured costs (``benchmarks/fuzz_inputs.py --memory``).
AGENT_COST = 320
SENSOR_COST = 64
#: The decoding budget of one message: its agents may cost this much ...
DECODE_FIXED_BYTES = 32 << 20
#: ... plus this many times the message's size.
DECODE_BYTES_PER_BYTE = 16


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
    those without agents in this message. Counts and sizes are checked before anything is
    built from them (see the module docstring).

    Raises:
        UnityProtocolError: the message contradicts itself or the specs, or declares more
            than the limits of this module (the text says how).
    """
    infos_by_name = output.rl_output.agentInfos
    brains = output.rl_initialization_output.brain_parameters if output.HasField("rl_initialization_output") else ()
    if len(infos_by_name) > MAX_BEHAVIORS or len(brains) > MAX_BEHAVIORS:
        raise UnityProtocolError(
            f"the message carries {max(len(infos_by_name), len(brains))} behaviors, more than the {MAX_BEHAVIORS} a session "
            "accepts; the data is damaged or not from ML-Agents"
        )
    for brain in brains:
        name = brain.brain_name
        if name not in infos_by_name or not infos_by_name[name].value:
            raise UnityProtocolError(f"behavior {quote(name)} was announced without any agent data in the same message (protocol.md §6.3)")
        spec = behavior_spec_from_proto(brain, infos_by_name[name].value[0], channels_first=channels_first)
        known = specs.get(name)
        if known is None:
            if len(specs) >= MAX_BEHAVIORS:
                raise UnityProtocolError(
                    f"behavior {quote(name)} would be the session's behavior number {len(specs) + 1}, more than the {MAX_BEHAVIORS} "
                    "accepted; the data is damaged or not from ML-Agents"
                )
            specs[name] = spec
        elif known != spec:
            raise UnityProtocolError(
                f"behavior {quote(name)} was announced again with another spec: {quote(known.describe())} before, "
                f"{quote(spec.describe())} now. A behavior keeps its sensors and actions for the whole session; the data is "
                "damaged, or the scene changed the behavior's Behavior Parameters while running"
            )
    # What decoding will cost, from the counts alone, before anything is decoded.
    work = []
    cost = decoded_bytes = 0
    for name, infos in infos_by_name.items():
        values = infos.value
        spec = specs.get(name)
        if spec is None:
            if values:
                raise UnityProtocolError(f"agents of behavior {quote(name)} arrived before the behavior was announced (protocol.md §6.3)")
            continue
        n = len(values)
        decoded_bytes += n * _facts(spec, image_format)[1]
        if decoded_bytes > MAX_DECODED_BYTES:
            raise UnityProtocolError(
                f"behavior {quote(name)}: {n} agents would decode to more than {MAX_DECODED_BYTES >> 20} MB of arrays (with the "
                "message's other behaviors); the data is damaged or not from ML-Agents"
            )
        cost += n * (AGENT_COST + SENSOR_COST * len(spec.observation_specs))
        work.append((name, values, spec))
    if cost > DECODE_FIXED_BYTES and cost > DECODE_FIXED_BYTES + DECODE_BYTES_PER_BYTE * output.ByteSize():
        agents = sum(len(values) for _, values, _ in work)
        raise UnityProtocolError(
            f"the message carries {agents} agents in {output.ByteSize()} bytes: too many agents for its size (decoding them would "
            f"take about {cost >> 20} MB); the data is damaged or not from ML-Agents"
        )
    decoded = {name: decode_agent_infos(values, spec, image_format) for name, values, spec in work}
    return {name: decoded[name] if name in decoded else decode_agent_infos((), spec, image_format) for name, spec in specs.items()}


# ---------------------------------------------------------------------------- actions


def _packed_varints(values: list[int]) -> bytes:
    """int32 values as protobuf varints (negative ones take ten bytes, as protobuf writes them)."""
    if all(0 <= v < 0x80 for v in values):
        return bytes(values)
    return b"".join(_varint(v & 0xFFFFFFFFFFFFFFFF) for v in values)


def encode_action_list(continuous: np.ndarray, discrete: np.ndarray, *, legacy_vector_actions: bool = False) -> bytes:
    """A serialized ListAgentActionProto: one AgentActionProto per row of ``continuous [n, c]``
    and ``discrete [n, d]``, written directly as bytes (what protobuf would write).

    ``legacy_vector_actions`` also fills the deprecated flat vector (continuous values then
    discrete indices as floats), which Unity releases before communication API 1.3.0 read.
    """
    continuous = np.asarray(continuous, np.float32)
    discrete = np.asarray(discrete, np.int32)
    n = continuous.shape[0] if continuous.ndim == 2 else discrete.shape[0]
    if n == 0:
        return b""
    cont = continuous.reshape(n, -1)
    disc = discrete.reshape(n, -1)
    c, d = cont.shape[1], disc.shape[1]
    cont_bytes = cont.astype("<f4").tobytes()
    legacy_bytes = np.concatenate([cont, disc.astype(np.float32)], axis=1).astype("<f4").tobytes() if legacy_vector_actions else b""
    legacy_field = b"\x0a" + _varint(4 * (c + d)) if legacy_vector_actions and c + d else b""  # field 1, packed floats
    cont_field = b"\x32" + _varint(4 * c) if c else b""  # continuous_actions: field 6, packed floats
    disc_rows = disc.tolist()
    out = []
    for i in range(n):
        body = legacy_field + legacy_bytes[4 * (c + d) * i : 4 * (c + d) * (i + 1)] if legacy_field else b""
        if c:
            body += cont_field + cont_bytes[4 * c * i : 4 * c * (i + 1)]
        if d:
            ints = _packed_varints(disc_rows[i])
            body += b"\x3a" + _varint(len(ints)) + ints  # discrete_actions: field 7, packed varints
        out.append(b"\x0a" + _varint(len(body)) + body)  # ListAgentActionProto.value: field 1
    return b"".join(out)


#: ``header { status: 200 }``, serialized: the start of every message of the trainer.
_HEADER_OK = b"\x0a\x03\x08\xc8\x01"


def encode_trainer_message(*, command: int, actions: Mapping[str, bytes] | None = None, side_channel: bytes = b"") -> bytes:
    """The trainer's answer for a RESET or STEP, serialized: a UnityMessageProto with status 200
    and ``unity_input.rl_input`` holding ``command``, the serialized ListAgentActionProto of
    each behavior in ``actions`` (see :func:`encode_action_list`) and the side-channel bytes."""
    rl_input = b""
    for name, action_list in (actions or {}).items():
        key = name.encode()
        entry = b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(len(action_list)) + action_list
        rl_input += b"\x0a" + _varint(len(entry)) + entry  # agent_actions: field 1, a map entry
    if command:
        rl_input += b"\x20" + _varint(command)  # command: field 4
    if side_channel:
        rl_input += b"\x2a" + _varint(len(side_channel)) + side_channel  # side_channel: field 5
    unity_input = b"\x0a" + _varint(len(rl_input)) + rl_input  # UnityInputProto.rl_input: field 1
    return _HEADER_OK + b"\x1a" + _varint(len(unity_input)) + unity_input  # UnityMessageProto.unity_input: field 3


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
