"""Offline RL from Unity demonstrations: record the "ball" scene's expert into a Minari
dataset, train d3rlpy's IQL from that dataset alone, evaluate it on ``UnityIL-v0``.

1. Records ``--episodes`` episodes of the scene's scripted expert with
   :func:`gym_unity_il.demo.record_episodes`, into ``<out>/ball_expert.demo`` and, with
   ``minari_id``, the Minari dataset ``unity/ball-expert-v0`` in ``<out>/datasets``.
2. Turns the dataset into d3rlpy's ``MDPDataset``
   (:func:`gym_unity_il.demo.minari.minari_to_d3rlpy`) and trains IQL for ``--steps``
   gradient steps, without touching the env. d3rlpy's logs and saved models go to
   ``<out>/d3rlpy_logs``: nothing is written outside ``--out``.
3. Evaluates the expert, a uniform random policy and IQL on the same episode seeds, none
   of them a demo's, on ``gym.make("UnityIL-v0", scene="ball", ...)``, and prints their
   mean returns (and writes them to ``<out>/report.json``).

Needs the ``offline`` extra (d3rlpy and Minari) and the ``train`` extra (the evaluation):
``pip install -c constraints.txt -e ".[offline,train]"``.

Usage::

    python examples/offline_rl.py [--episodes 10] [--max-steps 200] [--steps 3000]
        [--eval-episodes 5] [--out runs/offline_rl] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import d3rlpy
import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import record_episodes
from gym_unity_il.demo.minari import minari_to_d3rlpy
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, evaluate
from gym_unity_il.train.evaluation import HELD_OUT_SEEDS

SCENE = "ball"
DATASET_ID = "unity/ball-expert-v0"


class D3rlpyPolicy:
    """A trained d3rlpy algorithm with SB3's ``predict``, as the package's evaluation takes policies."""

    def __init__(self, algo: Any) -> None:
        self.algo = algo

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.algo.predict(np.asarray(observation, np.float32)), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10, help="expert episodes to record")
    parser.add_argument("--max-steps", type=int, default=200, help="ball's episode length limit (expert return = 0.1 x this)")
    parser.add_argument("--steps", type=int, default=3000, help="IQL gradient steps")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per policy")
    parser.add_argument("--out", type=Path, default=Path("runs/offline_rl"))
    parser.add_argument("--seed", type=int, default=0, help="seeds the scene, d3rlpy and the random policy")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    env_kwargs = {"scene": SCENE, "scene_kwargs": {"max_steps": args.max_steps}, "seed": args.seed}
    started = time.perf_counter()

    print(f"[1/3] recording {args.episodes} expert episodes of '{SCENE}' into {args.out / 'ball_expert.demo'} and the Minari dataset {DATASET_ID}")
    datasets = args.out / "datasets"
    expert = expert_policy(SCENE)
    record_episodes(gym.make("UnityIL-v0", **env_kwargs), expert, args.out / "ball_expert.demo", episodes=args.episodes,
                    seed=args.seed, minari_id=DATASET_ID, dataset_dir=datasets, overwrite=True)  # fmt: skip

    print(f"[2/3] training IQL for {args.steps} steps from the dataset alone")
    dataset = minari_to_d3rlpy(DATASET_ID, dataset_dir=datasets)
    d3rlpy.seed(args.seed)
    iql = d3rlpy.algos.IQLConfig(batch_size=256).create(device="cpu:0")
    iql.fit(dataset, n_steps=args.steps, n_steps_per_epoch=args.steps, experiment_name="iql", with_timestamp=False,
            logger_adapter=d3rlpy.logging.FileAdapterFactory(root_dir=str(args.out / "d3rlpy_logs")), show_progress=False)  # fmt: skip

    seed = HELD_OUT_SEEDS + args.seed
    print(f"[3/3] evaluating on {args.eval_episodes} episodes per policy, seeds {seed}.. (not the demos')")
    venv = DummyVecEnv([lambda: gym.make("UnityIL-v0", **env_kwargs)])
    try:
        policies = {"expert": expert, "random": RandomPolicy(venv.action_space, seed=args.seed), "iql": D3rlpyPolicy(iql)}
        results = {name: evaluate(policy, venv, episodes=args.eval_episodes, seed=seed) for name, policy in policies.items()}
    finally:
        venv.close()

    print(f"\n{'policy':<8} {'mean return':>12} {'std':>8}")
    for name, result in results.items():
        print(f"{name:<8} {result.mean_return:>12.3f} {result.std_return:>8.3f}")
    elapsed = time.perf_counter() - started
    print(f"\nwall time {elapsed:.0f} s; dataset {datasets / DATASET_ID}; d3rlpy logs {args.out / 'd3rlpy_logs'}")
    report = {name: r.to_dict() for name, r in results.items()} | {"iql_steps": args.steps, "transitions": dataset.transition_count, "wall_time_s": elapsed}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
