"""Reading Unity `.demo` files of every ML-Agents era into numpy.

A `.demo` file is a delimited ``DemonstrationMetaProto`` at offset 0, a delimited ``BrainParametersProto`` at offset 33,
one delimited record per recorded agent step, and usually a raw copy of the meta at the
end. The records changed over the years; the era is told from the bytes, never from the
file name:

========== ==================================================================================
era        records
========== ==================================================================================
0.6-0.11   bare ``AgentInfoProto``: vector floats (field 1), PNGs (field 2, sized by the brain's
           ``camera_resolutions``) or 0.11 compressed observations (field 13), the stored
           action in field 4
0.12-0.15  ``AgentInfoActionPairProto`` with ``ObservationProto`` sensors; the brain still
           carries vector observation sizes; actions in ``vector_actions`` (field 1)
1.0-1.6    as 0.12-0.15, brain named ``Name?team=N`` without observation sizes
1.7-4.x    ``ActionSpecProto`` in the brain, ``continuous_actions`` / ``discrete_actions``,
           named sensors, images HWC or CHW as their ``dimension_properties`` say
========== ==================================================================================

Observations come out exactly as ``UnityIL-v0`` returns the same sensors, by the rules of
the live link (:mod:`gym_unity_il.protocol`): the behavior spec is built from the brain
parameters and the first record, images are decoded as on the link, and vector data is
copied straight from the file bytes (a test checks that this equals the link's decoding).
NaN and infinite observations and rewards are refused, as on the link. Legacy (0.6-0.11)
sensors are listed images first, then the stacked vector observation when it is not
empty; their names are empty, so their keys are ``obs_0``, ``obs_1``, ...

Every stored action is kept as Unity wrote it: in record *t*, the action executed
*before* observation *t* (the one that led to it). :mod:`gym_unity_il.demo.convert`
pairs observation *t* with record *t+1*'s stored action.

Reading streams: :meth:`DemoReader.iter_batches` and :func:`iter_records` hold a few MB
of the file at a time, whatever its size; :func:`read_demo` loads everything.
"""

from __future__ import annotations

import enum
import math
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
from google.protobuf.message import DecodeError, Message

from gym_unity_il.demo import records
from gym_unity_il.errors import DemoFormatError, DemoFormatWarning, GymUnityILError, SpecMismatchError, UnityProtocolError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import scan
from gym_unity_il.protocol.specs import action_spec_from_proto, behavior_spec_from_proto, check_spec_sizes
from gym_unity_il.protocol.wire import LEN, WireError, fields_of, read_varint
from gym_unity_il.spec import BehaviorSpec, ImageFormat, ObservationSpec, check_image_format

#: Offset of the BrainParametersProto (bytes 0-32 are reserved for the delimited meta).
BRAIN_OFFSET = 33
#: Versions of the demonstration format accepted (Unity writes 1; mlagents also accepts 0).
SUPPORTED_API_VERSIONS = (0, 1)
#: Records decoded together by default when streaming (fewer when their arrays, or their
#: bytes in the file, would exceed ``_BATCH_BYTES``, e.g. for images).
DEFAULT_BATCH = 4096
_BATCH_BYTES = 32 << 20
#: Action arrays a whole file may need beyond what it stores (a record need not store its
#: action or its mask, which then read as zeros or as all allowed): 256 MB, or 16 times the file.
_ACTIONS_WITHOUT_DATA = 256 << 20
_CHUNK = 4 << 20  # the file is read into a buffer of two chunks (more for a larger batch)
_META_COPY_MAX = BRAIN_OFFSET
_LFS_PREFIX = b"version https://git-lfs"
_FIX_CORRUPT = "the file is damaged or cut short: copy or export it again from where it was recorded"


class DemoEra(str, enum.Enum):
    """The record format of a `.demo` file (the ML-Agents releases that wrote it)."""

    V0_6 = "0.6-0.11"
    V0_12 = "0.12-0.15"
    V1_0 = "1.0-1.6"
    V1_7 = "1.7-4.x"

    @property
    def legacy_records(self) -> bool:
        """True for bare ``AgentInfoProto`` records (0.6-0.11)."""
        return self is DemoEra.V0_6


@dataclass(frozen=True)
class DemoMeta:
    """What a file's header says.

    Attributes:
        path: the file.
        api_version: demonstration format version (1 in every Unity release).
        name: the demonstration name (at most 16 characters of ``[a-zA-Z0-9 -]``).
        number_steps: records announced by the meta (0 for an interrupted recording).
        number_episodes: ``done`` records + 1 (0 for an interrupted recording).
        mean_reward: sum of rewards / ``number_episodes``.
        era: the record format, told from the bytes.
        interrupted: the recording was never closed (counters 0): the reader reads records
            to the end of the file and ignores a partial last one.
    """

    path: Path
    api_version: int
    name: str
    number_steps: int
    number_episodes: int
    mean_reward: float
    era: DemoEra
    interrupted: bool


@dataclass(frozen=True, eq=False)
class Demonstration:
    """Records of one or more `.demo` files as numpy arrays, ``N`` records in file order.

    Attributes:
        metas: one header per file read (one for a file, several for a directory).
        behavior_spec: the sensors and actions of the recorded behavior. For a file with
            no record in a modern era the sensors are unknown and ``observation_specs`` is empty.
        image_format: layout of the image arrays (``"hwc_uint8"`` or ``"chw_float"``).
        observations: one array per sensor, ``[N, *spec.output_shape(image_format)]``, dtype
            ``spec.output_dtype(image_format)``, sensors in ``behavior_spec`` order.
        stored_continuous_actions: ``float32 [N, continuous_size]``: record *t*'s stored action,
            the one executed *before* observation *t* (zeros after an episode starts).
        stored_discrete_actions: ``int32 [N, len(branches)]``, stored like the continuous part.
        action_stored: ``bool [N]`` False for a record that stores no action at all (0.12-0.15
            recordings end with one); its stored action reads as zeros.
        rewards: ``float32 [N]`` reward received since the previous record.
        done: ``bool [N]`` the record ends its episode.
        max_step_reached: ``bool [N]`` with ``done``: the episode was cut (step limit or
            interruption), not ended by the task.
        agent_ids: ``int32 [N]`` Unity's agent id (in 1.x files it changes every episode).
        action_masks: ``bool [N, sum(branches)]``, True = action ALLOWED (records without a
            mask allow everything); None when the behavior has no discrete branch.
        file_index: ``int32 [N]`` index into ``metas`` of each record's file.
    """

    metas: tuple[DemoMeta, ...]
    behavior_spec: BehaviorSpec
    image_format: ImageFormat
    observations: tuple[np.ndarray, ...]
    stored_continuous_actions: np.ndarray
    stored_discrete_actions: np.ndarray
    action_stored: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    max_step_reached: np.ndarray
    agent_ids: np.ndarray
    action_masks: np.ndarray | None
    file_index: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def meta(self) -> DemoMeta:
        """The header of the file this was read from (a directory has several: see :attr:`metas`)."""
        if len(self.metas) != 1:
            raise ValueError(f"this demonstration was read from {len(self.metas)} files; use .metas for their headers")
        return self.metas[0]

    @property
    def num_episodes(self) -> int:
        """Number of ``done`` records plus one per file (Unity's ``number_episodes`` rule)."""
        return int(self.done.sum()) + len(self.metas)


@dataclass(frozen=True, eq=False)
class DemoRecord:
    """One record of a `.demo` file (see :class:`Demonstration` for the meaning of each field).

    Attributes:
        path: the file.
        index: position of the record in its file (0-based).
        observations: one array per sensor, without the leading ``N`` axis.
        stored_continuous_action: the action executed before this record's observation.
        stored_discrete_action: idem, one index per branch.
        action_stored: False when the record stores no action (then both read as zeros).
        reward: reward received since the previous record.
        done: the record ends its episode.
        max_step_reached: the episode was cut rather than ended by the task.
        agent_id: Unity's agent id.
        action_mask: True = allowed, or None without discrete branches.
    """

    path: Path
    index: int
    observations: tuple[np.ndarray, ...]
    stored_continuous_action: np.ndarray
    stored_discrete_action: np.ndarray
    action_stored: bool
    reward: float
    done: bool
    max_step_reached: bool
    agent_id: int
    action_mask: np.ndarray | None


def check_demo_matches(spec_a: BehaviorSpec, spec_b: BehaviorSpec, *, what_a: str = "demo", what_b: str = "env") -> None:
    """Raises :class:`SpecMismatchError` naming both specs unless their actions and
    observation shapes agree (names may differ). A spec without sensors (a modern file
    with no record) is compared on its actions only."""
    if not spec_a.observation_specs or not spec_b.observation_specs:
        if spec_a.action_spec == spec_b.action_spec:
            return
    elif spec_a.is_compatible(spec_b):
        return
    raise SpecMismatchError(
        f"the {what_a} and the {what_b} disagree:\n  {what_a}: {spec_a.describe()}\n  {what_b}: {spec_b.describe()}\n"
        f"Use a {what_a} recorded from the same behavior (same sensors in the same order, same actions) as the {what_b}."
    )


# ---------------------------------------------------------------------------------- header


@dataclass(frozen=True)
class _Header:
    meta: DemoMeta
    meta_raw: bytes
    brain: pb.BrainParametersProto
    spec: BehaviorSpec
    records_offset: int
    has_records: bool
    legacy_visual_field: int  # 0.6-0.11: 2 (PNG bytes) or 13 (CompressedObservationProto)


def _error(path: Path, where: str, what: str, fix: str = _FIX_CORRUPT) -> DemoFormatError:
    hint = "" if path.suffix == ".demo" else " (the file name does not end in .demo: is it a demonstration at all?)"
    return DemoFormatError(f"{path}: {where}: {what}{hint}. Fix: {fix}.")


class _Stream:
    """Bytes of a file from a position, read in chunks into one reused numpy buffer (decoded
    arrays never point into it): ``buf[pos:end]`` is loaded and not yet consumed."""

    def __init__(self, f: BinaryIO, start: int, chunk: int) -> None:
        f.seek(start)
        self.f = f
        self.chunk = chunk
        self.size = os.fstat(f.fileno()).st_size
        self.base = start  # file offset of buf[0]
        self.buf = np.empty(0, np.uint8)
        self.pos = 0
        self.end = 0

    @property
    def data(self) -> memoryview:
        """``buf`` as bytes (indexing gives Python ints)."""
        return memoryview(self.buf)

    @property
    def eof(self) -> bool:
        """Whether the loaded bytes reach the end of the file."""
        return self.base + self.end >= self.size

    @property
    def offset(self) -> int:
        """File offset of ``pos``."""
        return self.base + self.pos

    @property
    def left(self) -> int:
        """Bytes of the file from ``pos`` on, loaded or not."""
        return self.size - self.offset

    def fill(self, need: int) -> bool:
        """Loads at least ``need`` bytes after ``pos`` if the file has them, filling the buffer
        (two chunks, or more when ``need`` is larger); returns whether it could."""
        have = self.end - self.pos
        if have >= need:
            return True
        if need > self.left:
            return False
        old = self.buf
        if need > old.size:  # two chunks at least, even for a smaller file (its pages beyond are never touched)
            self.buf = np.empty(max(need, 2 * self.chunk), np.uint8)
        size = min(self.buf.size, self.left)
        self.buf[:have] = old[self.pos : self.end]  # numpy moves overlapping 1-d ranges correctly
        self.base += self.pos
        self.pos, self.end = 0, have
        while self.end < size and (got := self.f.readinto(self.data[self.end : size])):
            self.end += got
        if self.end < size:  # the file got shorter since it was opened: it ends here
            self.size = self.base + self.end
        return self.end >= need

    def take(self, length: int, payload: int) -> bytes | None:
        """The ``length`` bytes from ``buf[payload]`` (loading them if needed), moving ``pos``
        past them; None when the file ends first."""
        skip = payload - self.pos
        if not self.fill(skip + length):
            return None
        start = self.pos + skip
        self.pos = start + length
        return self.buf[start : self.pos].tobytes()

    def next_length(self) -> tuple[int, int] | None:
        """The record length at ``pos`` and its payload offset in ``buf``; None at a clean end.

        Raises:
            WireError: the bytes end inside the varint (``what`` starts with "truncated").
        """
        if not self.fill(1):
            return None
        self.fill(min(10, self.left))
        return read_varint(self.data, self.pos, self.end)


def _read_delimited(stream: _Stream, path: Path, what: str) -> bytes:
    start = stream.offset
    try:
        got = stream.next_length()
    except WireError as exc:
        raise _error(path, f"{what} at byte offset {start}", f"bad length prefix ({exc.what})") from None
    if got is None:
        raise _error(path, f"byte offset {start}", f"the file ends before the {what}")
    data = stream.take(*got)
    if data is None:
        raise _error(path, f"{what} at byte offset {start}", f"claims {got[0]} bytes but the file ends first")
    return data


_M = TypeVar("_M", bound=Message)


def _parse(message_type: type[_M], data: bytes, path: Path, where: str) -> _M:
    try:
        return message_type.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _error(path, where, f"not a valid {message_type.DESCRIPTOR.name} ({exc})") from None


def _field_numbers(data: bytes) -> set[int]:
    return {num for num, *_ in fields_of(data)}


def _last_message(fields: list[tuple[int, int, int, int]], num: int) -> tuple[int, int]:
    """The payload range of the last length-delimited field ``num`` (protobuf keeps the last), else (0, 0)."""
    return next(((start, end) for n, wt, start, end in reversed(fields) if n == num and wt == LEN), (0, 0))


def _is_pair(record: bytes) -> bool:
    """Whether a record is an ``AgentInfoActionPairProto`` (else a bare legacy AgentInfoProto):
    a pair holds only fields 1 (agent info) and 2 (action), both messages; a legacy record
    also holds its reward, id or stored action (fields 4-10), and its field 1 is packed floats."""
    try:
        top = fields_of(record)
        if not all(num in (1, 2) and wt == LEN for num, wt, _, _ in top):
            return False
        start, end = _last_message(top, 1)
        fields_of(record[start:end])
    except WireError:
        return False
    return True


def _is_meta_copy(data: bytes, steps: int) -> bool:
    """Whether ``data`` is exactly a serialized meta announcing ``steps`` records."""
    try:
        meta = pb.DemonstrationMetaProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return False
    meta.DiscardUnknownFields()  # a record's fields are unknown to the meta: bytes with any are not a meta
    return meta.api_version in SUPPORTED_API_VERSIONS and meta.number_steps == steps and meta.SerializeToString() == data


def _detect_era(brain_fields: set[int], first: bytes | None) -> DemoEra:
    if 4 in brain_fields or (first is not None and not _is_pair(first)):
        return DemoEra.V0_6
    if first is None and brain_fields & {1, 2}:
        return DemoEra.V0_6  # no record tells 0.6-0.11 from 0.12-0.15 apart; both carry sizes in the brain
    if 9 in brain_fields:
        return DemoEra.V1_7
    if first is not None:
        start, end = _last_message(fields_of(first), 2)
        if _field_numbers(first[start:end]) & {6, 7}:
            return DemoEra.V1_7
    return DemoEra.V0_12 if brain_fields & {1, 2} else DemoEra.V1_0


def _legacy_spec(
    brain: pb.BrainParametersProto, legacy: lpb.BrainParametersProto, first: bytes | None, path: Path, first_offset: int
) -> tuple[BehaviorSpec, int]:
    """Sensors of a 0.6-0.11 file: images (camera resolutions, or 0.11 compressed shapes of
    the first record), then the stacked vector observation when not empty."""
    images: list[ObservationSpec] = []
    visual_field = records.LEGACY_PNG_FIELD
    if legacy.camera_resolutions:
        for res in legacy.camera_resolutions:
            if res.height <= 0 or res.width <= 0:
                raise _error(path, "brain parameters", f"camera resolution {res.width}x{res.height} is not positive")
            images.append(ObservationSpec(shape=(res.height, res.width, 1 if res.gray_scale else 3)))
    elif first is not None:
        info = _parse(lpb.AgentInfoProto, first, path, f"record 0 at byte offset {first_offset}")
        if info.compressed_observations:
            visual_field = records.LEGACY_COMPRESSED_FIELD
            for obs in info.compressed_observations:
                if len(obs.shape) != 3 or min(obs.shape) <= 0:
                    shape = list(obs.shape)
                    raise _error(path, f"record 0 at byte offset {first_offset}", f"compressed observation shape {shape} is not [height, width, channels]")
                images.append(ObservationSpec(shape=tuple(obs.shape)))
    size = legacy.vector_observation_size * max(legacy.num_stacked_vector_observations, 1)
    vectors = [ObservationSpec(shape=(size,))] if size > 0 else []
    spec = BehaviorSpec(name=brain.brain_name, observation_specs=tuple(images + vectors), action_spec=action_spec_from_proto(brain))
    return spec, visual_field


def _read_header(path: Path) -> _Header:
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(BRAIN_OFFSET)
        if not head:
            raise _error(path, "byte offset 0", "the file is empty", "record or download the demonstration again")
        if head.startswith(_LFS_PREFIX):
            raise _error(path, "byte offset 0", "this is a Git LFS pointer file, not the recording",
                         "fetch the real file with `git lfs pull` (or `git lfs fetch && git lfs checkout`) in its repository")  # fmt: skip
        try:
            meta_len, meta_start = read_varint(head, 0, len(head))
        except WireError:
            meta_len, meta_start = BRAIN_OFFSET, 1
        if meta_start + meta_len > BRAIN_OFFSET:
            raise _error(path, "byte offset 0", f"the meta claims {meta_len} bytes, more than the {BRAIN_OFFSET - 1} a .demo reserves",
                         "this is not a Unity .demo file (or its start is damaged)")  # fmt: skip
        if size <= BRAIN_OFFSET:
            raise _error(path, f"byte offset {size}", f"the file has only {size} bytes and ends before the brain parameters at offset {BRAIN_OFFSET}")
        meta_raw = head[meta_start : meta_start + meta_len]
        meta_pb = _parse(pb.DemonstrationMetaProto, meta_raw, path, "meta at byte offset 0")
        if meta_pb.api_version not in SUPPORTED_API_VERSIONS:
            raise _error(path, "meta field api_version", f"version {meta_pb.api_version} is not supported (known: {SUPPORTED_API_VERSIONS})",
                         "this is not a Unity .demo file, or a newer format this reader does not know")  # fmt: skip
        if meta_pb.number_steps < 0 or meta_pb.number_episodes < 0:
            raise _error(path, "meta at byte offset 0", f"negative counters (steps {meta_pb.number_steps}, episodes {meta_pb.number_episodes})")
        stream = _Stream(f, BRAIN_OFFSET, chunk=1 << 16)
        brain_raw = _read_delimited(stream, path, "brain parameters")
        brain = _parse(pb.BrainParametersProto, brain_raw, path, f"brain parameters at byte offset {BRAIN_OFFSET}")
        records_offset = stream.offset
        interrupted = meta_pb.number_steps == 0 and meta_pb.number_episodes == 0
        first = None
        if interrupted or meta_pb.number_steps > 0:
            try:
                got = stream.next_length()
            except WireError:
                got = None
            first = stream.take(*got) if got is not None else None
            if first is None and not interrupted:
                what = f"the meta announces {meta_pb.number_steps} records but the file ends first"
                raise _error(path, f"record 0 at byte offset {records_offset}", what)
    try:
        era = _detect_era(_field_numbers(brain_raw), first)
    except WireError as exc:
        raise _error(path, f"brain parameters at byte offset {BRAIN_OFFSET} / record 0", exc.what) from None
    visual_field = records.LEGACY_PNG_FIELD
    try:
        if era.legacy_records:
            legacy = _parse(lpb.BrainParametersProto, brain_raw, path, f"brain parameters at byte offset {BRAIN_OFFSET}")
            spec, visual_field = _legacy_spec(brain, legacy, first, path, records_offset)
            check_spec_sizes(spec)
        else:
            where = f"record 0 at byte offset {records_offset}"
            info = _parse(pb.AgentInfoActionPairProto, first, path, where).agent_info if first else pb.AgentInfoProto()
            spec = behavior_spec_from_proto(brain, info, channels_first=False)  # checks the sizes too
    except UnityProtocolError as exc:  # sizes out of range, from the protocol's checks
        raise _error(path, f"brain parameters at byte offset {BRAIN_OFFSET} / record 0 at byte offset {records_offset}", str(exc)) from None
    except (ValueError, IndexError) as exc:
        if isinstance(exc, GymUnityILError):
            raise
        raise _error(path, "brain parameters / record 0", f"cannot build the behavior spec ({exc})") from None
    meta = DemoMeta(
        path=path,
        api_version=meta_pb.api_version,
        name=meta_pb.demonstration_name,
        number_steps=meta_pb.number_steps,
        number_episodes=meta_pb.number_episodes,
        mean_reward=meta_pb.mean_reward,
        era=era,
        interrupted=interrupted,
    )
    return _Header(meta, meta_raw, brain, spec, records_offset, first is not None, visual_field)


# ---------------------------------------------------------------------------------- reader


class DemoReader:
    """One `.demo` file: its header is parsed on construction, its records are read on demand.

    Each iteration opens the file again and reads it in chunks, so memory stays bounded by
    the batch size whatever the file size, and a reader can be iterated several times.

    Args:
        path: the `.demo` file.
        image_format: ``"hwc_uint8"`` (default, as ``UnityIL-v0`` returns) or ``"chw_float"``.
        batch_size: most records decoded together when streaming (fewer when their decoded
            observations would pass 32 MB).

    Raises:
        DemoFormatError: the header is not a valid `.demo` header (empty file, Git LFS
            pointer, another kind of file, damaged meta or brain parameters).
        FileNotFoundError: there is no such file.
    """

    def __init__(self, path: str | Path, *, image_format: ImageFormat = "hwc_uint8", batch_size: int = DEFAULT_BATCH) -> None:
        check_image_format(image_format)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path} is a directory; use read_demo() or iter_records() for a folder of .demo files")
        self.image_format = image_format
        self.batch_size = batch_size
        self._header = _read_header(self.path)

    @property
    def meta(self) -> DemoMeta:
        """The header of the file."""
        return self._header.meta

    @property
    def behavior_spec(self) -> BehaviorSpec:
        """The behavior's sensors and actions (no sensors for a modern file without records)."""
        return self._header.spec

    @property
    def era(self) -> DemoEra:
        """The record format of the file."""
        return self._header.meta.era

    @property
    def records_offset(self) -> int:
        """Byte offset of the first record (just after the brain parameters)."""
        return self._header.records_offset

    def _decode(self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> records.RecordArrays:
        header = self._header
        if header.meta.era.legacy_records:
            return records.decode_legacy(buf, starts, ends, header.spec, self.image_format, header.legacy_visual_field)
        return records.decode_pairs(buf, starts, ends, header.spec, self.image_format)

    def iter_batches(self) -> Iterator[Demonstration]:
        """The records as consecutive :class:`Demonstration` chunks of up to ``batch_size`` records.

        Raises:
            DemoFormatError: a record is damaged, disagrees with the first record, or the file
                ends before the number of records its meta announces.
        """
        header = self._header
        meta = header.meta
        expected = None if meta.interrupted else meta.number_steps
        batch_size = self._batch_rows()
        with self.path.open("rb") as f:
            stream = _Stream(f, header.records_offset, _CHUNK)
            index = 0
            while expected is None or index < expected:
                want = batch_size if expected is None else min(batch_size, expected - index)
                starts, ends = self._frame(stream, want, index, expected)
                if not starts.size:
                    break
                try:
                    batch = self._decode(stream.buf, starts, ends)
                except records.RecordError as err:
                    where = f"record {index + err.index} at byte offset {stream.base + err.pos}"
                    raise _error(self.path, where, err.what, err.fix or _FIX_CORRUPT) from None
                yield self._demonstration(batch, starts.size)
                index += starts.size
            if expected is not None:
                self._check_tail(stream)

    def _frame(self, stream: _Stream, want: int, index: int, expected: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Finds the next ``want`` records (fewer at the end of the records or once their bytes
        pass ``_BATCH_BYTES``), loading the file as needed, and moves ``stream.pos`` past them.
        Returns the ranges of their payloads in ``stream.buf``."""
        stream.fill(min(stream.chunk // 2, stream.left))
        while True:
            # An interrupted file may still end with the raw meta copy (Unity writes it before
            # the meta at offset 0): look for it among the last bytes, before each record there.
            tail_zone = stream.end - _META_COPY_MAX if expected is None and stream.eof else None
            in_tail = tail_zone is not None and stream.pos >= tail_zone
            if in_tail and _is_meta_copy(stream.buf[stream.pos : stream.end].tobytes(), index):
                stream.pos = stream.end
            try:
                count, before = (1, None) if in_tail else (want, tail_zone)
                starts, ends, after = scan.frame(stream.data, stream.pos, stream.end, count, heads_before=before)
            except WireError as exc:
                where = f"record {index + exc.message} at byte offset {stream.base + exc.offset}"
                raise _error(self.path, where, f"bad length prefix ({exc.what})") from None
            loaded = stream.end - stream.pos
            if starts.size == want or stream.eof or starts.size and loaded >= _BATCH_BYTES:
                break
            stream.fill(min(loaded + max(loaded, stream.chunk), stream.left))  # keeps the bytes from pos on
        if not starts.size and after < stream.end:  # the whole file is loaded: the rest is cut short
            if expected is not None:
                raise _error(self.path, f"record {index} at byte offset {stream.offset}",
                             f"the meta announces {expected} records but the file ends inside record {index}")  # fmt: skip
            warnings.warn(
                f"{self.path}: ignoring a partial last record {index} at byte offset {stream.offset} ({loaded} bytes; the recording was interrupted)",
                DemoFormatWarning,
                stacklevel=3,
            )
            after = stream.end
        stream.pos = after
        if expected is not None and not starts.size and index < expected:
            raise _error(self.path, f"byte offset {stream.offset}", f"the meta announces {expected} records but the file ends after {index}")
        return starts, ends

    def _check_tail(self, stream: _Stream) -> None:
        """After the announced records: nothing (0.12-0.15) or the raw meta copy; warns otherwise."""
        stream.fill(min(len(self._header.meta_raw) + 1, stream.left))
        tail = stream.buf[stream.pos : stream.end].tobytes()
        if tail and tail != self._header.meta_raw:
            warnings.warn(
                f"{self.path}: ignoring {len(tail)}{'+' if not stream.eof else ''} bytes at byte offset {stream.offset} after the "
                f"{self._header.meta.number_steps} records the meta announces (expected nothing or the meta copy)",
                DemoFormatWarning,
                stacklevel=3,
            )

    def _demonstration(self, batch: records.RecordArrays, n: int) -> Demonstration:
        return Demonstration(
            metas=(self._header.meta,),
            behavior_spec=self._header.spec,
            image_format=self.image_format,
            observations=tuple(batch.observations),
            stored_continuous_actions=batch.continuous,
            stored_discrete_actions=batch.discrete,
            action_stored=batch.action_stored,
            rewards=batch.rewards,
            done=batch.done,
            max_step_reached=batch.max_step_reached,
            agent_ids=batch.agent_ids,
            action_masks=batch.action_masks,
            file_index=np.zeros(n, np.int32),
        )

    def __iter__(self) -> Iterator[DemoRecord]:
        """The records one by one (decoded a batch at a time)."""
        index = 0
        for chunk in self.iter_batches():
            masks = chunk.action_masks
            for i in range(len(chunk)):
                yield DemoRecord(
                    path=self.path,
                    index=index,
                    observations=tuple(o[i] for o in chunk.observations),
                    stored_continuous_action=chunk.stored_continuous_actions[i],
                    stored_discrete_action=chunk.stored_discrete_actions[i],
                    action_stored=bool(chunk.action_stored[i]),
                    reward=float(chunk.rewards[i]),
                    done=bool(chunk.done[i]),
                    max_step_reached=bool(chunk.max_step_reached[i]),
                    agent_id=int(chunk.agent_ids[i]),
                    action_mask=None if masks is None else masks[i],
                )
                index += 1

    def _record_bytes(self) -> int:
        """Bytes of the arrays of one decoded record: observations, actions, mask and the scalars."""
        fmt, spec = self.image_format, self._header.spec
        act = spec.action_spec
        observations = sum(math.prod(o.output_shape(fmt)) * o.output_dtype(fmt).itemsize for o in spec.observation_specs)
        return observations + 4 * (act.continuous_size + act.discrete_size) + sum(act.discrete_branches) + 15

    def _batch_rows(self) -> int:
        """Records decoded together: ``batch_size``, fewer when their arrays would pass ``_BATCH_BYTES``."""
        return max(1, min(self.batch_size, _BATCH_BYTES // self._record_bytes()))

    def read(self) -> Demonstration:
        """Every record of the file as one :class:`Demonstration`."""
        meta, spec = self._header.meta, self._header.spec
        n = meta.number_steps
        floats = sum(math.prod(o.shape) for o in spec.observation_specs)
        # The meta's count can be trusted to allocate the arrays once when the file was closed, its
        # sensors are vectors (decoded, as large as on disk), the file is long enough for them and
        # the arrays are not far larger than the file (a record need not store its action mask).
        trusted = not meta.interrupted and not any(o.is_visual for o in spec.observation_specs)
        size = self.path.stat().st_size
        if not trusted or n * (1 + 4 * floats) > size or n * self._record_bytes() > 4 * size + _BATCH_BYTES or n <= self._batch_rows():
            return _concatenate(self._batches_within_size(size), self._allocate(0), (meta,))
        out = self._allocate(n)
        done = 0
        for chunk in self.iter_batches():
            for whole, part in zip(_arrays(out), _arrays(chunk)):
                whole[done : done + len(chunk)] = part
            done += len(chunk)
        return out

    def _batches_within_size(self, size: int) -> list[Demonstration]:
        """Every batch of the file (of ``size`` bytes), refusing to collect action arrays far
        larger than the file (brain parameters declaring thousands of actions for records that
        store none) past ``_ACTIONS_WITHOUT_DATA``."""
        act, meta = self._header.spec.action_spec, self._header.meta
        per_record = 4 * (act.continuous_size + act.discrete_size) + sum(act.discrete_branches)
        limit = max(_ACTIONS_WITHOUT_DATA, 16 * size)

        def refuse(where: str, records: str) -> DemoFormatError:
            what = (f"the brain parameters declare {act.continuous_size} continuous actions and discrete branches "
                    f"{list(act.discrete_branches)}: {records} would need more than {limit >> 20} MB of action arrays, "
                    "far more than the file holds")  # fmt: skip
            return _error(self.path, where, what)

        # Known before reading anything, when the file can hold the count (else the framing tells).
        if not meta.interrupted and meta.number_steps <= size and meta.number_steps * per_record > limit:
            raise refuse("meta at byte offset 0", f"the {meta.number_steps} records it announces")
        batches, count = [], 0
        for batch in self.iter_batches():
            count += len(batch)
            if count * per_record > limit:
                raise refuse(f"record {count - 1}", f"{count} records")
            batches.append(batch)
        return batches

    def _allocate(self, n: int) -> Demonstration:
        spec, fmt = self._header.spec, self.image_format
        act = spec.action_spec
        return Demonstration(
            metas=(self._header.meta,),
            behavior_spec=spec,
            image_format=fmt,
            observations=tuple(np.empty((n, *o.output_shape(fmt)), o.output_dtype(fmt)) for o in spec.observation_specs),
            stored_continuous_actions=np.empty((n, act.continuous_size), np.float32),
            stored_discrete_actions=np.empty((n, act.discrete_size), np.int32),
            action_stored=np.empty(n, bool),
            rewards=np.empty(n, np.float32),
            done=np.empty(n, bool),
            max_step_reached=np.empty(n, bool),
            agent_ids=np.empty(n, np.int32),
            action_masks=np.empty((n, sum(act.discrete_branches)), bool) if act.discrete_branches else None,
            file_index=np.zeros(n, np.int32),
        )


def _arrays(demo: Demonstration) -> list[np.ndarray]:
    """The per-record arrays of a Demonstration, in a fixed order."""
    masks = [] if demo.action_masks is None else [demo.action_masks]
    return [*demo.observations, demo.stored_continuous_actions, demo.stored_discrete_actions, demo.action_stored, demo.rewards,
            demo.done, demo.max_step_reached, demo.agent_ids, *masks, demo.file_index]  # fmt: skip


def _concatenate(parts: list[Demonstration], empty: Demonstration, metas: tuple[DemoMeta, ...]) -> Demonstration:
    """Joins chunks (of files whose specs agree) into one Demonstration; ``empty`` gives the
    spec and the shapes when there is nothing to join."""
    parts = [p for p in parts if len(p)] or [empty]
    if len(parts) == 1:
        return replace(parts[0], metas=metas)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    masks = None if parts[0].action_masks is None else np.concatenate([p.action_masks for p in parts])  # type: ignore[misc]
    return Demonstration(
        metas=metas,
        behavior_spec=parts[0].behavior_spec,
        image_format=parts[0].image_format,
        observations=tuple(np.concatenate([p.observations[j] for p in parts]) for j in range(len(parts[0].observations))),
        stored_continuous_actions=cat("stored_continuous_actions"),
        stored_discrete_actions=cat("stored_discrete_actions"),
        action_stored=cat("action_stored"),
        rewards=cat("rewards"),
        done=cat("done"),
        max_step_reached=cat("max_step_reached"),
        agent_ids=cat("agent_ids"),
        action_masks=masks,
        file_index=cat("file_index"),
    )


def demo_files(path: str | Path) -> list[Path]:
    """The files a path stands for: itself, or the ``*.demo`` files of a directory in sorted order.

    ``*.demo`` entries of a directory that cannot be opened (a symbolic link that loops or
    points nowhere) are skipped with one :class:`DemoFormatWarning` naming them.

    Raises:
        FileNotFoundError: the path does not exist.
        DemoFormatError: a directory without any ``.demo`` file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such .demo file or directory")
    if not path.is_dir():
        return [path]
    files, unreadable = [], []
    for entry in sorted(p for p in path.iterdir() if p.suffix == ".demo"):
        try:
            if stat.S_ISREG(entry.stat().st_mode):
                files.append(entry)
        except OSError as exc:
            unreadable.append(f"{entry} ({exc.strerror or exc})")
    if unreadable:
        warnings.warn(
            f"{path}: skipped .demo entries that cannot be opened: {', '.join(unreadable)}. "
            "Fix: remove these links or point them at .demo files.",
            DemoFormatWarning,
            stacklevel=2,
        )
    if not files:
        raise DemoFormatError(f"{path}: the directory holds no .demo file. Fix: point at a .demo file or a folder of them.")
    return files


def _readers(path: str | Path, image_format: ImageFormat) -> list[DemoReader]:
    readers = [DemoReader(p, image_format=image_format) for p in demo_files(path)]
    with_records = [r for r in readers if r._header.has_records] or readers
    for r in readers:
        check_demo_matches(with_records[0].behavior_spec, r.behavior_spec, what_a=f"file {with_records[0].path.name}", what_b=f"file {r.path.name}")
    return readers


def read_demo(path: str | Path, *, image_format: ImageFormat = "hwc_uint8") -> Demonstration:
    """Loads a `.demo` file, or every `.demo` file of a directory (sorted by name), into arrays.

    Args:
        path: a `.demo` file or a directory of them (all recorded from the same behavior).
        image_format: ``"hwc_uint8"`` (default) or ``"chw_float"``, as for ``UnityIL-v0``.

    Returns:
        A :class:`Demonstration` (``file_index`` tells which file each record came from).

    Raises:
        DemoFormatError: a file is not a readable `.demo` file (the message names the file,
            the byte offset or field, and what to do).
        SpecMismatchError: the files of a directory were recorded from different behaviors.
    """
    readers = _readers(path, image_format)
    parts = []
    for k, reader in enumerate(readers):
        whole = reader.read()
        parts.append(replace(whole, file_index=np.full(len(whole), k, np.int32)))
    spec_source = next((r for r in readers if r._header.has_records), readers[0])
    return _concatenate(parts, spec_source._allocate(0), tuple(r.meta for r in readers))


def iter_records(path: str | Path, *, image_format: ImageFormat = "hwc_uint8") -> Iterator[DemoRecord]:
    """Streams the records of a `.demo` file (or of every `.demo` file of a directory, sorted
    by name) one at a time, holding one chunk of one file in memory.

    Raises:
        DemoFormatError: as :func:`read_demo`, when the damaged part is reached.
        SpecMismatchError: the files of a directory were recorded from different behaviors.
    """
    for reader in _readers(path, image_format):
        yield from reader
