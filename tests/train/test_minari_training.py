"""Training from a Minari dataset: ``demo_path`` names a dataset id or folder, and BC from a
dataset converted from a `.demo` file trains the very model the file trains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

minari = pytest.importorskip("minari", reason="the datasets extra: pip install 'gym_unity_il[datasets]'")

from stable_baselines3 import PPO  # noqa: E402

from gym_unity_il.demo import demo_to_minari  # noqa: E402
from gym_unity_il.train import parse_config, train  # noqa: E402
from train_helpers import BALL, tiny  # noqa: E402


@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Minari's root folder for the test: never the user's home."""
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


def _bc(demo_path: str | Path, results: Path) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The weights and evaluation returns of a small BC run from ``demo_path``."""
    config = parse_config({"default": tiny(demo_path, trainer="offline_bc", num_epoch=2)}, source="test.yaml")
    result = train(config, run_id="run", results_dir=results, scene="ball", scene_kwargs=BALL, seed=3, progress=False)
    weights = PPO.load(result.model_path, device="cpu").policy.state_dict()
    return weights, json.loads((results / "run" / "evaluation.json").read_text())["returns"]


def test_bc_from_a_dataset_id_or_folder_trains_the_model_of_its_demo(ball_demo: Path, minari_root: Path, tmp_path: Path) -> None:
    demo_to_minari(ball_demo, "unity/ball-expert-v0")
    weights, returns = _bc(ball_demo, tmp_path / "from_demo")
    for name, source in (("from_id", "unity/ball-expert-v0"), ("from_folder", minari_root / "unity" / "ball-expert-v0")):
        again, again_returns = _bc(source, tmp_path / name)
        assert again_returns == returns
        assert again.keys() == weights.keys()
        for key, value in weights.items():
            assert torch.equal(again[key], value), key


def test_a_source_that_is_neither_a_demo_nor_a_dataset_names_both(minari_root: Path, tmp_path: Path) -> None:
    config = parse_config({"default": tiny("unity/nowhere-v0", trainer="offline_bc", num_epoch=1)}, source="test.yaml")
    with pytest.raises(FileNotFoundError, match=r"neither a \.demo file or folder .* nor a Minari dataset .*" + str(minari_root)) as info:
        train(config, run_id="run", results_dir=tmp_path / "results", scene="ball", scene_kwargs=BALL, seed=3, progress=False)
    assert "MINARI_DATASETS_PATH" in str(info.value)
    assert not (tmp_path / "results" / "run").exists()


def test_without_minari_a_dataset_source_names_the_extra(tmp_path: Path) -> None:
    """As on an install without the datasets extra: minari absent (importing it raises ImportError)."""
    code = (
        "import sys; sys.modules['minari'] = None\n"
        "from gym_unity_il.demo import read_demonstrations\n"
        "from gym_unity_il.errors import MissingExtraError\n"
        "try:\n"
        "    read_demonstrations('unity/ball-expert-v0')\n"
        "except MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("'unity/ball-expert-v0' is no existing .demo file or folder, so it names a Minari dataset; reading one needs minari")
    assert "pip install 'gym_unity_il[datasets]'" in done.stdout
