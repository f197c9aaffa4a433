"""The ``gym-unity-il`` command.

Subcommands are grouped by topic (``gym-unity-il demo info PATH``). Each topic registers
its own subparser through a ``_add_<topic>`` function and each command is a function
taking the parsed arguments and returning the exit status, so more commands (``demo
record``, ``train``, ``export``) plug in the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gym_unity_il.errors import ConfigError, GymUnityILError


# ---------------------------------------------------------------------------------- demo info


class _Range:
    """Running min / max / mean of a stream of arrays (per file, constant memory)."""

    def __init__(self) -> None:
        self.low = np.inf
        self.high = -np.inf
        self.total = 0.0
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        if values.size:
            as_float = values.astype(np.float64)
            self.low = min(self.low, float(as_float.min()))
            self.high = max(self.high, float(as_float.max()))
            self.total += float(as_float.sum())
            self.count += values.size

    def __str__(self) -> str:
        if not self.count:
            return "no values"
        return f"min {self.low:.6g}  max {self.high:.6g}  mean {self.total / self.count:.6g}"


def _describe_file(path: Path, out) -> None:  # type: ignore[no-untyped-def]
    from gym_unity_il.demo.reader import DemoReader

    reader = DemoReader(path)
    meta, spec = reader.meta, reader.behavior_spec
    sensors = [_Range() for _ in spec.observation_specs]
    continuous, discrete = _Range(), [np.zeros(b, np.int64) for b in spec.action_spec.discrete_branches]
    steps = dones = cut = 0
    reward = 0.0
    for chunk in reader.iter_batches():
        steps += len(chunk)
        dones += int(chunk.done.sum())
        cut += int((chunk.done & chunk.max_step_reached).sum())
        reward += float(chunk.rewards.astype(np.float64).sum())
        for rng, obs in zip(sensors, chunk.observations):
            rng.add(obs)
        continuous.add(chunk.stored_continuous_actions)
        for k, counts in enumerate(discrete):
            counts += np.bincount(chunk.stored_discrete_actions[:, k], minlength=counts.size)[: counts.size]
    print(f"{path}", file=out)
    print(f"  era              {meta.era.value}" + ("   (interrupted recording: counters 0, read to the end)" if meta.interrupted else ""), file=out)
    print(f"  name             {meta.name!r}   api_version {meta.api_version}", file=out)
    print(f"  meta             steps {meta.number_steps}   episodes {meta.number_episodes}   mean reward {meta.mean_reward:.6g}", file=out)
    episodes = dones + 1
    print(f"  records          steps {steps}   episodes {episodes} ({dones} done, {cut} of them cut by max step)   "
          f"mean reward {reward / episodes:.6g}", file=out)  # fmt: skip
    print(f"  behavior         {spec.name!r}", file=out)
    act = spec.action_spec
    print(f"  actions          continuous {act.continuous_size}   discrete branches {list(act.discrete_branches)}", file=out)
    if act.continuous_size:
        print(f"    continuous     {continuous}", file=out)
    for k, counts in enumerate(discrete):
        print(f"    branch {k}       counts {counts.tolist()}", file=out)
    if not spec.observation_specs:
        print("  observations     unknown (no record)", file=out)
    for key, o_spec, rng in zip(spec.observation_keys, spec.observation_specs, sensors):
        kind = "image" if o_spec.is_visual else "vector"
        layout = (" CHW" if o_spec.channels_first else " HWC") if o_spec.is_visual else ""
        print(f"  observation      {key}: {kind} {list(o_spec.shape)}{layout} -> {list(o_spec.output_shape())} "
              f"{o_spec.output_dtype().name}   {rng}", file=out)  # fmt: skip


def _demo_info(args: argparse.Namespace) -> int:
    from gym_unity_il.demo.reader import demo_files

    files = demo_files(args.path)
    for i, path in enumerate(files):
        if i:
            print(file=sys.stdout)
        _describe_file(path, sys.stdout)
    return 0


# ---------------------------------------------------------------------------------- demo record

_ALGOS = ("ppo", "sac", "a2c", "dqn", "td3", "ddpg", "policy")


def load_policy(source: str, env: Any, *, scene: str | None = None, algo: str = "ppo", seed: int = 0) -> Callable[[Any], Any]:
    """``obs -> action`` for ``source``: ``"expert"`` (a built-in scene's scripted expert),
    ``"random"`` (uniform over the action space, seeded), or the path of a saved SB3 model
    (``algo`` names its class; ``"policy"`` for a bare policy such as imitation's BC
    ``policy.save(path)``). SB3 files hold pickled objects: load only files you trust."""
    if source == "expert":
        if scene is None:
            raise ConfigError("--policy expert needs a built-in --scene (a Unity build has no scripted expert)")
        from gym_unity_il.scenes import expert_policy

        expert = expert_policy(scene, image_format=env.unwrapped.image_format)
        return lambda obs: expert.predict(obs)[0]
    if source == "random":
        env.action_space.seed(seed)
        return lambda obs: env.action_space.sample()
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--policy {source!r} is neither 'expert', 'random' nor a saved model file")
    if algo not in _ALGOS:
        raise ConfigError(f"--algo {algo!r} is not one of {_ALGOS}")
    import stable_baselines3

    if algo == "policy":
        from stable_baselines3.common.policies import ActorCriticPolicy

        model: Any = ActorCriticPolicy.load(str(path))
    else:
        model = getattr(stable_baselines3, algo.upper()).load(str(path))
    return lambda obs: model.predict(obs, deterministic=True)[0]


def _demo_record(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
    from gym_unity_il.demo.recorder import record_episodes

    if (args.scene is None) == (args.env is None):
        raise ConfigError("give exactly one of --scene NAME (a built-in scene) and --env PATH (a Unity build)")
    kwargs = json.loads(args.scene_kwargs) if args.scene_kwargs else {}
    env = gym.make("UnityIL-v0", scene=args.scene, file_name=args.env, scene_kwargs=kwargs, seed=args.seed, image_format=args.image_format)
    try:
        act = load_policy(args.policy, env, scene=args.scene, algo=args.algo, seed=args.seed)
    except BaseException:
        env.close()
        raise
    path, returns = record_episodes(env, act, args.out, episodes=args.episodes, seed=args.seed, overwrite=args.overwrite)
    print(f"recorded {len(returns)} episodes to {path}: mean return {np.mean(returns):.4g} (min {min(returns):.4g}, max {max(returns):.4g})")
    return 0


def _add_demo(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = commands.add_parser("demo", help="inspect and record .demo files")
    actions = demo.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="meta, behavior spec, steps, episodes, rewards and value ranges of .demo files")
    info.add_argument("path", type=Path, help="a .demo file or a directory of them")
    info.set_defaults(run=_demo_info)
    record = actions.add_parser("record", help="record episodes of a built-in scene or a Unity build into a .demo file")
    record.add_argument("out", type=Path, help="the .demo file to write")
    record.add_argument("--scene", help="a built-in scene (ball, grid, hybrid)")
    record.add_argument("--env", help="path of a Unity build")
    record.add_argument("--scene-kwargs", help='scene arguments as JSON, e.g. \'{"max_steps": 300}\'')
    record.add_argument("--policy", default="expert", help="expert (built-in scenes), random, or a saved SB3 model file")
    record.add_argument("--algo", default="ppo", choices=_ALGOS, help="class of the saved model (default ppo)")
    record.add_argument("--episodes", type=int, default=10)
    record.add_argument("--seed", type=int, default=0)
    record.add_argument("--image-format", default="hwc_uint8", choices=["hwc_uint8", "chw_float"])
    record.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    record.set_defaults(run=_demo_record)


# ---------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every topic's subcommands."""
    parser = argparse.ArgumentParser(prog="gym-unity-il", description="Unity ML-Agents scenes and .demo files for Gymnasium, SB3 and imitation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (GymUnityILError, FileNotFoundError, FileExistsError, json.JSONDecodeError) as exc:
        print(f"gym-unity-il: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
