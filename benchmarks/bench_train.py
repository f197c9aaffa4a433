"""Imitation on the built-in continuous scene ("ball", 1,000-step episodes): how close BC and
GAIL get to the expert, and how long they take.

Prints, measured in one run on this machine: the expert's and a random policy's return,
BC's return after training on 20 expert episodes and its wall time (recording excluded,
training and final evaluation included), and GAIL's return after its budget and its wall
time. The aims are BC >= 95 % of the expert in under 60 s and GAIL >= 90 % in under
10 minutes on 2 CPU cores; the script prints the figures and ratios, it never asserts.

Usage::

    python benchmarks/bench_train.py [--gail-steps 300000] [--eval-episodes 12] [--skip-gail] [--out runs/bench_train]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import gymnasium as gym
import torch

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, evaluate, make_training_env, parse_config, train

SCENE = "ball"
SCENE_KWARGS = {"max_steps": 1000}
DEMO_EPISODES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gail-steps", type=int, default=300_000, help="GAIL budget in env steps (over all agents)")
    parser.add_argument("--eval-episodes", type=int, default=12)
    parser.add_argument("--skip-gail", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_train"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results"
    demo = args.out / "ball_expert.demo"

    expert = expert_policy(SCENE)
    env = gym.make("UnityIL-v0", scene=SCENE, scene_kwargs=SCENE_KWARGS, seed=args.seed)
    record_episodes(env, lambda obs: expert.predict(obs)[0], demo, episodes=DEMO_EPISODES, seed=10_000, overwrite=True)

    venv, _ = make_training_env(scene=SCENE, scene_kwargs=SCENE_KWARGS, seed=args.seed)
    try:
        expert_return = evaluate(expert, venv, episodes=args.eval_episodes, seed=args.seed).mean_return
        random_return = evaluate(RandomPolicy(venv.action_space, seed=args.seed), venv, episodes=args.eval_episodes, seed=args.seed).mean_return
    finally:
        venv.close()
    print(f"scene {SCENE!r} {SCENE_KWARGS}, {DEMO_EPISODES} expert episodes, {args.eval_episodes} evaluation episodes")
    print(f"expert return  {expert_return:8.2f}")
    print(f"random return  {random_return:8.2f}   ({100 * random_return / expert_return:5.1f} % of expert)")

    runs = {
        "bc": {"trainer": "offline_bc", "num_epoch": 10, "batch_size": 64, "learning_rate": 1.0e-3, "summary_freq": 10**9},
        "gail": {
            "trainer": "gail", "max_steps": args.gail_steps, "summary_freq": max(1000, args.gail_steps // 30),
            "ppo": {"n_steps": 256, "batch_size": 512, "n_epochs": 5, "learning_rate": 3.0e-4},
            "gail": {"demo_batch_size": 1024, "n_disc_updates_per_round": 2, "disc_learning_rate": 3.0e-4},
        },
    }  # fmt: skip
    if args.skip_gail:
        del runs["gail"]
    for name, section in runs.items():
        shutil.rmtree(results / name, ignore_errors=True)
        config = parse_config({"default": {"demo_path": str(demo), "hidden_units": 64, "num_layers": 2, "eval_episodes": args.eval_episodes, **section}})
        started = time.perf_counter()
        run = train(config, run_id=name, results_dir=results, scene=SCENE, scene_kwargs=SCENE_KWARGS, seed=args.seed, progress=False)
        wall = time.perf_counter() - started
        assert run.evaluation is not None
        mean = run.evaluation.mean_return
        budget = f"{section['num_epoch']} epochs" if name == "bc" else f"{section['max_steps']} env steps"
        print(f"{name:<6} return  {mean:8.2f}   ({100 * mean / expert_return:5.1f} % of expert) after {budget} in {wall:6.1f} s "
              f"(aim: {95 if name == 'bc' else 90} % in {60 if name == 'bc' else 600} s)")  # fmt: skip


if __name__ == "__main__":
    main()
