"""The main job, end to end on a built-in scene: record expert demos, train BC and GAIL,
evaluate expert, random, BC and GAIL on the same seeds, print a table, draw a plot.

1. Runs the built-in "ball" scene (its own process, over Unity's gRPC protocol) as
   ``UnityIL-v0`` and records its scripted expert into a `.demo` file with DemoRecorder.
2. Trains behavioral cloning and GAIL from that file with :func:`gym_unity_il.train.train`
   (what ``gym-unity-il train`` runs): each run writes ``<out>/results/<bc|gail>/``
   (model, TensorBoard events, metrics CSV, learning curve, config, evaluation).
3. Evaluates the four policies on the same seeds, prints a table and writes
   ``<out>/report.json`` and ``<out>/main_job.png`` (returns and learning curves).

Usage::

    python examples/main_job.py [--episodes 20] [--max-steps 500] [--gail-steps 200000] [--out runs/main_job] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from pathlib import Path

import gymnasium as gym

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import read_demo, record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, evaluate, load_policy, make_training_env, parse_config, train

SCENE = "ball"


def plot(path: Path, results: dict[str, tuple[float, float]], runs: dict[str, Path]) -> None:
    """Mean return of each policy (bars, with the standard deviation) and the learning curves."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(runs), figsize=(5 * (1 + len(runs)), 3.8))
    names = list(results)
    axes[0].bar(names, [results[n][0] for n in names], yerr=[results[n][1] for n in names], color=["gray", "lightgray", "tab:blue", "tab:orange"])
    axes[0].set_ylabel("mean return")
    axes[0].set_title("evaluation on the same seeds")
    for ax, (name, run) in zip(axes[1:], runs.items()):
        with open(run / "metrics.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["return"]]
        ax.plot([int(r["step"]) for r in rows], [float(r["return"]) for r in rows], marker="o", markersize=3)
        ax.axhline(results["expert"][0], color="gray", linestyle="--", label="expert")
        ax.axhline(results["random"][0], color="lightgray", linestyle="--", label="random")
        ax.set_xlabel("demo samples" if name == "bc" else "env steps")
        ax.set_title(f"{name}: return while training")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes to record")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/main_job"))
    parser.add_argument("--max-steps", type=int, default=500, help="episode length limit (expert return = 0.1 x this)")
    parser.add_argument("--bc-epochs", type=int, default=20)
    parser.add_argument("--gail-steps", type=int, default=200_000, help="env steps of GAIL (the small budget of a smoke test: a few thousand)")
    parser.add_argument("--seed", type=int, default=0, help="seeds Python, NumPy, torch, the learners and the scenes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    demo_path = args.out / "ball_expert.demo"
    scene_kwargs = {"max_steps": args.max_steps}
    started = time.perf_counter()

    expert = expert_policy(SCENE)
    print(f"[1/4] recording {args.episodes} expert episodes of '{SCENE}' to {demo_path}")
    env = gym.make("UnityIL-v0", scene=SCENE, scene_kwargs=scene_kwargs, seed=args.seed)
    record_episodes(env, lambda obs: expert.predict(obs)[0], demo_path, episodes=args.episodes, seed=10_000, overwrite=True)
    demo = read_demo(demo_path)
    print(f"      {demo.meta.number_steps} steps, {demo.meta.number_episodes - 1} episodes, mean reward {demo.meta.mean_reward:.2f}")

    common = {"demo_path": str(demo_path), "hidden_units": 64, "num_layers": 2, "eval_episodes": args.eval_episodes}
    configs = {
        "bc": {"trainer": "offline_bc", "num_epoch": args.bc_epochs, "batch_size": 64, "learning_rate": 1.0e-3,
               "summary_freq": max(1000, args.episodes * args.max_steps * args.bc_epochs // 10)},
        "gail": {
            "trainer": "gail", "max_steps": args.gail_steps, "summary_freq": max(1000, args.gail_steps // 20),
            "ppo": {"n_steps": 256, "batch_size": 256, "n_epochs": 5, "learning_rate": 3.0e-4},
            "gail": {"demo_batch_size": 512, "n_disc_updates_per_round": 2, "disc_learning_rate": 3.0e-4},
        },
    }  # fmt: skip
    results_dir = args.out / "results"
    runs = {}
    for step, (name, section) in enumerate(configs.items(), start=2):
        print(f"[{step}/4] training {name} ({section['trainer']}) from the demonstrations")
        shutil.rmtree(results_dir / name, ignore_errors=True)
        run = train(parse_config({"default": {**common, **section}}), run_id=name, results_dir=results_dir, scene=SCENE, scene_kwargs=scene_kwargs, seed=args.seed)
        runs[name] = run.run_dir

    print(f"[4/4] evaluating on {args.eval_episodes} episodes with the same seeds")
    venv, _ = make_training_env(scene=SCENE, scene_kwargs=scene_kwargs, seed=args.seed)
    try:
        policies = {
            "expert": expert,
            "random": RandomPolicy(venv.action_space, seed=args.seed),
            **{name: load_policy(run / "model.zip", venv.observation_space) for name, run in runs.items()},
        }
        evaluations = {name: evaluate(p, venv, episodes=args.eval_episodes, seed=args.seed + 1) for name, p in policies.items()}
    finally:
        venv.close()
    results = {name: (e.mean_return, e.std_return) for name, e in evaluations.items()}

    expert_mean = results["expert"][0]
    print(f"\n{'policy':<8} {'mean return':>12} {'std':>8} {'% of expert':>12}")
    for name, (mean, std) in results.items():
        print(f"{name:<8} {mean:>12.2f} {std:>8.2f} {100 * mean / expert_mean:>11.1f}%")
    plot(args.out / "main_job.png", results, runs)
    elapsed = time.perf_counter() - started
    print(f"\nwall time {elapsed:.0f} s; demos in {demo_path}; runs in {results_dir}; plot {args.out / 'main_job.png'}")
    report = {k: {"mean_return": m, "std_return": s, "returns": evaluations[k].returns} for k, (m, s) in results.items()}
    (args.out / "report.json").write_text(json.dumps(report | {"wall_time_s": elapsed, "seed": args.seed}, indent=2))


if __name__ == "__main__":
    main()
