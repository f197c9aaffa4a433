"""Loading what an export needs from files: saved policies, VecNormalize statistics, behavior specs.

Saved SB3 models, bare policies and VecNormalize files are pickles: load only files you trust.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gym_unity_il.errors import ConfigError
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

#: SB3 algorithm classes ``load_policy_file`` accepts by name.
ALGOS = ("auto", "ppo", "a2c", "sac", "td3", "ddpg", "dqn", "policy")


def load_policy_file(path: str | os.PathLike[str], *, algo: str = "auto") -> Any:
    """The policy saved at ``path``, on the CPU.

    Args:
        path: an SB3 model (``model.save("x.zip")`` of any algorithm) or a bare policy
            (``policy.save(path)``, as imitation's BC policy is saved).
        algo: ``auto`` rebuilds the policy from the file alone (the policy class and its
            arguments are stored in it); an algorithm name loads through that class's
            ``load``; ``policy`` reads a bare policy file.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ConfigError: an unknown ``algo`` or a file that is neither kind.
    """
    path = Path(path)
    if algo not in ALGOS:
        raise ConfigError(f"--algo {algo!r} is not one of {ALGOS}")
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    if algo not in ("auto", "policy"):
        import stable_baselines3

        return getattr(stable_baselines3, algo.upper()).load(str(path), device="cpu").policy
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{path} is not a saved SB3 model or policy (not a zip archive)")
    with zipfile.ZipFile(path) as archive:
        is_algorithm = "data" in archive.namelist() and "policy.pth" in archive.namelist()
    if algo == "auto" and is_algorithm:
        return _policy_from_algorithm_file(path)
    return _policy_from_policy_file(path)


def _policy_from_algorithm_file(path: Path) -> Any:
    """Rebuilds ``model.policy`` from an algorithm's zip without the algorithm class."""
    import inspect

    from stable_baselines3.common.save_util import load_from_zip_file

    data, params, _ = load_from_zip_file(str(path), device="cpu", print_system_info=False)
    if data is None or "policy_class" not in data or "policy" not in params:
        raise ConfigError(f"{path}: the archive has no policy class or policy weights; pass --algo with the model's algorithm")
    cls = data["policy_class"]
    if isinstance(cls, str) or not callable(cls):
        raise ConfigError(f"{path}: the policy class could not be restored ({cls!r}); pass --algo with the model's algorithm")
    kwargs = dict(data.get("policy_kwargs") or {})
    if "use_sde" in inspect.signature(cls).parameters and "use_sde" not in kwargs and "use_sde" in data:
        kwargs["use_sde"] = data["use_sde"]  # on-policy algorithms pass it beside policy_kwargs
    policy = cls(data["observation_space"], data["action_space"], lambda _: 0.0, **kwargs)
    policy.load_state_dict(params["policy"])
    return policy.to("cpu")


def _policy_from_policy_file(path: Path) -> Any:
    """A bare SB3 policy file (``BasePolicy.save``) as an ActorCriticPolicy."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    saved = torch.load(str(path), map_location="cpu", weights_only=False)  # a pickle: trusted files only
    if not isinstance(saved, Mapping) or "data" not in saved or "state_dict" not in saved:
        raise ConfigError(f"{path} is not a saved SB3 policy (expected the 'data' and 'state_dict' that policy.save writes)")
    policy = ActorCriticPolicy(**saved["data"])
    policy.load_state_dict(saved["state_dict"])
    return policy


#: What ``gym-unity-il train`` writes into ``results/<run-id>/`` that an export reads.
RUN_MODEL = "model.zip"
RUN_SUMMARY = "evaluation.json"
RUN_CONFIG = "config.yaml"


@dataclass(frozen=True)
class TrainingRun:
    """What an export takes from a training run's folder.

    Attributes:
        model_path: the saved SB3 model (``model.zip``).
        behavior_name: the behavior trained, when the run recorded it.
        demo_path: the demonstrations it learned from (their spec is the behavior's), when
            the recorded path still exists.
    """

    model_path: Path
    behavior_name: str | None
    demo_path: Path | None


def read_run_dir(run_dir: str | os.PathLike[str]) -> TrainingRun:
    """The model and the behavior of ``results/<run-id>/`` as ``gym-unity-il train`` writes it.

    The demo path comes from ``evaluation.json`` (else ``config.yaml``); a relative path is
    looked up from the working directory, then from the run's folder.

    Raises:
        ConfigError: the folder holds no ``model.zip`` (a run that has not finished).
    """
    run_dir = Path(run_dir)
    model = run_dir / RUN_MODEL
    if not model.is_file():
        raise ConfigError(f"{run_dir} holds no {RUN_MODEL}: is it a finished run of 'gym-unity-il train' (results/<run-id>/)?")
    behavior, demo = None, None
    summary = run_dir / RUN_SUMMARY
    if summary.is_file():
        data = json.loads(summary.read_text(encoding="utf-8"))
        behavior, demo = data.get("behavior"), data.get("demo_path")
    elif (run_dir / RUN_CONFIG).is_file():
        import yaml

        config = yaml.safe_load((run_dir / RUN_CONFIG).read_text(encoding="utf-8")) or {}
        sections = [v for k, v in config.items() if k != "default" and isinstance(v, Mapping)] or [config.get("default") or {}]
        demo = sections[0].get("demo_path") if len(sections) == 1 else None
    demo_path = None
    if demo:
        candidates = [Path(demo)] if Path(demo).is_absolute() else [Path(demo), run_dir / demo]
        demo_path = next((c for c in candidates if c.exists()), None)
    return TrainingRun(model, behavior, demo_path)


def load_vec_normalize(path: str | os.PathLike[str]) -> Any:
    """A ``VecNormalize`` saved with ``vec_normalize.save(path)`` (without its env)."""
    from stable_baselines3.common.vec_env import VecNormalize

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no VecNormalize file at {path}")
    with path.open("rb") as f:
        loaded = pickle.load(f)  # a pickle: trusted files only
    if not isinstance(loaded, VecNormalize):
        raise ConfigError(f"{path} holds a {type(loaded).__name__}, not a VecNormalize saved with .save()")
    return loaded


def behavior_spec_from_scene(name: str, scene_kwargs: Mapping[str, Any] | None = None, *, behavior: str | None = None) -> BehaviorSpec:
    """The behavior spec of a built-in scene (built in this process, no player started).

    Raises:
        ConfigError: an unknown scene or behavior, or a scene with several behaviors and no ``behavior``.
    """
    from gym_unity_il.scenes import make_scene

    specs = make_scene(name, **dict(scene_kwargs or {})).behavior_specs()
    return _choose(specs, behavior, f"scene {name!r}")


def behavior_spec_from_demo(path: str | os.PathLike[str]) -> BehaviorSpec:
    """The behavior spec recorded in a ``.demo`` file (the first file of a folder)."""
    from gym_unity_il.demo.reader import DemoReader, demo_files

    return DemoReader(demo_files(path)[0]).behavior_spec


def behavior_spec_from_json(text: str) -> BehaviorSpec:
    """A behavior spec from JSON: ``{"observations": [[3, 84, 84], [2]], "continuous": 2,
    "discrete": [5], "name": "MyBehavior?team=0"}``. Observation shapes are as Unity feeds
    the model (images channels first); only ``observations`` is required.

    Raises:
        ConfigError: invalid JSON or fields.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--behavior-spec is not valid JSON ({exc}); example: '{{\"observations\": [[8]], \"continuous\": 2}}'") from exc
    if not isinstance(data, dict) or not isinstance(data.get("observations"), list):
        raise ConfigError("--behavior-spec needs an object with an 'observations' list of shapes, e.g. '{\"observations\": [[8]], \"continuous\": 2}'")
    unknown = sorted(set(data) - {"observations", "continuous", "discrete", "name"})
    if unknown:
        raise ConfigError(f"--behavior-spec: unknown field(s) {unknown}; fields are observations, continuous, discrete, name")
    try:
        observations = tuple(ObservationSpec(tuple(shape), channels_first=True) for shape in data["observations"])
        actions = ActionSpec(int(data.get("continuous", 0)), tuple(data.get("discrete", ())))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--behavior-spec: {exc}") from exc
    return BehaviorSpec(str(data.get("name", "Behavior?team=0")), observations, actions)


def _choose(specs: Mapping[str, BehaviorSpec], behavior: str | None, where: str) -> BehaviorSpec:
    if behavior is not None:
        for name, spec in specs.items():
            if behavior in (name, spec.behavior_name):
                return spec
        raise ConfigError(f"{where} has no behavior {behavior!r}; its behaviors are {list(specs)}")
    if len(specs) != 1:
        raise ConfigError(f"{where} has several behaviors {list(specs)}; choose one with --behavior")
    return next(iter(specs.values()))
