"""Every observation and action type the env supports trains (images through a CNN, Dict
observations, discrete, multi-discrete, continuous); what cannot train is refused first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from imitation.data import types

from gym_unity_il.demo import read_demo, record_episodes
from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.errors import ConfigError, SpecMismatchError
from gym_unity_il.train import load_policy, parse_config, train
from gym_unity_il.train.policies import NATURE_CNN_MIN_SIZE, ObservationAdapter, SensorExtractor
from train_helpers import tiny

SCENE = "shapes_scene:ShapesScene"


def _record(path: Path, sensors: list[str], actions: str, episodes: int = 12) -> Path:
    """Demos of random play (the trainers only need data of the right shapes here)."""
    env = UnityILEnv(scene=SCENE, scene_kwargs={"sensors": sensors, "actions": actions})
    env.action_space.seed(0)
    record_episodes(env, lambda obs: env.action_space.sample(), path, episodes=episodes, seed=0)
    return path


CASES = [
    (["vector"], "multi_discrete", "offline_bc"),
    (["small_image"], "discrete", "gail"),
    (["gray_image", "vector"], "continuous", "bc_then_sac"),
    (["small_image", "vector"], "multi_discrete", "bc_then_ppo"),
]


@pytest.mark.parametrize(("sensors", "actions", "trainer"), CASES, ids=lambda v: "+".join(v) if isinstance(v, list) else v)
def test_observation_and_action_types_train_and_reload(tmp_path: Path, sensors: list[str], actions: str, trainer: str) -> None:
    demo = _record(tmp_path / "shapes.demo", sensors, actions)
    kwargs = {"sensors": sensors, "actions": actions}
    section = tiny(demo, trainer=trainer, num_epoch=1, max_steps=192, normalize=True, batch_size=32,
                   sac={"learning_starts": 128, "batch_size": 32}, gail={"demo_batch_size": 32, "strength": 0.5})  # fmt: skip
    result = train(parse_config({"default": section}), run_id="run", results_dir=tmp_path, scene=SCENE, scene_kwargs=kwargs, progress=False)
    summary = json.loads((result.run_dir / "evaluation.json").read_text())
    assert summary["episodes"] == 2 and all(0 <= r <= 10 for r in summary["returns"])

    recorded = read_demo(demo)
    env_space = recorded.behavior_spec.observation_space()
    policy = load_policy(result.model_path, env_space)
    extractor = policy.model.actor.features_extractor if trainer == "bc_then_sac" else policy.model.policy.features_extractor
    assert isinstance(extractor, SensorExtractor)
    assert len(extractor.encoders) == sum(o.is_visual for o in recorded.behavior_spec.observation_specs)
    obs = recorded.observations[0][:5] if len(sensors) == 1 else dict(zip(recorded.behavior_spec.observation_keys, (o[:5] for o in recorded.observations)))
    actions_out, _ = policy.predict(obs)
    action_space = recorded.behavior_spec.action_space()
    assert len(actions_out) == 5 and all(action_space.contains(a.astype(action_space.dtype)) for a in actions_out)


def test_adapter_treats_env_and_demo_observations_alike() -> None:
    env_space = spaces.Dict({"SmallCamera": spaces.Box(0, 255, (10, 8, 3), np.uint8), "Vec": spaces.Box(-np.inf, np.inf, (3,), np.float32)})
    rng = np.random.default_rng(0)
    batch = {"SmallCamera": rng.integers(0, 256, (4, 10, 8, 3), dtype=np.uint8), "Vec": rng.normal(size=(4, 3)).astype(np.float32)}
    adapter = ObservationAdapter(env_space)
    assert adapter.space["SmallCamera"].shape == (3, 10, 8)
    transposed = adapter(batch)
    np.testing.assert_array_equal(transposed["SmallCamera"][2, 1], batch["SmallCamera"][2, :, :, 1])
    from_demo = adapter(types.DictObs(batch))
    np.testing.assert_array_equal(from_demo.get("SmallCamera"), transposed["SmallCamera"])

    packed = ObservationAdapter(env_space, pack=True)
    flat = packed(batch)
    assert flat.shape == (4, 3 * 10 * 8 + 3) and packed.space.shape == (243,)
    np.testing.assert_allclose(flat[:, :240].reshape(4, 3, 10, 8), transposed["SmallCamera"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(flat[:, 240:], batch["Vec"])
    extractor = SensorExtractor(packed.space, layout=packed.layout)
    import torch as th

    features = extractor(th.as_tensor(flat))
    unpacked = SensorExtractor(adapter.space)
    unpacked.load_state_dict(extractor.state_dict())
    expected = unpacked({"SmallCamera": th.as_tensor(transposed["SmallCamera"]).float() / 255.0, "Vec": th.as_tensor(batch["Vec"])})
    th.testing.assert_close(features, expected)


def test_cnn_follows_image_size() -> None:
    import torch as th

    def first_kernel(shape: tuple[int, int, int]) -> tuple[int, int]:
        extractor = SensorExtractor(spaces.Box(0, 255, shape, np.uint8))
        conv = next(m for m in extractor.modules() if isinstance(m, th.nn.Conv2d))
        assert extractor(th.zeros(2, *shape)).shape == (2, extractor.features_dim)
        return conv.kernel_size

    assert first_kernel((1, NATURE_CNN_MIN_SIZE, 40)) == (8, 8)  # NatureCNN's layers
    assert first_kernel((3, 10, 8)) == (3, 3)  # too small for them


def test_hybrid_actions_are_refused_before_training(tmp_path: Path) -> None:
    config = parse_config({"default": tiny(tmp_path / "never_read.demo", trainer="offline_bc", num_epoch=1)})
    with pytest.raises(ConfigError, match=r"hybrid actions \(continuous 2 \+ discrete \[3\]\).*'offline_bc' cannot train them"):
        train(config, run_id="run", results_dir=tmp_path, scene=SCENE, scene_kwargs={"sensors": ["vector"], "actions": "hybrid"}, progress=False)
    assert not (tmp_path / "run").exists()


def test_sac_refuses_discrete_actions(tmp_path: Path) -> None:
    config = parse_config({"default": tiny(tmp_path / "never_read.demo", trainer="bc_then_sac", num_epoch=1)})
    with pytest.raises(ConfigError, match=r"'bc_then_sac' needs continuous actions.*use 'bc_then_ppo'"):
        train(config, run_id="run", results_dir=tmp_path, scene=SCENE, scene_kwargs={"sensors": ["vector"], "actions": "discrete"}, progress=False)


def test_demo_of_another_behavior_is_refused_naming_both_specs(tmp_path: Path, ball_demo: Path) -> None:
    config = parse_config({"default": tiny(ball_demo, trainer="offline_bc", num_epoch=1)})
    with pytest.raises(SpecMismatchError) as caught:
        train(config, run_id="run", results_dir=tmp_path, scene=SCENE, scene_kwargs={"sensors": ["vector"], "actions": "continuous"}, progress=False)
    message = str(caught.value)
    assert f"demo {ball_demo}: 3DBall?team=0: observations [VectorSensor_size8[8]]" in message
    assert "env: Shapes?team=0: observations [VectorSensor_size3[3]]" in message
    assert not (tmp_path / "run").exists()



@pytest.mark.parametrize("action_space", [spaces.Discrete(5), spaces.MultiDiscrete([5, 3])], ids=["discrete", "multi_discrete"])
def test_masked_predict_never_chooses_a_forbidden_action(action_space: spaces.Space) -> None:
    import torch as th
    from stable_baselines3.common.policies import ActorCriticPolicy

    from gym_unity_il.train.evaluation import masked_predict

    policy = ActorCriticPolicy(spaces.Box(-1, 1, (2,), np.float32), action_space, lambda _: 1e-3)
    preference = th.tensor([0.0, 5.0, 4.0, 0.0, 0.0, 3.0, 2.0, 1.0][: policy.action_net.out_features])
    with th.no_grad():
        policy.action_net.weight.zero_()
        policy.action_net.bias.copy_(preference)
    obs = np.zeros((2, 2), np.float32)
    masks = np.ones((2, policy.action_net.out_features), bool)
    masks[1, 1] = False  # the favourite of the first branch is forbidden for the second agent
    if isinstance(action_space, spaces.MultiDiscrete):
        masks[1, 5] = False  # and of the second branch
    actions, state = masked_predict(policy, obs, masks)
    unmasked, _ = policy.predict(obs, deterministic=True)
    assert state is None  # a feed-forward policy keeps none
    if isinstance(action_space, spaces.Discrete):
        assert actions.tolist() == [1, 2] and unmasked.tolist() == [1, 1]
    else:
        assert actions.tolist() == [[1, 0], [2, 1]] and unmasked.tolist() == [[1, 0], [1, 0]]
    sampled, _ = masked_predict(policy, np.zeros((200, 2), np.float32), np.tile(masks[1], (200, 1)), deterministic=False)
    assert not np.any((sampled if sampled.ndim == 1 else sampled[:, 0]) == 1)
