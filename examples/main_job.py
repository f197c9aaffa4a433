"""The main job, end to end on a built-in scene: record expert demos, train BC, evaluate, report.

1. Runs the built-in "ball" scene (its own process, over Unity's gRPC protocol) as
   ``UnityIL-v0`` and records its scripted expert into a `.demo` file with DemoRecorder.
2. Reads the file back into `imitation` trajectories and trains behavioral cloning.
3. Evaluates the expert, a random policy and the BC policy on the same seeds and prints a
   table (and writes it as JSON beside the demos).

Usage::

    python examples/main_job.py [--episodes 20] [--max-steps 500] [--out runs/main_job] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from imitation.algorithms import bc
from imitation.util import logger as imitation_logger

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import demo_to_trajectories, read_demo, record_episodes
from gym_unity_il.scenes import expert_policy

SCENE = "ball"


def run_episode(env: gym.Env, act: Callable[[np.ndarray], np.ndarray], seed: int) -> float:
    """One episode from ``reset(seed=seed)``; returns its undiscounted return."""
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        total += float(reward)
        done = terminated or truncated
    return total


def evaluate(env: gym.Env, act: Callable[[np.ndarray], np.ndarray], seeds: list[int]) -> tuple[float, float]:
    returns = [run_episode(env, act, s) for s in seeds]
    return float(np.mean(returns)), float(np.std(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes to record")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/main_job"))
    parser.add_argument("--max-steps", type=int, default=500, help="episode length limit (expert return = 0.1 x this)")
    parser.add_argument("--bc-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    demo_path = args.out / "ball_expert.demo"
    started = time.perf_counter()

    def make_env() -> gym.Env:
        return gym.make("UnityIL-v0", scene=SCENE, scene_kwargs={"max_steps": args.max_steps}, seed=args.seed)

    expert = expert_policy(SCENE)

    def expert_act(obs: np.ndarray) -> np.ndarray:
        return expert.predict(obs)[0]

    print(f"[1/3] recording {args.episodes} expert episodes of '{SCENE}' to {demo_path}")
    record_episodes(make_env(), expert_act, demo_path, episodes=args.episodes, seed=10_000, overwrite=True)
    demo = read_demo(demo_path)
    print(f"      {demo.meta.number_steps} steps, {demo.meta.number_episodes - 1} episodes, mean reward {demo.meta.mean_reward:.2f}")

    env = make_env()
    try:
        print("[2/3] training behavioral cloning on the demonstrations")
        trainer = bc.BC(
            observation_space=env.observation_space,
            action_space=env.action_space,
            demonstrations=demo_to_trajectories(demo_path),
            rng=np.random.default_rng(args.seed),
            batch_size=64,
            custom_logger=imitation_logger.configure(format_strs=[]),
        )
        trainer.train(n_epochs=args.bc_epochs, progress_bar=False)

        def bc_act(obs: np.ndarray) -> np.ndarray:
            return trainer.policy.predict(obs, deterministic=True)[0]

        action_rng = np.random.default_rng(args.seed)

        def random_act(obs: np.ndarray) -> np.ndarray:
            return action_rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(np.float32)

        print(f"[3/3] evaluating on {args.eval_episodes} episodes with the same seeds")
        seeds = list(range(args.eval_episodes))
        results = {name: evaluate(env, act, seeds) for name, act in [("expert", expert_act), ("random", random_act), ("bc", bc_act)]}
    finally:
        env.close()

    expert_mean = results["expert"][0]
    print(f"\n{'policy':<8} {'mean return':>12} {'std':>8} {'% of expert':>12}")
    for name, (mean, std) in results.items():
        print(f"{name:<8} {mean:>12.2f} {std:>8.2f} {100 * mean / expert_mean:>11.1f}%")
    elapsed = time.perf_counter() - started
    print(f"\nwall time {elapsed:.0f} s; demos in {demo_path}")
    report = {k: {"mean_return": m, "std_return": s} for k, (m, s) in results.items()} | {"wall_time_s": elapsed}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
