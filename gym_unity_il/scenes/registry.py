"""The registry of built-in scenes: their names, and the command that starts one.

A scene is named by a key of :data:`SCENES`, by a ``"module:Class"`` path, or given as a
:class:`~gym_unity_il.scenes.base.Scene` subclass. :func:`scene_command` checks the scene
and its constructor arguments, before any process starts, and turns them into the
:class:`~gym_unity_il.link.launch.PlayerCommand` a session launches::

    python -m gym_unity_il.scenes <name or module:Class> --scene-kwargs <JSON>
        [--protocol 0.4|...|0.11 [--stacked-vectors N]]

run by this interpreter with its import path (so ``module:Class`` scenes load), on a port
the OS picks unless the launch settings say otherwise, answering picture requests. The
envs call it; the session only runs the command.

This is the scene-side twin of ``gym_unity_il._plugin``, which registers the env id
``UnityIL-v0`` with gymnasium: that one must import nothing of the package, this one
imports every scene class, so they are two modules. It lives in the scenes package, the
lowest layer that knows the scenes, so the player process and the envs read one table.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Mapping
from typing import Any

from gym_unity_il.errors import ConfigError
from gym_unity_il.link.launch import LaunchSettings, PlayerCommand
from gym_unity_il.link.launcher import environment_with_import_path
from gym_unity_il.scenes.ball import BallScene
from gym_unity_il.scenes.base import Scene
from gym_unity_il.scenes.grid import GridScene
from gym_unity_il.scenes.hallway import HallwayScene
from gym_unity_il.scenes.hybrid import HybridScene
from gym_unity_il.scenes.legacy_player import LEGACY_PROTOCOLS

#: The built-in scenes by name.
SCENES: dict[str, type[Scene]] = {"ball": BallScene, "grid": GridScene, "hallway": HallwayScene, "hybrid": HybridScene}

#: The scene the envs serve when neither a build (``file_name``) nor the Editor is given.
DEFAULT_SCENE = "ball"

#: The module that serves a scene like a Unity player (``python -m``).
PLAYER_MODULE = "gym_unity_il.scenes"
#: The longest ``frame_time`` a scene may take per step, in seconds.
MAX_FRAME_TIME = 10.0


def scene_target(scene: str | type) -> str:
    """The command-line form of a built-in scene: its name, or ``module:Class`` for a class."""
    if isinstance(scene, str):
        return scene
    if isinstance(scene, type):
        if scene.__module__ == "__main__":
            raise ConfigError(
                f"scene class {scene.__qualname__} is defined in __main__, which the scene process cannot import; "
                "move it to a module and pass the class or 'module:Class'"
            )
        return f"{scene.__module__}:{scene.__qualname__}"
    raise ConfigError(f"scene must be a scene name, 'module:Class' or a Scene subclass, got {scene!r}")


def resolve_scene(target: str) -> type[Scene]:
    """The Scene class for a built-in scene name or a ``module:Class`` path.

    Raises:
        ConfigError: unknown name, module or class, or a class that is not a Scene.
    """
    if ":" in target:
        module_name, _, qualname = target.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot load scene {target!r}: {exc}; pass 'module:Class' with an importable module") from exc
    elif target in SCENES:
        obj = SCENES[target]
    else:
        raise ConfigError(f"unknown built-in scene {target!r}; choose one of {sorted(SCENES)} or pass 'module:Class'")
    if not (isinstance(obj, type) and issubclass(obj, Scene)):
        raise ConfigError(f"scene {target!r} is {obj!r}, not a subclass of gym_unity_il.scenes.base.Scene")
    return obj


def check_scene_kwargs(scene_class: type[Scene], kwargs: Mapping[str, object]) -> None:
    """Raises :class:`ConfigError` naming the keyword arguments ``scene_class`` does not take.

    ``seed`` is not allowed either: the player passes the env's seed itself.
    """
    if "seed" in kwargs:
        raise ConfigError("scene_kwargs must not contain 'seed': pass seed= to the env or session, or reset(seed=...)")
    params = inspect.signature(scene_class).parameters
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        accepted = sorted(name for name in params if name != "seed")
        raise ConfigError(f"scene {scene_class.__name__} does not take {unknown}; its arguments are {accepted}")


def scene_command(
    scene: str | type | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    *,
    launch: LaunchSettings | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> PlayerCommand | None:
    """The command that starts ``scene`` with ``scene_kwargs``; None when ``launch`` names a
    Unity build (``file_name``) or the Editor instead. With none of the three, :data:`DEFAULT_SCENE`.

    Args:
        scene: a name of :data:`SCENES`, ``"module:Class"`` or a Scene subclass importable
            from a module (the scene process gets this interpreter's import path).
        scene_kwargs: keyword arguments of the scene's constructor (JSON-serialisable), and
            two that go to the player instead: ``"protocol"``, an ML-Agents release of
            :data:`~gym_unity_il.scenes.legacy_player.LEGACY_PROTOCOLS` (``"0.4"`` ...
            ``"0.11"``) to play a Unity player of that release (default: communication API
            1.x), and with it ``"stacked_vectors"``, the vector frames each agent sends (default 1);
            and ``"frame_time"``, seconds the player waits in every step before it answers, as a
            Unity player spends rendering a frame (default 0: the scene alone).
        launch: the launch settings the command goes with (default: all defaults).
        defaults: constructor arguments the scene gets when it takes them and
            ``scene_kwargs`` leaves them out (``UnityILEnv``: ``{"num_agents": 1}``).

    Raises:
        ConfigError: a scene together with ``file_name`` or ``editor``; ``scene_kwargs``
            without a scene; an unknown scene or argument; arguments that are not JSON.
    """
    launch = launch if launch is not None else LaunchSettings()
    if scene is not None and (launch.file_name is not None or launch.editor):
        raise ConfigError("give only one of file_name (a Unity build), scene (a built-in scene) or editor=True")
    if scene is None and launch.file_name is None and not launch.editor:
        scene = DEFAULT_SCENE
    if scene is None:
        if scene_kwargs:
            raise ConfigError("scene_kwargs only apply to built-in scenes (scene=...)")
        return None
    target = scene_target(scene)
    scene_class = resolve_scene(target)
    accepted = inspect.signature(scene_class).parameters
    kwargs = {**{k: v for k, v in (defaults or {}).items() if k in accepted}, **(scene_kwargs or {})}
    player_args = _player_arguments(kwargs.pop("protocol", None), kwargs.pop("stacked_vectors", None)) + _frame_time_argument(kwargs.pop("frame_time", None))
    check_scene_kwargs(scene_class, kwargs)  # an unknown argument fails here, before any process starts
    try:
        kwargs_json = json.dumps(kwargs)
    except TypeError as exc:
        raise ConfigError(f"scene_kwargs must be JSON-serialisable: {exc}") from exc
    return PlayerCommand(
        argv=(sys.executable, "-m", PLAYER_MODULE, target, "--scene-kwargs", kwargs_json, *player_args),
        description=f"built-in scene {target!r}",
        environment=environment_with_import_path(),
        auto_port=True,
        draws_pictures=True,
    )


def _frame_time_argument(frame_time: object) -> list[str]:
    """The player's flag for ``scene_kwargs`` ``frame_time``.

    Raises:
        ConfigError: not a number of seconds from 0 to 10.
    """
    if frame_time is None:
        return []
    if isinstance(frame_time, bool) or not isinstance(frame_time, (int, float)) or not 0 <= frame_time <= MAX_FRAME_TIME:
        raise ConfigError(f"scene_kwargs frame_time must be a number of seconds from 0 to {MAX_FRAME_TIME}, got {frame_time!r}")
    return ["--frame-time", repr(float(frame_time))]


def _player_arguments(protocol: object, stacked_vectors: object) -> list[str]:
    """The player's flags for the ``protocol`` and ``stacked_vectors`` of ``scene_kwargs``.

    Raises:
        ConfigError: a protocol other than those of
            :data:`~gym_unity_il.scenes.legacy_player.LEGACY_PROTOCOLS`; ``stacked_vectors``
            that is not an integer >= 1, or given without a 0.x protocol.
    """
    releases = ", ".join(map(repr, LEGACY_PROTOCOLS))
    if protocol is not None and (not isinstance(protocol, str) or protocol not in LEGACY_PROTOCOLS):
        raise ConfigError(
            f"scene_kwargs protocol={protocol!r} is not one the scene player speaks: give one of {releases} "
            "(a player of that ML-Agents release), or none for communication API 1.x"
        )
    if stacked_vectors is None:
        return ["--protocol", protocol] if protocol else []
    if protocol is None:
        raise ConfigError(
            "scene_kwargs stacked_vectors applies to ML-Agents 0.x players only (communication API 1.x has no stacked vector "
            f"observation): give protocol, one of {releases}, with it"
        )
    if isinstance(stacked_vectors, bool) or not isinstance(stacked_vectors, int) or stacked_vectors < 1:
        raise ConfigError(f"scene_kwargs stacked_vectors must be an integer >= 1, got {stacked_vectors!r}")
    return ["--protocol", protocol, "--stacked-vectors", str(stacked_vectors)]
