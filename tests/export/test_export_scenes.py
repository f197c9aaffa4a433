"""Policies trained briefly on every built-in scene export, pass the checker and the parity
check, and, run through onnxruntime as the policy of the scene via UnityIL-v0, earn exactly
the returns of the torch policy over the same seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_helpers import Trained, episode_returns, make_env, masked_argmax

from gym_unity_il.export import OnnxPolicy, check_model, export_onnx

SEEDS = (0, 1, 2)


def _export(trained: Trained, tmp_path: Path, name: str) -> tuple[Path, Any]:
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(trained.policy, path, trained.spec, vec_normalize=trained.vec_normalize)
    assert check_model(path, trained.spec) == []
    assert report.parity is not None and report.parity.batch == 32
    assert report.image_format == trained.image_format
    return path, report


def _compare_returns(trained: Trained, path: Path, torch_act) -> tuple[list[float], list[float], float]:  # type: ignore[no-untyped-def]
    """Returns of the torch policy and of the ONNX model on the same seeds, and the largest
    difference between their actions on the observations the ONNX model met."""
    model = OnnxPolicy(path, behavior_spec=trained.spec, image_format=trained.image_format)
    largest = 0.0

    def onnx_act(obs: Any, info: dict) -> Any:
        nonlocal largest
        action = model.predict(obs, action_masks=info.get("action_mask"))[0]
        reference = torch_act(obs, info)
        if isinstance(action, dict):
            largest = max([largest] + [float(np.max(np.abs(np.asarray(action[k], np.float64) - np.asarray(reference[k])))) for k in action])
        else:
            largest = max(largest, float(np.max(np.abs(np.asarray(action, np.float64) - np.asarray(reference)))))
        return action

    env = make_env(trained.scene, trained.scene_kwargs, image_format=trained.image_format)
    try:
        torch_returns = episode_returns(env, torch_act, SEEDS)
        onnx_returns = episode_returns(env, onnx_act, SEEDS)
    finally:
        env.close()
    return torch_returns, onnx_returns, largest


def test_ball_ppo_with_vecnormalize(ball_ppo: Trained, tmp_path: Path) -> None:
    path, report = _export(ball_ppo, tmp_path, "ball_ppo")
    assert report.parity.max_abs_diff is not None and report.parity.max_abs_diff <= 1e-4
    assert report.outputs == ("version_number", "memory_size", "continuous_actions", "continuous_action_output_shape", "deterministic_continuous_actions")
    vec_normalize, model = ball_ppo.vec_normalize, ball_ppo.policy
    assert np.any(np.abs(vec_normalize.obs_rms.mean) > 1e-3)  # the statistics baked in are not the identity

    def torch_act(obs: Any, info: dict) -> Any:
        return model.predict(vec_normalize.normalize_obs(obs[None]), deterministic=True)[0][0]

    torch_returns, onnx_returns, largest = _compare_returns(ball_ppo, path, torch_act)
    assert onnx_returns == pytest.approx(torch_returns, abs=1e-6)
    assert largest < 1e-4


def test_ball_sac(ball_sac: Trained, tmp_path: Path) -> None:
    path, report = _export(ball_sac, tmp_path, "ball_sac")
    assert report.parity.max_abs_diff <= 1e-4
    model = ball_sac.policy
    torch_returns, onnx_returns, largest = _compare_returns(ball_sac, path, lambda obs, info: model.predict(obs, deterministic=True)[0])
    assert onnx_returns == pytest.approx(torch_returns, abs=1e-6)
    assert largest < 1e-4


@pytest.mark.parametrize("name", ["grid_ppo", "grid_dqn"])
def test_grid_cnn_with_masks(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    trained: Trained = request.getfixturevalue(name)
    path, report = _export(trained, tmp_path, name)
    assert report.parity.discrete_mismatches == 0
    assert report.inputs == ("obs_0", "obs_1", "action_masks")
    assert check_model(path, trained.spec) == []
    policy = trained.policy
    masks_seen = []

    def torch_act(obs: Any, info: dict) -> Any:
        masks_seen.append(info["action_mask"])
        return masked_argmax(policy, {k: v[None] for k, v in obs.items()}, info["action_mask"])[0]

    torch_returns, onnx_returns, largest = _compare_returns(trained, path, torch_act)
    assert onnx_returns == pytest.approx(torch_returns, abs=1e-9)
    assert largest == 0
    assert any(not m.all() for m in masks_seen)  # the walls masked some moves on the way


def test_grid_bc_chw_float(grid_bc_chw: Trained, tmp_path: Path) -> None:
    path, report = _export(grid_bc_chw, tmp_path, "grid_bc")
    assert report.parity.discrete_mismatches == 0
    policy = grid_bc_chw.policy

    def torch_act(obs: Any, info: dict) -> Any:
        return masked_argmax(policy, {k: v[None] for k, v in obs.items()}, info["action_mask"])[0]

    torch_returns, onnx_returns, largest = _compare_returns(grid_bc_chw, path, torch_act)
    assert onnx_returns == pytest.approx(torch_returns, abs=1e-9)
    assert largest == 0


def test_hybrid_two_bc_policies(hybrid_bc: Trained, tmp_path: Path) -> None:
    path, report = _export(hybrid_bc, tmp_path, "hybrid")
    assert report.parity.max_abs_diff <= 1e-4 and report.parity.discrete_mismatches == 0
    assert set(report.outputs) >= {"continuous_actions", "discrete_actions", "continuous_action_output_shape", "discrete_action_output_shape"}
    continuous, discrete = hybrid_bc.policy["continuous"], hybrid_bc.policy["discrete"]

    def torch_act(obs: Any, info: dict) -> Any:
        return {
            "continuous": np.clip(continuous.predict(obs, deterministic=True)[0], -1, 1),
            "discrete": masked_argmax(discrete, obs[None], info["action_mask"]),
        }

    torch_returns, onnx_returns, largest = _compare_returns(hybrid_bc, path, torch_act)
    assert onnx_returns == pytest.approx(torch_returns, abs=1e-6)
    assert largest < 1e-4
