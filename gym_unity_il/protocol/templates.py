"""Messages of Unity that repeat a layout, decoded from their bytes with a few numpy operations.

In the steady state of a scene (the same agents deciding every step, none ending its
episode) each message of Unity has the same bytes as the previous one except for the
values of its floats: rewards and vector observations. Protobuf's framing (tags, lengths,
varints) never depends on the content of a 32-bit field or of a packed float field, so a
message whose bytes equal a known message's everywhere but in those *holes* has exactly
that message's structure: the same behaviors, agents, ids, flags and masks, with other
floats. :class:`MessageTemplates` keeps such known messages (*templates*), each with what
the full decoder (:func:`~gym_unity_il.protocol.agents.decode_unity_output`) made of it,
and decodes a matching message by comparing its masked bytes with the template's and
gathering its holes into arrays: no protobuf object per agent, whatever the number of
agents.

Only messages of vector observations whose agents all decide (no episode end, no behavior
announced, nothing on the side channel) become templates; any other message, and any
message whose holes hold NaN or infinite values, goes through the full decoder, which
checks it and raises its errors. Learning a template walks the message once in Python; it
is skipped where templates do not pay (learned much more often than used).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

import numpy as np
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.protocol.codec import Steps
from gym_unity_il.protocol.wire import FIXED32, FIXED64, LEN, WireError, fields_of
from gym_unity_il.spec import BehaviorSpec, ImageFormat

#: Templates kept per session (a new one replaces the oldest).
MAX_TEMPLATES = 4
#: Messages larger than this are never templates.
MAX_TEMPLATE_BYTES = 1 << 20
#: Templates are learned at most this many times plus once per :data:`HITS_PER_LEARNING` hits.
FREE_LEARNINGS, HITS_PER_LEARNING = 8, 16

_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32)
_OUTPUT_PATH = (("unity_output", 0), ("rl_output", 0))

Path = tuple[tuple[object, ...], ...]


def holes(data: bytes | memoryview, descriptor: Descriptor = pb.UnityMessageProto.DESCRIPTOR) -> Iterator[tuple[int, int, Path]]:
    """The fixed-width values of a serialized message, in the order of its bytes:
    ``(offset, size, path)`` per 32- or 64-bit field and per packed repeated float field
    (its whole payload). ``path`` names the field from the top: ``(name, index)`` per level
    (the index counts the field's occurrences in its parent), ``(name, key)`` for a map entry.

    Raises:
        WireError: the bytes are not a well-formed message.
    """
    yield from _holes(memoryview(data), 0, descriptor, ())


def _holes(view: memoryview, base: int, descriptor: Descriptor, path: Path) -> Iterator[tuple[int, int, Path]]:
    seen: dict[int, int] = {}
    for number, wire_type, value, end in fields_of(view):
        field = descriptor.fields_by_number.get(number)
        index = seen[number] = seen.get(number, -1) + 1
        name = field.name if field is not None else number
        if wire_type in (FIXED32, FIXED64):
            yield base + value, end - value, (*path, (name, index))
        elif wire_type == LEN and field is not None:
            payload = view[value:end]
            if field.message_type is not None:
                entry = field.message_type
                if entry.GetOptions().map_entry:
                    key = next((bytes(payload[v:e]) for n, w, v, e in fields_of(payload) if n == 1 and w == LEN), b"")
                    yield from _holes(payload, base + value, entry, (*path, (name, key)))
                else:
                    yield from _holes(payload, base + value, entry, (*path, (name, index)))
            elif field.type in _FLOATS and end > value:
                yield base + value, end - value, (*path, (name, index))
            elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64) and end > value:
                yield base + value, end - value, (*path, (name, index))


@dataclass(frozen=True)
class _Part:
    """Where one array of a decoded message comes from: ``floats[start:stop]`` of the holes,
    reshaped to ``shape`` (``rows``: None), or scattered into a copy of ``base`` at ``rows``."""

    behavior: str
    field: str  # "reward", "group_reward" or "obs"
    sensor: int
    start: int
    stop: int
    shape: tuple[int, ...]
    base: np.ndarray | None = None
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class _Template:
    mask: np.ndarray  # 0xFF on the bytes that must match, 0 on the holes
    constant: bytes  # the template's bytes & mask
    gather: np.ndarray  # the holes' byte offsets, in the order of the floats
    parts: tuple[tuple[str, tuple[_Part, ...]], ...]  # per behavior with holes
    steps: Steps  # the template's own decode, with read-only arrays
    specs: int  # the number of specs when learned (a new behavior makes it stale)
    image_format: str


class MessageTemplates:
    """The templates of one session (see the module docstring).

    :meth:`decode` returns the decode of a message that matches a template, else None;
    :meth:`learn` takes a fully decoded message as a template when it qualifies.

    Attributes:
        hits: messages decoded by a template so far.
        learned: messages tried as templates so far (learned, or found not to qualify).
    """

    def __init__(self) -> None:
        self._templates: dict[int, _Template] = {}  # by message size
        self.learned = 0
        self.hits = 0

    def __len__(self) -> int:
        """The number of templates kept."""
        return len(self._templates)

    def decode(self, data: bytes, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat) -> tuple[Steps, bytes] | None:
        """``(steps, side channel)`` of ``data`` when it matches a template (as the full
        decoder would return them, floats checked finite), else None."""
        template = self._templates.get(len(data))
        if template is None or template.specs != len(specs) or template.image_format != image_format:
            return None
        buf = np.frombuffer(data, np.uint8)
        if (buf & template.mask).tobytes() != template.constant:
            return None
        floats = buf[template.gather].view("<f4")
        if not np.isfinite(floats).all():
            return None  # the full decoder says which value
        self.hits += 1
        steps = dict(template.steps)
        for name, parts in template.parts:
            decision, terminal = steps[name]
            obs, reward, group_reward = list(decision.obs), decision.reward, decision.group_reward
            for part in parts:
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
            decision = StepBatch(decision.agent_id, tuple(obs), reward, decision.interrupted, decision.action_mask, decision.group_id, group_reward)
            steps[name] = (decision, terminal)
        return steps, b""

    def learn(self, data: bytes, steps: Steps, side_channel: bytes, specs: MutableMapping[str, BehaviorSpec], image_format: ImageFormat,
              announced: bool) -> None:  # fmt: skip
        """Takes ``data`` (decoded by the full decoder into ``steps``) as a template when it
        qualifies: see the module docstring."""
        if announced or side_channel or len(data) > MAX_TEMPLATE_BYTES:
            return
        if self.learned >= FREE_LEARNINGS + self.hits // HITS_PER_LEARNING:
            return
        self.learned += 1
        if any(len(terminal) or any(o.is_visual for o in specs[name].observation_specs) for name, (_, terminal) in steps.items()):
            return
        try:
            template = _make_template(data, steps, len(specs), image_format)
        except WireError:
            return
        if template is None:
            return
        self._templates.pop(len(data), None)  # a message of that size but another layout: the newer one
        if len(self._templates) >= MAX_TEMPLATES:
            del self._templates[next(iter(self._templates))]
        self._templates[len(data)] = template


def _frozen(batch: StepBatch) -> StepBatch:
    for array in (batch.agent_id, batch.reward, batch.interrupted, batch.action_mask, batch.group_id, batch.group_reward, *batch.obs):
        if array is not None:
            array.flags.writeable = False
    return batch


def _make_template(data: bytes, steps: Steps, num_specs: int, image_format: str) -> _Template | None:
    """The template of ``data``, or None when one of its holes is not a reward, a group
    reward or the floats of a vector observation of an agent ``steps`` holds."""
    found: dict[tuple[str, str, int, int], list[tuple[int, int]]] = {}  # (behavior, field, agent, sensor) -> holes
    every = list(holes(data))
    for offset, size, path in every:
        # unity_output / rl_output / agentInfos[behavior] / value / value[agent] / field ...
        if len(path) < 6 or path[:2] != _OUTPUT_PATH or path[2][0] != "agentInfos" or path[3] != ("value", 0) or path[4][0] != "value":
            return None
        behavior = bytes(path[2][1]).decode("utf-8", "replace")  # type: ignore[arg-type]
        agent, field = path[4][1], path[5]
        if behavior not in steps:
            return None
        if field in (("reward", 0), ("group_reward", 0)) and len(path) == 6 and size == 4:
            key = (behavior, field[0], agent, 0)
        elif field[0] == "observations" and len(path) == 8 and path[6] == ("float_data", 0) and path[7][0] == "data" and size % 4 == 0:
            key = (behavior, "obs", agent, field[1])
        else:
            return None
        found.setdefault(key, []).append((offset, size))  # type: ignore[arg-type]
    spans: list[tuple[int, int]] = []  # the holes in the order of the floats
    parts: list[_Part] = []
    count = 0  # floats so far
    for name, (decision, _) in steps.items():
        n = len(decision)
        for field, base in (("reward", decision.reward), ("group_reward", decision.group_reward)):
            rows = [k for k in range(n) if (name, field, k, 0) in found]
            taken = [found.pop((name, field, k, 0)) for k in rows]
            if any(len(t) != 1 for t in taken):
                return None
            if rows:
                spans += [t[0] for t in taken]
                dense = len(rows) == n
                parts.append(_Part(name, field, 0, count, count + len(rows), (n,), None if dense else base, None if dense else np.array(rows)))
                count += len(rows)
        for j, obs in enumerate(decision.obs):
            taken = [hole for k in range(n) for hole in found.pop((name, "obs", k, j), [])]
            if taken:
                if sum(size for _, size in taken) != 4 * obs.size:
                    return None
                spans += taken
                parts.append(_Part(name, "obs", j, count, count + obs.size, obs.shape))
                count += obs.size
    if found:  # holes of agents the decode has not: not a message to learn from
        return None
    offsets = np.concatenate([np.arange(o, o + size, dtype=np.int32) for o, size in spans]) if spans else np.zeros(0, np.int32)
    mask = np.full(len(data), 0xFF, np.uint8)
    mask[offsets] = 0
    constant = (np.frombuffer(data, np.uint8) & mask).tobytes()
    frozen = {name: (_frozen(d), _frozen(t)) for name, (d, t) in steps.items()}
    by_behavior = tuple((name, tuple(p for p in parts if p.behavior == name)) for name in steps if any(p.behavior == name for p in parts))
    return _Template(mask, constant, offsets, by_behavior, frozen, num_specs, image_format)
