"""The ``gym-unity-il`` command.

Subcommands are grouped by topic (``gym-unity-il demo info PATH``). Each topic registers
its own subparser through a ``_add_<topic>`` function and each command is a function
taking the parsed arguments and returning the exit status, so more commands (``demo
record``, ``train``, ``export``) plug in the same way.

While a command runs, SIGTERM is handled like Ctrl+C (a ``KeyboardInterrupt``), so a
command stopped by a process manager closes its Unity processes and files as cleanly as
one stopped from the keyboard. Further SIGINTs and SIGTERMs are ignored while that
cleanup runs, and the command exits with status 130. Only the command line does this;
the library leaves signal handling to the program that imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gym_unity_il.errors import ConfigError, GymUnityILError

if TYPE_CHECKING:
    from gym_unity_il.scenes.evaluate import Predictor
    from gym_unity_il.train.config import RunSettings


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


def _scene_kwargs(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--scene-kwargs`` read as JSON (None when not given).

    Raises:
        ConfigError: not valid JSON.
    """
    if not args.scene_kwargs:
        return None
    try:
        return json.loads(args.scene_kwargs)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--scene-kwargs is not valid JSON ({exc}); give an object, e.g. '{{\"max_steps\": 300}}'") from None


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

def _recording_policy(source: str, env: Any, *, scene: str | None = None, algo: str = "auto", seed: int = 0) -> Predictor:
    """The policy of ``--policy``: ``"expert"`` (a built-in scene's scripted expert),
    ``"random"`` (uniform over the action space, seeded), or the path of a saved SB3 model
    or policy (loaded with :func:`gym_unity_il.export.load_policy`, see it for ``algo``;
    a recurrent one keeps its state through each episode, see
    :func:`~gym_unity_il.demo.recorder.record_episodes`). SB3 files hold pickled objects:
    load only files you trust."""
    from gym_unity_il.export.saved import load_policy
    from gym_unity_il.scenes.evaluate import RandomPolicy

    if source == "expert":
        if scene is None:
            raise ConfigError("--policy expert needs a built-in --scene (a Unity build has no scripted expert)")
        from gym_unity_il.scenes import expert_policy

        return expert_policy(scene, image_format=env.unwrapped.image_format)
    if source == "random":
        return RandomPolicy(env.unwrapped.behavior_spec, seed=seed)
    if not Path(source).is_file():
        raise ConfigError(f"--policy {source!r} is neither 'expert', 'random' nor a saved model file")
    return load_policy(source, env.observation_space, algo=algo)


def _demo_record(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import gym_unity_il  # noqa: F401  (registers UnityIL-v0)
    from gym_unity_il.demo.recorder import record_episodes

    if (args.scene is None) == (args.env is None):
        raise ConfigError("give exactly one of --scene NAME (a built-in scene) and --env PATH (a Unity build)")
    if args.dataset_dir is not None and args.minari_id is None:
        raise ConfigError("--dataset-dir is where --minari-id writes its dataset; give --minari-id NAMESPACE/NAME-vN too, or leave --dataset-dir out")
    kwargs = _scene_kwargs(args) or {}
    env = gym.make("UnityIL-v0", scene=args.scene, file_name=args.env, scene_kwargs=kwargs, seed=args.seed, image_format=args.image_format)
    try:
        policy = _recording_policy(args.policy, env, scene=args.scene, algo=args.algo, seed=args.seed)
    except BaseException:
        env.close()
        raise

    def progress(index: int, episode_return: float) -> None:
        print(f"episode {index + 1}/{args.episodes}: return {episode_return:.4g}", flush=True)

    try:
        path, returns = record_episodes(
            env, policy, args.out, episodes=args.episodes, seed=args.seed, overwrite=args.overwrite, on_episode=progress,
            minari_id=args.minari_id, dataset_dir=args.dataset_dir,
        )  # fmt: skip
    except KeyboardInterrupt:
        if not args.out.is_file():
            raise
        from gym_unity_il.demo.reader import DemoReader

        meta = DemoReader(args.out).meta  # closed by record_episodes: the final counters
        print(f"interrupted: {args.out} holds {meta.number_episodes - 1} complete episodes in {meta.number_steps} records "
              "(records after the last complete episode belong to the interrupted one)", flush=True)  # fmt: skip
        return 130
    print(f"recorded {len(returns)} episodes to {path}: mean return {np.mean(returns):.4g} (min {min(returns):.4g}, max {max(returns):.4g})")
    if args.minari_id is not None:
        print(f"wrote the same episodes to the Minari dataset {args.minari_id}")
    return 0


# ---------------------------------------------------------------------------------- demo convert


def _demo_convert(args: argparse.Namespace) -> int:
    from gym_unity_il.demo.minari import demo_to_minari, minari_to_demo

    # the options of the other direction (each None, or False, unless given)
    others = ("dataset_id", "env", "hybrid_actions", "scene", "scene_kwargs", "storage") if args.to == "demo" else ("out", "overwrite")
    given = [f"--{name.replace('_', '-')}" for name in others if getattr(args, name) not in (None, False)]
    if given:
        raise ConfigError(f"{', '.join(given)} cannot go with --to {args.to}; leave {'it' if len(given) == 1 else 'them'} out")
    if args.to == "demo":
        if args.out is None:
            raise ConfigError("--to demo needs --out FILE.demo, the .demo file to write")
        path = minari_to_demo(args.source, args.out, dataset_dir=args.dataset_dir, overwrite=args.overwrite)
        print(f"wrote {path}")
        return 0
    if args.dataset_id is None:
        raise ConfigError("--to minari needs --dataset-id NAMESPACE/NAME-vN, the id of the dataset to write")
    if args.scene is not None and args.env is not None:
        raise ConfigError("give at most one of --scene NAME (a built-in scene) and --env PATH (a Unity build)")
    if args.scene_kwargs is not None and args.scene is None:
        raise ConfigError("--scene-kwargs are the arguments of --scene NAME: give the scene too")
    env_kwargs: dict[str, Any] | None = None
    if args.scene is not None:
        env_kwargs = {"scene": args.scene, "scene_kwargs": _scene_kwargs(args) or {}}
    elif args.env is not None:
        env_kwargs = {"file_name": args.env}
    storage = args.storage or "arrow"
    dataset = demo_to_minari(
        args.source, args.dataset_id, storage=storage, dataset_dir=args.dataset_dir, hybrid_actions=args.hybrid_actions or "error", env_kwargs=env_kwargs
    )
    print(f"wrote Minari dataset {dataset.id} ({storage}): {dataset.total_episodes} episodes, {dataset.total_steps} steps, in {dataset.storage.data_path.parent}")
    return 0


def _add_demo(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = commands.add_parser("demo", help="inspect, record and convert .demo files")
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
    record.add_argument("--algo", default="auto", help="algorithm of the saved model: auto (read from the file), ppo, sac, ..., recurrentppo, or policy")
    record.add_argument("--episodes", type=int, default=10)
    record.add_argument("--seed", type=int, default=0)
    record.add_argument("--image-format", default="hwc_uint8", choices=["hwc_uint8", "chw_float"])
    record.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    record.add_argument("--minari-id", help="also write the recording as a new Minari dataset of this id, NAMESPACE/NAME-vN (the datasets extra)")
    record.add_argument("--dataset-dir", type=Path, help="--minari-id: the root folder of datasets (default: MINARI_DATASETS_PATH, else ~/.minari/datasets)")
    record.set_defaults(run=_demo_record)
    convert = actions.add_parser("convert", help="convert .demo files into a Minari dataset (--to minari), or a Minari dataset into a .demo file (--to demo)")
    convert.add_argument("source", help="--to minari: a .demo file or a folder of them; --to demo: a Minari dataset id or folder")
    convert.add_argument("--to", required=True, choices=["minari", "demo"], help="what to write")
    convert.add_argument("--dataset-id", help="--to minari: the id of the new dataset, NAMESPACE/NAME-vN")
    convert.add_argument("--storage", choices=["arrow", "hdf5"], help="--to minari: Minari's storage format (default arrow)")
    convert.add_argument("--dataset-dir", type=Path,
                         help="root folder of Minari datasets to write in or read from (default: MINARI_DATASETS_PATH, else ~/.minari/datasets)")  # fmt: skip
    convert.add_argument("--hybrid-actions", choices=["error", "continuous", "discrete"], help="--to minari: which part of hybrid actions to keep (default: refuse them)")
    convert.add_argument("--scene", help="--to minari: the built-in scene the demos were recorded in (the dataset can then recreate the env)")
    convert.add_argument("--scene-kwargs", help='--to minari: that scene\'s arguments as JSON, e.g. \'{"camera_height": 64}\'')
    convert.add_argument("--env", help="--to minari: path of the Unity build the demos were recorded in")
    convert.add_argument("--out", type=Path, help="--to demo: the .demo file to write")
    convert.add_argument("--overwrite", action="store_true", help="--to demo: replace OUT if it exists")
    convert.set_defaults(run=_demo_convert)


# ---------------------------------------------------------------------------------- train


def _train(args: argparse.Namespace) -> int:
    from gym_unity_il.export.saved import RunFiles
    from gym_unity_il.train.dialects import load_config
    from gym_unity_il.train.run import train

    if args.scene is not None and args.env is not None:
        raise ConfigError("give at most one of --scene NAME (a built-in scene) and --env PATH (a Unity build)")
    kwargs = _scene_kwargs(args)
    flags = _run_flags(args)
    config = load_config(args.config)
    if flags.over(config.run).debug:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger().setLevel(logging.DEBUG)
    result = train(config, run=flags, scene=args.scene, scene_kwargs=kwargs, behavior_name=args.behavior, max_steps=args.max_steps)
    files = RunFiles.at(result.run_dir)
    if result.interrupted:
        if files.checkpoint.state.is_file():
            print(f"interrupted: checkpoint saved in {files.checkpoint.root}; continue with --resume --run-id {result.run_dir.name}")
        else:
            print(f"interrupted: the policy trained so far is saved in {files.model} ({result.trainer} runs do not resume)")
        return 130
    evaluation = result.evaluation
    assert evaluation is not None
    print(f"trained {result.trainer} on {result.behavior_name} in {result.wall_time_s:.0f} s: "
          f"mean return {evaluation.mean_return:.4g} +- {evaluation.std_return:.3g} over {len(evaluation.returns)} episodes")  # fmt: skip
    outputs = [files.model, files.evaluation, files.metrics, files.learning_curve]
    print(f"results in {result.run_dir}: {', '.join(p.name for p in outputs)}, {files.tensorboard.name}/")
    return 0


#: ``--slow`` of ML-Agents 0.10 / 0.11: the engine settings of its inference speed
SLOW_ENGINE = {"time_scale": 1.0, "target_frame_rate": 60}


def _run_flags(args: argparse.Namespace) -> RunSettings:
    """The run settings ``train``'s mlagents-learn flags set (None where a flag is not given,
    so the config's run sections apply there)."""
    from gym_unity_il.train.config import RunSettings

    if args.load:
        print("gym-unity-il: note: --load is the former name of --resume; resuming", file=sys.stderr)
    slow = SLOW_ENGINE if args.slow else {}
    flags = dict(
        env_path=args.env, env_args=args.env_args or None, base_port=args.base_port, num_envs=args.num_envs, seed=args.seed,
        width=args.width, height=args.height, quality_level=args.quality_level,
        time_scale=args.time_scale if args.time_scale is not None else slow.get("time_scale"),
        target_frame_rate=args.target_frame_rate if args.target_frame_rate is not None else slow.get("target_frame_rate"),
        capture_frame_rate=args.capture_frame_rate, no_graphics=args.no_graphics, run_id=args.run_id, initialize_from=args.initialize_from,
        resume=True if args.resume or args.load else None, force=args.force, results_dir=None if args.results_dir is None else str(args.results_dir),
        torch_device=args.torch_device, debug=args.debug,
    )  # fmt: skip
    return RunSettings.from_values({name: value for name, value in flags.items() if value is not None}, "command line")


def _add_train(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    train = commands.add_parser("train", help="train a behavior from a YAML config, ours or ML-Agents' (offline BC, GAIL, PPO/SAC with or without BC, online BC with a teacher, DAgger)",
                                description="Flags left out take the config's env_settings, engine_settings, checkpoint_settings, torch_settings "
                                            "and debug (ML-Agents files), else the defaults; flags given win, as in mlagents-learn.")  # fmt: skip
    given = {"action": "store_const", "const": True, "default": None}
    train.add_argument("config", type=Path, help="the YAML trainer config")
    train.add_argument("--run-id", help="name of the run: results go to RESULTS_DIR/RUN_ID/ (or checkpoint_settings.run_id)")
    train.add_argument("--env", help="path of a Unity build (default: a built-in scene)")
    train.add_argument("--scene", help="a built-in scene (ball, grid, hybrid) or module:Class; default ball")
    train.add_argument("--scene-kwargs", help='scene arguments as JSON, e.g. \'{"max_steps": 300}\'')
    train.add_argument("--behavior", help="the behavior to train (default: the config's only behavior section, else the first)")
    train.add_argument("--results-dir", type=Path, help="folder of run folders (default results)")
    train.add_argument("--resume", **given, help="continue the run from its checkpoint (saved by Ctrl+C or at the end)")
    train.add_argument("--load", action="store_true", help="ML-Agents 0.10 / 0.11's name of --resume")
    train.add_argument("--force", **given, help="start RUN_ID anew: delete its run folder first (only a folder of run outputs)")
    train.add_argument("--initialize-from", metavar="RUN_ID", help="start from the trained model of another run of the results folder (a new run only)")
    train.add_argument("--seed", type=int, help="seed of Python, NumPy, torch and the env copies (default 0)")
    train.add_argument("--max-steps", type=int, metavar="N",
                       help="replace the config's max_steps (every section): env steps of GAIL and RL, online BC and DAgger steps")  # fmt: skip
    train.add_argument("--num-envs", type=int, metavar="N", help="Unity processes to train with: replaces num_processes of every section")
    train.add_argument("--base-port", type=int, help="first port of the Unity processes (process p gets BASE_PORT + p)")
    train.add_argument("--no-graphics", **given, help="run the players with -nographics -batchmode (the default unless engine_settings says otherwise)")
    train.add_argument("--width", type=int, help="screen width of the players (ML-Agents default 84 when only --height is given)")
    train.add_argument("--height", type=int, help="screen height of the players (ML-Agents default 84 when only --width is given)")
    train.add_argument("--quality-level", type=int, help="quality level of the players")
    train.add_argument("--time-scale", type=float, help="simulation speed of the players")
    train.add_argument("--target-frame-rate", type=int, help="target frame rate of the players (-1: as fast as possible)")
    train.add_argument("--capture-frame-rate", type=int, help="capture frame rate of the players")
    train.add_argument("--slow", action="store_true", help="ML-Agents 0.10 / 0.11: time scale 1 and target frame rate 60 (unless given)")
    train.add_argument("--train", action="store_true", help="ML-Agents 0.10 / 0.11's training switch: accepted, gym-unity-il train always trains")
    train.add_argument("--torch-device", help="torch device: cpu (others are refused: training runs on the CPU)")
    train.add_argument("--debug", **given, help="log at DEBUG level")
    train.add_argument("--env-args", nargs=argparse.REMAINDER, default=None, help="every argument after it goes to the Unity player (give it last)")
    train.set_defaults(run=_train)


# ---------------------------------------------------------------------------------- export, check-model


def _behavior_spec_from_args(args: argparse.Namespace, demo_fallback: Path | None = None) -> Any:
    """The behavior spec named by --scene, --demo or --behavior-spec (else the fallback demo's), or None."""
    from gym_unity_il.export import loading

    given = [flag for flag, value in (("--scene", args.scene), ("--demo", args.demo), ("--behavior-spec", args.behavior_spec)) if value]
    if len(given) > 1:
        raise ConfigError(f"give one of --scene, --demo and --behavior-spec, not {' and '.join(given)}")
    if args.scene:
        kwargs = _scene_kwargs(args)
        return loading.behavior_spec_from_scene(args.scene, kwargs, behavior=args.behavior)
    if args.demo:
        return loading.behavior_spec_from_demo(args.demo)
    if args.behavior_spec:
        return loading.behavior_spec_from_json(args.behavior_spec)
    return loading.behavior_spec_from_demo(demo_fallback) if demo_fallback else None


def _export(args: argparse.Namespace) -> int:
    from gym_unity_il.export import export_onnx
    from gym_unity_il.export.saved import load_policy, read_run_dir

    source = Path(args.source)
    if source.is_dir():
        run = read_run_dir(source)
        model_path, demo = run.model_path, run.demo_path
    else:
        model_path, demo = source, None
    spec = _behavior_spec_from_args(args, demo)
    if spec is None:
        raise ConfigError(f"{source}: say which behavior the model is for with --scene NAME, --demo FILE.demo or --behavior-spec JSON")
    report = export_onnx(
        load_policy(model_path, algo=args.algo), args.out, spec, image_format=args.image_format, vec_normalize=args.vec_normalize,
        deterministic_too=not args.no_deterministic, parity_check=not args.no_parity_check, opset=args.opset, tolerance=args.tolerance,
    )  # fmt: skip
    print(report.summary())
    return 0


def _check_model(args: argparse.Namespace) -> int:
    from gym_unity_il.export import check_model

    spec = _behavior_spec_from_args(args)
    violations = check_model(args.model, spec)
    against = f" against {spec.describe()}" if spec is not None else ""
    if violations:
        print(f"{args.model}: {len(violations)} violation(s) of Unity's model contract{against}:")
        for violation in violations:
            print(f"  - {violation}")
        return 1
    print(f"{args.model}: follows Unity's model contract{against}")
    return 0


def _add_spec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scene", help="take the behavior spec from a built-in scene (ball, grid, hybrid)")
    parser.add_argument("--scene-kwargs", help='scene arguments as JSON, e.g. \'{"camera_height": 64}\'')
    parser.add_argument("--behavior", help="the behavior of a scene with several")
    parser.add_argument("--demo", type=Path, help="take the behavior spec from a .demo file")
    parser.add_argument("--behavior-spec", help='the behavior spec as JSON: \'{"observations": [[3, 84, 84], [2]], "discrete": [5]}\' (images CHW)')


def _add_export(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = commands.add_parser("export", help="export a trained policy as an ONNX model for Unity (ML-Agents' model contract)")
    export.add_argument("source", help="a run folder (results/<run-id>/) or a saved SB3 model / policy file")
    export.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    export.add_argument("--algo", default="auto", help="auto (default: read from the file), ppo, a2c, sac, td3, ddpg, dqn, recurrentppo, or policy (a bare policy file)")
    _add_spec_flags(export)
    export.add_argument("--image-format", choices=["hwc_uint8", "chw_float"], help="image format the policy was trained with (default: from its image dtype)")
    export.add_argument("--vec-normalize", type=Path, help="a VecNormalize saved with .save(): its statistics are baked in")
    export.add_argument("--opset", type=int, default=9, help="ONNX opset, 7 to 15 (default 9, as ML-Agents)")
    export.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted difference between onnxruntime and torch")
    export.add_argument("--no-deterministic", action="store_true", help="leave out the deterministic_* outputs")
    export.add_argument("--no-parity-check", action="store_true", help="skip the onnxruntime-vs-torch comparison")
    export.set_defaults(run=_export)
    check = commands.add_parser("check-model", help="check an ONNX model against Unity's model contract (exit 1 on violations)")
    check.add_argument("model", type=Path, help="the .onnx file")
    _add_spec_flags(check)
    check.set_defaults(run=_check_model)


# ---------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every topic's subcommands."""
    parser = argparse.ArgumentParser(prog="gym-unity-il", description="Unity ML-Agents scenes and .demo files for Gymnasium, SB3 and imitation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo(commands)
    _add_train(commands)
    _add_export(commands)
    return parser


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop:
    """The command's handler of SIGINT and SIGTERM: the first one raises KeyboardInterrupt
    (what Ctrl+C does), later ones are only noted, so the cleanup that the first one started
    (checkpoint, files, Unity processes) runs to its end and the command exits with 130."""

    def __init__(self) -> None:
        self.received = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.received == 1:
            raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")
        with contextlib.suppress(OSError):  # os.write, not print: print is not reentrant
            os.write(2, b"gym-unity-il: already stopping; closing files and Unity processes\n")


@contextlib.contextmanager
def _stop_signals(keep_after_stop: bool) -> Iterator[_Stop]:
    """Within the block, SIGINT and SIGTERM are handled by :class:`_Stop` (main thread only).
    The previous handlers come back afterwards, except after a stop when ``keep_after_stop``:
    the process is about to exit with 130, so both signals are ignored from then on (a
    Python handler would not do: the interpreter drops those while it shuts down)."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_IGN if stop.received and keep_after_stop else handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted by
    Ctrl+C or SIGTERM, however many arrive, after closing the Unity processes and files).

    With ``argv`` None (the ``gym-unity-il`` program itself) an interrupted command leaves
    SIGINT and SIGTERM ignored until the process exits; called with ``argv``, the previous
    handlers always come back."""
    args = build_parser().parse_args(argv)
    with _stop_signals(keep_after_stop=argv is None):
        try:
            return int(args.run(args))
        except KeyboardInterrupt:
            print("gym-unity-il: interrupted", file=sys.stderr)
            return 130
        except (GymUnityILError, OSError, json.JSONDecodeError) as exc:
            print(f"gym-unity-il: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    raise SystemExit(main())
