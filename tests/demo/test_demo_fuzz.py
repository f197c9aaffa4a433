"""Fuzzing the `.demo` reader, a fast subset of ``benchmarks/fuzz_inputs.py``: mutated files of
every era (and real recordings, when present) give a result or a DemoFormatError and nothing
else; valid files, and the same records written in another valid encoding, read back exactly;
and every bug the fuzzing found keeps its reproducer here."""

from __future__ import annotations

import collections
import dataclasses
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gym_unity_il.demo import DemoFormatWarning, DemoWriter, read_demo
from gym_unity_il.errors import DemoFormatError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import observations
from gym_unity_il.protocol.wire import encode_varint
from gym_unity_il.testing import fuzz_cases as fc
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ACCEPTED = {"result", "DemoFormatError"}


@settings(FAST, max_examples=50)
@given(cases=fc.demo_cases(extra=3))
def test_mutated_files_of_every_era_give_a_result_or_a_demo_format_error(tmp_path: Path, cases: list[fc.Case]) -> None:
    for case in cases:
        assert fc.run_case(case, tmp_path) in ACCEPTED, case.origin


@settings(FAST, max_examples=40)
@given(recipe=fc.DEMO_RECIPES, options=fc.DEMO_OPTIONS)
def test_valid_files_of_every_era_read_back_exactly(tmp_path: Path, recipe: fc.DemoRecipe, options: dict[str, object]) -> None:
    """Every reading API gives back the written arrays, from the file as written and from the
    same records with every number unpacked and the observations last (valid protobuf too)."""
    source = fc.build_demo(recipe)
    unpacked = fc.mutate_demo(source, [("unpack", 0, 0, b"")])
    assume(unpacked != source.data)  # a file without packed numbers (no actions, PNG images only) has nothing to unpack
    for data in (source.data, unpacked):
        assert fc.run_case(fc.Case("demo", data, "valid", options, expected=source.expected), tmp_path) == "result"


@pytest.mark.parametrize("mode", ["read_demo", "iter_records"])
def test_a_last_record_that_parses_as_a_meta_with_unknown_fields_is_read_as_a_record(tmp_path: Path, mode: str) -> None:
    """An interrupted 0.10 file whose one record (numbers unpacked), read as a
    DemonstrationMetaProto, holds only fields of other types (kept as unknown fields) and so
    looked like a meta copy announcing 0 steps."""
    recipe = fc.DemoRecipe("0.10", (fc.Sensor((3,), png=True),), 2, (), ((1, "max_step"),), closed=False, png=True)
    source = fc.build_demo(recipe)
    unpacked = fc.mutate_demo(source, [("unpack", 0, 0, b"")])
    options = {"mode": mode, "image_format": "hwc_uint8", "batch_size": 1}
    assert fc.run_case(fc.Case("demo", unpacked, "valid", options, expected=source.expected), tmp_path) == "result"


@pytest.mark.parametrize("closed", [True, False])
@pytest.mark.parametrize("era", fc.ERAS)
def test_every_truncation_of_a_file_of_each_era(tmp_path: Path, era: str, closed: bool) -> None:
    """Cut at every offset: a closed recording reads only whole (its meta copy may be cut),
    an interrupted one reads from the end of its brain parameters on (a partial last record
    is dropped with a warning); every other cut is a DemoFormatError."""
    sensors = (fc.Sensor((1, 2, 3)), fc.Sensor((2,)))
    recipe = fc.DemoRecipe(era, sensors, 0 if era != "4.x" else 1, (3,), ((1, "done"), (1, "open")), closed=closed, masks=True)
    data, points, _ = fc.join_demo(fc.build_demo(recipe).parts)
    readable = set()
    for cut in range(len(data)):
        kind = fc.run_case(fc.Case("demo", data[:cut], f"cut at {cut}", {"mode": "read_demo"}), tmp_path)
        if kind == "result":
            readable.add(cut)
    first_readable = points[-2] if closed else points[4]  # the end of the records, or of the brain parameters
    assert readable == set(range(first_readable, len(data)))


def test_mutations_reach_the_record_decoders(tmp_path: Path) -> None:
    """Guards the generators: mutated files are not all stopped at the header, their errors
    name records and several distinct problems, and some still read."""
    recipes = [fc.DemoRecipe("4.x", (fc.Sensor((2, 2, 3)), fc.Sensor((3,))), 1, (3,), ((3, "done"), (2, "open")), masks=True),
               fc.DemoRecipe("0.10", (fc.Sensor((2, 3, 1)), fc.Sensor((4,))), 0, (2,), ((4, "max_step"),)),
               fc.DemoRecipe("1.x", (fc.Sensor((2,)),), 2, (), ((3, "done"),), png=False)]  # fmt: skip
    rng = np.random.default_rng(0)
    path = tmp_path / "mutated.demo"
    results, problems = 0, collections.Counter()
    for k in range(150):
        path.write_bytes(fc.mutate_demo(fc.build_demo(recipes[k % len(recipes)]), fc.random_mutations(rng, fc.DEMO_MUTATIONS)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DemoFormatWarning)
                read_demo(path)
            results += 1
        except DemoFormatError as exc:
            where, what = str(exc).split(": ", 2)[1:]
            problems[" ".join(what.split()[:3]) if where.startswith("record") else "header"] += 1
    assert results > 20 and problems["header"] > 20
    assert len(problems) > 6, problems


def test_mutated_real_recordings_give_a_result_or_a_demo_format_error(real_demos_dir: Path, tmp_path: Path) -> None:
    sources = fc.real_sources(real_demos_dir)
    for source in sources:  # the prefixes taken from the recordings are valid files
        assert fc.run_case(fc.Case("demo", source.data, source.name), tmp_path) == "result"
    cases = fc.real_demo_cases(sources, np.random.default_rng(0))
    kinds = collections.Counter(fc.run_case(next(cases), tmp_path) for _ in range(120))
    assert set(kinds) == ACCEPTED


@settings(FAST, max_examples=30)
@given(data=st.data())
def test_records_of_real_recordings_spliced_into_generated_files(real_demos_dir: Path, tmp_path: Path, data: st.DataObject) -> None:
    for case in data.draw(fc.demo_cases(real=_real_sources(real_demos_dir))):
        assert fc.run_case(case, tmp_path) in ACCEPTED, case.origin


_REAL: dict[Path, list[fc.DemoSource]] = {}


def _real_sources(folder: Path) -> list[fc.DemoSource]:
    return _REAL.setdefault(folder, fc.real_sources(folder))


# ---------------------------------------------------------------------------------- regressions


def _file(tmp_path: Path, source: fc.DemoSource, **parts: object) -> Path:
    path = tmp_path / "regression.demo"
    path.write_bytes(fc.join_demo(dataclasses.replace(source.parts, **parts))[0])
    return path


def _read_with_peak(path: Path) -> tuple[BaseException | None, int]:
    """What reading the file raises and the peak of the memory it traced."""
    tracemalloc.start()
    try:
        read_demo(path)
        error = None
    except DemoFormatError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


VECTORS = fc.DemoRecipe("4.x", (fc.Sensor((3,)), fc.Sensor((2,))), 1, (2,), ((3, "done"),))


def _delimited(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2]) + encode_varint(len(payload)) + payload


def test_float_data_after_later_fields_is_read(tmp_path: Path) -> None:
    """Found by fuzzing: the scan of observations stopped at their first field numbered 4 or
    more, so a FloatData written after the name (valid protobuf) read as no values."""
    source = fc.build_demo(VECTORS)
    records = []
    for record in source.parts.records:
        pair = pb.AgentInfoActionPairProto.FromString(record)
        sensors = []
        for obs in pair.agent_info.observations:
            floats = obs.float_data.SerializeToString()
            obs.ClearField("float_data")
            sensors.append(obs.SerializeToString() + _delimited(4, floats))  # field 4 after fields 6 and 8
        pair.agent_info.ClearField("observations")
        info = pair.agent_info.SerializeToString() + b"".join(_delimited(13, o) for o in sensors)
        records.append(_delimited(1, info) + _delimited(2, pair.action_info.SerializeToString()))
    demo = read_demo(_file(tmp_path, source, records=tuple(records)))
    for got, want in zip(demo.observations, source.expected["observations"]):
        assert np.array_equal(got, want)


def test_png_declaring_a_huge_image_is_a_demo_format_error(tmp_path: Path) -> None:
    """Found by fuzzing real 0.10 recordings: Pillow's DecompressionBombError escaped."""
    recipe = fc.DemoRecipe("0.10", (fc.Sensor((2, 3, 3)),), 0, (2,), ((2, "done"),))
    source = fc.build_demo(recipe)
    info = lpb.AgentInfoProto.FromString(source.parts.records[1])
    info.visual_observations[0] = fc.png_bomb(100_000, 100_000, inflated=16 << 20)
    records = (source.parts.records[0], info.SerializeToString())
    error, peak = _read_with_peak(_file(tmp_path, source, records=records))
    assert isinstance(error, DemoFormatError) and "record 1 at byte offset" in str(error) and "100000x100000" in str(error)
    assert peak < 64 << 20


def test_png_that_inflates_far_past_its_header_is_read_without_inflating_it(tmp_path: Path) -> None:
    """A PNG whose header is the sensor's size but whose data inflates to 256 MB of zeros: the
    image is its first rows (as Pillow reads it), and no more is inflated (it used to be all)."""
    source = fc.build_demo(fc.DemoRecipe("0.10", (fc.Sensor((2, 3, 3)),), 0, (2,), ((2, "done"),)))
    info = lpb.AgentInfoProto.FromString(source.parts.records[1])
    info.visual_observations[0] = fc.png_bomb(2, 3)
    path = _file(tmp_path, source, records=(source.parts.records[0], info.SerializeToString()))
    error, peak = _read_with_peak(path)
    assert error is None and peak < 64 << 20
    assert not read_demo(path).observations[0][1].any()


@pytest.mark.parametrize("branch", [2**31 - 1, 65_537, -1, 0])
def test_absurd_action_sizes_are_demo_format_errors_before_any_allocation(tmp_path: Path, branch: int) -> None:
    """A brain declaring a branch of 2**31 - 1 made the reader allocate a mask of 2 GB per record."""
    source = fc.build_demo(VECTORS)
    brain = pb.BrainParametersProto.FromString(source.parts.brain)
    brain.action_spec.ClearField("discrete_branch_sizes")
    brain.action_spec.discrete_branch_sizes.append(branch)
    error, peak = _read_with_peak(_file(tmp_path, source, brain=brain.SerializeToString()))
    assert isinstance(error, DemoFormatError) and "brain parameters at byte offset 33" in str(error) and str(branch) in str(error)
    assert peak < 16 << 20


def test_camera_resolution_of_absurd_size_is_a_demo_format_error(tmp_path: Path) -> None:
    source = fc.build_demo(fc.DemoRecipe("0.10", (fc.Sensor((2, 3, 3)),), 0, (2,), ((2, "done"),)))
    brain = lpb.BrainParametersProto.FromString(source.parts.brain)
    brain.camera_resolutions[0].width = brain.camera_resolutions[0].height = 100_000
    error, peak = _read_with_peak(_file(tmp_path, source, brain=brain.SerializeToString()))
    assert isinstance(error, DemoFormatError) and "[100000, 100000, 3]" in str(error)
    assert peak < 16 << 20


def test_raw_float_image_with_nan_is_a_demo_format_error_without_warnings(tmp_path: Path) -> None:
    """Found by fuzzing: NaN pixels were cast to uint8 with a RuntimeWarning (and became 0)."""
    source = fc.build_demo(fc.DemoRecipe("1.x", (fc.Sensor((2, 2, 1)),), 2, (), ((2, "done"),), png=False))
    pair = pb.AgentInfoActionPairProto.FromString(source.parts.records[1])
    values = np.array(pair.agent_info.observations[0].float_data.data, np.float32)
    values[1] = np.nan
    pair.agent_info.observations[0].float_data.CopyFrom(observations.float_data_from_array(values))
    path = _file(tmp_path, source, records=(source.parts.records[0], pair.SerializeToString()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DemoFormatError, match=r"record 1 at byte offset \d+: .*NaN"):
            read_demo(path)


@pytest.mark.parametrize("value", [2**64 - 1, 2**70, 2**40])
def test_length_prefixes_beyond_the_file_are_demo_format_errors(tmp_path: Path, value: int) -> None:
    """Each length prefix (meta, brain, records) replaced by a huge or an 11-byte varint."""
    data, _, prefixes = fc.join_demo(fc.build_demo(VECTORS).parts)
    for at in prefixes:
        damaged = bytearray(data)
        fc.put_varint(damaged, at, value)
        path = tmp_path / f"at{at}.demo"
        path.write_bytes(damaged)
        error, peak = _read_with_peak(path)
        assert isinstance(error, DemoFormatError) and path.name in str(error) and "byte offset" in str(error)
        assert peak < 16 << 20


def test_records_without_actions_cannot_make_action_arrays_far_larger_than_the_file(tmp_path: Path) -> None:
    """A brain declaring 65536 discrete actions (the most accepted) over 5000 small records that
    store neither an action nor a mask: 330 MB of arrays for a 60 kB file. A closed file is
    refused from its meta, before any record is read."""
    spec = BehaviorSpec("Wide?team=0", (ObservationSpec(shape=(1,)),), ActionSpec(0, (65_536,)))
    for records in (5000, 100):
        with DemoWriter(tmp_path / f"{records}.demo", behavior_spec=spec) as writer:
            for _ in range(records):
                writer.write([np.zeros(1, np.float32)])
    error, peak = _read_with_peak(tmp_path / "5000.demo")
    assert isinstance(error, DemoFormatError) and "meta at byte offset 0" in str(error) and "the 5000 records it announces" in str(error)
    assert peak < 16 << 20
    masks = read_demo(tmp_path / "100.demo").action_masks  # 6.5 MB: within the limit
    assert masks.shape == (100, 65_536) and masks.all()


# ---------------------------------------------------------------------------------- one decoder for both roads


@settings(FAST, max_examples=60)
@given(cases=fc.agent_cases(extra=3))
def test_an_agent_gets_the_same_verdict_on_the_link_and_in_a_demo_file(tmp_path: Path, cases: list[fc.Case]) -> None:
    """The link and the reader decode with the same functions (``gym_unity_il.protocol``): an
    agent info, valid or mutated (NaN rewards and observations, float counts, PNG damage,
    channel mappings, ...), gives the same arrays on both roads, or an error on both."""
    for case in cases:
        assert fc.run_case(case, tmp_path) in {"result", "UnityProtocolError"}, case.origin


@pytest.mark.parametrize(("field", "match"), [("reward", "its reward is NaN or infinite"), ("observation", "observation v holds NaN")])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_infinite_records_are_refused_naming_the_record_and_the_fix(tmp_path: Path, field: str, match: str, bad: float) -> None:
    """As on the link: a record with a NaN or infinite reward or vector observation is a
    DemoFormatError naming the record, and the fix is in the scene, not in the file."""
    spec = BehaviorSpec("B?team=0", (ObservationSpec((3,), name="v"),), ActionSpec(1))
    path = tmp_path / "nan.demo"
    with DemoWriter(path, behavior_spec=spec) as writer:
        for t in range(4):
            value = np.full(3, bad if field == "observation" and t == 2 else t, np.float32)
            writer.write([value], reward=bad if field == "reward" and t == 2 else 0.5, stored_continuous_action=[0.0])
    with pytest.raises(DemoFormatError, match=rf"record 2 at byte offset \d+: {match}.*Fix: the recording holds NaN or infinite values"):
        read_demo(path)
