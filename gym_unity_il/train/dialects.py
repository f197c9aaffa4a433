"""Config files in any of the three dialects: ours, ML-Agents 0.10 / 0.11's, and today's ML-Agents'.

:func:`load_config` (what ``gym-unity-il train`` and :func:`gym_unity_il.train.train` read a
file with) and :func:`parse_any_config` recognise the dialect from the file itself:

* a top-level ``behaviors:`` is today's ML-Agents (:mod:`~gym_unity_il.train.modern_config`);
* a section holding a key only the seed era's files have (``beta``, ``lambd``,
  ``time_horizon``, ``use_recurrent``, ``reward_signals``, ``pretraining``, ...) is ML-Agents
  0.10 / 0.11 (:mod:`~gym_unity_il.train.seed_config`);
* anything else is ours (:mod:`~gym_unity_il.train.config`), whose unknown keys stay errors.

An ML-Agents file is translated into ours in one place (its dialect's ``translate``), its
warnings logged once each (what is ignored or approximated, and why), and then read like one
of ours. The run sections of today's files (``env_settings``, ``engine_settings``,
``checkpoint_settings``, ``torch_settings``, ``debug``) become the config's
:class:`~gym_unity_il.train.config.RunSettings`, which ``gym-unity-il train``'s flags override
(:data:`~gym_unity_il.train.modern_config.KEYS` says where each key goes).
``environment_parameters`` (today's files, and a top-level section of ours in ML-Agents' shape,
read by :func:`~gym_unity_il.train.modern_config.read_environment_parameters`) become the
config's :attr:`~gym_unity_il.train.config.RunConfig.environment_parameters`, which runs apply
(:mod:`~gym_unity_il.train.curriculum`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from gym_unity_il.train import modern_config, seed_config
from gym_unity_il.train.config import (
    FORMER_KEYS,
    Lesson,
    RunConfig,
    RunSettings,
    TrainerSettings,
    parse_config,
    read_config_file,
    resolve_demo_paths,
)

logger = logging.getLogger(__name__)

Dialect = Literal["ours", "seed", "modern"]
#: The top-level section of environment parameters (today's files, and ours).
ENVIRONMENT_PARAMETERS = "environment_parameters"

#: Keys of the seed era's sections that our own sections do not have: one of them makes a file seed-era.
SEED_ONLY_KEYS = frozenset(seed_config.KEYS["section"]) - {f.name for f in fields(TrainerSettings)} - set(FORMER_KEYS)


def dialect_of(data: Any) -> Dialect:
    """The dialect of a config file's parsed YAML (see the module docstring)."""
    if not isinstance(data, Mapping):
        return "ours"  # parse_config says what is wrong with it
    if "behaviors" in data:
        return "modern"
    sections = (section for name, section in data.items() if name != ENVIRONMENT_PARAMETERS)  # its keys are parameter names
    if any(isinstance(section, Mapping) and SEED_ONLY_KEYS.intersection(section) for section in sections):
        return "seed"
    return "ours"


def parse_any_config(data: Any, *, source: str = "<memory>") -> RunConfig:
    """A RunConfig from a config file's parsed YAML, in any dialect.

    Raises:
        ConfigError: what the dialect refuses (unknown keys, settings that would silently
            change the result), naming the file, the section, the key and the fix.
    """
    dialect = dialect_of(data)
    if dialect == "ours":
        ours = dict(data) if isinstance(data, Mapping) else data
        raw = ours.pop(ENVIRONMENT_PARAMETERS, None) if isinstance(ours, dict) else None
        config = parse_config(ours, source=source)
        if raw is None:
            return config
        parameters, warnings = modern_config.read_environment_parameters(raw, source=source)
        for warning in warnings:
            logger.warning("%s", warning)
        return dataclasses.replace(config, environment_parameters=_lessons(parameters))
    translate = seed_config.translate if dialect == "seed" else modern_config.translate
    ours, warnings = translate(data, source=source)
    for warning in warnings:
        logger.warning("%s", warning)
    extra = {key: ours.pop(key) for key in modern_config.RUN_SECTIONS if key in ours} if dialect == "modern" else {}
    run = RunSettings()
    for section, values in extra.get("run", {}).items():
        run = RunSettings.from_values(values, f"{source}: {section}").over(run)
    logger.info("%s: read as an ML-Agents %s config", source, "0.10 / 0.11" if dialect == "seed" else "(behaviors:)")
    config = parse_config(ours, source=source)
    return dataclasses.replace(config, run=run, environment_parameters=_lessons(extra.get(ENVIRONMENT_PARAMETERS) or {}))


def _lessons(data: Mapping[str, Any]) -> dict[str, tuple[Lesson, ...]]:
    """The environment parameters read by :func:`~gym_unity_il.train.modern_config.read_environment_parameters`, as lessons."""
    return {name: tuple(Lesson.from_data(lesson) for lesson in lessons) for name, lessons in data.items()}


def load_config(path: str | Path) -> RunConfig:
    """Reads a YAML config file of any dialect (see :func:`~gym_unity_il.train.config.read_config_file`
    for what a file may be). ``demo_path`` values are resolved relative to the file's folder
    when they are relative paths that exist there."""
    path = Path(path)
    return resolve_demo_paths(parse_any_config(read_config_file(path), source=str(path)), path.parent)
