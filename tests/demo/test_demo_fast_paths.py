"""The reader's shortcuts give exactly what the general code gives: framing runs of equal
records, vector observations read by their byte layout, chunked reading with a reused
buffer, and loading into arrays allocated from the meta's count."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gym_unity_il.demo.reader as reader_module
from demo_helpers import image, spec_of, vector, write_episodes
from gym_unity_il.demo import DemoFormatWarning, DemoReader, read_demo
from gym_unity_il.demo import records
from gym_unity_il.demo.writer import demo_brain_parameters
from gym_unity_il.errors import DemoFormatError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.protocol import observations, scan, wire
from gym_unity_il.protocol.wire import WireError, encode_varint

# ---------------------------------------------------------------------------------- framing


def _varint(value: int, extra: int) -> bytes:
    """``value`` as a varint padded with ``extra`` needless continuation bytes (still valid)."""
    if not extra:
        return encode_varint(value)
    out = bytearray(encode_varint(value))
    out[-1] |= 0x80
    return bytes(out + b"\x80" * (extra - 1) + b"\x00")


def _frame_one_by_one(data: bytes, pos: int, end: int, count: int, before: int | None) -> tuple[list[int], list[int], int]:
    """The plain loop: one length prefix after the other."""
    limit = end if before is None else min(end, before)
    starts: list[int] = []
    ends: list[int] = []
    while len(starts) < count and pos < limit:
        length = shift = 0
        at = pos
        while at < end and data[at] & 0x80:
            length |= (data[at] & 0x7F) << shift
            shift += 7
            at += 1
        if at >= end:
            break
        length |= data[at] << shift
        if at + 1 + length > end:
            break
        starts.append(at + 1)
        ends.append(at + 1 + length)
        pos = at + 1 + length
    return starts, ends, pos


_LENGTHS = st.sampled_from([0, 1, 5, 127, 128, 300, 16383, 16384, 20000])
_RUNS = st.lists(st.tuples(_LENGTHS, st.integers(1, 40), st.sampled_from([0, 0, 0, 1, 2])), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(runs=_RUNS, count=st.integers(1, 300), cut=st.floats(0, 1), before=st.none() | st.floats(0, 1), seed=st.integers(0, 2**16))
def test_frame_gives_what_a_message_by_message_loop_gives(runs: list[tuple[int, int, int]], count: int, cut: float,
                                                         before: float | None, seed: int) -> None:  # fmt: skip
    """Runs of equal lengths (1-, 2- and 3-byte prefixes), prefixes padded with needless bytes
    (same length, other bytes: a run must stop there), a cut at any byte and a stop position."""
    rng = np.random.default_rng(seed)
    data = b"\x07\x07"  # bytes before the range
    for length, repeat, extra in runs:
        for _ in range(repeat):
            data += _varint(length, extra) + rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    end = 2 + int(cut * (len(data) - 2))
    stop = None if before is None else 2 + int(before * (len(data) - 2))
    starts, ends, pos = scan.frame(data, 2, end, count, heads_before=stop)
    expected = _frame_one_by_one(data, 2, end, count, stop)
    assert (starts.tolist(), ends.tolist(), pos) == expected
    assert starts.dtype == ends.dtype == np.int64
    # a memoryview of numpy memory (what the reader passes) frames alike
    v_starts, v_ends, v_pos = scan.frame(memoryview(np.frombuffer(data, np.uint8)), 2, end, count, heads_before=stop)
    assert (v_starts.tolist(), v_ends.tolist(), v_pos) == expected


def test_frame_rejects_a_length_prefix_longer_than_10_bytes() -> None:
    good = encode_varint(3) + b"abc"
    with pytest.raises(WireError, match="longer than 10 bytes") as info:
        scan.frame(good * 2 + b"\xff" * 11 + b"\x01", 0, 20, 5)
    assert (info.value.message, info.value.offset) == (2, 8)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40) | st.lists(st.sampled_from([b"\x08\x96\x01", b"\x12\x02ab", b"\x1d\x00\x00\x80?", b"\x21" + bytes(8),
                                                               b"\xf8\x07\x01", b"\x80\x80\x80\x80\x10\x01", b"\x0a\x85"]),
                                               max_size=6).map(b"".join))  # fmt: skip
def test_fields_of_one_message_reads_like_scan(data: bytes) -> None:
    """The header's one-message reader and the vectorised scanner agree on fields and errors."""
    try:
        fields = scan.scan(np.frombuffer(data, np.uint8), np.array([0]), np.array([len(data)]))
    except WireError as exc:
        with pytest.raises(WireError) as info:
            wire.fields_of(data)
        assert (info.value.offset, info.value.what) == (exc.offset, exc.what)
        return
    expected = list(zip(fields.num.tolist(), fields.wt.tolist(), fields.val.tolist(), fields.end.tolist()))
    assert wire.fields_of(data) == expected


# ---------------------------------------------------------------------------------- vector observations by layout


def _field(num: int, wire_type: int, payload: bytes) -> bytes:
    tag = encode_varint(num << 3 | wire_type)
    return tag + (encode_varint(len(payload)) + payload if wire_type == 2 else payload)


def _observation(values: np.ndarray, name: str, how: str = "canonical") -> bytes:
    """An ObservationProto holding ``values``, written as protobuf does (``canonical``) or in
    another encoding protobuf reads alike."""
    floats = values.astype("<f4").tobytes()
    shape = _field(1, 2, encode_varint(values.size))
    rest = _field(6, 2, b"\x00") + _field(8, 2, name.encode())
    if how == "unpacked":
        data = b"".join(_field(1, 5, floats[i : i + 4]) for i in range(0, len(floats), 4))
        return shape + _field(4, 2, data) + rest
    if how == "padded_length":  # the FloatData length padded with needless varint bytes
        data = _field(1, 2, floats)
        return shape + b"\x22" + _varint(len(data), 2) + data + rest
    if how == "unknown_after":  # unknown varint and fixed64 fields after the floats
        return shape + _field(4, 2, _field(1, 2, floats)) + _field(20, 0, encode_varint(300)) + _field(21, 1, bytes(8)) + rest
    assert how == "canonical"
    return pb.ObservationProto(shape=[values.size], float_data=pb.ObservationProto.FloatData(data=values.tolist()),
                               dimension_properties=[0], name=name).SerializeToString()  # fmt: skip


def _record(observations: list[bytes], i: int, extra_info: bytes = b"") -> bytes:
    info = (
        _field(7, 5, struct.pack("<f", 0.25 * i))
        + _field(10, 0, encode_varint(-i & 0xFFFFFFFFFFFFFFFF))  # negative ids are 10-byte varints
        + b"".join(_field(13, 2, o) for o in observations)
        + extra_info
    )
    action = pb.AgentActionProto(continuous_actions=[0.5 * i]).SerializeToString()
    return _field(1, 2, info) + _field(2, 2, action)


def _demo(path: Path, records_: list[bytes], spec_source: list[int]) -> Path:
    spec = spec_of(*(vector(n, f"s{j}") for j, n in enumerate(spec_source)), continuous=1)
    meta = pb.DemonstrationMetaProto(api_version=1, demonstration_name="f", number_steps=len(records_), number_episodes=1).SerializeToString()
    brain = demo_brain_parameters(spec).SerializeToString()
    body = b"".join(encode_varint(len(r)) + r for r in records_)
    path.write_bytes(encode_varint(len(meta)) + meta + bytes(32 - len(meta)) + encode_varint(len(brain)) + brain + body + meta)
    return path


# sizes 3, 40 and 5000 floats: packed lengths of 1, 2 and 3 varint bytes
_SIZES = [3, 40, 5000]
_CASES = {
    # case: (encoding of sensor 1 in record 2, encoding of sensor 1 in record 0, sensors read by layout)
    "canonical": ("canonical", "canonical", [0, 1, 2]),
    "unpacked": ("unpacked", "canonical", [0, 2]),
    "padded_length": ("padded_length", "canonical", [0, 2]),
    "unknown_after": ("unknown_after", "canonical", [0, 1, 2]),
    "first_record_differs": ("canonical", "unpacked", [0, 2]),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_layout_shortcut_equals_the_general_scan_and_protobuf(tmp_path: Path, case: str) -> None:
    odd, first, by_layout = _CASES[case]
    rng = np.random.default_rng(3)
    values = [[rng.normal(size=n).astype(np.float32) for n in _SIZES] for _ in range(5)]
    raw = []
    for i, obs in enumerate(values):
        how = {2: odd, 0: first}.get(i, "canonical")
        raw.append(_record([_observation(v, f"s{j}", how if j == 1 else "canonical") for j, v in enumerate(obs)], i,
                           extra_info=_field(30, 0, b"\x01") if i == 3 else b""))  # fmt: skip
    path = _demo(tmp_path / f"{case}.demo", raw, _SIZES)

    # both paths on the same batch of records
    reader = DemoReader(path)
    buf = np.frombuffer(path.read_bytes(), np.uint8)
    starts, ends, _ = scan.frame(memoryview(buf), reader.records_offset, buf.size, len(raw))
    info = scan.scan(buf, *scan.scan(buf, starts, ends).message(1))
    _, o_start, o_end = info.repeated_messages(13)
    o_start, o_end = o_start.reshape(5, 3), o_end.reshape(5, 3)
    specs = list(reader.behavior_spec.observation_specs)
    general = records._scanned_floats(buf, o_start, o_end, [0, 1, 2], specs, starts)
    taken = []
    for j, n in enumerate(_SIZES):
        at = records._same_layout(buf, o_start[:, j], o_end[:, j], n)
        if at is not None:
            taken.append(j)
            assert np.array_equal(scan.gather(buf, at, np.full(5, 4 * n)).view("<f4").reshape(5, n), general[j])
    assert taken == by_layout

    # and the reader gives what protobuf and the link's decoding give
    demo = read_demo(path)
    for i, record in enumerate(raw):
        pair = pb.AgentInfoActionPairProto.FromString(record)
        for j, o in enumerate(pair.agent_info.observations):
            expected = observations.decode_observation(o, specs[j])
            assert np.array_equal(demo.observations[j][i], expected) and np.array_equal(expected, values[i][j])
        assert demo.agent_ids[i] == pair.agent_info.id == -i and demo.rewards[i] == np.float32(pair.agent_info.reward)
        assert demo.stored_continuous_actions[i].tolist() == list(pair.action_info.continuous_actions)


def test_empty_and_mismatched_observations_take_the_general_path(tmp_path: Path) -> None:
    """A sensor of size 0 is scanned; a record whose floats disagree with the spec still fails
    with the general error, naming the record."""
    empty = pb.ObservationProto(shape=[0], float_data=pb.ObservationProto.FloatData()).SerializeToString()
    rng = np.random.default_rng(0)
    raw = [_record([_observation(rng.normal(size=4).astype(np.float32), "v"), empty], i) for i in range(3)]
    demo = read_demo(_demo(tmp_path / "empty.demo", raw, [4, 0]))
    assert demo.observations[1].shape == (3, 0)
    assert records._same_layout(np.zeros(8, np.uint8), np.array([0]), np.array([8]), 0) is None

    raw[1] = _record([_observation(np.ones(5, np.float32), "v"), empty], 1)
    with pytest.raises(DemoFormatError, match="record 1 .*has 5 values"):
        read_demo(_demo(tmp_path / "grown.demo", raw, [4, 0]))


# ---------------------------------------------------------------------------------- chunked reading


def _arrays(demo) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    masks = [] if demo.action_masks is None else [demo.action_masks]
    return [*demo.observations, demo.stored_continuous_actions, demo.stored_discrete_actions, demo.action_stored, demo.rewards,
            demo.done, demo.max_step_reached, demo.agent_ids, *masks]  # fmt: skip


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b)))


@pytest.mark.parametrize("chunk", [1, 64, 1000, 5000])
def test_small_chunks_give_the_same_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Reading through a tiny reused buffer (refilled and shifted many times) gives the same
    arrays, including batches kept while the buffer is overwritten, the meta copy at the end
    of a closed file, an interrupted file and a partial last record."""
    spec = spec_of(vector(3), image(3, 2, 3), continuous=1, branches=(3,))
    closed, interrupted, partial = tmp_path / "closed.demo", tmp_path / "open.demo", tmp_path / "partial.demo"
    write_episodes(closed, spec, [(7, "done"), (6, "open")])
    write_episodes(interrupted, spec, [(5, "max_step"), (4, "open")], close=False)
    partial.write_bytes(interrupted.read_bytes()[:-5])
    with pytest.warns(DemoFormatWarning, match="partial last record 8"):
        expected = {p: read_demo(p) for p in (closed, interrupted, partial)}
    assert [len(d) for d in expected.values()] == [13, 9, 8]
    monkeypatch.setattr(reader_module, "_CHUNK", chunk)
    for path, whole in expected.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error" if path != partial else "ignore")
            kept = list(DemoReader(path, batch_size=2).iter_batches())
            assert [len(b) for b in kept[:-1]] == [2] * (len(kept) - 1)
            for k, array in enumerate(_arrays(whole)):
                assert np.array_equal(np.concatenate([_arrays(b)[k] for b in kept]), array)
            assert _same(read_demo(path), whole)


def test_small_chunks_on_real_files(real_demos_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["v06_unity_test.demo", "v1_unity_test.demo", "v2_unity_testhybridvis.demo"]
    expected = {name: read_demo(real_demos_dir / name) for name in names}
    monkeypatch.setattr(reader_module, "_CHUNK", 777)
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _same(read_demo(real_demos_dir / name), expected[name])


# ---------------------------------------------------------------------------------- loading into preallocated arrays


def test_loading_in_several_chunks_equals_one_chunk(tmp_path: Path) -> None:
    spec = spec_of(vector(5), vector(2), continuous=2, branches=(3, 2))
    path = tmp_path / "many.demo"
    write_episodes(path, spec, [(30, "done"), (25, "max_step"), (20, "open")])
    one = DemoReader(path).read()
    several = DemoReader(path, batch_size=7).read()  # 75 records > 7: arrays allocated from the meta's count
    assert _same(one, several) and len(one) == 75
    assert several.file_index.tolist() == [0] * 75


@pytest.mark.parametrize("claimed", [76, 2**31 - 1])
def test_a_meta_that_claims_too_many_records_is_an_error(tmp_path: Path, claimed: int) -> None:
    """The count is trusted only when the file could hold that many records: a meta claiming
    more ends with a DemoFormatError, never a huge allocation."""
    spec = spec_of(vector(5), continuous=2)
    path = tmp_path / "claims.demo"
    write_episodes(path, spec, [(75, "open")], close=False)  # no meta copy at the end
    data = bytearray(path.read_bytes())
    raw = pb.DemonstrationMetaProto(api_version=1, demonstration_name="claims", number_steps=claimed, number_episodes=1).SerializeToString()
    data[:33] = bytes([len(raw)]) + raw + bytes(32 - len(raw))
    path.write_bytes(bytes(data))
    with pytest.raises(DemoFormatError, match=f"announces {claimed} records"):
        DemoReader(path, batch_size=7).read()


def test_tiny_last_records_of_an_interrupted_file_before_its_meta_copy(tmp_path: Path) -> None:
    """Near the end of an interrupted file every record is checked against the meta copy
    before being framed, as the copy (no length prefix) could pass for one more record."""
    spec = spec_of(continuous=1)
    raw = [_field(1, 2, b"") + _field(2, 2, pb.AgentActionProto(continuous_actions=[float(i)]).SerializeToString()) for i in range(6)]
    initial = pb.DemonstrationMetaProto(api_version=1, demonstration_name="t").SerializeToString()
    copy = pb.DemonstrationMetaProto(api_version=1, demonstration_name="t", number_steps=6, number_episodes=1).SerializeToString()
    brain = demo_brain_parameters(spec).SerializeToString()
    body = b"".join(encode_varint(len(r)) + r for r in raw)
    assert sum(len(r) + 1 for r in raw[-2:]) + len(copy) <= 33 and scan.frame(copy, 0, len(copy), 1)[0].size == 1
    path = tmp_path / "tiny.demo"
    path.write_bytes(encode_varint(len(initial)) + initial + bytes(32 - len(initial)) + encode_varint(len(brain)) + brain + body + copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demo(path)
    assert demo.meta.interrupted and demo.stored_continuous_actions[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
