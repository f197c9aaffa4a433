"""Built-in scenes: numpy simulations served over Unity's protocol from their own process.

===========  ======================  ==================================================
name         behavior                task
===========  ======================  ==================================================
``ball``     ``3DBall?team=0``       balance a ball on a tilting plate (continuous 2)
``grid``     ``GridWorld?team=0``    reach the goal the goal signal names, seen by a
                                     camera (discrete [5] with action masks)
``hallway``  ``Hallway?team=0``      choose at the corridor's end the colour shown only
                                     at its start: needs memory (discrete [3] with
                                     action masks; vector or camera)
``hybrid``   ``Hybrid?team=0``       move to a target (continuous 2) and grab it
                                     (discrete [2])
===========  ======================  ==================================================

Every scene takes keyword-only constructor arguments, among them ``num_agents``,
``max_steps``, ``decision_period`` and ``seed``; the environment parameter
``gym_unity_il.seed`` re-seeds it at the next reset. ``ball`` and ``grid`` also offer a
``Teacher`` and a ``Student`` behavior (``teacher_student=True``) for online BC, and
``grid`` a sparse-reward exploration task (``sparse=True``, ``camera=False``). The
``hallway`` expert keeps recurrent state (SB3's ``predict(observation, state,
episode_start)``), as every policy that solves it must. Every
scene draws a picture of an agent's area for people (``Scene.render``), which the
trainer asks for on :class:`~gym_unity_il.protocol.channels.ScenePictureChannel`.

Use :func:`make_scene` to build one and :func:`expert_policy` for its scripted expert.
The table of scenes and the command that starts one in its own process are in
:mod:`gym_unity_il.scenes.registry`.
"""

from __future__ import annotations

import inspect
from typing import Any

from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes.academy import SEED_PARAMETER
from gym_unity_il.scenes.ball import BallExpert
from gym_unity_il.scenes.base import AgentBatch, Scene
from gym_unity_il.scenes.expert import ScriptedPolicy
from gym_unity_il.scenes.grid import GridExpert
from gym_unity_il.scenes.hallway import HallwayExpert
from gym_unity_il.scenes.hybrid import HybridExpert
from gym_unity_il.scenes.registry import DEFAULT_SCENE, SCENES
from gym_unity_il.spec import ImageFormat, check_image_format

#: The scripted expert of each built-in scene.
EXPERTS: dict[str, type[ScriptedPolicy]] = {"ball": BallExpert, "grid": GridExpert, "hallway": HallwayExpert, "hybrid": HybridExpert}


def _scene_class(name: str) -> type[Scene]:
    if name not in SCENES:
        raise ConfigError(f"unknown built-in scene {name!r}; choose one of {sorted(SCENES)}")
    return SCENES[name]


def make_scene(name: str, **kwargs: Any) -> Scene:
    """Builds the built-in scene ``name`` with keyword constructor arguments.

    Raises:
        ConfigError: the name is unknown, or an argument is unknown or invalid.
    """
    cls = _scene_class(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(f"scene {name!r} does not take {unknown}; its arguments are {accepted}")
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def expert_policy(name: str, *, image_format: ImageFormat = "hwc_uint8") -> ScriptedPolicy:
    """The scripted expert of scene ``name``, reading observations as the env returns them.

    Args:
        name: a key of :data:`SCENES`.
        image_format: the layout of image observations the expert will receive.
    """
    _scene_class(name)
    check_image_format(image_format)
    return EXPERTS[name](image_format=image_format)


__all__ = [
    "DEFAULT_SCENE",
    "EXPERTS",
    "SCENES",
    "SEED_PARAMETER",
    "AgentBatch",
    "Scene",
    "ScriptedPolicy",
    "expert_policy",
    "make_scene",
]
