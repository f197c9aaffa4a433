"""Memory: behavioral cloning with and without an LSTM on the "hallway" scene, where the cue
(red or green) is seen in the first observation only and the choice comes 11 steps later.

Prints, measured in one run on this machine, on the same held-out episodes: the expert's
return, the best a policy without memory can do (forward, then a random colour: "guess"), a
random policy's, then, for each seed, BC with memory (``memory: {memory_size: 64,
sequence_length: 16}``) and feed-forward BC trained on the same expert demonstrations for the
same epochs: their return, % of the expert and wall time (training and the run's own final
evaluation; recording excluded). The aims: BC with memory >= 90 % of the expert; feed-forward
BC clearly below, near the guess. The vector variant first, then the camera one (``camera=True``,
24 x 24 images: the cue is the colour of the walls in the first frame), where BC trains the CNN
and the LSTM together from the same demonstrations. The script prints the figures, it never
asserts.

Usage::

    python benchmarks/bench_memory.py [--episodes 100] [--epochs 30] [--camera-epochs 60] [--seeds 3] [--camera-seeds 1]
                                      [--eval-episodes 100] [--skip-camera] [--out runs/bench_memory]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.scenes.hallway import GuessPolicy
from gym_unity_il.train import RandomPolicy, evaluate, load_policy, make_training_env, parse_config, train

SCENE = "hallway"
#: Evaluation seeds start here, far from the demos' 0, 1, ...
HELD_OUT_SEED = 1_000_000
MEMORY = {"memory_size": 64, "sequence_length": 16}


def bench_variant(out: Path, scene_kwargs: dict[str, Any], *, episodes: int, epochs: int, seeds: int, eval_episodes: int) -> None:
    name = "camera" if scene_kwargs.get("camera") else "vector"
    demo = out / f"hallway_{name}_expert.demo"
    record_episodes(gym.make("UnityIL-v0", scene=SCENE, scene_kwargs=scene_kwargs), expert_policy(SCENE), demo, episodes=episodes, seed=0, overwrite=True)
    venv, _ = make_training_env(scene=SCENE, scene_kwargs=scene_kwargs, seed=0)
    try:
        baselines = {
            "expert": expert_policy(SCENE),
            "guess": GuessPolicy(image_format="hwc_uint8", seed=0),
            "random": RandomPolicy(venv.action_space, seed=0),
        }
        returns = {k: evaluate(p, venv, episodes=eval_episodes, seed=HELD_OUT_SEED).mean_return for k, p in baselines.items()}
        expert = returns["expert"]
        print(f"\n{name} hallway {scene_kwargs}: {episodes} expert episodes, {epochs} epochs of BC, {eval_episodes} held-out evaluation episodes")
        for k, value in returns.items():
            note = "  (the best without memory)" if k == "guess" else ""
            print(f"  {k:<22} return {value:7.3f}   ({100 * value / expert:5.1f} % of expert){note}")
        for seed in range(seeds):
            for label, extra in (("BC with memory", {"memory": MEMORY}), ("BC without memory", {})):
                section = {"trainer": "offline_bc", "demo_path": str(demo), "num_epoch": epochs, "batch_size": 64, "learning_rate": 1.0e-3,
                           "hidden_units": 64, "summary_freq": 10**9, "eval_episodes": 10, **extra}  # fmt: skip
                run_id = f"{name}_{'memory' if extra else 'feedforward'}_{seed}"
                started = time.perf_counter()
                train(parse_config({"default": section}), run_id=run_id, results_dir=out / "results", scene=SCENE, scene_kwargs=scene_kwargs,
                      seed=seed, progress=False, force=True)  # fmt: skip
                wall = time.perf_counter() - started
                policy = load_policy(out / "results" / run_id / "model.zip")
                value = evaluate(policy, venv, episodes=eval_episodes, seed=HELD_OUT_SEED).mean_return
                print(f"  {label:<18} seed {seed}: return {value:7.3f}   ({100 * value / expert:5.1f} % of expert) in {wall:5.1f} s")
    finally:
        venv.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="expert demonstration episodes")
    parser.add_argument("--epochs", type=int, default=30, help="BC epochs (vector variant)")
    parser.add_argument("--camera-epochs", type=int, default=60, help="BC epochs (camera variant)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--camera-seeds", type=int, default=1, help="seeds of the camera variant (each run takes minutes)")
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--skip-camera", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_memory"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    common = {"episodes": args.episodes, "eval_episodes": args.eval_episodes}
    bench_variant(args.out, {}, epochs=args.epochs, seeds=args.seeds, **common)
    if not args.skip_camera:
        bench_variant(args.out, {"camera": True}, epochs=args.camera_epochs, seeds=args.camera_seeds, **common)


if __name__ == "__main__":
    main()
