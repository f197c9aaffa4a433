"""Conversion between ML-Agents protobuf messages and numpy arrays plus specs.

This is the single place where observations, actions and behavior specs are decoded and
encoded, for the live link and for `.demo` files alike, so that both hand out identical
arrays. Hot paths avoid per-element Python work: packed float fields are copied with
``np.frombuffer`` and all agents of a behavior are decoded into one array per sensor.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence
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


def decode_png_images(data: bytes) -> list[np.ndarray]:
    """Every PNG in ``data`` (several may follow one another) as uint8 ``(H, W, C)`` arrays."""
    images = []
    start = 0
    while True:
        if data[start : start + 8] != PNG_SIGNATURE:
            raise UnityProtocolError(f"compressed observation is not PNG data (bytes at offset {start}: {data[start:start + 8]!r})")
        end = _png_end(data, start)
        try:
            with Image.open(io.BytesIO(data[start:end])) as img:
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
    out = io.BytesIO()
    for gi, group in enumerate(groups):
        n = group.shape[2]
        if n < 3:
            group = np.concatenate([group, np.zeros(group.shape[:2] + (3 - n,), np.uint8)], axis=2)
        Image.fromarray(np.ascontiguousarray(group)).save(out, format="PNG", compress_level=1)
        mapping += [gi * 3 + k if k < n else -1 for k in range(3)]
    return out.getvalue(), (mapping if c > 3 else [])


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
        if data.size != int(np.prod(out_shape)):
            raise UnityProtocolError(f"observation {spec.name!r}: {data.size} floats for {len(infos)} agents of shape {spec.shape}")
        return data.reshape(out_shape)
    out = np.empty(out_shape, spec.output_dtype(image_format))
    for i, info in enumerate(infos):
        out[i] = decode_observation(info.observations[index], spec, image_format)
    return out


def _batch(infos: Sequence[pb.AgentInfoProto], spec: BehaviorSpec, image_format: ImageFormat, with_mask: bool) -> StepBatch:
    if not infos:
        return StepBatch.empty(spec, image_format)
    n_obs = len(spec.observation_specs)
    for info in infos:
        if len(info.observations) != n_obs:
            raise UnityProtocolError(f"agent {info.id} of {spec.name!r} sent {len(info.observations)} observations, its behavior has {n_obs}")
    obs = tuple(_stack_sensor(infos, i, o, image_format) for i, o in enumerate(spec.observation_specs))
    reward = np.fromiter((info.reward for info in infos), np.float32, len(infos))
    group_reward = np.fromiter((info.group_reward for info in infos), np.float32, len(infos))
    for name, values in [("reward", reward), ("group reward", group_reward)] + [
        (f"observation {o.name!r}", arr) for o, arr in zip(spec.observation_specs, obs) if not o.is_visual
    ]:
        if not np.all(np.isfinite(values)):
            raise UnityProtocolError(f"behavior {spec.name!r} sent a NaN or infinite {name}; fix the scene so it stays finite")
    mask = None
    branches = spec.action_spec.discrete_branches
    if with_mask and branches:
        total = sum(branches)
        mask = np.ones((len(infos), total), bool)
        for i, info in enumerate(infos):
            if len(info.action_mask) == total:
                mask[i] = ~np.fromiter(info.action_mask, bool, total)
    return StepBatch(
        agent_id=np.fromiter((info.id for info in infos), np.int32, len(infos)),
        obs=obs,
        reward=reward,
        interrupted=np.fromiter((info.max_step_reached for info in infos), bool, len(infos)),
        action_mask=mask,
        group_id=np.fromiter((info.group_id for info in infos), np.int32, len(infos)),
        group_reward=group_reward,
    )


def decode_agent_infos(
    infos: Sequence[pb.AgentInfoProto], spec: BehaviorSpec, image_format: ImageFormat = "hwc_uint8"
) -> tuple[StepBatch, StepBatch]:
    """Splits a behavior's agent infos, keeping their order, into (decision steps, terminal steps)."""
    decision = [info for info in infos if not info.done]
    terminal = [info for info in infos if info.done]
    return _batch(decision, spec, image_format, True), _batch(terminal, spec, image_format, False)


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
    cont = np.zeros((n, c), np.float32)
    disc = np.zeros((n, d), np.int32)
    for i, action in enumerate(actions):
        if len(action.continuous_actions) or len(action.discrete_actions):
            values_c, values_d = list(action.continuous_actions), list(action.discrete_actions)
        else:
            flat = list(action.vector_actions_deprecated)
            values_c, values_d = flat[:c], [int(round(v)) for v in flat[c : c + d]]
        if len(values_c) != c or len(values_d) != d:
            raise UnityProtocolError(
                f"action {i} has {len(values_c)} continuous and {len(values_d)} discrete values; the spec wants {c} and {d}"
            )
        cont[i] = values_c
        disc[i] = values_d
    return cont, disc
