"""Real Unity recordings of every era: figures from their README, hand-checked first
records, and every record decoded exactly as protobuf plus the live link's decoding give it."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.internal.decoder import _DecodeVarint32
from PIL import Image

from gym_unity_il.demo import DemoEra, DemoReader, demo_to_trajectories, iter_records, read_demo
from gym_unity_il.errors import SpecMismatchError
from gym_unity_il.proto import communicator_pb2 as pb
from gym_unity_il.proto import legacy_pb2 as lpb
from gym_unity_il.protocol import observations
from gym_unity_il.protocol.actions import decode_actions

# file: (era, steps, episodes, observation output shapes (hwc_uint8), continuous size, branches) from the README
EXPECTED = {
    "v06_unity_GridDemo.demo": (DemoEra.V0_6, 477, 143, [(84, 84, 3)], 0, (5,)),
    "v06_unity_CrawlerDemo.demo": (DemoEra.V0_6, 1037, 2, [(129,)], 20, ()),
    "v06_unity_test.demo": (DemoEra.V0_6, 57, 2, [(8,)], 2, ()),
    "v013_unity_testdcvis.demo": (DemoEra.V0_12, 38, 1, [(84, 84, 3), (0,)], 0, (3, 3, 3, 2)),
    "v013_unity_Expert3DBallHard.demo": (DemoEra.V0_12, 276, 1, [(45,)], 2, ()),
    "v1_unity_test.demo": (DemoEra.V1_0, 2144, 22, [(8,)], 2, ()),
    "v1_unity_ExpertGridWorld.demo": (DemoEra.V1_0, 53, 14, [(64, 84, 3)], 0, (5,)),
    "v1_unity_ExpertPyramid.demo": (DemoEra.V1_0, 1751, 10, [(56,), (56,), (56,), (4,)], 0, (5,)),
    "v2_unity_testhybridvis.demo": (DemoEra.V1_7, 25, 1, [(84, 84, 3), (1,)], 3, (2,)),
    "v4_racing_RevLeft.demo": (DemoEra.V1_7, 419, 2, [(42,), (135,), (25,)], 2, (2,)),
    "v4_racing_Demo.demo": (DemoEra.V1_7, 3980, 2, [(42,), (135,), (25,)], 2, (2,)),
}


def _records(path: Path, reader: DemoReader) -> list[bytes]:
    """The record bytes, framed with protobuf's own varint decoder (independent of ours)."""
    data = path.read_bytes()
    pos = reader.records_offset
    out = []
    for _ in range(reader.meta.number_steps):
        n, pos = _DecodeVarint32(data, pos)
        out.append(data[pos : pos + n])
        pos += n
    return out


def _png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def test_the_readme_lists_every_file(real_demos_dir: Path) -> None:
    assert sorted(p.name for p in real_demos_dir.glob("*.demo")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figures_match_the_readme(real_demos_dir: Path, name: str) -> None:
    era, steps, episodes, shapes, continuous, branches = EXPECTED[name]
    demo = read_demo(real_demos_dir / name)
    meta = demo.meta
    assert (meta.era, meta.number_steps, meta.number_episodes, meta.interrupted) == (era, steps, episodes, False)
    assert len(demo) == steps
    assert int(demo.done.sum()) == episodes - 1 == demo.num_episodes - 1
    assert [o.shape[1:] for o in demo.observations] == shapes
    assert [o.dtype for o in demo.observations] == [np.uint8 if len(s) == 3 else np.float32 for s in shapes]
    assert demo.stored_continuous_actions.shape == (steps, continuous)
    assert demo.behavior_spec.action_spec.discrete_branches == branches
    # mean_reward = sum of rewards / number_episodes, up to Unity's float32 running sum
    assert meta.mean_reward == pytest.approx(float(demo.rewards.astype(np.float64).sum()) / episodes, rel=1e-4, abs=1e-5)


def test_first_records_legacy_vector(real_demos_dir: Path) -> None:
    demo = read_demo(real_demos_dir / "v06_unity_test.demo")
    np.testing.assert_allclose(demo.observations[0][0], [-0.0116833672, 0.0245198961, -0.367291451, 4.0, -1.22931767, 0, 0, 0], rtol=1e-7)
    assert demo.stored_continuous_actions[:4].tolist() == [[0.0, 0.0]] * 4
    assert demo.agent_ids[0] == -5488  # a negative int32 stored as a 10-byte varint
    assert demo.behavior_spec.name == "Ball3DBrain"


def test_first_records_legacy_png_and_masks(real_demos_dir: Path) -> None:
    path = real_demos_dir / "v06_unity_GridDemo.demo"
    reader = DemoReader(path)
    demo = reader.read()
    first = lpb.AgentInfoProto.FromString(_records(path, reader)[0])
    assert np.array_equal(demo.observations[0][0], _png(first.visual_observations[0]))
    assert demo.stored_discrete_actions[:4, 0].tolist() == [0, 1, 3, 0]
    # record 1 forbids action 4 (legacy True = not allowed); ours says True = allowed
    assert demo.action_masks[1].tolist() == [True, True, True, True, False]


def test_first_records_modern(real_demos_dir: Path) -> None:
    v1 = read_demo(real_demos_dir / "v1_unity_test.demo")
    np.testing.assert_allclose(v1.observations[0][0], [0.03804373, 0.0110709807, 1.13029861, 4.0, 0.236369133, 0, 0, 0], rtol=1e-7)
    np.testing.assert_allclose(v1.stored_continuous_actions[1], [-0.018973013386130333, 0.15647251904010773], rtol=1e-7)
    assert v1.agent_ids[0] == 7 and v1.behavior_spec.name == "3DBall?team=0"

    grid = read_demo(real_demos_dir / "v1_unity_ExpertGridWorld.demo")
    # raw floats 0.53725493, 0.545098066, 0.56078434 (= 137/255, 139/255, 143/255), HWC
    assert grid.observations[0][0, 0, 0].tolist() == [137, 139, 143]
    assert grid.stored_discrete_actions[:2, 0].tolist() == [2, 2]

    race = read_demo(real_demos_dir / "v4_racing_RevLeft.demo")
    keys = race.behavior_spec.observation_keys
    assert keys == ("RearSensor", "StackingSensor_size3_FrontSensor", "StackingSensor_size5_VectorSensor_size5")
    assert race.rewards[0] == np.float32(-0.860000253)
    np.testing.assert_allclose(race.observations[0][0, :6], [0, 1, 0, 0, 0, 0.0341279916], rtol=1e-7)


def test_first_record_hybrid_chw_png(real_demos_dir: Path) -> None:
    path = real_demos_dir / "v2_unity_testhybridvis.demo"
    reader = DemoReader(path)
    demo = reader.read()
    camera = demo.behavior_spec.observation_specs[0]
    assert camera.shape == (3, 84, 84) and camera.channels_first and camera.name == "CameraSensor"
    np.testing.assert_allclose(demo.stored_continuous_actions[0], [1.0, 0.4505097568035126, -0.11455225944519043], rtol=1e-7)
    assert demo.stored_discrete_actions[0].tolist() == [0]
    pair = pb.AgentInfoActionPairProto.FromString(_records(path, reader)[0])
    assert np.array_equal(demo.observations[0][0], _png(pair.agent_info.observations[0].compressed_data))
    chw = read_demo(path, image_format="chw_float").observations[0]
    assert chw.shape == (25, 3, 84, 84) and chw.dtype == np.float32
    np.testing.assert_array_equal(chw[0], demo.observations[0][0].transpose(2, 0, 1) / np.float32(255))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_record_equals_protobuf_and_codec_decoding(real_demos_dir: Path, name: str) -> None:
    """The vectorised reader gives exactly what parsing each record with protobuf and decoding
    it as the live env does gives (values, dtypes, masks, stored actions)."""
    path = real_demos_dir / name
    reader = DemoReader(path)
    demo = reader.read()
    spec = demo.behavior_spec
    act = spec.action_spec
    for i, record in enumerate(_records(path, reader)):
        if reader.era.legacy_records:
            info = lpb.AgentInfoProto.FromString(record)
            pngs = iter(info.visual_observations)
            expected_obs = [
                observations.decode_observation(pb.ObservationProto(shape=o.shape, compression_type=pb.PNG, compressed_data=next(pngs)), o)
                if o.is_visual
                else np.array(info.stacked_vector_observation, np.float32)
                for o in spec.observation_specs
            ]
            flat = list(info.stored_vector_actions)
            cont, disc = np.array(flat[: act.continuous_size], np.float32), np.rint(flat[act.continuous_size :]).astype(np.int32)
        else:
            pair = pb.AgentInfoActionPairProto.FromString(record)
            info = pair.agent_info
            expected_obs = [observations.decode_observation(o, s) for o, s in zip(info.observations, spec.observation_specs)]
            a = pair.action_info
            stored = bool(len(a.vector_actions_deprecated) or len(a.continuous_actions) or len(a.discrete_actions))
            assert demo.action_stored[i] == stored
            if stored:
                (cont,), (disc,) = decode_actions([a], act)
            else:
                cont, disc = np.zeros(act.continuous_size, np.float32), np.zeros(act.discrete_size, np.int32)
        for ours, theirs in zip(demo.observations, expected_obs):
            assert ours[i].dtype == theirs.dtype and np.array_equal(ours[i], theirs), (name, i)
        assert np.array_equal(demo.stored_continuous_actions[i], cont) and np.array_equal(demo.stored_discrete_actions[i], disc)
        assert (demo.rewards[i], demo.done[i], demo.max_step_reached[i], demo.agent_ids[i]) == (
            np.float32(info.reward), info.done, info.max_step_reached, info.id,
        )  # fmt: skip
        if act.discrete_branches:
            mask = list(info.action_mask)
            expected_mask = [not m for m in mask] if len(mask) == sum(act.discrete_branches) else [True] * sum(act.discrete_branches)
            assert demo.action_masks[i].tolist() == expected_mask


def test_streaming_gives_the_same_records(real_demos_dir: Path) -> None:
    path = real_demos_dir / "v1_unity_ExpertPyramid.demo"
    whole = read_demo(path)
    reader = DemoReader(path, batch_size=100)
    chunks = list(reader.iter_batches())
    assert [len(c) for c in chunks] == [100] * 17 + [51]
    for j in range(4):
        assert np.array_equal(np.concatenate([c.observations[j] for c in chunks]), whole.observations[j])
    records = list(iter_records(path))
    assert [r.index for r in records] == list(range(1751))
    i = 1234
    assert records[i].stored_discrete_action.tolist() == whole.stored_discrete_actions[i].tolist()
    assert np.array_equal(records[i].observations[3], whole.observations[3][i])
    assert (records[i].reward, records[i].done, records[i].agent_id) == (float(whole.rewards[i]), bool(whole.done[i]), int(whole.agent_ids[i]))


@pytest.mark.imitation
def test_directory_reads_files_in_sorted_order(real_demos_dir: Path, tmp_path: Path) -> None:
    shutil.copy(real_demos_dir / "v4_racing_RevLeft.demo", tmp_path / "b.demo")
    shutil.copy(real_demos_dir / "v4_racing_Demo.demo", tmp_path / "a.demo")
    (tmp_path / "notes.txt").write_text("not a demo")
    demo = read_demo(tmp_path)
    assert [m.path.name for m in demo.metas] == ["a.demo", "b.demo"]
    assert len(demo) == 3980 + 419
    assert demo.file_index.tolist() == [0] * 3980 + [1] * 419
    assert demo.num_episodes == 4
    with pytest.raises(ValueError, match="2 files"):
        _ = demo.meta
    trajectories = demo_to_trajectories(demo, hybrid_actions="continuous")
    # episodes never span files: both files end with an open episode
    assert sum(len(t) + 1 for t in trajectories) == len(demo)
    assert [t.terminal for t in trajectories] == [True, False, False, False]
    assert sum(1 for _ in iter_records(tmp_path)) == len(demo)


def test_directory_with_two_behaviors_is_a_mismatch(real_demos_dir: Path, tmp_path: Path) -> None:
    shutil.copy(real_demos_dir / "v1_unity_test.demo", tmp_path / "a.demo")
    shutil.copy(real_demos_dir / "v06_unity_CrawlerDemo.demo", tmp_path / "b.demo")
    with pytest.raises(SpecMismatchError, match="a.demo.*b.demo"):
        read_demo(tmp_path)


@pytest.mark.imitation
def test_real_episodes_become_trajectories(real_demos_dir: Path) -> None:
    demo = read_demo(real_demos_dir / "v1_unity_test.demo")
    trajectories = demo_to_trajectories(demo)
    assert len(trajectories) == 22
    # every done record of this file is a max-step cut: no trajectory is terminal
    assert not any(t.terminal for t in trajectories)
    first_done = int(np.flatnonzero(demo.done)[0])
    assert len(trajectories[0]) == first_done
    np.testing.assert_array_equal(trajectories[0].acts, demo.stored_continuous_actions[1 : first_done + 1])

    hard = read_demo(real_demos_dir / "v013_unity_Expert3DBallHard.demo")
    assert not hard.action_stored[-1] and hard.action_stored[:-1].all()
    (only,) = demo_to_trajectories(hard)
    assert len(only) == 274 and not only.terminal  # the last record stores no action: cut before it
