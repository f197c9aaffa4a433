"""Actions to bytes and back.

The trainer sends each behavior's actions as a ``ListAgentActionProto``, written here as
bytes without a protobuf object per agent (:func:`encode_action_list`). An
``AgentActionProto`` holds its values in the typed fields (``continuous_actions``,
``discrete_actions``; communication API 1.3.0 on) or in the deprecated flat vector
(continuous values, then discrete indices as floats). Both roads that read actions, the
built-in scene player (the trainer's actions) and the `.demo` reader (the actions a recording
stores), turn them into arrays with :func:`action_arrays`, by the same rules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gym_unity_il.errors import UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol.wire import delimited, delimited_header, packed_varints
from gym_unity_il.spec import ActionSpec

#: Field numbers of AgentActionProto: the deprecated flat vector, the typed fields.
FLAT_FIELD, CONTINUOUS_FIELD, DISCRETE_FIELD = 1, 6, 7
#: ListAgentActionProto.value.
_ACTION_FIELD = 1


@functools.lru_cache(maxsize=64)
def _action_row(c: int, d: int, legacy: bool) -> tuple[np.ndarray, slice | None, slice | None, slice | None]:
    """The bytes of one AgentActionProto of ``c`` continuous and ``d`` discrete values that all
    take one byte, with zeros where the values go, and where they go: ``(row, flat, continuous,
    discrete)`` (None for a field the row does not hold)."""
    fields = ((FLAT_FIELD, 4 * (c + d), legacy and c + d > 0), (CONTINUOUS_FIELD, 4 * c, c > 0), (DISCRETE_FIELD, d, d > 0))
    body = b"".join(delimited_header(num, size) + bytes(size) for num, size, present in fields if present)
    head = delimited_header(_ACTION_FIELD, len(body))
    spans: list[slice | None] = []
    pos = len(head)
    for num, size, present in fields:
        if present:
            pos += len(delimited_header(num, size))
            spans.append(slice(pos, pos + size))
            pos += size
        else:
            spans.append(None)
    return np.frombuffer(head + body, np.uint8), *spans  # type: ignore[return-value]


def _action_bytes(continuous: np.ndarray, discrete: Sequence[int], legacy: bool) -> bytes:
    """One AgentActionProto of any values (negative or large discrete indices take several bytes)."""
    body = delimited(FLAT_FIELD, np.concatenate([continuous, np.asarray(discrete, np.float32)]).astype("<f4").tobytes()) if legacy and len(continuous) + len(discrete) else b""
    if len(continuous):
        body += delimited(CONTINUOUS_FIELD, continuous.astype("<f4").tobytes())
    if len(discrete):
        body += delimited(DISCRETE_FIELD, packed_varints(discrete))
    return delimited(_ACTION_FIELD, body)


def encode_action_list(continuous: np.ndarray, discrete: np.ndarray, *, legacy_vector_actions: bool = False) -> bytes:
    """A serialized ListAgentActionProto: one AgentActionProto per row of ``continuous [n, c]``
    and ``discrete [n, d]``, written directly as bytes (what protobuf would write).

    When every discrete index takes one byte (0 to 127: the usual case), all rows have the same
    layout and are written at once into a copy of one template row; otherwise (and for a single
    row) row by row.
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
    legacy = bool(legacy_vector_actions)
    if n == 1 or (disc.size and disc.view(np.uint32).max() > 0x7F):  # negative indices view as large
        return b"".join(_action_bytes(cont[i], disc[i].tolist(), legacy) for i in range(n))
    row, flat, cont_span, disc_span = _action_row(cont.shape[1], disc.shape[1], legacy)
    out = np.empty((n, row.size), np.uint8)
    out[:] = row
    if cont_span is not None:
        out[:, cont_span] = np.ascontiguousarray(cont, "<f4").view(np.uint8)
    if disc_span is not None:
        out[:, disc_span] = disc
    if flat is not None:
        out[:, flat] = np.concatenate([cont, disc], axis=1, dtype="<f4").view(np.uint8)
    return out.tobytes()


@dataclass(frozen=True)
class ActionValues:
    """The values of ``n`` AgentActionProtos as flat arrays (every action's values in order)
    and the number each action holds.

    Attributes:
        continuous, continuous_counts: ``float32`` values of ``continuous_actions``; ``int64 [n]``.
        discrete, discrete_counts: ``int64`` values of ``discrete_actions``; ``int64 [n]``.
        flat, flat_counts: ``float32`` values of the deprecated flat vector; ``int64 [n]``.
    """

    continuous: np.ndarray
    continuous_counts: np.ndarray
    discrete: np.ndarray
    discrete_counts: np.ndarray
    flat: np.ndarray
    flat_counts: np.ndarray

    @classmethod
    def of(cls, actions: Sequence[pb.AgentActionProto]) -> ActionValues:
        """The values of parsed AgentActionProtos."""
        continuous: list[float] = []
        discrete: list[int] = []
        flat: list[float] = []
        counts = []
        for action in actions:
            c, d, f = action.continuous_actions, action.discrete_actions, action.vector_actions_deprecated
            continuous.extend(c)
            discrete.extend(d)
            flat.extend(f)
            counts.append((len(c), len(d), len(f)))
        n = np.array(counts, np.int64).reshape(-1, 3).T
        return cls(np.array(continuous, np.float32), n[0], np.array(discrete, np.int64), n[1], np.array(flat, np.float32), n[2])


class ActionError(Exception):
    """Action ``index`` does not fit the action spec; ``what`` says how ("has 3 continuous ...")."""

    def __init__(self, index: int, what: str) -> None:
        super().__init__(f"action {index} {what}")
        self.index, self.what = index, what


def _fail_first(bad: np.ndarray, what: Callable[[int], str]) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ActionError(i, what(i))


def action_arrays(values: ActionValues, spec: ActionSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The actions as ``(continuous float32 [n, c], discrete int32 [n, d], bool [n] the action holds values)``.

    An action's typed fields are read when it has any, else its flat vector. An action
    without any value reads as zeros and is flagged False (the reader of a recording accepts
    it: some releases end a file with one; the scene player does not).

    Raises:
        ActionError: typed fields or a flat vector with other counts than ``spec``, or a
            discrete index in a flat vector that is not a finite number of the int32 range.
    """
    c, d = spec.continuous_size, spec.discrete_size
    c_cnt, d_cnt, f_cnt = values.continuous_counts, values.discrete_counts, values.flat_counts
    n = c_cnt.size
    if c + d and n and not (c_cnt - c).any() and not (d_cnt - d).any():  # every action typed as the spec says: the usual case
        return values.continuous.reshape(n, c), values.discrete.astype(np.int32).reshape(n, d), np.ones(n, bool)
    out_c = np.zeros((n, c), np.float32)
    out_d = np.zeros((n, d), np.int32)
    typed = (c_cnt > 0) | (d_cnt > 0)
    _fail_first(typed & ((c_cnt != c) | (d_cnt != d)), lambda i: count_text(int(c_cnt[i]), int(d_cnt[i]), spec))
    if c:
        out_c[typed] = values.continuous.reshape(-1, c)
    if d:
        out_d[typed] = values.discrete.astype(np.int32).reshape(-1, d)
    use_flat = ~typed & (f_cnt > 0)
    _fail_first(use_flat & (f_cnt != c + d),
                lambda i: f"has {f_cnt[i]} values in its flat vector; the spec wants {c} and {d} (continuous, then discrete)")  # fmt: skip
    rows = np.flatnonzero(use_flat)
    if rows.size:
        offsets = np.cumsum(f_cnt) - f_cnt
        vectors = values.flat[offsets[rows, None] + np.arange(c + d)]
        out_c[rows] = vectors[:, :c]
        indices = vectors[:, c:]
        not_index = np.zeros(n, bool)
        not_index[rows] = ~np.all(np.isfinite(indices) & (np.abs(indices) < 2**31), axis=1)
        _fail_first(not_index, lambda i: "has a discrete index in its flat vector that is not a finite number")
        out_d[rows] = np.rint(indices).astype(np.int32)
    return out_c, out_d, typed | use_flat | (c + d == 0)


def count_text(continuous: int, discrete: int, spec: ActionSpec) -> str:
    """How an action's counts disagree with ``spec``, for an error message."""
    return f"has {continuous} continuous and {discrete} discrete values; the spec wants {spec.continuous_size} and {spec.discrete_size}"


def decode_actions(actions: Sequence[pb.AgentActionProto], spec: ActionSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(continuous float32 [n, c], discrete int32 [n, d])`` from AgentActionProtos, each of
    which must hold its values (see :func:`action_arrays`).

    Raises:
        UnityProtocolError: an action that does not fit ``spec``, or holds no value.
    """
    c, d = spec.continuous_size, spec.discrete_size
    typed_c: list[float] = []
    typed_d: list[int] = []
    for action in actions:  # the usual case, on every step of the scene player: typed as the spec says
        values_c, values_d = action.continuous_actions, action.discrete_actions
        if len(values_c) != c or len(values_d) != d or not c + d:
            break
        typed_c.extend(values_c)
        typed_d.extend(values_d)
    else:
        n = len(actions)
        return np.array(typed_c, np.float32).reshape(n, c), np.array(typed_d, np.int32).reshape(n, d)
    try:
        continuous, discrete, stored = action_arrays(ActionValues.of(actions), spec)
    except ActionError as exc:
        raise UnityProtocolError(str(exc)) from None
    if not stored.all():
        raise UnityProtocolError(f"action {int(np.flatnonzero(~stored)[0])} {count_text(0, 0, spec)}")
    return continuous, discrete
