"""The main job, end to end on built-in scenes: record expert demos, train BC and GAIL on
"ball" (vector observations, continuous actions) and BC from pixels on "grid" (a camera and
a goal signal, discrete actions with masks), evaluate expert, random and the trained
policies on the same seeds, print a table, draw a plot.

1. Runs each built-in scene (its own process, over Unity's gRPC protocol) as
   ``UnityIL-v0`` and records its scripted expert into a `.demo` file with DemoRecorder.
2. Trains from those files with :func:`gym_unity_il.train.train` (what ``gym-unity-il
   train`` runs): behavioral cloning and GAIL on "ball", behavioral cloning on "grid"
   through a CNN. Each run writes ``<out>/results/<bc|gail|grid_bc>/`` (model,
   TensorBoard events, metrics CSV, learning curve, config, evaluation).
3. Evaluates every policy on seeds the demos were not recorded with, prints a table and
   writes ``<out>/report.json`` and ``<out>/main_job.png`` (returns relative to the
   expert, and learning curves).

"grid" runs with a 36 x 36 grayscale camera (its CameraResolution) on a 3 x 3 field:
BC from these pixels reaches the expert in about a minute of training.

Usage::

    python examples/main_job.py [--episodes 20] [--max-steps 500] [--gail-steps 200000]
        [--grid-episodes 2000] [--grid-epochs 40] [--out runs/main_job] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import gymnasium as gym

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import read_demo, record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, evaluate, load_policy, make_training_env, parse_config, train

BALL = "ball"
GRID = "grid"
#: The grid's CameraResolution and field for BC from pixels.
GRID_KWARGS = {"grid_size": 3, "camera_height": 36, "camera_width": 36, "grayscale": True}
#: Demos are recorded from episode seeds DEMO_SEED, DEMO_SEED + 1, ...; evaluation uses others.
DEMO_SEED = 10_000
COLOURS = {"expert": "gray", "random": "lightgray", "bc": "tab:blue", "gail": "tab:orange", "grid_bc": "tab:green"}


def record(scene: str, scene_kwargs: dict, path: Path, episodes: int, seed: int) -> None:
    """``episodes`` episodes of the scene's scripted expert into ``path``."""
    expert = expert_policy(scene)
    env = gym.make("UnityIL-v0", scene=scene, scene_kwargs=scene_kwargs, seed=seed)
    record_episodes(env, lambda obs: expert.predict(obs)[0], path, episodes=episodes, seed=DEMO_SEED, overwrite=True)
    demo = read_demo(path)
    print(f"      {path.name}: {demo.meta.number_steps} steps, {demo.meta.number_episodes - 1} episodes, mean reward {demo.meta.mean_reward:.2f}")


def evaluate_all(scene: str, scene_kwargs: dict, runs: dict[str, Path], episodes: int, seed: int) -> dict:
    """Expert, random and every trained policy of ``scene`` on the same seeds."""
    venv, _ = make_training_env(scene=scene, scene_kwargs=scene_kwargs, seed=seed)
    try:
        policies = {
            "expert": expert_policy(scene),
            "random": RandomPolicy(venv.action_space, seed=seed),
            **{name: load_policy(run / "model.zip", venv.observation_space) for name, run in runs.items()},
        }
        return {name: evaluate(p, venv, episodes=episodes, seed=seed) for name, p in policies.items()}
    finally:
        venv.close()


def plot(path: Path, results: dict[str, dict[str, tuple[float, float]]], runs: dict[str, tuple[str, Path]]) -> None:
    """Per scene, the mean return of each policy (bars, with the standard deviation) and the
    learning curves of its runs; last, every trained policy's return as % of the expert's."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    columns = 1 + max(sum(scene == s for s, _ in runs.values()) for scene in results)
    fig, axes = plt.subplots(len(results), columns + 1, figsize=(4.6 * (columns + 1), 3.6 * len(results)), squeeze=False)
    for row, (scene, scores) in zip(axes, results.items()):
        names = list(scores)
        row[0].bar(names, [scores[n][0] for n in names], yerr=[scores[n][1] for n in names], color=[COLOURS[n] for n in names])
        row[0].set_ylabel("mean return")
        row[0].set_title(f"{scene}: evaluation on the same seeds")
        curves = [(name, run) for name, (s, run) in runs.items() if s == scene]
        for ax, (name, run) in zip(row[1:], curves):
            with open(run / "metrics.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if r["return"]]
            ax.plot([int(r["step"]) for r in rows], [float(r["return"]) for r in rows], marker="o", markersize=3, color=COLOURS[name])
            ax.axhline(scores["expert"][0], color="gray", linestyle="--", label="expert")
            ax.axhline(scores["random"][0], color="lightgray", linestyle="--", label="random")
            ax.set_xlabel("demo samples" if rows and rows[0]["phase"] == "bc" else "env steps")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
            ax.set_title(f"{scene} {name}: return while training")
            ax.legend(loc="lower right")
        for ax in row[1 + len(curves) : -1]:
            ax.axis("off")
    share = axes[0][-1]
    trained = [(name, scene) for name, (scene, _) in runs.items()]
    percent = [100 * results[scene][name][0] / results[scene]["expert"][0] for name, scene in trained]
    share.barh([f"{scene} {name}" for name, scene in trained], percent, color=[COLOURS[name] for name, _ in trained])
    share.axvline(100, color="gray", linestyle="--")
    share.axvline(90, color="gray", linestyle=":", label="90 %")
    share.set_xlim(min(0.0, *percent) - 5, max(110.0, *percent) + 5)
    share.set_xlabel("% of the expert's return")
    share.set_title("trained policies against their expert")
    share.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)  # below the axis: the bars fill it
    for ax in axes[1:, -1]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes of ball to record")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/main_job"))
    parser.add_argument("--max-steps", type=int, default=500, help="ball's episode length limit (expert return = 0.1 x this)")
    parser.add_argument("--bc-epochs", type=int, default=20)
    parser.add_argument("--gail-steps", type=int, default=200_000, help="env steps of GAIL (the small budget of a smoke test: a few thousand)")
    parser.add_argument("--grid-episodes", type=int, default=2000, help="expert episodes of grid to record (about 2 steps each)")
    parser.add_argument("--grid-epochs", type=int, default=40, help="epochs of BC from the grid's pixels")
    parser.add_argument("--seed", type=int, default=0, help="seeds Python, NumPy, torch, the learners and the scenes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ball_kwargs = {"max_steps": args.max_steps}
    started = time.perf_counter()

    print(f"[1/4] recording {args.episodes} expert episodes of '{BALL}' and {args.grid_episodes} of '{GRID}' {GRID_KWARGS}")
    ball_demo, grid_demo = args.out / "ball_expert.demo", args.out / "grid_expert.demo"
    record(BALL, ball_kwargs, ball_demo, args.episodes, args.seed)
    record(GRID, GRID_KWARGS, grid_demo, args.grid_episodes, args.seed)

    common = {"hidden_units": 64, "num_layers": 2, "eval_episodes": args.eval_episodes}
    configs = {
        "bc": (BALL, ball_kwargs, {"trainer": "offline_bc", "demo_path": str(ball_demo), "num_epoch": args.bc_epochs, "batch_size": 64,
                                   "learning_rate": 1.0e-3, "summary_freq": max(1000, args.episodes * args.max_steps * args.bc_epochs // 10)}),
        "gail": (BALL, ball_kwargs, {
            "trainer": "gail", "demo_path": str(ball_demo), "max_steps": args.gail_steps, "summary_freq": max(1000, args.gail_steps // 20),
            "ppo": {"n_steps": 256, "batch_size": 256, "n_epochs": 5, "learning_rate": 3.0e-4},
            "gail": {"demo_batch_size": 512, "n_disc_updates_per_round": 2, "disc_learning_rate": 3.0e-4},
        }),
        "grid_bc": (GRID, GRID_KWARGS, {"trainer": "offline_bc", "demo_path": str(grid_demo), "num_epoch": args.grid_epochs, "batch_size": 64,
                                        "learning_rate": 1.0e-3, "hidden_units": 128, "summary_freq": max(1000, args.grid_episodes * 2 * args.grid_epochs // 20)}),
    }  # fmt: skip
    results_dir = args.out / "results"
    runs: dict[str, tuple[str, Path]] = {}
    for name, (scene, scene_kwargs, section) in configs.items():
        print(f"[{2 if scene == BALL else 3}/4] training {name} ({section['trainer']}) on '{scene}' from the demonstrations")
        run = train(parse_config({"default": {**common, **section}}), run_id=name, results_dir=results_dir, scene=scene, scene_kwargs=scene_kwargs, seed=args.seed, force=True)
        runs[name] = (scene, run.run_dir)

    print(f"[4/4] evaluating on {args.eval_episodes} episodes per policy, the same seeds for every policy of a scene (not the demos' seeds)")
    evaluations = {
        scene: evaluate_all(scene, kwargs, {n: run for n, (s, run) in runs.items() if s == scene}, args.eval_episodes, args.seed + 1)
        for scene, kwargs in ((BALL, ball_kwargs), (GRID, GRID_KWARGS))
    }
    results = {scene: {name: (e.mean_return, e.std_return) for name, e in scores.items()} for scene, scores in evaluations.items()}

    print(f"\n{'scene':<6} {'policy':<8} {'mean return':>12} {'std':>8} {'% of expert':>12}")
    for scene, scores in results.items():
        for name, (mean, std) in scores.items():
            print(f"{scene:<6} {name:<8} {mean:>12.3f} {std:>8.3f} {100 * mean / scores['expert'][0]:>11.1f}%")
    plot(args.out / "main_job.png", results, runs)
    elapsed = time.perf_counter() - started
    print(f"\nwall time {elapsed:.0f} s; demos {ball_demo.name}, {grid_demo.name}; runs in {results_dir}; plot {args.out / 'main_job.png'}")
    report = {scene: {k: {"mean_return": m, "std_return": s, "returns": evaluations[scene][k].returns} for k, (m, s) in scores.items()}
              for scene, scores in results.items()}  # fmt: skip
    (args.out / "report.json").write_text(json.dumps(report | {"grid_scene_kwargs": GRID_KWARGS, "wall_time_s": elapsed, "seed": args.seed}, indent=2))


if __name__ == "__main__":
    main()
