"""Loading what an export needs from files besides the policy (:mod:`gym_unity_il.export.saved`):
VecNormalize statistics and behavior specs.

VecNormalize files are pickles: load only files you trust.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gym_unity_il.errors import ConfigError
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec


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
