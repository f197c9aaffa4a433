"""The agent infos of one behavior read from their bytes, all agents at once.

A message that no template matches (:mod:`~gym_unity_il.protocol.templates`: an agent ended
its episode, one appeared, ...) is parsed by protobuf; reading its agents' fields one by one
from the parsed message then costs about a microsecond per field and agent. Its agents,
though, are mostly laid out alike: an agent info differs from another of the same *layout*
(the same fields, the same lengths) only in the bytes of its floats (reward, group reward,
vector observations), its varints (id, group id) and its action mask's flags. So the
behavior's list of agent infos is serialized again (protobuf writes it its one way: fields in
number order, shortest varints, bools as 0 or 1) and each agent is matched by its size to a
layout learned from an earlier agent of that size: its bytes outside those holes must equal
the layout's, every varint hole must keep its width (continuation bits) and every flag be 0
or 1. Then one gather copies the holes of every agent into arrays.

Only behaviors without image sensors are read so (the length of a picture changes the
layout). An agent whose layout is unknown and cannot be learned (an unknown field, a
negative id, an observation laid out otherwise), two layouts of one size in one message or
non-finite floats make :meth:`AgentRows.read` return None, and the caller decodes the agents
one by one (as it does when an agent is twice among those that decide or those that ended),
which raises the precise error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gym_unity_il.protocol.observations import first_not_finite, float_span
from gym_unity_il.protocol.wire import FIXED32, LEN, VARINT, WireError, fields_of, read_varint, tag
from gym_unity_il.spec import BehaviorSpec

# ListAgentInfoProto.value; AgentInfoProto's fields.
_ENTRY = tag(1, LEN)[0]
_REWARD, _DONE, _MAX_STEP, _ID, _MASK, _OBSERVATIONS, _GROUP_ID, _GROUP_REWARD = 7, 8, 9, 10, 11, 13, 14, 15
#: Varint holes (id, group id) of at most this many bytes: values below 2**28, never negative.
_VARINT_BYTES = 4
_VARINT_WEIGHTS = np.array([1 << (7 * i) for i in range(_VARINT_BYTES)], np.int64)
#: A cell of an absent field: past the end of any list, where :meth:`AgentRows.read` reads a zero.
_ABSENT = 1 << 30
#: Agent infos larger than this, lists larger than :data:`_ABSENT`, and lists whose agents
#: would gather more than so many cells per byte of the list plus so many are read one by one.
MAX_ENTRY_BYTES, MAX_CELLS_PER_BYTE, MAX_CELLS = 1 << 16, 4, 1 << 20
#: Layouts kept per behavior (all are dropped when a new one would exceed this), and learned
#: at most this many times plus once per :data:`READS_PER_LEARNING` reads.
MAX_LAYOUTS, FREE_LEARNINGS, READS_PER_LEARNING = 16, 16, 16


@dataclass(frozen=True)
class Rows:
    """The agents of one behavior: the ``decisions`` first agents (those that did not end an
    episode), then the others, each part in message order. ``agent_id`` ``int32 [n]``,
    ``reward``, ``group_reward`` ``float32 [n]``, ``interrupted`` ``bool [n]``, ``group_id``
    ``int32 [n]``, ``obs`` one ``float32 [n, *shape]`` per sensor, ``mask`` ``bool [n, sum(branches)]``
    (True = allowed; all True for an agent without a mask of that length) or None."""

    decisions: int
    agent_id: np.ndarray
    reward: np.ndarray
    group_reward: np.ndarray
    interrupted: np.ndarray
    group_id: np.ndarray
    obs: list[np.ndarray]
    mask: np.ndarray | None


@dataclass(frozen=True)
class _Layout:
    """The agent infos of one size (their entry in the list: key, length, fields): ``mask``
    the bits of each byte that must equal ``constant``; ``cells`` the offsets of the bytes
    gathered per agent (see :meth:`AgentRows._learn`)."""

    mask: bytes
    constant: bytes
    cells: bytes  # int32
    done: bool
    interrupted: bool


class AgentRows:
    """Reads the agent infos of behavior ``spec`` (no image sensors) from their serialized
    list (see the module docstring).

    Attributes:
        reads: lists read so far; ``learned``: layouts tried so far (learned, or found not to qualify).
    """

    def __init__(self, spec: BehaviorSpec) -> None:
        if any(o.is_visual for o in spec.observation_specs):
            raise ValueError(f"{spec.name}: agent rows read vector observations only")
        self._shapes = [o.shape for o in spec.observation_specs]
        self._counts = [math.prod(shape) for shape in self._shapes]
        self._floats = 2 + sum(self._counts)  # reward, group reward, observations
        self._flags = sum(spec.action_spec.discrete_branches)
        self._width = 4 * self._floats + 2 * _VARINT_BYTES + self._flags  # cells per agent
        self._index: dict[int, _Layout] = {}  # by the size of its entries
        self.learned = 0
        self.reads = 0

    def read(self, data: bytes) -> Rows | None:
        """The agents of a serialized ``ListAgentInfoProto``, or None (see the module docstring)."""
        index = self._index
        found: list[_Layout] = []
        rows: tuple[list[int], list[int]] = ([], [])  # the starts of the agents that decide, and of those that ended
        pos, end = 0, len(data)
        try:
            while pos < end:
                length = data[pos + 1] if data[pos] == _ENTRY and pos + 1 < end else 0x80
                body = pos + 2
                if length >= 0x80:
                    if data[pos] != _ENTRY:
                        return None
                    length, body = read_varint(data, pos + 1, end)
                size = body - pos + length
                if pos + size > end:
                    return None
                layout = index.get(size)
                if layout is None:
                    layout = self._learn(data[pos : pos + size], body - pos)
                    if layout is None:
                        return None
                found.append(layout)
                rows[layout.done].append(pos)
                pos += size
        except WireError:
            return None
        n, width, floats = len(found), self._width, 4 * self._floats
        if pos != end or not n or end >= _ABSENT or n * width > MAX_CELLS_PER_BYTE * end + MAX_CELLS:
            return None  # (the cells of absent masks are not in the bytes: many, and they would be all the work)
        self.reads += 1
        masked = np.frombuffer(data, np.uint8) & np.frombuffer(b"".join([layout.mask for layout in found]), np.uint8)
        if masked.tobytes() != b"".join([layout.constant for layout in found]):
            return None  # two layouts of one size: the agents one by one
        decisions = len(rows[0])
        ordered = found if decisions == n or decisions == 0 else [layout for layout in found if not layout.done] + [layout for layout in found if layout.done]
        at = np.array(rows[0] + rows[1], np.int32)[:, None] + np.frombuffer(b"".join([layout.cells for layout in ordered]), np.int32).reshape(n, width)
        cells = np.frombuffer(data + b"\0", np.uint8)[np.minimum(at, end)]  # absent fields read the zero after the end
        values = cells[:, :floats].copy().view("<f4")
        if first_not_finite(values) is not None:
            return None
        varints = (cells[:, floats : floats + 2 * _VARINT_BYTES] & 0x7F).astype(np.int64).reshape(n, 2, _VARINT_BYTES) @ _VARINT_WEIGHTS
        obs, first = [], 2
        for shape, count in zip(self._shapes, self._counts):
            obs.append(np.ascontiguousarray(values[:, first : first + count]).reshape(n, *shape))  # an array of its own
            first += count
        return Rows(
            decisions=decisions,
            agent_id=varints[:, 0].astype(np.int32),
            reward=values[:, 0].copy(),
            group_reward=values[:, 1].copy(),
            interrupted=np.array([layout.interrupted for layout in ordered], bool),
            group_id=varints[:, 1].astype(np.int32),
            obs=obs,
            mask=cells[:, width - self._flags :] == 0 if self._flags else None,
        )

    def _learn(self, entry: bytes, header: int) -> _Layout | None:
        """The layout of one agent's ``entry`` (its info after ``header`` bytes of key and
        length), kept for its size; None when it has a field this module does not read so,
        or when learning does not pay (:data:`FREE_LEARNINGS`).

        Its cells, per agent: 4 bytes per float (the reward, the group reward, then the
        observations' values in order), :data:`_VARINT_BYTES` of the id's varint and as many
        of the group id's, the mask's flags; past a varint's width, and for an absent field,
        an offset past the end of any list (:meth:`read` reads a zero there)."""
        if self.learned >= FREE_LEARNINGS + self.reads // READS_PER_LEARNING or len(entry) > MAX_ENTRY_BYTES:
            return None
        self.learned += 1
        body = entry[header:]
        try:
            fields = fields_of(body)
        except WireError:
            return None
        holes = np.full(len(entry), 0xFF, np.uint8)  # the bits of each byte that must match
        cells = np.full(self._width, _ABSENT, np.int32)
        seen: set[int] = set()
        ends = {_DONE: False, _MAX_STEP: False}  # the episode-end flags, fixed by the layout
        sensor = 0
        start = 0
        for number, wire_type, value, stop in fields:
            at = header + start
            start = stop
            if number != _OBSERVATIONS:
                if number in seen:
                    return None
                seen.add(number)
            if wire_type == FIXED32 and number in (_REWARD, _GROUP_REWARD):
                first = 4 * (0 if number == _REWARD else 1)
                cells[first : first + 4] = header + value + np.arange(4)
                holes[header + value : header + stop] = 0
            elif wire_type == VARINT and number in ends:
                ends[number] = value != 0
            elif wire_type == VARINT and number in (_ID, _GROUP_ID):
                varint = at + 1  # after the one-byte key
                width = header + stop - varint
                if width > _VARINT_BYTES:
                    return None  # a negative or large value: the full decoder's
                first = 4 * self._floats + (0 if number == _ID else _VARINT_BYTES)
                cells[first : first + width] = varint + np.arange(width)
                holes[varint : varint + width] = 0x80  # continuation bits: the same width
            elif wire_type == LEN and number == _MASK:
                holes[header + value : header + stop] = 0xFE  # flags 0 or 1
                if stop - value == self._flags:
                    cells[self._width - self._flags :] = header + value + np.arange(self._flags)
            elif wire_type == LEN and number == _OBSERVATIONS and sensor < len(self._counts):
                count = self._counts[sensor]
                span = float_span(body[value:stop], count)
                if span is None:
                    return None
                first = 4 * (2 + sum(self._counts[:sensor]))
                cells[first : first + 4 * count] = header + value + span + np.arange(4 * count)
                holes[header + value + span : header + value + span + 4 * count] = 0
                sensor += 1
            else:
                return None
        if sensor != len(self._counts):
            return None
        if len(self._index) >= MAX_LAYOUTS:
            self._index.clear()
        constant = (np.frombuffer(entry, np.uint8) & holes).tobytes()
        layout = self._index[len(entry)] = _Layout(holes.tobytes(), constant, cells.tobytes(), ends[_DONE], ends[_MAX_STEP])
        return layout
