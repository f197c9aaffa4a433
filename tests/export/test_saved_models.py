"""A saved model carries the observation layout it was trained through: the loader and export
read it instead of guessing from the policy's spaces, and files without it (older versions,
other code) still load and export through the guess."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv

from gym_unity_il.errors import ConfigError, SpecMismatchError
from gym_unity_il.export import OnnxPolicy, export_onnx, load_policy, save_model
from gym_unity_il.export.saved import SAVED_MEMBER
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec
from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs

#: A 3 x 3 colour camera: channels first or last, its shape is the same, so only the saved
#: layout tells that training transposed it.
SQUARE = BehaviorSpec("Square?team=0", (ObservationSpec((3, 3, 3), name="Camera"), ObservationSpec((2,), name="Goal")), ActionSpec(2, ()))


class _SpecEnv(gym.Env):
    """Random observations of a behavior spec: enough to build an SB3 model on."""

    def __init__(self, spec: BehaviorSpec) -> None:
        self.observation_space = spec.observation_space()
        self.action_space = spec.action_space()

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.observation_space.sample(), 0.0, False, False, {}


def _model(spec: BehaviorSpec, *, pack: bool) -> tuple[PPO, ObservationAdapter]:
    """A PPO built as ``gym-unity-il train`` builds it, with weights far from their start."""
    venv = DummyVecEnv([lambda: _SpecEnv(spec)])
    adapter = ObservationAdapter(venv.observation_space, pack=pack)
    torch.manual_seed(0)
    model = PPO(ActorCriticPolicy, adapter.wrap(venv), n_steps=8, batch_size=8, policy_kwargs={"net_arch": [16], **extractor_kwargs(adapter, None)}, device="cpu")
    for p in model.policy.parameters():
        p.data.normal_(0.0, 0.1)
    return model, adapter


def _observations(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"Camera": rng.integers(0, 256, (n, 3, 3, 3)).astype(np.uint8), "Goal": rng.normal(size=(n, 2)).astype(np.float32)}


@pytest.mark.parametrize("pack", [False, True])
def test_the_loader_and_export_take_env_observations_as_training_did(tmp_path: Path, pack: bool) -> None:
    model, adapter = _model(SQUARE, pack=pack)
    save_model(model, tmp_path / "model.zip", adapter.observation_layout)
    obs = _observations(64)
    truth = model.predict(adapter(obs), deterministic=True)[0]

    loaded = load_policy(tmp_path / "model.zip")  # no env space needed: the file says how
    assert loaded.layout == adapter.observation_layout and isinstance(loaded.model, PPO)
    np.testing.assert_array_equal(loaded.predict(obs)[0], truth)
    report = export_onnx(loaded, tmp_path / "m.onnx", SQUARE)
    assert report.parity.max_abs_diff < 1e-5
    np.testing.assert_allclose(OnnxPolicy(tmp_path / "m.onnx", behavior_spec=SQUARE).predict(obs)[0], truth, atol=1e-5)


def test_a_model_without_a_saved_layout_loads_and_exports_through_the_guess(tmp_path: Path) -> None:
    model, adapter = _model(SQUARE, pack=False)
    model.save(tmp_path / "plain.zip")  # what older versions and other code write
    with zipfile.ZipFile(tmp_path / "plain.zip") as archive:
        assert SAVED_MEMBER not in archive.namelist()
    obs = _observations(64)
    truth = model.predict(adapter(obs), deterministic=True)[0]

    loaded = load_policy(tmp_path / "plain.zip", SQUARE.observation_space())  # the env's space: images transposed as training does
    np.testing.assert_array_equal(loaded.predict(obs)[0], truth)
    # export can only guess from the policy's spaces: a square image looks untransposed, so the guess decides otherwise
    export_onnx(load_policy(tmp_path / "plain.zip"), tmp_path / "guessed.onnx", SQUARE)
    assert not np.allclose(OnnxPolicy(tmp_path / "guessed.onnx", behavior_spec=SQUARE).predict(obs)[0], truth, atol=1e-3)


def test_a_saved_layout_is_checked(tmp_path: Path) -> None:
    model, adapter = _model(SQUARE, pack=False)
    save_model(model, tmp_path / "model.zip", adapter.observation_layout)
    with pytest.raises(SpecMismatchError, match=r"was trained on image_format='hwc_uint8' \(saved with it\), not 'chw_float'"):
        export_onnx(load_policy(tmp_path / "model.zip"), tmp_path / "m.onnx", SQUARE, image_format="chw_float")
    other = BehaviorSpec("Other?team=0", (ObservationSpec((2,), name="Goal"), ObservationSpec((3, 3, 3), name="Camera")), SQUARE.action_spec)
    with pytest.raises(SpecMismatchError, match=r"was trained on the sensors \['Camera', 'Goal'\], but the behavior's are \['Goal', 'Camera'\]"):
        export_onnx(load_policy(tmp_path / "model.zip"), tmp_path / "m.onnx", other)
    assert not (tmp_path / "m.onnx").exists()

    with zipfile.ZipFile(tmp_path / "model.zip") as saved, zipfile.ZipFile(tmp_path / "damaged.zip", "w") as damaged:
        for name in saved.namelist():
            damaged.writestr(name, saved.read(name) if name != SAVED_MEMBER else json.dumps({"algorithm": "ppo", "observations": {"sensors": []}}))
    with pytest.raises(ConfigError, match=rf"damaged.zip: its {SAVED_MEMBER} is damaged or not written by gym_unity_il"):
        load_policy(tmp_path / "damaged.zip")
