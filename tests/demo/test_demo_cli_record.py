"""``gym-unity-il demo record``: built-in scenes driven by the expert, random or a saved model."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_unity_il.cli import main
from gym_unity_il.demo import read_demo


def test_record_expert_of_a_built_in_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.demo"
    assert main(["demo", "record", str(out), "--scene", "grid", "--episodes", "3", "--scene-kwargs", '{"camera_height": 20, "camera_width": 24}']) == 0
    demo = read_demo(out)
    assert demo.meta.number_episodes == 4 and int(demo.done.sum()) == 3
    assert demo.behavior_spec.observation_specs[0].output_shape() == (20, 24, 3)
    assert "recorded 3 episodes" in capsys.readouterr().out
    assert demo.rewards[demo.done].min() > 0.5  # the expert reaches the target goal every time


def test_record_random_and_a_saved_sb3_model(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    import gymnasium as gym

    env = gym.make("UnityIL-v0", scene="ball")
    try:
        PPO("MlpPolicy", env, n_steps=64, seed=0).save(tmp_path / "model.zip")
    finally:
        env.close()
    kwargs = '{"max_steps": 20}'
    assert main(["demo", "record", str(tmp_path / "r.demo"), "--scene", "ball", "--policy", "random", "--episodes", "2", "--scene-kwargs", kwargs]) == 0
    assert main(["demo", "record", str(tmp_path / "m.demo"), "--scene", "ball", "--policy", str(tmp_path / "model.zip"), "--episodes", "2", "--scene-kwargs", kwargs]) == 0
    for name in ("r.demo", "m.demo"):
        demo = read_demo(tmp_path / name)
        assert int(demo.done.sum()) == 2 and demo.stored_continuous_actions.shape[1] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scene", "ball", "--env", "Game.x86_64"], "exactly one of --scene"),
        ([], "exactly one of --scene"),
        (["--scene", "ball", "--policy", "nothing.zip"], "neither 'expert', 'random' nor a saved model"),
        (["--env", "missing/Game.x86_64"], "no Unity executable found"),
        (["--scene", "ball", "--scene-kwargs", "{not json"], "Expecting property name"),
    ],
)
def test_record_bad_arguments_exit_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["demo", "record", str(tmp_path / "x.demo"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.demo").exists()
