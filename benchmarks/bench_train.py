"""Imitation on the built-in scenes: how close BC and GAIL get to the expert on "ball"
(vector observations, continuous actions, 1,000-step episodes), and BC from pixels on
"grid" with the example config, and how long they take.

Prints, measured in one run on this machine: the expert's and a random policy's return,
BC's return after training on 20 expert episodes and its wall time (recording excluded,
training and final evaluation included), and GAIL's return after its budget and its wall
time, GAIL with ``examples/configs/gail.yaml`` as it is. The aims are BC >= 95 % of the
expert in under 60 s and GAIL >= 90 % in under 10 minutes on 2 CPU cores.

Then GAIL's agent steps to the expert, per seed (3 by default), with the same config: the
agent steps (VecEnv steps x agents) and wall time until the mean of the scene's own returns
of the last 12 finished episodes (not GAIL's reward) first reaches 95 % of the expert's.
The aim: every seed within 100,000 agent steps (``mlagents-learn`` 1.1 with its GAIL took
84,000 to 96,000 on the same scene and demos). After the grid flow below, the same measure
on grid from pixels (8 agents, that flow's demos) with the config's ``GridWorld`` section
(GAIL with BC beside it), over the last 100 episodes (grid's last about 4 steps).

Then ML-Agents' own config files on "ball", as ``gym-unity-il train`` reads them (the same
demos): a 0.10 / 0.11 ``gail_config.yaml`` section (PPO with ``pretraining``, and ``gail`` beside
``extrinsic``) and a file of today's ML-Agents with ``behavioral_cloning`` and ``gail`` (the shape
of ``config/imitation/*.yaml``), each with its return, % of the expert (aim: >= 90 %) and wall time.

Then curiosity on a sparse-reward task (``grid`` with ``sparse=True``: only reaching the far
target pays): PPO with the ``curiosity`` reward against PPO on the env's reward alone, same
budget and seeds (aim: the curiosity runs' return is higher), with RND as a third run.

Then the GridWorld flow of ``examples/configs/offline_bc.yaml``: demos recorded as its
comment says (the expert, the episodes and scene arguments of its ``demo record``
command, episode seeds 0, 1, ...), BC with its ``GridWorld`` section, the return on
episodes of other seeds against the expert's on the same seeds (aim: >= 90 %).

Last, where training time goes, on "ball" and on that grid: PPO (GAIL's settings for the
scene, on the scene's reward) and GAIL, each for ``--share-steps`` steps of every agent: the
share of the training's wall time spent inside the training VecEnv's step (the rest is the
learner: policy, updates, discriminator, BC beside them), next to the VecEnv's raw stepping
rate (agent-steps/s with random actions, measured in the same run). The script prints the
figures and ratios, it never asserts.

Usage::

    python benchmarks/bench_train.py [--gail-steps 150000] [--gail-seeds 3] [--gail-steps-budget 150000] [--config-steps 200000]
                                     [--explore-steps 150000] [--explore-seeds 4] [--share-steps 2000] [--eval-episodes 12]
                                     [--skip-gail] [--skip-gail-steps] [--skip-configs] [--skip-explore] [--skip-env-share]
                                     [--skip-ball] [--out runs/bench_train]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from imitation.util import logger as imitation_logger
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
from gym_unity_il.demo import demo_to_trajectories, read_demo, record_episodes
from gym_unity_il.scenes import expert_policy
from gym_unity_il.train import RandomPolicy, RunConfig, TrainerSettings, evaluate, load_config, load_policy, make_training_env, parse_config, train
from gym_unity_il.train.bc import RolloutCloning
from gym_unity_il.train.gail import GAILPhase
from gym_unity_il.train.policies import ObservationAdapter, make_model, observation_statistics
from gym_unity_il.train.pretrain import RLPhase
from gym_unity_il.train.progress import RunRecorder
from gym_unity_il.train.schedules import Schedules

SCENE = "ball"
SCENE_KWARGS = {"max_steps": 1000}
DEMO_EPISODES = 20
EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "offline_bc.yaml"
#: The GAIL config users start from: its ``3DBall`` section trains "ball", its ``GridWorld``
#: section grid.
GAIL_CONFIG = EXAMPLE_CONFIG.with_name("gail.yaml")
#: GAIL's measure: the mean of the scene's own returns of the last ``WINDOW`` finished
#: episodes (ball: 12, one per agent), against ``TARGET`` times the expert's mean return.
WINDOW = 12
#: The window on grid: its episodes last about 4 steps, so 12 are 6 steps of its 8 agents.
GRID_WINDOW = 100
TARGET = 0.95
#: Evaluation seeds of the grid run start here, far from the demos' 0, 1, ...
HELD_OUT_SEED = 1_000_000
#: Agents of the grid scene in the runs to the expert (the flow's demos have one).
GRID_AGENTS = 8


#: ML-Agents 0.10 / 0.11 ``gail_config.yaml``'s shape: a brain section with PPO, ``pretraining``
#: and the GAIL reward beside the env's (``{demo}`` and ``{steps}`` filled in).
SEED_GAIL_CONFIG = """
default:
    trainer: ppo
    batch_size: 1024
    beta: 5.0e-3
    buffer_size: 10240
    epsilon: 0.2
    hidden_units: 128
    lambd: 0.95
    learning_rate: 3.0e-4
    max_steps: 5.0e4
    memory_size: 256
    normalize: false
    num_epoch: 3
    num_layers: 2
    time_horizon: 64
    sequence_length: 64
    summary_freq: 1000
    use_recurrent: false
    reward_signals:
        extrinsic:
            strength: 1.0
            gamma: 0.99
3DBall:
    batch_size: 128
    buffer_size: 2400
    hidden_units: 128
    max_steps: {steps}
    summary_freq: 24000
    pretraining:
        demo_path: {demo}
        strength: 0.5
        steps: 50000
    reward_signals:
        extrinsic:
            strength: 1.0
            gamma: 0.99
        gail:
            strength: 0.01
            gamma: 0.99
            encoding_size: 128
            demo_path: {demo}
"""

#: Today's ML-Agents ``config/imitation/*.yaml`` shape: PPO with ``behavioral_cloning`` and ``gail``.
MODERN_IMITATION_CONFIG = """
behaviors:
  3DBall:
    trainer_type: ppo
    hyperparameters:
      batch_size: 128
      buffer_size: 2400
      learning_rate: 0.0003
      beta: 0.005
      epsilon: 0.2
      lambd: 0.95
      num_epoch: 3
      learning_rate_schedule: linear
    network_settings:
      normalize: false
      hidden_units: 128
      num_layers: 2
    reward_signals:
      extrinsic:
        gamma: 0.99
        strength: 1.0
      gail:
        gamma: 0.99
        strength: 0.01
        learning_rate: 0.0003
        use_actions: true
        demo_path: {demo}
    behavioral_cloning:
      demo_path: {demo}
      steps: 50000
      strength: 0.5
      samples_per_update: 0
    max_steps: {steps}
    time_horizon: 1000
    summary_freq: 24000
"""


def bench_ml_agents_configs(out: Path, demo: Path, expert_return: float, eval_episodes: int, steps: int, seed: int) -> None:
    """ML-Agents' own files on the ball scene (see the module docstring), read by ``load_config``."""
    for name, text in (("seed_gail_config", SEED_GAIL_CONFIG), ("modern_bc_gail", MODERN_IMITATION_CONFIG)):
        path = out / f"{name}.yaml"
        path.write_text(text.format(demo=demo.resolve(), steps=steps))
        config = load_config(path)
        config = dataclasses.replace(config, behaviors={k: dataclasses.replace(v, eval_episodes=eval_episodes) for k, v in config.behaviors.items()})
        started = time.perf_counter()
        run = train(config, run_id=name, results_dir=out / "results", scene=SCENE, scene_kwargs=SCENE_KWARGS, seed=seed, progress=False, force=True)
        wall = time.perf_counter() - started
        assert run.evaluation is not None
        mean = run.evaluation.mean_return
        print(f"{name:<17} ({run.trainer}) return {mean:8.2f}   ({100 * mean / expert_return:5.1f} % of expert) after {steps} env steps "
              f"in {wall:6.1f} s (aim: 90 %)")  # fmt: skip


#: The sparse-reward task of the exploration runs (see the grid scene's docstring).
SPARSE_GRID = {"sparse": True, "grid_size": 10, "max_steps": 30, "camera": False, "num_agents": 8}
#: PPO of the exploration runs; the runs differ only in their intrinsic reward.
EXPLORATION = {"trainer": "ppo", "hidden_units": 64, "eval_episodes": 40, "summary_freq": 10**9,
               "ppo": {"n_steps": 256, "batch_size": 64, "n_epochs": 3, "learning_rate": 3.0e-4, "ent_coef": 0.01}}  # fmt: skip


def bench_exploration(out: Path, steps: int, seeds: int) -> None:
    """Curiosity (and RND) against the env's reward alone on the sparse grid (module docstring)."""
    runs = {"extrinsic only": {}, "curiosity 0.02": {"curiosity": {"strength": 0.02}}, "rnd 0.01": {"rnd": {"strength": 0.01}}}
    print(f"\nscene 'grid' {SPARSE_GRID}: PPO for {steps} env steps, {seeds} seeds, return over {EXPLORATION['eval_episodes']} episodes")
    for name, extra in runs.items():
        returns, started = [], time.perf_counter()
        for seed in range(seeds):
            config = parse_config({"default": {**EXPLORATION, **extra, "max_steps": steps}})
            run = train(config, run_id=f"explore_{name.split()[0]}_{seed}", results_dir=out / "results", scene="grid", scene_kwargs=SPARSE_GRID,
                        seed=seed, progress=False, force=True)  # fmt: skip
            assert run.evaluation is not None
            returns.append(run.evaluation.mean_return)
        wall = (time.perf_counter() - started) / seeds
        print(f"{name:<15} return {sum(returns) / seeds:6.3f}  per seed {[round(r, 3) for r in returns]}  ({wall:5.1f} s per run)")


class Reached(Exception):
    """A :class:`Stopwatch`'s target was reached: the run stops there."""


class Stopwatch(VecEnvWrapper):
    """Passes everything through, timing the steps of the VecEnv below it (``env_seconds``)
    and keeping the scene's own returns of the episodes that end (``info["episode"]`` of the
    training env's VecMonitor), before any reward is replaced.

    With ``target``, the step at which the mean of the last ``window`` returns first
    reaches it records ``reached`` (agent steps, seconds since ``started``) and raises
    :class:`Reached`.
    """

    def __init__(self, venv: VecEnv, target: float | None = None, window: int = WINDOW) -> None:
        super().__init__(venv)
        self.target = target
        self.returns: deque[float] = deque(maxlen=window)
        self.agent_steps = 0
        self.env_seconds = 0.0
        self.seconds = 0.0
        self.started = time.perf_counter()
        self.reached: tuple[int, float] | None = None

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        started = time.perf_counter()
        obs, rewards, dones, infos = self.venv.step_wait()
        self.env_seconds += time.perf_counter() - started
        self.agent_steps += self.num_envs
        self.returns.extend(float(info["episode"]["r"]) for info in infos if "episode" in info)
        if self.target is not None and len(self.returns) == self.returns.maxlen and np.mean(self.returns) >= self.target:
            self.reached = (self.agent_steps, time.perf_counter() - self.started)
            raise Reached
        return obs, rewards, dones, infos


def timed_training(settings: TrainerSettings, *, scene: str, scene_kwargs: dict, seed: int, target: float | None = None, window: int = WINDOW) -> Stopwatch:
    """Trains ``settings`` (``ppo`` or ``gail``, from scratch, with BC beside the RL and the
    GAIL reward mixed into PPO's when they ask) for its ``max_steps`` the way
    :func:`~gym_unity_il.train.train` puts such a run together (the training env, the
    observation adapter, the demos' statistics with ``normalize``, the model, its schedules,
    the cloning, the phase), with a :class:`Stopwatch` on the training env, which it returns
    (``seconds``: the training's wall time). With ``target`` the run stops once the watch reaches it
    (the mean return of the last ``window`` episodes)."""
    extras = settings.curiosity.strength or settings.rnd.strength or settings.memory.enabled
    if settings.trainer not in ("ppo", "gail") or extras or (settings.trainer == "ppo" and settings.num_epoch):
        raise ValueError(f"timed_training builds ppo and gail runs without pretraining, intrinsic rewards or memory; got trainer {settings.trainer!r}")
    gail = settings.trainer == "gail" or settings.gail.strength > 0
    set_random_seed(seed)
    venv, _ = make_training_env(scene=scene, scene_kwargs=scene_kwargs, seed=seed)
    watch = Stopwatch(venv, target, window)
    with tempfile.TemporaryDirectory() as scratch, contextlib.closing(venv):  # (the logs go to scratch: nothing outside it)
        adapter = ObservationAdapter(watch.observation_space, pack=gail)
        policy_venv = adapter.wrap(watch)
        uses_demos = gail or settings.normalize or settings.cloning.during_rl
        trajectories = demo_to_trajectories(read_demo(settings.demo_path)) if uses_demos else []
        normalization = observation_statistics(trajectories, watch.observation_space) if settings.normalize else None
        logger = imitation_logger.configure(scratch, [])
        model = make_model(settings, policy_venv, adapter, seed=seed, logger=logger, normalization=normalization)
        demos = adapter.trajectories(trajectories)
        helpers: list[Any] = [Schedules(settings)] if Schedules.needed(settings, model) else []
        if settings.cloning.during_rl:
            helpers.append(RolloutCloning(policy=model.policy, trajectories=demos, settings=settings, rng=np.random.default_rng(seed)))
        strength = settings.gail.strength if settings.trainer == "ppo" else None
        phase: GAILPhase | RLPhase = (
            GAILPhase(name=settings.trainer, model=model, venv=policy_venv, trajectories=demos, settings=settings, adapter=adapter,
                      normalization=normalization, total_steps=settings.max_steps, logger=logger, strength=strength, helpers=helpers)
            if gail else RLPhase(name="ppo", model=model, total_steps=settings.max_steps, helpers=helpers)
        )  # fmt: skip
        recorder = RunRecorder(metrics_path=Path(scratch) / "metrics.csv", logger=logger, summary_freq=settings.summary_freq, progress=False)
        watch.started = time.perf_counter()
        try:
            phase.run(recorder)
        except Reached:
            pass
        watch.seconds = time.perf_counter() - watch.started
    return watch


def gail_settings(**changes: Any) -> TrainerSettings:
    """The example GAIL config's ``3DBall`` section, with ``changes``."""
    return dataclasses.replace(load_config(GAIL_CONFIG).for_behavior("3DBall"), **changes)


def grid_gail_settings(**changes: Any) -> TrainerSettings:
    """The example GAIL config's ``GridWorld`` section, with ``changes``."""
    return dataclasses.replace(load_config(GAIL_CONFIG).for_behavior("GridWorld"), **changes)


def bench_steps_to_expert(title: str, settings: TrainerSettings, scene: str, scene_kwargs: dict, expert_return: float, seeds: list[int],
                          window: int = WINDOW) -> None:  # fmt: skip
    """``settings`` on ``scene`` per seed: the agent steps and wall time until the mean return
    of the last ``window`` finished episodes first reaches :data:`TARGET` of the expert's
    (the scene's own returns, not GAIL's reward)."""
    target = TARGET * expert_return
    print(f"\n{title}, on {scene!r} {scene_kwargs}: agent steps until the mean return of the last {window} finished episodes "
          f"first reaches {100 * TARGET:.0f} % of the expert's ({target:.3f}); at most {settings.max_steps:,} "
          "(aim: every seed within 100,000; mlagents-learn 1.1 took 84,000 to 96,000 on ball)")  # fmt: skip
    print(f"{'seed':>4} {'agent steps':>12} {'wall s':>7}")
    for seed in seeds:
        watch = timed_training(settings, scene=scene, scene_kwargs=scene_kwargs, seed=seed, target=target, window=window)
        if watch.reached is None:
            print(f"{seed:>4} {'not reached':>12} {watch.seconds:>7.1f}   (last {window} episodes: {np.mean(watch.returns):.3f} after {watch.agent_steps:,} agent steps)")
        else:
            print(f"{seed:>4} {watch.reached[0]:>12,} {watch.reached[1]:>7.1f}")


def stepping_rate(scene: str, scene_kwargs: dict, vec_steps: int) -> tuple[float, int]:
    """Agent-steps/s of the training VecEnv of ``scene`` with random actions (the time inside its
    step only, as :class:`Stopwatch` counts it), and its agents."""
    venv, _ = make_training_env(scene=scene, scene_kwargs=scene_kwargs, seed=0)
    try:
        policy = RandomPolicy(venv.action_space, seed=0)
        obs = venv.reset()
        for _ in range(10):  # warm-up
            obs = venv.step(policy.predict(obs)[0])[0]
        seconds = 0.0
        for _ in range(vec_steps):
            actions = policy.predict(obs)[0]
            started = time.perf_counter()
            obs = venv.step(actions)[0]
            seconds += time.perf_counter() - started
        return vec_steps * venv.num_envs / seconds, venv.num_envs
    finally:
        venv.close()


def bench_env_share(runs: dict[str, tuple[dict, TrainerSettings]], vec_steps: int) -> None:
    """Where training time goes, per scene: PPO (GAIL's settings, on the scene's reward) and
    GAIL for ``vec_steps`` steps of every agent, the share of the training's wall time spent
    inside the training VecEnv's step, and the VecEnv's stepping rate within the training
    next to its raw rate (random actions, nothing learning, measured just before)."""
    print("\nTime inside the training VecEnv's step against the learner (PPO: GAIL's settings for the scene, on the scene's reward)")
    print(f"{'scene':<6} {'trainer':<7} {'agent steps':>11} {'wall s':>7} {'env share':>9} {'env agent-steps/s':>17} {'raw agent-steps/s':>17}")
    for scene, (scene_kwargs, settings) in runs.items():
        raw, agents = stepping_rate(scene, scene_kwargs, vec_steps)
        for trainer in ("ppo", "gail"):
            run = dataclasses.replace(settings, trainer=trainer, max_steps=vec_steps * agents)
            watch = timed_training(run, scene=scene, scene_kwargs=scene_kwargs, seed=0)
            print(f"{scene:<6} {trainer:<7} {watch.agent_steps:>11,} {watch.seconds:>7.1f} {watch.env_seconds / watch.seconds:>9.0%} "
                  f"{watch.agent_steps / watch.env_seconds:>17,.0f} {raw:>17,.0f}")  # fmt: skip


def bench_grid_imitation_steps(demo: Path, scene_kwargs: dict, seeds: list[int], budget: int, eval_episodes: int) -> None:
    """On grid from pixels (8 agents, the demos of the grid flow): the GAIL config's
    ``GridWorld`` section, per seed, to 95 % of the expert over :data:`GRID_WINDOW` episodes."""
    kwargs = {**scene_kwargs, "num_agents": GRID_AGENTS}
    venv, _ = make_training_env(scene="grid", scene_kwargs=kwargs, seed=0)
    try:
        expert_return = evaluate(expert_policy("grid"), venv, episodes=eval_episodes, seed=HELD_OUT_SEED).mean_return
    finally:
        venv.close()
    title = f"GAIL with BC beside it, {GAIL_CONFIG.name}'s GridWorld section, from pixels"
    bench_steps_to_expert(title, grid_gail_settings(demo_path=str(demo), max_steps=budget), "grid", kwargs, expert_return, seeds, GRID_WINDOW)


def grid_record_command(config: Path) -> tuple[int, dict]:
    """Episodes and scene arguments of the grid ``demo record`` command in the config's comment."""
    comment = " ".join(line.lstrip("#").strip().rstrip("\\") for line in config.read_text().splitlines() if line.startswith("#"))
    command = re.search(r"gym-unity-il demo record demos/grid_expert\.demo (.*?)gym-unity-il", comment).group(1)
    kwargs = re.search(r"--scene-kwargs '(\{.*?\})'", command)
    return int(re.search(r"--episodes (\d+)", command).group(1)), json.loads(kwargs.group(1)) if kwargs else {}


def bench_grid(out: Path, eval_episodes: int, seed: int) -> tuple[Path, dict]:
    """The GridWorld flow of the example config (see the module docstring); returns its demos
    and scene arguments."""
    episodes, scene_kwargs = grid_record_command(EXAMPLE_CONFIG)
    demo = out / "grid_expert.demo"
    expert = expert_policy("grid")
    started = time.perf_counter()
    record_episodes(gym.make("UnityIL-v0", scene="grid", scene_kwargs=scene_kwargs), lambda obs: expert.predict(obs)[0], demo, episodes=episodes, overwrite=True)
    recording = time.perf_counter() - started
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    raw["GridWorld"]["demo_path"] = str(demo)
    started = time.perf_counter()
    run = train(parse_config(raw, source=str(EXAMPLE_CONFIG.name)), run_id="grid_bc", results_dir=out / "results", force=True, scene="grid",
                scene_kwargs=scene_kwargs, seed=seed, progress=False)  # fmt: skip
    wall = time.perf_counter() - started
    venv, _ = make_training_env(scene="grid", scene_kwargs=scene_kwargs, seed=seed)
    try:
        returns = {
            name: evaluate(policy, venv, episodes=eval_episodes, seed=HELD_OUT_SEED).mean_return
            for name, policy in (("expert", expert), ("random", RandomPolicy(venv.action_space, seed=seed)), ("bc", load_policy(run.model_path, venv.observation_space)))
        }  # fmt: skip
    finally:
        venv.close()
    settings = parse_config(raw).for_behavior("GridWorld")
    print(f"\nscene 'grid' {scene_kwargs}, {episodes} expert episodes ({recording:.1f} s to record), {settings.num_epoch} epochs of BC, "
          f"{eval_episodes} evaluation episodes of seeds {HELD_OUT_SEED}+ (not the demos')")  # fmt: skip
    for name in ("expert", "random", "bc"):
        print(f"{name:<6} return  {returns[name]:8.3f}   ({100 * returns[name] / returns['expert']:5.1f} % of expert)"
              + (f" after {wall:6.1f} s (aim: 90 %)" if name == "bc" else ""))  # fmt: skip
    return demo, scene_kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gail-steps", type=int, default=150_000, help="GAIL budget in env steps (over all agents)")
    parser.add_argument("--eval-episodes", type=int, default=12)
    parser.add_argument("--config-steps", type=int, default=200_000, help="budget of the runs of ML-Agents' config files, in env steps")
    parser.add_argument("--skip-gail", action="store_true")
    parser.add_argument("--gail-seeds", type=int, default=3, help="seeds of the runs to 95 %% of the expert")
    parser.add_argument("--gail-steps-budget", type=int, default=150_000, help="at most this many agent steps for each of them")
    parser.add_argument("--skip-gail-steps", action="store_true", help="skip the runs to 95 %% of the expert (GAIL on ball, its variant on grid)")
    parser.add_argument("--share-steps", type=int, default=2000, help="steps of the VecEnv (each: every agent) for each run of the time shares")
    parser.add_argument("--skip-env-share", action="store_true", help="skip the env's share of the training time (PPO and GAIL, ball and grid)")
    parser.add_argument("--skip-configs", action="store_true", help="skip the runs of ML-Agents' config files")
    parser.add_argument("--explore-steps", type=int, default=150_000, help="budget of each exploration run (sparse grid), in env steps")
    parser.add_argument("--explore-seeds", type=int, default=4)
    parser.add_argument("--skip-explore", action="store_true", help="skip the exploration runs (curiosity, RND)")
    parser.add_argument("--skip-ball", action="store_true", help="only the grid run")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_train"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results"
    demo = args.out / "ball_expert.demo"
    if args.skip_ball:
        bench_grid(args.out, max(args.eval_episodes, 20), args.seed)
        return

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

    config = parse_config({"default": {"trainer": "offline_bc", "demo_path": str(demo), "hidden_units": 64, "num_layers": 2, "eval_episodes": args.eval_episodes,
                                       "num_epoch": 10, "batch_size": 64, "learning_rate": 1.0e-3, "summary_freq": 10**9}})  # fmt: skip
    runs = {"bc": (config, "10 epochs", 95, 60)}
    if not args.skip_gail:
        gail = gail_settings(demo_path=str(demo), max_steps=args.gail_steps, eval_episodes=args.eval_episodes)
        runs["gail"] = (RunConfig(default=gail, behaviors={}), f"{args.gail_steps} env steps ({GAIL_CONFIG.name})", 90, 600)
    for name, (config, budget, aim, seconds) in runs.items():
        started = time.perf_counter()
        run = train(config, run_id=name, results_dir=results, scene=SCENE, scene_kwargs=SCENE_KWARGS, seed=args.seed, progress=False, force=True)
        wall = time.perf_counter() - started
        assert run.evaluation is not None
        mean = run.evaluation.mean_return
        print(f"{name:<6} return  {mean:8.2f}   ({100 * mean / expert_return:5.1f} % of expert) after {budget} in {wall:6.1f} s "
              f"(aim: {aim} % in {seconds} s)")  # fmt: skip
    seeds = [args.seed + i for i in range(args.gail_seeds)]
    if not args.skip_gail_steps:
        settings = gail_settings(demo_path=str(demo), max_steps=args.gail_steps_budget)
        bench_steps_to_expert(f"GAIL, {GAIL_CONFIG.name} as it is", settings, SCENE, SCENE_KWARGS, expert_return, seeds)
    if not args.skip_configs:
        bench_ml_agents_configs(args.out, demo, expert_return, args.eval_episodes, args.config_steps, args.seed)
    if not args.skip_explore:
        bench_exploration(args.out, args.explore_steps, args.explore_seeds)
    grid_demo, grid_kwargs = bench_grid(args.out, max(args.eval_episodes, 20), args.seed)
    if not args.skip_gail_steps:
        bench_grid_imitation_steps(grid_demo, grid_kwargs, seeds, args.gail_steps_budget, args.eval_episodes)
    if not args.skip_env_share:
        ball = gail_settings(demo_path=str(demo))
        grid = grid_gail_settings(demo_path=str(grid_demo))
        bench_env_share({SCENE: (SCENE_KWARGS, ball), "grid": (grid_kwargs, grid)}, args.share_steps)


if __name__ == "__main__":
    main()
