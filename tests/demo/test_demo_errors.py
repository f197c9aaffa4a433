"""Bad input: every kind of broken or foreign file gets a DemoFormatError that names the
file, the byte offset or field and a fix; fuzzing shows no other exception escapes."""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from demo_helpers import image, spec_of, vector, write_episodes
from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, iter_records, read_demo, split_episodes
from gym_unity_il.errors import DemoFormatError, SpecMismatchError
from gym_unity_il.proto import communicator_pb2 as pb

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 3551\n"


@pytest.fixture
def small_demo(tmp_path: Path) -> Path:
    """A complete modern file with a PNG image, a vector, hybrid actions and masks."""
    spec = spec_of(image(3, 2, 3), vector(2), continuous=1, branches=(3,))
    path = tmp_path / "small.demo"
    write_episodes(path, spec, [(3, "done"), (2, "open")])
    return path


def _expect(path: Path, *patterns: str) -> str:
    with pytest.raises(DemoFormatError) as info:
        read_demo(path)
    message = str(info.value)
    assert str(path) in message and "Fix:" in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.demo").write_bytes(b"")
    _expect(tmp_path / "empty.demo", "byte offset 0", "empty")


def test_git_lfs_pointer(tmp_path: Path) -> None:
    (tmp_path / "lfs.demo").write_bytes(LFS_POINTER)
    _expect(tmp_path / "lfs.demo", "Git LFS pointer", "git lfs pull")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.demo"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _expect(path, "byte offset")


def test_files_that_are_not_demos(tmp_path: Path) -> None:
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, format="PNG")
    (tmp_path / "picture.png").write_bytes(png.getvalue())
    _expect(tmp_path / "picture.png", "byte offset 0", "does not end in .demo")
    (tmp_path / "config.demo").write_text("behaviors:\n  Ball:\n    trainer_type: ppo\n")
    _expect(tmp_path / "config.demo", "byte offset 0", "not a Unity .demo file")


def test_truncated_complete_file(small_demo: Path) -> None:
    data = small_demo.read_bytes()
    small_demo.write_bytes(data[: len(data) - 60])
    _expect(small_demo, "byte offset", "announces 5 records", "cut short")
    small_demo.write_bytes(data[:40])
    _expect(small_demo, "brain parameters at byte offset 33")


def test_unknown_api_version(small_demo: Path) -> None:
    data = bytearray(small_demo.read_bytes())
    assert data[1:3] == b"\x08\x01"
    data[2] = 7
    small_demo.write_bytes(bytes(data))
    _expect(small_demo, "api_version", "version 7")


def test_damaged_record_names_record_and_offset(small_demo: Path) -> None:
    reader_offsets = []
    data = bytearray(small_demo.read_bytes())
    pos = 33 + 1 + data[33]
    for _ in range(3):  # find record 2
        reader_offsets.append(pos)
        pos += 1 + data[pos] if data[pos] < 0x80 else 2 + ((data[pos] & 0x7F) | (data[pos + 1] << 7))
    record2 = reader_offsets[2]
    payload = record2 + (1 if data[record2] < 0x80 else 2)
    data[payload] = 0x0F  # field 1 with wire type 7: invalid
    small_demo.write_bytes(bytes(data))
    _expect(small_demo, "record 2 at byte offset", "invalid field tag")


def test_records_that_disagree_with_the_first(tmp_path: Path) -> None:
    path = tmp_path / "grow.demo"
    spec = spec_of(vector(3), continuous=1)
    write_episodes(path, spec, [(2, "open")])
    data = path.read_bytes()
    longer = pb.AgentInfoActionPairProto()
    longer.agent_info.observations.add(shape=[3]).float_data.data.extend([1.0, 2.0, 3.0, 4.0])
    longer.action_info.continuous_actions.append(0.5)
    raw = longer.SerializeToString()
    # put it before the trailing meta copy and fix the step count: an interrupted file is simplest
    meta = pb.DemonstrationMetaProto(api_version=1, demonstration_name="grow").SerializeToString()
    tail = len(pb.DemonstrationMetaProto.FromString(data[1 : 1 + data[0]]).SerializeToString())
    body = data[33:-tail] + bytes([len(raw)]) + raw
    path.write_bytes(bytes([len(meta)]) + meta + bytes(32 - len(meta)) + body)
    _expect(path, "record 2", "has 4 values", "needs 3")


def test_spec_mismatch_names_both_specs(small_demo: Path) -> None:
    demo = read_demo(small_demo)
    env_spec = spec_of(image(3, 2, 3), vector(5), continuous=1, branches=(3,), name="Env?team=0")
    with pytest.raises(SpecMismatchError) as info:
        check_demo_matches(demo.behavior_spec, env_spec)
    message = str(info.value)
    assert "Test?team=0" in message and "Env?team=0" in message and "[5]" in message and "[2]" in message
    check_demo_matches(demo.behavior_spec, spec_of(image(3, 2, 3), vector(2), continuous=1, branches=(3,), name="Other"))


# ---------------------------------------------------------------------------------- fuzzing


HAS_IMITATION = importlib.util.find_spec("imitation") is not None


def _read_everything(path: Path) -> None:
    """Reads a file every way a user can; only our own errors may come out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            demo = read_demo(path)
            split_episodes(demo)
            if HAS_IMITATION:  # the core install has no trajectories to convert to
                demo_to_trajectories(demo, hybrid_actions="continuous")
            sum(1 for _ in iter_records(path))
        except (DemoFormatError, SpecMismatchError):
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", b"\x11\x08\x01", b"\x11\x08\x01\x12\x04Demo" + bytes(22)]))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes, prefix: bytes) -> None:
    path = tmp_path / "fuzz.demo"
    path.write_bytes(prefix + data)
    _read_everything(path)


_MUTATION = st.tuples(st.sampled_from(["flip", "truncate", "insert", "overwrite"]), st.floats(0, 1), st.binary(min_size=1, max_size=8))


def _mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, where, payload in mutations:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= payload[0] or 1
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = payload
        else:
            out[at : at + len(payload)] = payload
    return bytes(out)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=3))
def test_fuzz_mutated_written_file(small_demo: Path, mutations: list[tuple[str, float, bytes]]) -> None:
    original = small_demo.read_bytes()
    target = small_demo.with_name("mutated.demo")
    target.write_bytes(_mutate(original, mutations))
    _read_everything(target)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["v06_unity_test.demo", "v2_unity_testhybridvis.demo", "v1_unity_ExpertPyramid.demo"]),
       mutations=st.lists(_MUTATION, min_size=1, max_size=3))  # fmt: skip
def test_fuzz_mutated_real_files(real_demos_dir: Path, tmp_path: Path, name: str, mutations: list[tuple[str, float, bytes]]) -> None:
    data = (real_demos_dir / name).read_bytes()
    if name == "v1_unity_ExpertPyramid.demo":
        data = data[:6000]  # a prefix: an interrupted-looking 1.x file, kept small
    target = tmp_path / "mutated.demo"
    target.write_bytes(_mutate(data, mutations))
    _read_everything(target)
