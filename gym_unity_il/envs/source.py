"""Where an env's agents come from: a Unity build, the Unity Editor or a built-in scene.

:func:`open_session` is how every env of this package starts a session from the
arguments its users give: ``scene`` and ``scene_kwargs`` (a built-in scene, turned into a
command by :mod:`gym_unity_il.scenes.registry`), the launch settings
(``launch=LaunchSettings(...)`` or its fields as keywords, e.g. ``file_name``,
``editor``, ``worker_id``) and the session's other arguments (``seed``,
``image_format``, ...). With neither a build, the Editor nor a scene, the built-in scene
``"ball"`` runs. It runs where the session lives (on a thread of the learner or in a Ray
actor), so the scene's command is made for that process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.link.session import UnitySession
from gym_unity_il.scenes.registry import scene_command


def open_session(
    *,
    scene: str | type | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    scene_defaults: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> UnitySession:
    """A session on the Unity build, Editor or built-in scene the arguments name.

    Args:
        scene: a built-in scene: a name of ``gym_unity_il.scenes.SCENES``,
            ``"module:Class"`` or a Scene subclass.
        scene_kwargs: constructor arguments of the built-in scene.
        scene_defaults: constructor arguments the scene gets when it takes them and
            ``scene_kwargs`` leaves them out.
        **kwargs: ``launch`` and the fields of
            :class:`~gym_unity_il.link.launch.LaunchSettings`, and the other arguments of
            :class:`~gym_unity_il.link.session.UnitySession`.

    Raises:
        ConfigError: an unknown scene, scene argument or keyword, contradictory arguments
            (checked before any process starts); and the errors of
            :class:`~gym_unity_il.link.session.UnitySession`.
    """
    launch, options = LaunchSettings.take(kwargs)
    player = scene_command(scene, scene_kwargs, launch=launch, defaults=scene_defaults)
    return UnitySession(launch=launch, player=player, **options)
