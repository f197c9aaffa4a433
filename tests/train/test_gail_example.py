"""The example GAIL config (``examples/configs/gail.yaml``) as a user runs it on "ball", the
scene its comment trains (12 agents, 1,000-step episodes, 20 expert episodes): after
60,000 agent steps its policy, acting as it does in training (actions sampled, not its
mean action), scores 95 % of the expert's return (``mlagents-learn`` 1.1's GAIL needed
84,000 to 96,000 agent steps to get there)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import evaluate, load_config, load_policy, make_training_env, train
from gym_unity_il.train.evaluation import HELD_OUT_SEEDS

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "configs" / "gail.yaml"
BALL = {"max_steps": 1000}
BUDGET = 60_000


def test_example_gail_config_reaches_the_expert_on_ball(tmp_path: Path) -> None:
    demo = tmp_path / "ball_expert.demo"
    expert = expert_policy("ball")
    record_episodes(gym.make("UnityIL-v0", scene="ball", scene_kwargs=BALL), expert, demo, episodes=20, seed=10_000)
    config = load_config(CONFIG)
    ball = dataclasses.replace(config.for_behavior("3DBall"), demo_path=str(demo), eval_episodes=1)
    config = dataclasses.replace(config, behaviors={**config.behaviors, "3DBall": ball})

    run = train(config, run_id="gail", results_dir=tmp_path, scene="ball", scene_kwargs=BALL, seed=1, max_steps=BUDGET, progress=False)

    venv, _ = make_training_env(scene="ball", scene_kwargs=BALL)
    try:
        policy = load_policy(run.model_path, venv.observation_space)
        sampled = evaluate(policy, venv, episodes=12, seed=HELD_OUT_SEEDS, deterministic=False).mean_return
        expert_return = evaluate(expert, venv, episodes=12, seed=HELD_OUT_SEEDS).mean_return
    finally:
        venv.close()
    assert sampled >= 0.95 * expert_return, (sampled, expert_return)
