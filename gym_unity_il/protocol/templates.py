"""Messages of Unity that repeat a layout, decoded from their bytes with a few numpy operations.

In the steady state of a scene (the same agents deciding every step, none ending its
episode) each message of Unity has the same bytes as the previous one except for the
values of its floats (rewards and vector observations) and its pictures (the PNG bytes of
camera observations). Protobuf's framing (tags, lengths, varints) never depends on the
content of a 32-bit field or of a packed float field, and a bytes field's content changes
only the lengths that hold it, so a message whose bytes equal a known message's everywhere
but in those *holes*, with every length that holds a picture grown or shrunk by exactly as
much as its pictures, has exactly that message's structure: the same behaviors, agents,
ids, flags, masks and image headers, with other floats and pictures. :class:`MessageTemplates`
keeps such known messages (*templates*), each with what the full decoder
(:func:`~gym_unity_il.protocol.agents.decode_unity_output`) made of it, and decodes a
matching message by comparing its masked bytes with the template's, gathering its floats
into arrays and handing its pictures to the same PNG decoder as the full decoder's: no
protobuf object per agent, whatever the number of agents.

Only messages whose agents all decide (no episode end, no behavior announced, nothing on
the side channel), with vector observations and PNG images, become templates; any other
message, and any message whose floats hold NaN or infinite values or whose pictures do not
decode, goes through the full decoder, which checks it and raises its errors. Learning a
template walks the message once in Python; it is skipped where templates do not pay
(learned much more often than used).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
import dataclasses
from dataclasses import dataclass

import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.protocol.codec import Steps
from gym_unity_il.protocol.observations import ImageBatchError, decode_image_batch, decode_png_observation, first_not_finite
from gym_unity_il.protocol.wire import FIXED32, FIXED64, LEN, WireError, encode_varint, fields_of, read_varint
from gym_unity_il.spec import BehaviorSpec, ImageFormat, ObservationSpec

#: Templates kept per session (a new one replaces the one that matched longest ago).
MAX_TEMPLATES = 4
#: Messages larger than this are never templates.
MAX_TEMPLATE_BYTES = 1 << 20
#: Templates are learned at most this many times plus once per :data:`HITS_PER_LEARNING` hits.
FREE_LEARNINGS, HITS_PER_LEARNING = 8, 16
#: Growths of pictures whose constants a template keeps (see :meth:`_Template.constant_for`), at
#: most so many, and at most so many bytes of them.
MAX_GROWTHS, MAX_GROWTH_BYTES = 256, 8 << 20

#: Kinds of :func:`holes`: a fixed-width value, packed flags, the payload of a sub-message, the payload of a bytes field.
VALUE, FLAGS, MESSAGE, BYTES = "value", "flags", "message", "bytes"

_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32)
_WIDE = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64)
_OUTPUT_PATH = (("unity_output", 0), ("rl_output", 0))

Path = tuple[tuple[object, ...], ...]


def holes(data: bytes | memoryview, descriptor: Descriptor = pb.UnityMessageProto.DESCRIPTOR) -> Iterator[tuple[int, int, Path, str]]:
    """What of a serialized message may change from one message to the next, in the order of
    its bytes: ``(offset, size, path, kind)`` per 32- or 64-bit field and per packed repeated
    fixed-width field (its whole payload; kind :data:`VALUE`), per packed repeated bool field
    (its payload, one byte per flag while they are 0 or 1; :data:`FLAGS`), and per
    length-delimited sub-message (:data:`MESSAGE`) and bytes field (:data:`BYTES`): their
    payloads, after their length. ``path`` names the field from the top: ``(name, index)`` per level (the index counts
    the field's occurrences in its parent), ``(name, key)`` for a map entry.

    Raises:
        WireError: the bytes are not a well-formed message.
    """
    yield from _holes(memoryview(data), 0, descriptor, ())


def _holes(view: memoryview, base: int, descriptor: Descriptor, path: Path) -> Iterator[tuple[int, int, Path, str]]:
    seen: dict[int, int] = {}
    for number, wire_type, value, end in fields_of(view):
        field = descriptor.fields_by_number.get(number)
        index = seen[number] = seen.get(number, -1) + 1
        name = field.name if field is not None else number
        if wire_type in (FIXED32, FIXED64):
            yield base + value, end - value, (*path, (name, index)), VALUE
        elif wire_type == LEN and field is not None:
            payload = view[value:end]
            if field.message_type is not None:
                entry = field.message_type
                if entry.GetOptions().map_entry:
                    key = next((bytes(payload[v:e]) for n, w, v, e in fields_of(payload) if n == 1 and w == LEN), b"")
                    here = (*path, (name, key))
                else:
                    here = (*path, (name, index))
                yield base + value, end - value, here, MESSAGE
                yield from _holes(payload, base + value, entry, here)
            elif field.type == FieldDescriptor.TYPE_BYTES:
                yield base + value, end - value, (*path, (name, index)), BYTES
            elif field.type == FieldDescriptor.TYPE_BOOL and end > value:
                yield base + value, end - value, (*path, (name, index)), FLAGS
            elif field.type in _FLOATS + _WIDE and end > value:
                yield base + value, end - value, (*path, (name, index)), VALUE


@dataclass(frozen=True)
class _Floats:
    """One array of a decoded message from its floats: ``floats[start:stop]`` of the holes,
    reshaped to ``shape`` (``rows``: None), or scattered into a copy of ``base`` at ``rows``."""

    field: str  # "reward", "group_reward" or "obs"
    sensor: int
    start: int
    stop: int
    shape: tuple[int, ...]
    base: np.ndarray | None = None
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class _Masks:
    """The action masks of a decoded message from its flags: ``flags[start:stop]`` of the
    flag holes, one byte per flag (1: not allowed), reshaped to ``shape``."""

    start: int
    stop: int
    shape: tuple[int, int]


@dataclass(frozen=True)
class _Images:
    """One image sensor of a decoded message from its pictures (``pictures``: their indices,
    one per agent in order), PNGs of ``name`` with the channel ``mapping``."""

    sensor: int
    pictures: tuple[int, ...]
    spec: ObservationSpec
    mapping: tuple[int, ...]
    name: str


@dataclass(frozen=True)
class _Length:
    """A length that holds pictures (of a picture, or of a sub-message around pictures): its
    varint is ``width`` bytes at ``at`` in the joined segments, its value the template's
    ``base`` plus the growth of ``pictures``."""

    at: int
    width: int
    base: int
    pictures: tuple[int, ...]


@dataclass(frozen=True)
class _Template:
    """A known message cut at its pictures into ``segments`` (``(start, stop)`` in its bytes;
    one more than the pictures, each picture's length varint ending the segment before it)."""

    size: int
    segments: tuple[tuple[int, int], ...]
    widths: tuple[int, ...]  # per picture, its length varint's width
    sizes: tuple[int, ...]  # per picture, its length in the template
    lengths: tuple[_Length, ...]
    mask: np.ndarray  # over the joined segments: 0xFF on the bytes that must match, 0 on the float holes
    constant: bytes  # the joined segments & mask
    gather: np.ndarray  # the float holes' offsets in the joined segments, in the order of the floats
    flags: np.ndarray  # the flag holes' offsets likewise
    parts: tuple[tuple[str, tuple[_Floats, ...], tuple[_Images, ...], _Masks | None], ...]  # per behavior with holes
    steps: Steps  # the template's own decode, with read-only arrays
    specs: int  # the number of specs when learned (a new behavior makes it stale)
    image_format: str
    #: The constant for pictures grown by so many bytes each, lengths filled in (see :meth:`constant_for`).
    _constants: dict[tuple[int, ...], bytes | None] = dataclasses.field(default_factory=dict)

    def split(self, data: bytes) -> tuple[bytes, list[bytes], tuple[int, ...]] | None:
        """``data``'s segments joined, its pictures and their growth over the template's, when
        the pictures' lengths fit this template's framing (the bytes are compared afterwards),
        else None."""
        if not self.sizes:
            return (data, [], ()) if len(data) == self.size else None
        pieces, pictures, growth = [], [], []
        shift = 0
        for (start, stop), width, size in zip(self.segments, self.widths, self.sizes):
            stop += shift
            try:
                length, after = read_varint(data, stop - width, len(data))
            except WireError:
                return None
            if after != stop or stop + length > len(data):
                return None
            pieces.append(data[start + shift : stop])
            pictures.append(data[stop : stop + length])
            growth.append(length - size)
            shift += length - size
        start, stop = self.segments[-1]
        if len(data) != stop + shift:
            return None
        pieces.append(data[start + shift :])
        return b"".join(pieces), pictures, tuple(growth)

    def constant_for(self, growth: tuple[int, ...]) -> bytes | None:
        """What the joined segments & mask of a message whose pictures grew by ``growth`` must
        be: :attr:`constant` with every length that holds them grown alike, or None when one
        of them would take a varint of another width. Kept for the growths seen most recently."""
        if not growth:
            return self.constant
        if growth in self._constants:
            return self._constants[growth]
        patched: bytearray | None = bytearray(self.constant)
        for length in self.lengths:
            varint = encode_varint(length.base + sum(growth[i] for i in length.pictures))
            if len(varint) != length.width:
                patched = None
                break
            patched[length.at : length.at + length.width] = varint  # type: ignore[index]
        if len(self._constants) >= min(MAX_GROWTHS, max(1, MAX_GROWTH_BYTES // len(self.constant))):
            self._constants.clear()
        constant = self._constants[growth] = None if patched is None else bytes(patched)
        return constant


class MessageTemplates:
    """The templates of one session (see the module docstring).

    :meth:`decode` returns the decode of a message that matches a template, else None;
    :meth:`learn` takes a fully decoded message as a template when it qualifies.

    Attributes:
        hits: messages decoded by a template so far.
        learned: messages tried as templates so far (learned, or found not to qualify).
    """

    def __init__(self) -> None:
        self._templates: list[_Template] = []  # the last one to match first, then the newest
        self.learned = 0
        self.hits = 0

    def __len__(self) -> int:
        """The number of templates kept."""
        return len(self._templates)

    def decode(self, data: bytes, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> tuple[Steps, bytes] | None:
        """``(steps, side channel)`` of ``data`` when it matches a template (as the full
        decoder would return them, floats checked finite), else None."""
        for i, template in enumerate(self._templates):
            if template.specs == len(specs) and template.image_format == image_format:
                steps = _decode(template, data, image_format)
                if steps is not None:
                    self.hits += 1
                    if i:  # the one that matched is tried first next time
                        self._templates.insert(0, self._templates.pop(i))
                    return steps, b""
        return None

    def learn(self, data: bytes, steps: Steps, side_channel: bytes, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat,
              announced: bool) -> None:  # fmt: skip
        """Takes ``data`` (decoded by the full decoder into ``steps``) as a template when it
        qualifies: see the module docstring."""
        if announced or side_channel or len(data) > MAX_TEMPLATE_BYTES or any(len(terminal) for _, terminal in steps.values()):
            return
        if self.learned >= FREE_LEARNINGS + self.hits // HITS_PER_LEARNING:
            return
        self.learned += 1
        try:
            template = _make_template(data, steps, specs, image_format)
        except WireError:
            return
        if template is None:
            return
        # A template that takes this message's framing but not its bytes: another layout, replaced by the newer one.
        self._templates = [t for t in self._templates if t.split(data) is None]
        if len(self._templates) >= MAX_TEMPLATES:
            del self._templates[-1]  # the one that matched longest ago
        self._templates.insert(0, template)


def _decode(template: _Template, data: bytes, image_format: ImageFormat) -> Steps | None:
    """The decode of ``data`` by ``template``, or None when it does not match."""
    split = template.split(data)
    if split is None:
        return None
    joined, pictures, growth = split
    constant = template.constant_for(growth)
    buf = np.frombuffer(joined, np.uint8)
    if constant is None or (buf & template.mask).tobytes() != constant:
        return None
    floats = buf[template.gather].view("<f4")
    if first_not_finite(floats) is not None:
        return None  # the full decoder says which value
    flags = buf[template.flags] if template.flags.size else template.flags
    if flags.size and flags.max() > 1:
        return None  # flags protobuf reads otherwise: the full decoder's
    steps = dict(template.steps)
    for name, float_parts, image_parts, masks in template.parts:
        decision, terminal = steps[name]
        obs, reward, group_reward = list(decision.obs), decision.reward, decision.group_reward
        mask = decision.action_mask if masks is None else (flags[masks.start : masks.stop] == 0).reshape(masks.shape)
        for part in float_parts:
            values = floats[part.start : part.stop]
            if part.rows is not None:
                array = part.base.copy()  # type: ignore[union-attr]
                array[part.rows] = values
            else:
                array = values.reshape(part.shape)
            if part.field == "obs":
                obs[part.sensor] = array
            elif part.field == "reward":
                reward = array
            else:
                group_reward = array
        for images in image_parts:
            spec, mapping, sensor_name = images.spec, images.mapping, images.name
            try:
                obs[images.sensor] = decode_image_batch(
                    [pictures[i] for i in images.pictures],
                    lambda png: decode_png_observation(png, mapping, spec, image_format, sensor_name), len, spec, image_format,
                )  # fmt: skip
            except ImageBatchError:
                return None  # the full decoder says which picture
        decision = StepBatch(decision.agent_id, tuple(obs), reward, decision.interrupted, mask, decision.group_id, group_reward)
        steps[name] = (decision, terminal)
    return steps


def _frozen(batch: StepBatch) -> StepBatch:
    for array in (batch.agent_id, batch.reward, batch.interrupted, batch.action_mask, batch.group_id, batch.group_reward, *batch.obs):
        if array is not None:
            array.flags.writeable = False
    return batch


def _varint_at(data: bytes, payload: int, length: int) -> int:
    """The width of the length varint before the payload at ``payload``, when it is the
    shortest one for ``length`` (as protobuf writes it), else -1."""
    width = len(encode_varint(length))
    return width if data[payload - width : payload] == encode_varint(length) else -1


def _make_template(data: bytes, steps: Steps, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> _Template | None:
    """The template of ``data``, or None when one of its holes is not a reward, a group
    reward, the floats of a vector observation or the PNG of an image observation of an
    agent ``steps`` holds, or its framing is not protobuf's shortest."""
    found: dict[tuple[str, str, int, int], list[tuple[int, int]]] = {}  # (behavior, field, agent, sensor) -> holes
    messages: list[tuple[int, int]] = []
    for offset, size, path, kind in holes(data):
        if kind == MESSAGE:
            messages.append((offset, size))
            continue
        # unity_output / rl_output / agentInfos[behavior] / value / value[agent] / field ...
        if len(path) < 6 or path[:2] != _OUTPUT_PATH or path[2][0] != "agentInfos" or path[3] != ("value", 0) or path[4][0] != "value":
            return None
        behavior = bytes(path[2][1]).decode("utf-8", "replace")  # type: ignore[arg-type]
        agent, field = path[4][1], path[5]
        if behavior not in steps:
            return None
        if kind == BYTES:
            if field[0] != "observations" or path[6:] != (("compressed_data", 0),):
                return None
            key = (behavior, "image", agent, field[1])
        elif kind == FLAGS:
            if field != ("action_mask", 0) or len(path) != 6:
                return None
            key = (behavior, "mask", agent, 0)
        elif field in (("reward", 0), ("group_reward", 0)) and len(path) == 6 and size == 4:
            key = (behavior, field[0], agent, 0)
        elif field[0] == "observations" and len(path) == 8 and path[6] == ("float_data", 0) and path[7][0] == "data" and size % 4 == 0:
            key = (behavior, "obs", agent, field[1])
        else:
            return None
        found.setdefault(key, []).append((offset, size))  # type: ignore[arg-type]
    message = None  # parsed only to read the image headers
    spans: list[tuple[int, int]] = []  # the float holes in the order of the floats
    flag_spans: list[tuple[int, int]] = []  # the flag holes likewise
    pictures = sorted(hole for key, found_holes in found.items() if key[1] == "image" for hole in found_holes)  # in the order of the bytes
    index = {hole: i for i, hole in enumerate(pictures)}
    parts: list[tuple[str, tuple[_Floats, ...], tuple[_Images, ...], _Masks | None]] = []
    count = 0  # floats so far
    for name, (decision, _) in steps.items():
        n = len(decision)
        floats: list[_Floats] = []
        images: list[_Images] = []
        masks = None
        taken = [found.pop((name, "mask", k, 0), []) for k in range(n)]
        if any(taken):
            width = 0 if decision.action_mask is None else decision.action_mask.shape[1]
            if any(len(t) != 1 or t[0][1] != width for t in taken):
                return None  # an agent without its mask, or one of another length: the full decoder's
            start = sum(size for _, size in flag_spans)
            flag_spans += [t[0] for t in taken]
            masks = _Masks(start, start + n * width, (n, width))
        for field, base in (("reward", decision.reward), ("group_reward", decision.group_reward)):
            rows = [k for k in range(n) if (name, field, k, 0) in found]
            taken = [found.pop((name, field, k, 0)) for k in rows]
            if any(len(t) != 1 for t in taken):
                return None
            if rows:
                spans += [t[0] for t in taken]
                dense = len(rows) == n
                floats.append(_Floats(field, 0, count, count + len(rows), (n,), None if dense else base, None if dense else np.array(rows)))
                count += len(rows)
        for j, (obs, spec) in enumerate(zip(decision.obs, specs[name].observation_specs)):
            taken = [hole for k in range(n) for hole in found.pop((name, "obs", k, j), [])]
            shown = [found.pop((name, "image", k, j), []) for k in range(n)]
            if spec.is_visual:
                if taken or any(len(s) != 1 for s in shown):
                    return None  # raw float images, or an agent without its picture: the full decoder's
                if message is None:
                    message = pb.UnityMessageProto.FromString(data)
                protos = [info.observations[j] for info in message.unity_output.rl_output.agentInfos[name].value]
                headers = {(tuple(p.compressed_channel_mapping), p.name, p.compression_type) for p in protos}
                if len(headers) != 1 or next(iter(headers))[2] != pb.PNG:
                    return None
                mapping, sensor_name, _ = headers.pop()
                images.append(_Images(j, tuple(index[s[0]] for s in shown), spec, mapping, sensor_name))
            elif taken:
                if sum(size for _, size in taken) != 4 * obs.size:
                    return None
                spans += taken
                floats.append(_Floats("obs", j, count, count + obs.size, obs.shape))
                count += obs.size
        if floats or images or masks:
            parts.append((name, tuple(floats), tuple(images), masks))
    if found:  # holes of agents the decode has not: not a message to learn from
        return None
    widths = tuple(_varint_at(data, offset, size) for offset, size in pictures)
    if -1 in widths:
        return None
    cuts = [0] + [edge for offset, size in pictures for edge in (offset, offset + size)] + [len(data)]
    segments = tuple(zip(cuts[0::2], cuts[1::2]))

    def joined_at(offset: int) -> int:  # an offset outside the pictures, in the joined segments
        return offset - sum(size for start, size in pictures if start < offset)

    lengths = [_Length(joined_at(offset - width), width, size, (i,)) for i, ((offset, size), width) in enumerate(zip(pictures, widths))]
    for offset, size in messages:
        inside = tuple(i for i, (start, length) in enumerate(pictures) if offset <= start and start + length <= offset + size)
        if inside:
            width = _varint_at(data, offset, size)
            if width < 0:
                return None
            lengths.append(_Length(joined_at(offset - width), width, size, inside))

    def joined_offsets(spans: list[tuple[int, int]]) -> np.ndarray:  # every byte of the holes, in the joined segments
        return np.concatenate([np.arange(joined_at(offset), joined_at(offset) + size, dtype=np.int32) for offset, size in spans] or [np.zeros(0, np.int32)])

    offsets, flag_offsets = joined_offsets(spans), joined_offsets(flag_spans)
    mask = np.full(len(data) - sum(size for _, size in pictures), 0xFF, np.uint8)
    mask[offsets] = 0
    mask[flag_offsets] = 0
    joined = b"".join(data[start:stop] for start, stop in segments)
    constant = (np.frombuffer(joined, np.uint8) & mask).tobytes()
    frozen = {name: (_frozen(d), _frozen(t)) for name, (d, t) in steps.items()}
    sizes = tuple(size for _, size in pictures)
    return _Template(len(data), segments, widths, sizes, tuple(lengths), mask, constant, offsets, flag_offsets, tuple(parts), frozen, len(specs),
                     image_format)  # fmt: skip
