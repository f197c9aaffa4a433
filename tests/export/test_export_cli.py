"""``gym-unity-il export`` from saved SB3 models, bare policy files and training run folders,
with the behavior spec from a built-in scene, a ``.demo`` file or the run itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_helpers import BALL_KWARGS, Trained, make_env

from gym_unity_il.cli import main
from gym_unity_il.demo.recorder import record_episodes
from gym_unity_il.export import OnnxPolicy, check_model, export_onnx
from gym_unity_il.export.parity import parity_inputs
from gym_unity_il.scenes import expert_policy


def _record(scene: str, scene_kwargs: dict, path: Path, episodes: int) -> Path:
    expert = expert_policy(scene)
    record_episodes(make_env(scene, scene_kwargs), lambda obs: expert.predict(obs)[0], path, episodes=episodes)
    return path


def test_export_a_saved_model_with_vecnormalize(ball_ppo: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_zip, stats = tmp_path / "ppo.zip", tmp_path / "vecnormalize.pkl"
    ball_ppo.policy.save(model_zip)
    ball_ppo.vec_normalize.save(stats)
    out = tmp_path / "ball.onnx"
    kwargs = json.dumps(BALL_KWARGS)
    assert main(["export", str(model_zip), "--out", str(out), "--scene", "ball", "--scene-kwargs", kwargs, "--vec-normalize", str(stats)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "max abs difference" in printed
    assert main(["check-model", str(out), "--scene", "ball"]) == 0
    # the command's model decides exactly like the one exported from the objects in memory
    direct = export_onnx(ball_ppo.policy, tmp_path / "direct.onnx", ball_ppo.spec, vec_normalize=ball_ppo.vec_normalize, parity_check=False)
    inputs = parity_inputs(ball_ppo.spec, 16, np.random.default_rng(0))
    a = OnnxPolicy(out, behavior_spec=ball_ppo.spec).run(inputs)["deterministic_continuous_actions"]
    b = OnnxPolicy(direct.path, behavior_spec=ball_ppo.spec).run(inputs)["deterministic_continuous_actions"]
    np.testing.assert_array_equal(a, b)
    # --algo names the class explicitly
    assert main(["export", str(model_zip), "--out", str(tmp_path / "explicit.onnx"), "--scene", "ball", "--algo", "ppo", "--vec-normalize", str(stats)]) == 0


def test_export_finds_the_policy_class_in_the_file(ball_sac: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_zip = tmp_path / "sac.zip"
    ball_sac.policy.save(model_zip)
    assert main(["export", str(model_zip), "--out", str(tmp_path / "sac.onnx"), "--scene", "ball", "--no-deterministic"]) == 0
    assert "outputs  version_number, memory_size, continuous_actions, continuous_action_output_shape\n" in capsys.readouterr().out
    assert check_model(tmp_path / "sac.onnx", ball_sac.spec) == []


def test_export_a_bare_bc_policy_with_the_spec_of_a_demo(grid_bc_chw: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = tmp_path / "bc_policy.pt"
    grid_bc_chw.policy.save(str(policy_file))
    demo = _record("grid", grid_bc_chw.scene_kwargs, tmp_path / "grid.demo", episodes=1)
    out = tmp_path / "grid.onnx"
    assert main(["export", str(policy_file), "--out", str(out), "--demo", str(demo)]) == 0
    printed = capsys.readouterr().out
    assert "image format chw_float" in printed and "0 discrete mismatches" in printed
    assert check_model(out, grid_bc_chw.spec) == []
    assert main(["check-model", str(out), "--demo", str(demo)]) == 0


def test_export_a_training_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gym_unity_il.train.run import train

    monkeypatch.chdir(tmp_path)
    _record("ball", BALL_KWARGS, tmp_path / "ball.demo", episodes=1)
    (tmp_path / "config.yaml").write_text(
        "default:\n  trainer: offline_bc\n  demo_path: ball.demo\n  batch_size: 16\n  num_epoch: 1\n  hidden_units: 16\n  eval_episodes: 1\n"
    )
    result = train("config.yaml", run_id="run", results_dir="results", scene="ball", scene_kwargs=BALL_KWARGS, progress=False)
    assert main(["export", str(result.run_dir), "--out", "ball.onnx"]) == 0  # the spec comes from the run's demos
    assert "max abs difference" in capsys.readouterr().out
    assert main(["check-model", "ball.onnx", "--demo", "ball.demo"]) == 0
    capsys.readouterr()
    (tmp_path / "empty_run").mkdir()
    assert main(["export", "empty_run", "--out", "x.onnx", "--scene", "ball"]) == 2
    assert "holds no model.zip" in capsys.readouterr().err


def test_export_needs_a_spec(ball_sac: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_zip = tmp_path / "sac.zip"
    ball_sac.policy.save(model_zip)
    assert main(["export", str(model_zip), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--scene NAME, --demo FILE.demo or --behavior-spec JSON" in capsys.readouterr().err
    assert main(["export", str(model_zip), "--out", str(tmp_path / "m.onnx"), "--scene", "grid"]) == 2
    assert "the policy acts in Box(-1.0, 1.0, (2,), float32), but the behavior's actions (discrete branches [5]) need Discrete(5)" in capsys.readouterr().err
    assert main(["export", str(model_zip), "--out", str(tmp_path / "m.onnx"), "--scene", "ball", "--demo", "x.demo"]) == 2
    assert "give one of --scene, --demo and --behavior-spec" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
