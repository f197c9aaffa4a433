"""Writing `.demo` files: Unity's exact layout, round trips for every observation and action
type, zero-step and interrupted recordings, and a writer killed mid-recording."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_helpers import image, random_observation, spec_of, vector, write_episodes
from gym_unity_il.demo import DemoFormatWarning, DemoReader, DemoWriter, read_demo, sanitize_name, unique_demo_path, write_demo
from gym_unity_il.demo.writer import demo_brain_parameters
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

# demo-format.md section 9: behavior Ball?team=0, 2 continuous actions, one vector sensor of 3.
WORKED_EXAMPLE = bytes.fromhex(
    "1108011204 44656D6F 1802 2002 2D0000003F" + "00" * 15
    + "16 1A0102 3001 3A0B 42616C6C3F7465616D3D30 4A020802"
    + "3A 0A2C 6A2A 0A0103 220E0A0C 0000803E 0000003F 0000803F 320101 4212 566563746F7253656E736F725F73697A6533"
    + "120A 3208 00000000 00000000"
    + "41 0A33 3D0000803F 4001 6A2A 0A0103 220E0A0C 00000000 000080BF 00000040 320101 4212 566563746F7253656E736F725F73697A6533"
    + "120A 3208 0000003F 000080BF"
    + "08011204 44656D6F 1802 2002 2D0000003F".replace(" ", "")
)  # fmt: skip


def _delimited(data: bytes, pos: int) -> tuple[bytes, int]:
    length, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return data[pos : pos + length], pos + length


def test_worked_example_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    assert len(WORKED_EXAMPLE) == 198
    spec = spec_of(vector(3), continuous=2, name="Ball?team=0")
    with DemoWriter(tmp_path / "Demo.demo", behavior_spec=spec) as writer:
        writer.write(np.array([0.25, 0.5, 1.0], np.float32), stored_continuous_action=[0.0, 0.0])
        writer.write(np.array([0.0, -1.0, 2.0], np.float32), reward=1.0, done=True, stored_continuous_action=[0.5, -1.0])
    assert (tmp_path / "Demo.demo").read_bytes() == WORKED_EXAMPLE


def test_layout_offsets_counters_and_trailing_copy(tmp_path: Path) -> None:
    spec = spec_of(vector(2), image(4, 5, 3), branches=(3, 2))
    path = tmp_path / "layout.demo"
    written = write_episodes(path, spec, [(3, "done"), (2, "max_step"), (4, "open")])
    data = path.read_bytes()
    meta_bytes, end = _delimited(data, 0)
    assert end <= 33 and data[end:33] == bytes(33 - end)
    meta = pb.DemonstrationMetaProto.FromString(meta_bytes)
    assert (meta.api_version, meta.demonstration_name, meta.number_steps, meta.number_episodes) == (1, "layout", 9, 3)
    assert meta.mean_reward == pytest.approx(float(written.rewards.sum()) / 3, rel=1e-6)
    brain_bytes, pos = _delimited(data, 33)
    brain = pb.BrainParametersProto.FromString(brain_bytes)
    assert brain == demo_brain_parameters(spec) and not brain.is_training
    assert list(brain.action_spec.discrete_branch_sizes) == [3, 2] and list(brain.vector_action_size_deprecated) == [3, 2]
    for i in range(9):
        record, pos = _delimited(data, pos)
        pair = pb.AgentInfoActionPairProto.FromString(record)
        assert list(pair.action_info.discrete_actions) == written.discrete[i].tolist()
        assert pair.agent_info.observations[1].compression_type == pb.PNG
    assert data[pos:] == meta_bytes  # raw (non-delimited) meta copy at the end


def test_names_are_sanitized_like_unity(tmp_path: Path) -> None:
    assert sanitize_name("My Demo_#1!! (take-2) and more") == "My Demo1 take-2 "
    assert len(sanitize_name("x" * 40)) == 16
    spec = spec_of(vector(1), continuous=1)
    DemoWriter(tmp_path / "Expert run_01.demo", behavior_spec=spec).close()
    assert read_demo(tmp_path / "Expert run_01.demo").meta.name == "Expert run01"
    taken = []
    for _ in range(3):
        taken.append(unique_demo_path(tmp_path, "Expert run_01"))
        taken[-1].touch()
    assert [p.name for p in taken] == ["Expert run01.demo", "Expert run01_0.demo", "Expert run01_1.demo"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        DemoWriter(tmp_path / "Expert run_01.demo", behavior_spec=spec)


def test_bad_records_are_refused_before_writing(tmp_path: Path) -> None:
    spec = spec_of(vector(3), image(2, 2, 3), branches=(2,))
    with DemoWriter(tmp_path / "x.demo", behavior_spec=spec) as writer:
        with pytest.raises(ValueError, match="shape"):
            writer.write([np.zeros(4, np.float32), np.zeros((2, 2, 3), np.uint8)])
        with pytest.raises(ValueError, match="2 sensors"):
            writer.write([np.zeros(3, np.float32)])
        with pytest.raises(ValueError, match="outside the branch"):
            writer.write([np.zeros(3, np.float32), np.zeros((2, 2, 3), np.uint8)], stored_discrete_action=[2])
        assert writer.number_steps == 0
    assert len(read_demo(tmp_path / "x.demo")) == 0


# ---------------------------------------------------------------------------------- round trips

_SENSORS = st.one_of(
    st.integers(0, 5).map(lambda n: vector(n, f"v{n}")),
    st.tuples(st.integers(1, 3), st.integers(1, 3)).map(lambda s: ObservationSpec(shape=s, name="buffer")),
    st.tuples(st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 3, 4, 7]), st.booleans()).map(
        lambda t: image(t[0], t[1], t[2], chw=t[3], name=f"cam{t[2]}")
    ),
)
_ACTIONS = st.tuples(st.integers(0, 3), st.lists(st.integers(1, 4), max_size=3)).map(lambda t: ActionSpec(t[0], tuple(t[1])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sensors=st.lists(_SENSORS, min_size=1, max_size=3),
    actions=_ACTIONS,
    image_format=st.sampled_from(["hwc_uint8", "chw_float"]),
    compress=st.booleans(),
    steps=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_write_then_read_gives_back_everything(
    tmp_path: Path, sensors: list[ObservationSpec], actions: ActionSpec, image_format: str, compress: bool, steps: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    spec = BehaviorSpec(name="Round?team=3", observation_specs=tuple(sensors), action_spec=actions)
    total = sum(actions.discrete_branches)
    records = []
    path = tmp_path / f"rt{seed}.demo"
    with DemoWriter(path, behavior_spec=spec, image_format=image_format, compress_images=compress, overwrite=True) as writer:
        for _ in range(steps):
            rec = {
                "obs": [random_observation(o, image_format, rng) for o in sensors],
                "reward": float(np.float32(rng.normal())),
                "done": bool(rng.random() < 0.3),
                "cut": bool(rng.random() < 0.5),
                "id": int(rng.integers(-(2**31), 2**31)),
                "c": rng.normal(size=actions.continuous_size).astype(np.float32),
                "d": np.array([rng.integers(b) for b in actions.discrete_branches], np.int32),
                "mask": rng.random(total) < 0.7 if total and rng.random() < 0.7 else None,
            }
            records.append(rec)
            writer.write(rec["obs"], reward=rec["reward"], done=rec["done"], max_step_reached=rec["done"] and rec["cut"],
                         agent_id=rec["id"], stored_continuous_action=rec["c"], stored_discrete_action=rec["d"], action_mask=rec["mask"])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demo(path, image_format=image_format)
    if steps:
        assert demo.behavior_spec == spec
    else:
        assert demo.behavior_spec.action_spec == actions and not demo.behavior_spec.observation_specs
    dones = sum(r["done"] for r in records)
    assert (demo.meta.number_steps, demo.meta.number_episodes, len(demo)) == (steps, dones + 1, steps)
    assert demo.meta.mean_reward == pytest.approx(sum(r["reward"] for r in records) / (dones + 1), rel=1e-5, abs=1e-6)
    for i, rec in enumerate(records):
        for j, o in enumerate(sensors):
            got = demo.observations[j][i]
            assert got.dtype == o.output_dtype(image_format) and np.array_equal(got, rec["obs"][j])
        assert np.array_equal(demo.stored_continuous_actions[i], rec["c"]) and np.array_equal(demo.stored_discrete_actions[i], rec["d"])
        assert (float(demo.rewards[i]), bool(demo.done[i]), bool(demo.max_step_reached[i]), int(demo.agent_ids[i])) == (
            rec["reward"], rec["done"], rec["done"] and rec["cut"], rec["id"],
        )  # fmt: skip
        if total:
            assert demo.action_masks[i].tolist() == (rec["mask"].tolist() if rec["mask"] is not None else [True] * total)
        else:
            assert demo.action_masks is None


def test_rewriting_real_files_keeps_every_value(real_demos_dir: Path, tmp_path: Path) -> None:
    """A legacy file and a CHW hybrid file, rewritten in the modern format, read back the same."""
    for name in ("v06_unity_GridDemo.demo", "v2_unity_testhybridvis.demo"):
        original = read_demo(real_demos_dir / name)
        copy = read_demo(write_demo(tmp_path / name, original))
        assert copy.meta.era.value == "1.7-4.x" and copy.meta.number_episodes == original.meta.number_episodes
        assert copy.behavior_spec.is_compatible(original.behavior_spec)
        for field in ("stored_continuous_actions", "stored_discrete_actions", "rewards", "done", "max_step_reached", "agent_ids", "action_masks"):
            assert np.array_equal(getattr(copy, field), getattr(original, field)), field
        for a, b in zip(copy.observations, original.observations):
            assert np.array_equal(a, b)


# ---------------------------------------------------------------------------------- zero steps, interruptions


def test_zero_step_file(tmp_path: Path) -> None:
    spec = spec_of(vector(4), continuous=2)
    path = tmp_path / "empty.demo"
    DemoWriter(path, behavior_spec=spec).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demo(path)
    assert len(demo) == 0 and demo.meta.number_steps == 0 and demo.meta.number_episodes == 1 and not demo.meta.interrupted
    assert demo.behavior_spec.action_spec == spec.action_spec
    assert demo.stored_continuous_actions.shape == (0, 2)


def test_unclosed_writer_leaves_an_interrupted_but_readable_file(tmp_path: Path) -> None:
    spec = spec_of(vector(3), image(3, 3, 1), branches=(4,))
    path = tmp_path / "open.demo"
    written = write_episodes(path, spec, [(3, "done"), (3, "open")], close=False)
    demo = read_demo(path)
    assert demo.meta.interrupted and (demo.meta.number_steps, demo.meta.number_episodes) == (0, 0)
    assert len(demo) == 6 and np.array_equal(demo.stored_discrete_actions, written.discrete)
    # a partial last record (the process died inside a write) is skipped with a warning
    data = path.read_bytes()
    path.write_bytes(data[:-5])
    with pytest.warns(DemoFormatWarning, match="partial last record 5"):
        assert len(read_demo(path)) == 5


def test_interrupted_file_ending_with_the_meta_copy(tmp_path: Path) -> None:
    """Unity writes the raw meta copy before the meta at offset 0: a crash in between leaves
    counters 0 at the start and the copy at the end, which must not be read as a record."""
    spec = spec_of(vector(2), continuous=1)
    path = tmp_path / "Half.demo"
    write_episodes(path, spec, [(4, "done"), (2, "open")])
    data = bytearray(path.read_bytes())
    initial = pb.DemonstrationMetaProto(api_version=1, demonstration_name="Half").SerializeToString()
    data[: 33] = bytes([len(initial)]) + initial + bytes(32 - len(initial))
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demo(path)
    assert demo.meta.interrupted and len(demo) == 6


_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gym_unity_il.demo import DemoWriter
    from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

    spec = BehaviorSpec(name="Kill?team=0", observation_specs=(ObservationSpec(shape=(4,), name="v"),), action_spec=ActionSpec(1, (3,)))
    writer = DemoWriter(sys.argv[1], behavior_spec=spec)
    for i in range(int(sys.argv[2])):
        writer.write(np.full(4, i, np.float32), reward=1.0, done=i % 5 == 4, stored_continuous_action=[i / 10], stored_discrete_action=[i % 3])
    print("written", writer.number_steps, flush=True)
    sys.stdin.readline()  # wait to be killed
    """
)


def test_writer_killed_with_sigkill_keeps_every_flushed_record(tmp_path: Path) -> None:
    path = tmp_path / "killed.demo"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), "23"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # blocks until the child has written every record
        assert line.split() == ["written", "23"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demo(path)
    assert demo.meta.interrupted
    assert len(demo) == 23
    assert demo.observations[0][:, 0].tolist() == list(range(23))
    assert demo.stored_discrete_actions[:, 0].tolist() == [i % 3 for i in range(23)]
    assert int(demo.done.sum()) == 4


def test_interrupt_and_rollback_edit_only_the_end(tmp_path: Path) -> None:
    spec = spec_of(vector(1), continuous=1)
    path = tmp_path / "edit.demo"
    with DemoWriter(path, behavior_spec=spec) as writer:
        writer.write(np.zeros(1, np.float32), stored_continuous_action=[0.0])
        writer.write(np.ones(1, np.float32), reward=2.0, stored_continuous_action=[0.5])
        mark = writer.checkpoint()
        for k in range(3):
            writer.write(np.full(1, 5.0 + k, np.float32), reward=1.0, done=k == 2, stored_continuous_action=[0.1])
        assert writer.rollback(mark) == 3 and writer.number_steps == 2
        assert writer.interrupt_episode() and not writer.interrupt_episode()
        assert writer.number_episodes == 2
    demo = read_demo(path)
    assert demo.observations[0][:, 0].tolist() == [0.0, 1.0]
    assert demo.done.tolist() == [False, True] and demo.max_step_reached.tolist() == [False, True]
    assert (demo.meta.number_steps, demo.meta.number_episodes, demo.meta.mean_reward) == (2, 2, 1.0)
    assert DemoReader(path).meta.number_steps == 2


def test_joining_files_keeps_their_episodes_apart(tmp_path: Path) -> None:
    spec = spec_of(vector(2), continuous=1)
    folder = tmp_path / "parts"
    write_episodes(folder / "a.demo", spec, [(3, "done"), (3, "open")])
    write_episodes(folder / "b.demo", spec, [(4, "open")], seed=1)
    parts = read_demo(folder)
    joined = read_demo(write_demo(tmp_path / "joined.demo", parts))
    assert len(joined) == 10 and joined.meta.number_episodes == 3
    # a.demo's unfinished episode is closed as interrupted where the file ended
    assert joined.done.tolist() == [False, False, True, False, False, True, False, False, False, False]
    assert joined.max_step_reached[5] and not parts.done[5]
    np.testing.assert_array_equal(joined.observations[0], parts.observations[0])
