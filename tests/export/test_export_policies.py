"""export_onnx over every kind of SB3 policy and observation layout (no env needed): parity with
torch, sampled outputs that follow the policy's distribution and the masks, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize, VecTransposeImage
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

from gym_unity_il.errors import ConfigError, SpecMismatchError
from gym_unity_il.export import ExportParityError, OnnxPolicy, check_model, export_onnx
from gym_unity_il.export.parity import parity_inputs
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

VECTOR = BehaviorSpec("Vector?team=0", (ObservationSpec((8,), name="VectorSensor_size8"),), ActionSpec.create_continuous(2))
MULTI = BehaviorSpec("Multi?team=0", (ObservationSpec((5,), name="VectorSensor_size5"),), ActionSpec.create_discrete((3, 2)))
CAMERA = BehaviorSpec(
    "Camera?team=0",
    (ObservationSpec((12, 10, 3), name="CameraSensor"), ObservationSpec((2,), name="GoalSensor")),
    ActionSpec.create_discrete((5,)),
)


def _lr(_: float) -> float:
    return 0.0


def _transposed(space: gym.spaces.Dict) -> gym.spaces.Dict:
    """The space SB3 trains on after VecTransposeImage."""
    return gym.spaces.Dict({k: VecTransposeImage.transpose_space(v) if len(v.shape) == 3 else v for k, v in space.spaces.items()})


def _bounded_box(low: float, high: float) -> gym.spaces.Box:
    return gym.spaces.Box(low, high, (2,), np.float32)


POLICIES = {
    "ppo_gaussian": lambda: ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr),
    "ppo_gsde": lambda: ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr, use_sde=True),
    "ppo_gsde_squashed": lambda: ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr, use_sde=True, squash_output=True),
    "sac": lambda: SACPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr),
    "sac_gsde": lambda: SACPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr, use_sde=True),
    "sac_wider_box": lambda: SACPolicy(VECTOR.observation_space(), _bounded_box(-3.0, 3.0), _lr),
    "td3": lambda: TD3Policy(VECTOR.observation_space(), VECTOR.action_space(), _lr),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_continuous_policies_match_torch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = POLICIES[name]()
    for p in policy.parameters():  # larger weights than the init so that actions spread over [-1, 1]
        p.data.normal_(0.0, 0.5)
    report = export_onnx(policy, tmp_path / "m.onnx", VECTOR)
    assert report.parity.max_abs_diff <= 1e-4
    assert check_model(tmp_path / "m.onnx", VECTOR) == []
    out = OnnxPolicy(tmp_path / "m.onnx", behavior_spec=VECTOR).run(parity_inputs(VECTOR, 64, np.random.default_rng(1)))
    assert np.abs(out["deterministic_continuous_actions"]).max() <= 1.0
    if name == "sac_wider_box":  # unscaled to [-3, 3] like predict(), then clipped to Unity's [-1, 1]
        assert np.isclose(np.abs(out["deterministic_continuous_actions"]).max(), 1.0)


def test_gaussian_samples_follow_the_policy_std(tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr, log_std_init=float(np.log(0.1)))
    export_onnx(policy, tmp_path / "m.onnx", VECTOR)
    obs = np.repeat(np.random.default_rng(0).normal(size=(1, 8)).astype(np.float32), 4000, axis=0)
    out = OnnxPolicy(tmp_path / "m.onnx", behavior_spec=VECTOR).run({"obs_0": obs})
    noise = out["continuous_actions"] - out["deterministic_continuous_actions"]
    assert np.abs(out["deterministic_continuous_actions"]).max() < 0.5  # far from the clipping bounds
    np.testing.assert_allclose(noise.std(axis=0), 0.1, rtol=0.08)
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.01)


def test_multi_discrete_samples_follow_the_masked_softmax(tmp_path: Path) -> None:
    policy = ActorCriticPolicy(MULTI.observation_space(), MULTI.action_space(), _lr)
    with torch.no_grad():  # logits independent of the observation: branch 0 [0, 1, 2], branch 1 [1, 0]
        policy.action_net.weight.zero_()
        policy.action_net.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 1.0, 0.0]))
    report = export_onnx(policy, tmp_path / "m.onnx", MULTI)
    assert report.parity.discrete_mismatches == 0
    n = 6000
    mask = np.tile(np.array([[1, 1, 0, 1, 1]], np.float32), (n, 1))  # the likeliest action of branch 0 is masked
    out = OnnxPolicy(tmp_path / "m.onnx", behavior_spec=MULTI).run({"obs_0": np.zeros((n, 5), np.float32), "action_masks": mask})
    assert out["discrete_actions"].dtype == np.int64 and out["discrete_actions"].shape == (n, 2)
    assert set(out["deterministic_discrete_actions"][:, 0].tolist()) == {1}  # argmax among the allowed
    assert set(out["deterministic_discrete_actions"][:, 1].tolist()) == {0}
    first = np.bincount(out["discrete_actions"][:, 0], minlength=3) / n
    second = np.bincount(out["discrete_actions"][:, 1], minlength=2) / n
    e = np.e
    np.testing.assert_allclose(first, [1 / (1 + e), e / (1 + e), 0.0], atol=0.025)
    np.testing.assert_allclose(second, [e / (1 + e), 1 / (1 + e)], atol=0.025)


def test_dqn_is_greedy_in_both_outputs(tmp_path: Path) -> None:
    space = _transposed(CAMERA.observation_space())
    policy = DQNPolicy(space, CAMERA.action_space(), _lr, features_extractor_class=_flat_dict_extractor())
    report = export_onnx(policy, tmp_path / "m.onnx", CAMERA)
    assert report.parity.discrete_mismatches == 0
    out = OnnxPolicy(tmp_path / "m.onnx", behavior_spec=CAMERA).run(parity_inputs(CAMERA, 16, np.random.default_rng(3)))
    np.testing.assert_array_equal(out["discrete_actions"], out["deterministic_discrete_actions"])


def _flat_dict_extractor() -> type[BaseFeaturesExtractor]:
    """Every key flattened and concatenated (the test camera is smaller than NatureCNN's kernels)."""

    class Flat(BaseFeaturesExtractor):
        def __init__(self, observation_space: gym.spaces.Dict) -> None:
            super().__init__(observation_space, features_dim=sum(int(np.prod(s.shape)) for s in observation_space.spaces.values()))
            self.keys = list(observation_space.spaces)

        def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
            return torch.cat([torch.flatten(observations[k], 1) for k in self.keys], dim=1)

    return Flat


def test_hwc_uint8_policy_gets_bytes_in_hwc(tmp_path: Path) -> None:
    """A policy fed the env's HWC uint8 images as they are (no VecTransposeImage)."""
    spec = BehaviorSpec("Cam?team=0", (ObservationSpec((6, 4, 3), name="CameraSensor"),), ActionSpec.create_continuous(2))
    policy = ActorCriticPolicy(spec.observation_space(), spec.action_space(), _lr, features_extractor_class=FlattenExtractor)
    for p in policy.parameters():
        p.data.normal_(0.0, 0.3)
    report = export_onnx(policy, tmp_path / "m.onnx", spec)
    assert report.image_format == "hwc_uint8" and report.parity.max_abs_diff <= 1e-4
    model = onnx.load(tmp_path / "m.onnx")
    assert [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim] == ["batch", 3, 6, 4]
    assert {"Floor", "Transpose"} <= {n.op_type for n in model.graph.node}
    image = np.random.default_rng(0).integers(0, 256, (6, 4, 3)).astype(np.uint8)
    onnx_action = OnnxPolicy(tmp_path / "m.onnx", behavior_spec=spec).predict(image)[0]
    np.testing.assert_allclose(onnx_action, policy.predict(image, deterministic=True)[0], atol=1e-5)


class _EnvWithSpaces(gym.Env):
    """Random observations in a behavior's spaces (to collect VecNormalize statistics)."""

    def __init__(self, spec: BehaviorSpec) -> None:
        self.observation_space = spec.observation_space()
        self.action_space = spec.action_space()

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self._obs(), 0.0, False, False, {}

    def _obs(self) -> Any:
        obs = self.observation_space.sample()
        obs["GoalSensor"] = obs["GoalSensor"] * 0.0 + self.np_random.normal(3.0, 2.0, 2).astype(np.float32)
        return obs


def test_dict_vecnormalize_and_transposed_images(tmp_path: Path) -> None:
    venv = VecNormalize(DummyVecEnv([lambda: _EnvWithSpaces(CAMERA)]), norm_obs_keys=["GoalSensor"], norm_reward=False)
    venv.reset()
    for _ in range(50):
        venv.step(np.array([0]))
    assert abs(float(venv.obs_rms["GoalSensor"].mean[0]) - 3.0) < 1.0
    venv.save(tmp_path / "vecnormalize.pkl")
    policy = MultiInputActorCriticPolicy(_transposed(CAMERA.observation_space()), CAMERA.action_space(), _lr, features_extractor_class=_flat_dict_extractor())
    for p in policy.parameters():
        p.data.normal_(0.0, 0.3)
    report = export_onnx(policy, tmp_path / "m.onnx", CAMERA, vec_normalize=tmp_path / "vecnormalize.pkl", parity_batch=64)
    assert report.parity.discrete_mismatches == 0
    without = export_onnx(policy, tmp_path / "raw.onnx", CAMERA, parity_check=False)
    inputs = parity_inputs(CAMERA, 64, np.random.default_rng(5))
    inputs["action_masks"][:] = 1.0
    normalized = OnnxPolicy(tmp_path / "m.onnx", behavior_spec=CAMERA).run(inputs)["deterministic_discrete_actions"]
    raw = OnnxPolicy(without.path, behavior_spec=CAMERA).run(inputs)["deterministic_discrete_actions"]
    assert not np.array_equal(normalized, raw)  # the statistics change what the policy decides


def test_packed_sensors_policy(tmp_path: Path) -> None:
    """A policy over every sensor packed in one vector (images CHW in [0, 1]), as GAIL runs train them."""
    size = 3 * 12 * 10 + 2
    policy = ActorCriticPolicy(gym.spaces.Box(-np.inf, np.inf, (size,), np.float32), CAMERA.action_space(), _lr)
    report = export_onnx(policy, tmp_path / "m.onnx", CAMERA)
    assert report.inputs == ("obs_0", "obs_1", "action_masks") and report.parity.discrete_mismatches == 0


def test_without_deterministic_outputs_and_other_opset(tmp_path: Path) -> None:
    policy = ActorCriticPolicy(MULTI.observation_space(), MULTI.action_space(), _lr)
    report = export_onnx(policy, tmp_path / "m.onnx", MULTI, deterministic_too=False, opset=15)
    assert report.outputs == ("version_number", "memory_size", "discrete_actions", "discrete_action_output_shape")
    model = onnx.load(tmp_path / "m.onnx")
    assert model.opset_import[0].version == 15
    assert "ArgMax" not in {n.op_type for n in model.graph.node}
    assert check_model(tmp_path / "m.onnx", MULTI) == []


def test_the_policy_is_left_as_it_was(tmp_path: Path) -> None:
    policy = ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr)
    policy.set_training_mode(True)
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    export_onnx(policy, tmp_path / "m.onnx", VECTOR)
    assert policy.training
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


class _DataDependent(BaseFeaturesExtractor):
    """Branches on the data: tracing (on zeros) records only the untaken branch."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(observation_space.shape[0]))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if bool(observations.abs().sum() > 0):
            return observations + 3.0
        return observations


def test_parity_failure_is_loud(tmp_path: Path) -> None:
    policy = ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr, features_extractor_class=_DataDependent)
    for p in policy.parameters():
        p.data.normal_(0.0, 0.5)
    path = tmp_path / "m.onnx"
    with pytest.warns(torch.jit.TracerWarning), pytest.raises(ExportParityError, match=r"m.onnx was not written: .*max abs difference .* exceeds the tolerance 0.0001"):
        export_onnx(policy, path, VECTOR)
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"an older model")
    with pytest.warns(torch.jit.TracerWarning), pytest.raises(ExportParityError):
        export_onnx(policy, path, VECTOR)
    assert path.read_bytes() == b"an older model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_spec_mismatches_and_bad_options(tmp_path: Path) -> None:
    vector_policy = ActorCriticPolicy(VECTOR.observation_space(), VECTOR.action_space(), _lr)
    two_sensors = BehaviorSpec("C?team=0", CAMERA.observation_specs, VECTOR.action_spec)
    with pytest.raises(SpecMismatchError, match=r"observes one array .* but the behavior has 2 sensors \['CameraSensor', 'GoalSensor'\]"):
        export_onnx(vector_policy, tmp_path / "m.onnx", two_sensors)
    longer = BehaviorSpec("L?team=0", (ObservationSpec((9,), name="VectorSensor_size8"),), VECTOR.action_spec)
    with pytest.raises(SpecMismatchError, match=r"observes 'VectorSensor_size8' with shape \(8,\), but the sensor gives \(9,\)"):
        export_onnx(vector_policy, tmp_path / "m.onnx", longer)
    with pytest.raises(SpecMismatchError, match=r"acts in Box.*discrete branches \[3, 2\]\) need MultiDiscrete"):
        export_onnx(vector_policy, tmp_path / "m.onnx", BehaviorSpec("V?team=0", VECTOR.observation_specs, ActionSpec.create_discrete((3, 2))))
    hybrid = BehaviorSpec("H?team=0", VECTOR.observation_specs, ActionSpec(2, (2,)))
    with pytest.raises(SpecMismatchError, match=r"pass \{'continuous': policy_c, 'discrete': policy_d\}"):
        export_onnx(vector_policy, tmp_path / "m.onnx", hybrid)
    with pytest.raises(SpecMismatchError, match="is for hybrid behaviors"):
        export_onnx({"continuous": vector_policy, "discrete": vector_policy}, tmp_path / "m.onnx", VECTOR)
    with pytest.raises(SpecMismatchError, match="takes uint8 images"):
        policy = MultiInputActorCriticPolicy(_transposed(CAMERA.observation_space()), CAMERA.action_space(), _lr, features_extractor_class=_flat_dict_extractor())
        export_onnx(policy, tmp_path / "m.onnx", CAMERA, image_format="chw_float")
    with pytest.raises(ConfigError, match="opset=17 is outside"):
        export_onnx(vector_policy, tmp_path / "m.onnx", VECTOR, opset=17)
    with pytest.raises(ConfigError, match="cannot export a str"):
        export_onnx("model.zip", tmp_path / "m.onnx", VECTOR)
    assert not (tmp_path / "m.onnx").exists()


def test_spec_of_a_real_unity_recording(real_demos_dir: Path, tmp_path: Path) -> None:
    """A hybrid behavior with a CHW camera (com.unity.ml-agents 2.x recording): two policies."""
    from gym_unity_il.cli import main
    from gym_unity_il.export import behavior_spec_from_demo

    demo = real_demos_dir / "v2_unity_testhybridvis.demo"
    spec = behavior_spec_from_demo(demo)
    assert spec.action_spec.is_hybrid and spec.observation_specs[0].channels_first
    space = _transposed(spec.observation_space())
    act = spec.action_spec
    policies = {
        "continuous": MultiInputActorCriticPolicy(space, gym.spaces.Box(-1, 1, (act.continuous_size,), np.float32), _lr),
        "discrete": MultiInputActorCriticPolicy(space, gym.spaces.MultiDiscrete(act.discrete_branches), _lr),
    }
    report = export_onnx(policies, tmp_path / "m.onnx", spec)
    assert report.parity.max_abs_diff <= 1e-4 and report.parity.discrete_mismatches == 0
    assert main(["check-model", str(tmp_path / "m.onnx"), "--demo", str(demo)]) == 0
    model = onnx.load(tmp_path / "m.onnx")
    assert [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim] == ["batch", 3, 84, 84]
