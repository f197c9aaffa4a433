""".demo <-> Minari: real recordings and built-in scene recordings through real Minari
datasets (arrow and hdf5) and back, checked by Minari's own loaders."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari", reason="the datasets extra: pip install 'gym_unity_il[datasets]'")

from gymnasium import spaces  # noqa: E402
from minari.utils import get_dataset_spec_dict, validate_datasets_to_combine  # noqa: E402

from gym_unity_il.cli import main  # noqa: E402
from gym_unity_il.demo import (  # noqa: E402
    DemoReader,
    DemoWriter,
    demo_to_minari,
    flat_action_space,
    minari_to_demo,
    read_demo,
    record_episodes,
    split_episodes,
)
from gym_unity_il.errors import ConfigError, SpecMismatchError  # noqa: E402
from gym_unity_il.scenes import expert_policy  # noqa: E402

from demo_helpers import spec_of, vector  # noqa: E402

REAL = {  # file: storage (arrow cannot hold the size-0 sensor of testdcvis)
    "v06_unity_GridDemo.demo": "arrow",
    "v06_unity_CrawlerDemo.demo": "hdf5",
    "v06_unity_test.demo": "arrow",
    "v013_unity_testdcvis.demo": "hdf5",
    "v013_unity_Expert3DBallHard.demo": "arrow",
    "v1_unity_test.demo": "hdf5",
    "v1_unity_ExpertGridWorld.demo": "hdf5",
    "v1_unity_ExpertPyramid.demo": "arrow",
    "v2_unity_testhybridvis.demo": "arrow",
    "v4_racing_RevLeft.demo": "hdf5",
    "v4_racing_Demo.demo": "arrow",
}


@pytest.fixture(autouse=True)
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Minari's root folder for the test: never the user's home."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def _check_with_minari(dataset_id: str, root: Path) -> minari.MinariDataset:
    """The dataset as Minari's own tools see it: listed without warning, loaded by id,
    described, combinable, and every episode consistent with its spaces and counters."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        listed = minari.list_local_datasets()[dataset_id]
    dataset = minari.load_dataset(dataset_id)
    assert dataset.id == dataset_id and dataset.storage.data_path == root / dataset_id / "data"
    described = get_dataset_spec_dict(listed)  # what `minari show` prints
    assert described["Total Episodes"] == str(dataset.total_episodes) and "(supported)" in described["Minari Version"]
    assert validate_datasets_to_combine([dataset, dataset]) == dataset.env_spec
    steps = 0
    for index, episode in enumerate(dataset.iterate_episodes()):
        n = len(episode)
        steps += n
        assert episode.id == index and n >= 1
        assert len(episode.terminations) == len(episode.truncations) == n
        assert episode.terminations[-1] != episode.truncations[-1]  # every episode ends one way
        assert not (episode.terminations[:-1].any() or episode.truncations[:-1].any())
        obs_space, act_space = dataset.observation_space, dataset.action_space
        for t in range(n + 1):
            obs = {k: v[t] for k, v in episode.observations.items()} if isinstance(obs_space, spaces.Dict) else episode.observations[t]
            assert obs_space.contains(obs)
        for t in range(n):
            action = episode.actions[t]
            if isinstance(act_space, spaces.Box):  # recorded actions may pass the env's [-1, 1]
                assert action.shape == act_space.shape and action.dtype == act_space.dtype
            else:
                assert act_space.contains(action)
    assert steps == dataset.total_steps
    return dataset


def _assert_same_pairing(original, again, hybrid_actions: str = "error") -> None:  # type: ignore[no-untyped-def]
    """Every record the causal pairing keeps, kept: observations, actions, rewards and ends."""
    space = flat_action_space(original.behavior_spec, hybrid_actions=hybrid_actions)
    assert again.behavior_spec.name == original.behavior_spec.name
    assert [o.output_shape() for o in again.behavior_spec.observation_specs] == [o.output_shape() for o in original.behavior_spec.observation_specs]
    assert again.behavior_spec.action_space() == space
    first, second = split_episodes(original), split_episodes(again)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert len(a.rows) == len(b.rows)
        for o1, o2 in zip(original.observations, again.observations):
            assert np.array_equal(o1[a.rows], o2[b.rows])
        assert np.array_equal(original.rewards[a.rows[1:]], again.rewards[b.rows[1:]])
        if isinstance(space, spaces.Box):
            assert np.array_equal(original.stored_continuous_actions[a.rows[1:]], again.stored_continuous_actions[b.rows[1:]])
        else:
            assert np.array_equal(original.stored_discrete_actions[a.rows[1:]], again.stored_discrete_actions[b.rows[1:]])
        if original.action_masks is not None and not original.behavior_spec.action_spec.is_hybrid:
            assert np.array_equal(original.action_masks[a.rows], again.action_masks[b.rows])
        # an episode cut by the end of the recording comes back cut by a step limit
        assert (b.terminal, b.truncated) == (a.terminal, not a.terminal)


@pytest.mark.parametrize("batch_size", [4096, 13])  # whole files; episodes across many batches
def test_every_real_recording_survives_demo_minari_demo(real_demos_dir: Path, minari_root: Path, tmp_path: Path, batch_size: int) -> None:
    assert sorted(REAL) == sorted(p.name for p in real_demos_dir.glob("*.demo"))
    for k, (name, storage) in enumerate(sorted(REAL.items())):
        source = real_demos_dir / name
        hybrid = "continuous" if "hybrid" in name or "racing" in name else "error"
        dataset_id = f"unity/real{k}-v0"
        demo_to_minari(source, dataset_id, storage=storage, hybrid_actions=hybrid, batch_size=batch_size)
        dataset = _check_with_minari(dataset_id, minari_root)
        unity = dataset.storage.metadata["gym_unity_il"]
        reader = DemoReader(source)
        assert unity["source_files"][0]["file"] == name and unity["source_files"][0]["era"] == reader.era.value
        assert unity["behavior_name"] == reader.behavior_spec.name
        out = minari_to_demo(dataset_id, tmp_path / f"{k}.demo")
        _assert_same_pairing(read_demo(source), read_demo(out), hybrid)


def _interleaved(path: Path) -> None:
    """Three agents deciding in turn, episodes of many lengths ending every way (done, cut,
    open at the end of the file), and one record that stores no action (a cut before it)."""
    spec = spec_of(vector(3), continuous=2)
    rng = np.random.default_rng(1)
    lengths = {7: [5, 1, 9, "open"], 8: [2, 12, "open"], 9: [30]}
    with DemoWriter(path, behavior_spec=spec) as writer:
        left = {agent: list(plan) for agent, plan in lengths.items()}
        t = {agent: 0 for agent in lengths}
        step = 0
        while any(left.values()):
            for agent, plan in left.items():
                if not plan:
                    continue
                length = plan[0]
                end = length != "open" and t[agent] == length - 1
                stores = not (agent == 9 and t[agent] == 17)
                action = (rng.uniform(-1, 1, 2) if t[agent] else np.zeros(2)) if stores else None
                writer.write(rng.normal(size=3).astype(np.float32), reward=float(rng.normal()) if t[agent] else 0.0, done=end,
                             max_step_reached=end and length == 12, agent_id=agent, stored_continuous_action=action)  # fmt: skip
                t[agent] = 0 if end else t[agent] + 1
                if end or (length == "open" and t[agent] == 6):
                    plan.pop(0)
                step += 1


@pytest.mark.parametrize("batch_size", [4096, 5, 1])
def test_interleaved_agents_stream_in_the_order_of_split_episodes(tmp_path: Path, batch_size: int) -> None:
    path = tmp_path / "agents.demo"
    _interleaved(path)
    demo = read_demo(path)
    episodes = split_episodes(demo)
    assert len(episodes) >= 7 and any((np.diff(e.rows) != 1).any() for e in episodes)
    dataset = demo_to_minari(path, "unity/agents-v0", dataset_dir=tmp_path / "root", batch_size=batch_size)
    assert dataset.total_episodes == len(episodes)
    for ep, got in zip(episodes, dataset.iterate_episodes()):
        assert np.array_equal(got.observations, demo.observations[0][ep.rows])
        assert np.array_equal(got.actions, demo.stored_continuous_actions[ep.rows[1:]])
        assert np.array_equal(got.rewards, demo.rewards[ep.rows[1:]])
        assert (bool(got.terminations[-1]), bool(got.truncations[-1])) == (ep.terminal, not ep.terminal)


def test_hybrid_actions_follow_the_chosen_part(real_demos_dir: Path, tmp_path: Path) -> None:
    source = real_demos_dir / "v2_unity_testhybridvis.demo"
    with pytest.raises(SpecMismatchError, match="hybrid_actions='continuous' or hybrid_actions='discrete'"):
        demo_to_minari(source, "unity/hybrid-v0")
    dataset = demo_to_minari(source, "unity/hybrid-v1", hybrid_actions="discrete", storage="hdf5")
    assert dataset.action_space == spaces.Discrete(2)
    assert dataset.storage.metadata["gym_unity_il"]["hybrid_actions"] == "discrete"
    _assert_same_pairing(read_demo(source), read_demo(minari_to_demo(dataset, tmp_path / "d.demo")), "discrete")


def test_arrow_refuses_a_sensor_of_size_zero_before_writing(real_demos_dir: Path, minari_root: Path) -> None:
    with pytest.raises(SpecMismatchError, match=r"sensor 'obs_1' .*\(size 0\).*Fix: storage='hdf5'"):
        demo_to_minari(real_demos_dir / "v013_unity_testdcvis.demo", "unity/dcvis-v0", storage="arrow")
    assert not (minari_root / "unity" / "dcvis-v0").exists()


@pytest.fixture(scope="module")
def grid_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two files of the grid scene's expert: camera (uint8 HWC) + goal signal, discrete with masks."""
    import gym_unity_il  # noqa: F401  (registers UnityIL-v0)

    folder = tmp_path_factory.mktemp("grid")
    for seed in (0, 10):
        env = gym.make("UnityIL-v0", scene="grid", scene_kwargs={"grid_size": 3})
        record_episodes(env, expert_policy("grid"), folder / f"grid{seed}.demo", episodes=3, seed=seed)
    return folder


def test_a_folder_of_scene_recordings_with_images_and_a_dict_observation(grid_demos: Path, minari_root: Path, tmp_path: Path) -> None:
    env_kwargs = {"scene": "grid", "scene_kwargs": {"grid_size": 3}}
    dataset = demo_to_minari(grid_demos, "unity/grid-expert-v0", env_kwargs=env_kwargs)
    _check_with_minari("unity/grid-expert-v0", minari_root)
    demo = read_demo(grid_demos)
    assert dataset.total_episodes == len(split_episodes(demo)) == 6
    assert isinstance(dataset.observation_space, spaces.Dict)
    camera = next(k for k, s in dataset.observation_space.items() if len(s.shape) == 3)
    assert dataset.observation_space[camera].dtype == np.uint8
    first = dataset[0]
    assert np.array_equal(first.observations[camera], demo.observations[0][split_episodes(demo)[0].rows])
    assert first.infos["action_mask"].dtype == bool and first.infos["action_mask"].shape == (len(first) + 1, 5)
    unity = dataset.storage.metadata["gym_unity_il"]
    assert [s["file"] for s in unity["source_files"]] == ["grid0.demo", "grid10.demo"]
    height, width, channels = dataset.observation_space[camera].shape
    assert unity["camera_resolutions"] == {camera: {"height": height, "width": width, "grayscale": channels == 1}}
    assert dataset.env_spec.id == "UnityIL-v0" and dataset.env_spec.kwargs == env_kwargs
    env = dataset.recover_environment()
    try:
        assert env.observation_space == dataset.observation_space and env.action_space == dataset.action_space
        obs, _ = env.reset(seed=5)
        assert dataset.observation_space.contains(obs)
    finally:
        env.close()
    _assert_same_pairing(demo, read_demo(minari_to_demo(dataset, tmp_path / "back.demo")))


def test_an_existing_dataset_or_a_bad_id_is_refused(grid_demos: Path, tmp_path: Path) -> None:
    demo_to_minari(grid_demos, "unity/grid-v0", dataset_dir=tmp_path / "mine", storage="hdf5")
    assert (tmp_path / "mine" / "unity" / "grid-v0" / "data" / "metadata.json").is_file()
    with pytest.raises(FileExistsError, match="already exists.*Fix: choose another name or version"):
        demo_to_minari(grid_demos, "unity/grid-v0", dataset_dir=tmp_path / "mine")
    with pytest.raises(ConfigError, match="not a Minari dataset id"):
        demo_to_minari(grid_demos, "grid version 0")
    with pytest.raises(FileNotFoundError, match="no Minari dataset 'unity/other-v0'"):
        minari_to_demo("unity/other-v0", tmp_path / "x.demo", dataset_dir=tmp_path / "mine")


@pytest.mark.parametrize(
    ("observation_space", "action_space", "named"),
    [
        (spaces.Discrete(4), spaces.Discrete(2), "Discrete(4)"),
        (spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(3, start=1), "Discrete(3, start=1)"),
        (spaces.Tuple((spaces.Box(-1, 1, (2,), np.float32),)), spaces.Discrete(2), "Tuple("),
    ],
)
def test_a_space_without_a_behavior_spec_is_named(observation_space: spaces.Space, action_space: spaces.Space, named: str, tmp_path: Path) -> None:
    from minari.data_collector import EpisodeBuffer

    observation_space.seed(0)
    action_space.seed(0)
    steps = 3
    samples = [observation_space.sample() for _ in range(steps + 1)]
    observations = tuple(np.stack(x) for x in zip(*samples)) if isinstance(observation_space, spaces.Tuple) else np.stack(samples)
    episode = EpisodeBuffer(
        observations=observations,
        actions=np.stack([action_space.sample() for _ in range(steps)]),
        rewards=[0.0] * steps,
        terminations=[False, False, True],
        truncations=[False] * steps,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Minari's advice to name an author and the code
        minari.create_dataset_from_buffers("other/space-v0", [episode], observation_space=observation_space, action_space=action_space)
    with pytest.raises(SpecMismatchError, match=r"'other/space-v0' cannot be written as a \.demo file: .*" + re.escape(named) + ".*Fix: "):
        minari_to_demo("other/space-v0", tmp_path / "x.demo")
    assert not (tmp_path / "x.demo").exists()


def test_a_minari_dataset_of_another_source_becomes_a_demo_file(tmp_path: Path) -> None:
    """A Box observation and a Dict(continuous, discrete) action, episodes ending every way."""
    from minari.data_collector import EpisodeBuffer

    obs_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
    act_space = spaces.Dict({"continuous": spaces.Box(-1, 1, (2,), np.float32), "discrete": spaces.MultiDiscrete([3, 2])})
    rng = np.random.default_rng(0)
    ends = [(True, False), (False, True), (False, False)]
    episodes = [
        EpisodeBuffer(
            observations=rng.normal(size=(n + 1, 4)).astype(np.float32),
            actions={"continuous": rng.uniform(-1, 1, (n, 2)).astype(np.float32), "discrete": rng.integers(0, [3, 2], (n, 2))},
            rewards=rng.normal(size=n).tolist(),
            terminations=[False] * (n - 1) + [term],
            truncations=[False] * (n - 1) + [trunc],
        )
        for n, (term, trunc) in zip((4, 6, 5), ends)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = minari.create_dataset_from_buffers("other/hybrid-v0", episodes, observation_space=obs_space, action_space=act_space)
    demo = read_demo(minari_to_demo(dataset, tmp_path / "h.demo"))
    assert demo.behavior_spec.action_spec.continuous_size == 2 and demo.behavior_spec.action_spec.discrete_branches == (3, 2)
    got = split_episodes(demo)
    assert [(e.terminal, e.truncated) for e in got] == ends
    for ep, source in zip(got, episodes):
        assert np.array_equal(demo.observations[0][ep.rows], source.observations)
        assert np.array_equal(demo.stored_continuous_actions[ep.rows[1:]], source.actions["continuous"])
        assert np.array_equal(demo.stored_discrete_actions[ep.rows[1:]], source.actions["discrete"])
        assert np.array_equal(demo.rewards[ep.rows[1:]], np.float32(source.rewards))


def test_the_command_line_converts_both_ways(
    grid_demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --dataset-dir, as the README writes it
    root = tmp_path / "datasets"
    args = ["demo", "convert", str(grid_demos), "--to", "minari", "--dataset-id", "unity/grid-cli-v0", "--dataset-dir", "datasets"]
    assert main([*args, "--scene", "grid", "--scene-kwargs", '{"grid_size": 3}']) == 0
    assert "wrote Minari dataset unity/grid-cli-v0 (arrow): 6 episodes" in capsys.readouterr().out
    metadata = json.loads((root / "unity" / "grid-cli-v0" / "data" / "metadata.json").read_text())
    assert metadata["data_format"] == "arrow" and json.loads(metadata["env_spec"])["kwargs"] == {"scene": "grid", "scene_kwargs": {"grid_size": 3}}
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "back.demo"
    assert main(["demo", "convert", "unity/grid-cli-v0", "--to", "demo", "--dataset-dir", "datasets", "--out", str(out)]) == 0
    _assert_same_pairing(read_demo(grid_demos), read_demo(out))
    assert main(["demo", "convert", str(grid_demos), "--to", "minari"]) == 2
    assert "--to minari needs --dataset-id" in capsys.readouterr().err
    assert main(["demo", "convert", "unity/grid-cli-v0", "--to", "demo", "--dataset-dir", "datasets"]) == 2
    assert "--to demo needs --out" in capsys.readouterr().err
    assert main(["demo", "convert", "unity/grid-cli-v0", "--to", "demo", "--out", "x.demo", "--storage", "hdf5", "--scene", "grid"]) == 2
    assert "--scene, --storage cannot go with --to demo" in capsys.readouterr().err and not Path("x.demo").exists()


def test_a_recording_writes_the_demo_and_the_same_episodes_as_a_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "datasets"
    out = tmp_path / "grid.demo"
    args = ["demo", "record", str(out), "--scene", "grid", "--scene-kwargs", '{"grid_size": 3}', "--episodes", "3", "--seed", "7"]
    assert main([*args, "--minari-id", "unity/grid-live-v0", "--dataset-dir", "datasets"]) == 0
    assert "wrote the same episodes to the Minari dataset unity/grid-live-v0" in capsys.readouterr().out
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    dataset = _check_with_minari("unity/grid-live-v0", root)
    demo = read_demo(out)
    episodes = split_episodes(demo)
    assert dataset.total_episodes == len(episodes) == 3
    keys = demo.behavior_spec.observation_keys
    space = flat_action_space(demo.behavior_spec)
    for ep, episode in zip(episodes, dataset.iterate_episodes()):
        for key, observations in zip(keys, demo.observations):
            assert np.array_equal(episode.observations[key], observations[ep.rows])
        assert np.array_equal(episode.actions, demo.stored_discrete_actions[ep.rows[1:]].reshape(len(ep.rows) - 1, *space.shape))
        assert np.array_equal(episode.rewards, demo.rewards[ep.rows[1:]])
        assert np.array_equal(episode.infos["action_mask"], demo.action_masks[ep.rows])
        assert (bool(episode.terminations[-1]), bool(episode.truncations[-1])) == (ep.terminal, not ep.terminal)
    kwargs = dataset.env_spec.kwargs
    assert (kwargs["scene"], kwargs["scene_kwargs"], kwargs["seed"]) == ("grid", {"grid_size": 3}, 7)

    # a taken or malformed id is refused before anything is recorded
    again = tmp_path / "again.demo"
    assert main(["demo", "record", str(again), *args[3:], "--minari-id", "unity/grid-live-v0", "--dataset-dir", "datasets"]) == 2
    assert "already exists" in capsys.readouterr().err and not again.exists()
    assert main(["demo", "record", str(again), *args[3:], "--minari-id", "grid live"]) == 2
    assert "is not a Minari dataset id" in capsys.readouterr().err and not again.exists()
    assert main(["demo", "record", str(again), *args[3:], "--dataset-dir", "datasets"]) == 2
    assert "give --minari-id" in capsys.readouterr().err and not again.exists()
