"""Decoding a run of `.demo` records of one era into numpy arrays.

The reader (:mod:`gym_unity_il.demo.reader`) frames the records of a chunk of the file
and hands their byte ranges here; these functions give the fields their ML-Agents
meaning, for all records of the chunk at once (:mod:`gym_unity_il.protocol.scan`), by the
rules of the live link: images go through
:func:`gym_unity_il.protocol.observations.decode_images`, actions through
:func:`gym_unity_il.protocol.actions.action_arrays`, and NaN or infinite observations and
rewards are refused by :func:`gym_unity_il.protocol.observations.first_not_finite`.
Vector data is copied from the file bytes, which gives the same float32 values as the
link's decoding (found by comparing bytes when every record lays a sensor out alike, which
is how recorders write them, else by scanning the fields).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import scan
from gym_unity_il.protocol.actions import CONTINUOUS_FIELD, DISCRETE_FIELD, FLAT_FIELD, ActionError, ActionValues, action_arrays
from gym_unity_il.protocol.observations import FLOAT_DATA_FIELD, FLOAT_VALUES_FIELD, ImageBatchError, decode_images, first_not_finite, float_data_header
from gym_unity_il.protocol.wire import WireError
from gym_unity_il.spec import BehaviorSpec, ImageFormat, ObservationSpec

# Field numbers. Modern AgentInfoActionPairProto -> AgentInfoProto.
_PAIR_INFO, _PAIR_ACTION = 1, 2
_REWARD, _DONE, _MAX_STEP, _ID, _MASK, _OBSERVATIONS = 7, 8, 9, 10, 11, 13
# Legacy (0.6-0.11) AgentInfoProto.
_LEGACY_VECTOR, _LEGACY_STORED_ACTION = 1, 4
LEGACY_PNG_FIELD, LEGACY_COMPRESSED_FIELD = 2, 13
_COMPRESSED_DATA = 3
#: What to do about a record holding NaN or infinite values.
FIX_NOT_FINITE = (
    "the recording holds NaN or infinite values, which the trainer refuses from a live scene as well: keep the scene's "
    "observations and rewards finite and record again"
)


@dataclass
class RecordArrays:
    """Consecutive records of one file as arrays (see ``Demonstration`` for the fields)."""

    observations: list[np.ndarray]
    continuous: np.ndarray
    discrete: np.ndarray
    action_stored: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    max_step_reached: np.ndarray
    agent_ids: np.ndarray
    action_masks: np.ndarray | None


class RecordError(Exception):
    """A problem in record ``index`` (counted from the first record decoded together) at
    position ``pos`` of the buffer; ``fix`` says what to do when the reader's usual advice
    (the file is damaged) does not fit."""

    def __init__(self, index: int, pos: int, what: str, fix: str | None = None) -> None:
        super().__init__(what)
        self.index, self.pos, self.what, self.fix = index, pos, what, fix


@contextmanager
def _records_of(record_of: np.ndarray | None) -> Iterator[None]:
    """Turns a :class:`WireError` about message *k* into a RecordError about the record
    holding it (``record_of[k]``, or *k* itself when None)."""
    try:
        yield
    except WireError as exc:
        index = exc.message if record_of is None else int(record_of[exc.message])
        raise RecordError(index, exc.offset, exc.what) from None


def _fail_first(bad: np.ndarray, starts: np.ndarray, what: Callable[[int], str]) -> None:
    """Raises a RecordError for the first True of ``bad``; ``what(i)`` describes it."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RecordError(i, int(starts[i]), what(i))


def _finite(arrays: RecordArrays, spec: BehaviorSpec, starts: np.ndarray) -> RecordArrays:
    """``arrays``, once their vector observations and rewards are known to be finite (raw
    float images were checked when decoded)."""
    named = zip(spec.observation_specs, arrays.observations)
    checks = [(f"observation {o.name or '(unnamed)'} holds", values) for o, values in named if not o.is_visual]
    for what, values in [*checks, ("its reward is", arrays.rewards)]:
        i = first_not_finite(values)
        if i is not None:
            raise RecordError(i, int(starts[i]), f"{what} NaN or infinite", FIX_NOT_FINITE)
    return arrays


def _masks(fields: scan.Fields, buf: np.ndarray, spec: BehaviorSpec) -> np.ndarray | None:
    """Action masks with True = allowed, from field 11 (True = NOT allowed). A record without a
    mask, or with one of the wrong length, allows everything (as ML-Agents does)."""
    branches = spec.action_spec.discrete_branches
    if not branches:
        return None
    total = sum(branches)
    values, counts = fields.repeated_varint(buf, _MASK)
    masks = np.ones((fields.n, total), bool)
    ok = np.flatnonzero(counts == total)
    if ok.size:
        offsets = np.cumsum(counts) - counts
        masks[ok] = values[offsets[ok, None] + np.arange(total)] == 0
    return masks


def _actions(spec: BehaviorSpec, starts: np.ndarray, values: ActionValues) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored actions ``(float32 [n, c], int32 [n, d], bool [n] whether the record stores one)``
    by the rules of :func:`~gym_unity_il.protocol.actions.action_arrays` (a record with no
    action value at all, the last record of 0.12-0.15 files, reads as zeros and stores none),
    every discrete index within its branch: a recording holds the actions Unity took."""
    act = spec.action_spec
    try:
        out_c, out_d, stored = action_arrays(values, act)
    except ActionError as exc:
        raise RecordError(exc.index, int(starts[exc.index]), f"its action {exc.what}") from None
    if act.discrete_size:
        outside = np.any((out_d < 0) | (out_d >= np.array(act.discrete_branches)), axis=1)
        _fail_first(outside, starts,
                    lambda i: f"its discrete action {out_d[i].tolist()} is outside the branch sizes {list(act.discrete_branches)}")  # fmt: skip
    return out_c, out_d, stored


def _no_typed_actions(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The typed action fields of records that have none (0.6-0.11): no values, counts 0."""
    return np.zeros(0, np.float32), np.zeros(n, np.int64), np.zeros(0, np.int64), np.zeros(n, np.int64)


def _same_layout(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, size: int) -> np.ndarray | None:
    """Where the ``size`` packed floats of one vector sensor start in every record, when each
    of its ObservationProtos begins with the bytes protobuf writes before those floats: the
    shape of the first one, then the FloatData header holding only them. None otherwise.

    The general scan (:func:`_scanned_floats`) reads exactly these floats from such records
    (these bytes fix every field and length before them; protobuf writers never repeat the
    FloatData field), so comparing the bytes replaces two scans.
    """
    if size == 0:
        return None
    try:
        shape = pb.ObservationProto.FromString(buf[starts[0] : ends[0]].tobytes()).shape
    except (DecodeError, RuntimeError, ValueError):
        return None
    head = np.frombuffer(pb.ObservationProto(shape=shape).SerializeToString() + float_data_header(size), np.uint8)
    if np.any(ends - starts < head.size + 4 * size):
        return None
    same = (np.lib.stride_tricks.sliding_window_view(buf, head.size)[starts] == head).all()
    return starts + head.size if same else None


def _scanned_floats(
    buf: np.ndarray, o_start: np.ndarray, o_end: np.ndarray, floats: list[int], specs: list[ObservationSpec], starts: np.ndarray
) -> list[np.ndarray]:
    """The float sensors at columns ``floats`` of every record: scans the ObservationProtos of
    every column of ``o_start`` / ``o_end`` (``[n, k]``), then the FloatData of those sensors.
    Every field is scanned: protobuf writes fields in number order, but a reader must take
    them in any order."""
    n, k = o_start.shape
    with _records_of(np.arange(n * k) // k):
        fd_start, fd_end = scan.scan(buf, o_start.ravel(), o_end.ravel()).message(FLOAT_DATA_FIELD)
    if not floats:
        return []
    chosen = (np.arange(n)[:, None] * k + np.array(floats)).ravel()
    with _records_of(np.arange(chosen.size) // len(floats)):
        data = scan.scan(buf, fd_start[chosen], fd_end[chosen])
    return _float_sensors(data, buf, specs, starts)


def _float_sensors(data: scan.Fields, buf: np.ndarray, specs: list[ObservationSpec], starts: np.ndarray) -> list[np.ndarray]:
    """Float sensors of every record from their ``FloatData`` messages, ordered record-major
    then sensor (message ``k`` is sensor ``k % len(specs)`` of record ``k // len(specs)``)."""
    n, nf = starts.size, len(specs)
    sizes = np.array([math.prod(o.shape) for o in specs], np.int64)
    packed = data.packed(FLOAT_VALUES_FIELD)
    if packed is not None:  # the usual encoding: one packed run per sensor, copied as is
        counts = ((packed[1] - packed[0]) // 4).reshape(n, nf)
        ragged = ((packed[1] - packed[0]) % 4).reshape(n, nf).any(axis=1)
        _fail_first(ragged, starts, lambda i: "a packed float observation is not a whole number of floats")
    else:
        with _records_of(np.arange(data.n) // nf):
            values, flat_counts = data.repeated_fixed32(buf, FLOAT_VALUES_FIELD)
        counts = flat_counts.reshape(n, nf)
    wrong = counts != sizes
    _fail_first(wrong.any(axis=1), starts, lambda i: _count_error(specs, counts[i], sizes))
    out = []
    for j, o_spec in enumerate(specs):
        if packed is not None:
            raw = scan.gather(buf, packed[0][j::nf], np.full(n, 4 * sizes[j]))
            out.append(raw.view("<f4").reshape((n, *o_spec.shape)))
        else:
            first = int(sizes[:j].sum())
            table = values.reshape(n, int(sizes.sum()))
            out.append(np.ascontiguousarray(table[:, first : first + sizes[j]]).reshape((n, *o_spec.shape)))
    return out


def _count_error(specs: list[ObservationSpec], counts: np.ndarray, sizes: np.ndarray) -> str:
    j = int(np.flatnonzero(counts != sizes)[0])
    name = specs[j].name or "(unnamed)"
    return f"observation {name} has {counts[j]} values, its shape {list(specs[j].shape)} needs {sizes[j]}"


def _images(protos: Iterator[tuple[int, int, pb.ObservationProto]], spec: ObservationSpec, n: int, image_format: ImageFormat) -> np.ndarray:
    """Decodes one image sensor of ``n`` records as the link does (``protos`` yields
    (record index, buffer position, ObservationProto) for every record in order)."""
    records = list(protos)
    try:
        return decode_images([proto for _, _, proto in records], spec, image_format)
    except ImageBatchError as exc:
        i, pos, _ = records[exc.index]
        raise RecordError(i, pos, f"cannot decode image observation {spec.name or '(unnamed)'} ({exc})") from None


def _parsed_observations(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> Iterator[tuple[int, int, pb.ObservationProto]]:
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
        try:
            yield i, s, pb.ObservationProto.FromString(buf[s:e].tobytes())
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise RecordError(i, s, f"an observation is not a valid ObservationProto ({exc})") from None


def decode_pairs(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, spec: BehaviorSpec, image_format: ImageFormat) -> RecordArrays:
    """Records of the 0.12-4.x eras (``AgentInfoActionPairProto``) at ``buf[starts[i]:ends[i]]``."""
    n = starts.size
    with _records_of(None):
        top = scan.scan(buf, starts, ends)
        info = scan.scan(buf, *top.message(_PAIR_INFO))
        action = scan.scan(buf, *top.message(_PAIR_ACTION))
        discrete, discrete_counts = action.repeated_varint(buf, DISCRETE_FIELD)
        actions = ActionValues(*action.repeated_fixed32(buf, CONTINUOUS_FIELD), discrete.view(np.int64), discrete_counts,
                               *action.repeated_fixed32(buf, FLAT_FIELD))  # fmt: skip
        masks = _masks(info, buf, spec)
    o_rec, o_start, o_end = info.repeated_messages(_OBSERVATIONS)
    n_obs = len(spec.observation_specs)
    per_record = np.bincount(o_rec, minlength=n)
    _fail_first(per_record != n_obs, starts, lambda i: f"it has {per_record[i]} observations, the first record has {n_obs}")
    o_start, o_end = o_start.reshape(n, n_obs), o_end.reshape(n, n_obs)
    decoded: dict[int, np.ndarray] = {}
    for j, o_spec in enumerate(spec.observation_specs):
        size = math.prod(o_spec.shape)
        at = None if o_spec.is_visual else _same_layout(buf, o_start[:, j], o_end[:, j], size)
        if at is not None:
            decoded[j] = scan.gather(buf, at, np.full(n, 4 * size)).view("<f4").reshape((n, *o_spec.shape))
    # The other sensors go through the general scan, which (when there are float sensors at
    # all) also checks the fields of the images.
    rest = [j for j in range(n_obs) if j not in decoded]
    if rest and any(not o.is_visual for o in spec.observation_specs):
        floats = [k for k, j in enumerate(rest) if not spec.observation_specs[j].is_visual]
        specs = [spec.observation_specs[rest[k]] for k in floats]
        scanned = _scanned_floats(buf, o_start[:, rest], o_end[:, rest], floats, specs, starts)
        decoded.update(zip((rest[k] for k in floats), scanned))
    for j, o_spec in enumerate(spec.observation_specs):
        if o_spec.is_visual:
            decoded[j] = _images(_parsed_observations(buf, o_start[:, j], o_end[:, j]), o_spec, n, image_format)
    observations = [decoded[j] for j in range(n_obs)]
    cont, disc, stored = _actions(spec, starts, actions)
    arrays = RecordArrays(
        observations=observations,
        continuous=cont,
        discrete=disc,
        action_stored=stored,
        rewards=info.fixed32(buf, _REWARD),
        done=info.varint(_DONE) != 0,
        max_step_reached=info.varint(_MAX_STEP) != 0,
        agent_ids=info.varint(_ID).view(np.int64).astype(np.int32),
        action_masks=masks,
    )
    return _finite(arrays, spec, starts)


def decode_legacy(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, spec: BehaviorSpec, image_format: ImageFormat, visual_field: int
) -> RecordArrays:
    """Records of the 0.6-0.11 era (bare ``AgentInfoProto``). ``spec`` lists the images first
    (PNG bytes in field 2, or 0.11 compressed observations in field 13), then the vector."""
    n = starts.size
    with _records_of(None):
        rec = scan.scan(buf, starts, ends)
        actions = ActionValues(*_no_typed_actions(n), *rec.repeated_fixed32(buf, _LEGACY_STORED_ACTION))
        masks = _masks(rec, buf, spec)
    images = [o for o in spec.observation_specs if o.is_visual]
    observations: list[np.ndarray] = []
    if images:
        v_rec, v_start, v_end = rec.repeated_messages(visual_field)
        per_record = np.bincount(v_rec, minlength=n)
        _fail_first(per_record != len(images), starts, lambda i: f"it has {per_record[i]} images, the brain parameters declare {len(images)}")
        if visual_field == LEGACY_COMPRESSED_FIELD:
            with _records_of(v_rec):
                v_start, v_end = scan.scan(buf, v_start, v_end).message(_COMPRESSED_DATA)
        v_start, v_end = v_start.reshape(n, len(images)), v_end.reshape(n, len(images))
        for j, o_spec in enumerate(images):
            protos = (
                (i, s, pb.ObservationProto(shape=o_spec.shape, compression_type=pb.PNG, compressed_data=buf[s:e].tobytes()))
                for i, (s, e) in enumerate(zip(v_start[:, j].tolist(), v_end[:, j].tolist()))
            )
            observations.append(_images(protos, o_spec, n, image_format))
    if len(images) < len(spec.observation_specs):
        vector = spec.observation_specs[-1]
        with _records_of(None):
            values, counts = rec.repeated_fixed32(buf, _LEGACY_VECTOR)
        size = np.array([math.prod(vector.shape)])
        _fail_first(counts != size[0], starts, lambda i: _count_error([vector], counts[i : i + 1], size))
        observations.append(values.reshape((n, *vector.shape)))
    cont, disc, stored = _actions(spec, starts, actions)
    arrays = RecordArrays(
        observations=observations,
        continuous=cont,
        discrete=disc,
        action_stored=stored,
        rewards=rec.fixed32(buf, _REWARD),
        done=rec.varint(_DONE) != 0,
        max_step_reached=rec.varint(_MAX_STEP) != 0,
        agent_ids=rec.varint(_ID).view(np.int64).astype(np.int32),
        action_masks=masks,
    )
    return _finite(arrays, spec, starts)
