"""DAgger against plain behavioral cloning on the same number of teacher labels ("ball").

With few labels, BC learns only the states the teacher visits: the ball near the centre
of a level plate, after the first second of each episode. Its small errors carry the
ball to states the teacher never showed, where it drifts further (compounding errors).
DAgger spends the same labels on the states the student itself reaches.

Both run through :func:`gym_unity_il.train.dagger.run_dagger` over ``UnityIL-v0``
copies with the same network, optimiser, batches and epochs per round: plain BC is one
round in which the teacher drives and labels all ``--labels`` steps; DAgger is rounds of
``--round-steps`` labels, the teacher driving only the first. For each training seed it
prints both returns (deterministic evaluation on the same starts), the teacher's and a
random policy's, and the ratios; it never asserts.

Usage::

    python benchmarks/bench_online.py [--labels 80] [--round-steps 20] [--train-steps 20] [--batch-size 16] [--seeds 5] [--episodes 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, evaluate, parse_config
from gym_unity_il.train.dagger import run_dagger
from gym_unity_il.train.policies import ObservationAdapter, extractor_kwargs

SCENE = "ball"
#: Evaluation runs 1,000-step episodes: long enough for drift. Training episodes are
#: ``--train-steps`` long (a round holds whole episodes); starts up to 10 degrees of tilt
#: and 1.5 off centre.
EVAL_KWARGS = {"max_steps": 1000}
N_ENVS = 1
#: BC epochs over the labels after each round (the same for both methods).
EPOCHS = 20


def _venv(seed: int, scene_kwargs: dict[str, int]) -> DummyVecEnv:
    return DummyVecEnv([lambda i=i: gym.make("UnityIL-v0", scene=SCENE, scene_kwargs=scene_kwargs, seed=seed * 10 + i) for i in range(N_ENVS)])


def _train(labels: int, round_steps: int, seed: int, episodes: int, train_steps: int, batch_size: int) -> tuple[float, float, int]:
    """Mean evaluation return, wall seconds and rounds of one DAgger run (one round: plain BC)."""
    from imitation.util import logger as imitation_logger

    set_random_seed(seed)
    venv = _venv(seed, {"max_steps": train_steps})
    try:
        adapter = ObservationAdapter(venv.observation_space, pack=True)
        policy = ActorCriticPolicy(venv.observation_space, venv.action_space, lambda _: 1e-3, net_arch=[64, 64], **extractor_kwargs(adapter, None))
        settings = parse_config({"default": {"trainer": "dagger", "max_steps": labels, "dagger_round_steps": round_steps, "num_epoch": EPOCHS, "learning_rate": 1.0e-3, "batch_size": batch_size}}).default
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            outcome = run_dagger(venv=adapter.wrap(venv), teacher=expert_policy(SCENE), policy=policy, adapter=adapter, settings=settings,
                                 scratch_dir=Path(scratch), logger=imitation_logger.configure(scratch, []), seed=seed)  # fmt: skip
        wall = time.perf_counter() - started
    finally:
        venv.close()
    venv = _venv(seed, EVAL_KWARGS)
    try:
        score = evaluate(policy, venv, episodes=episodes, seed=1000).mean_return
    finally:
        venv.close()
    return score, wall, outcome["rounds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=80, help="teacher labels for each method")
    parser.add_argument("--round-steps", type=int, default=20, help="labels per DAgger round")
    parser.add_argument("--train-steps", type=int, default=20, help="steps of a training episode")
    parser.add_argument("--batch-size", type=int, default=16, help="BC batch size (at most --round-steps)")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    args = parser.parse_args()
    torch.set_num_threads(1)

    venv = _venv(0, EVAL_KWARGS)
    try:
        teacher = evaluate(expert_policy(SCENE), venv, episodes=args.episodes, seed=1000).mean_return
        random = evaluate(RandomPolicy(venv.action_space, seed=0), venv, episodes=args.episodes, seed=1000).mean_return
    finally:
        venv.close()
    print(f"scene {SCENE}, training episodes of {args.train_steps} steps, evaluation {EVAL_KWARGS}: teacher {teacher:.2f}, random {random:.2f} (mean of {args.episodes} episodes)")
    print(f"{args.labels} teacher labels per method; DAgger rounds of {args.round_steps}")
    print(f"{'seed':>4} {'BC':>8} {'DAgger':>8} {'BC/teacher':>11} {'DAgger/teacher':>15} {'BC s':>6} {'DAgger s':>9}")
    bc_scores, dagger_scores = [], []
    for seed in range(args.seeds):
        bc, bc_wall, _ = _train(args.labels, args.labels, seed, args.episodes, args.train_steps, args.batch_size)
        dagger, dagger_wall, rounds = _train(args.labels, args.round_steps, seed, args.episodes, args.train_steps, args.batch_size)
        bc_scores.append(bc)
        dagger_scores.append(dagger)
        print(f"{seed:>4} {bc:>8.2f} {dagger:>8.2f} {bc / teacher:>11.2f} {dagger / teacher:>15.2f} {bc_wall:>6.1f} {dagger_wall:>9.1f}  ({rounds} rounds)")
    bc_mean, dagger_mean = float(np.mean(bc_scores)), float(np.mean(dagger_scores))
    print(f"mean {bc_mean:>8.2f} {dagger_mean:>8.2f} {bc_mean / teacher:>11.2f} {dagger_mean / teacher:>15.2f}")
    print(f"DAgger - BC: {dagger_mean - bc_mean:+.2f} return on the same {args.labels} labels")


if __name__ == "__main__":
    main()
