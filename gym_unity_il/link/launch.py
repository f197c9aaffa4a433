"""What a session launches and how: :class:`LaunchSettings` and :class:`PlayerCommand`.

* :class:`LaunchSettings`: the settings of one launch (which build or the Editor, ports,
  timeout, log folder, extra arguments, engine settings, server address, message limit),
  checked once when made. Every env of this package takes them the same way, as
  ``launch=LaunchSettings(...)``, as its fields given as keywords, or both (the keywords
  win), through :meth:`LaunchSettings.from_kwargs`;
* :class:`PlayerCommand`: how to start a player that is not a Unity build, such as a
  program that plays Unity's side itself. The session appends Unity's flags to it
  (protocol.md §3) and knows nothing else about what it runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from gym_unity_il.errors import ConfigError
from gym_unity_il.link.server import DEFAULT_MAX_MESSAGE_BYTES, check_max_message_bytes
from gym_unity_il.protocol.channels import EngineConfig
from gym_unity_il.protocol.legacy import API_10

#: Default base port when launching a player (Unity's trainer: 5005).
BUILD_BASE_PORT = 5005
#: Default port of the Unity Editor's ML-Agents connection (ML-Agents 0.11 and 1.0 on).
EDITOR_BASE_PORT = 5004


@dataclasses.dataclass(frozen=True, kw_only=True)
class LaunchSettings:
    """How a session reaches its player: launch a Unity build (``file_name``), a
    :class:`PlayerCommand` given to the session, or wait for the Unity Editor (``editor``).

    Attributes:
        file_name: path of a Unity player build (platform suffix optional).
        editor: wait for the Unity Editor to connect (press Play) instead of launching.
        worker_id: offset added to ``base_port``; give each simultaneous env its own.
        base_port: first port; default 5005 for launched players, 5004 for the Editor (and
            5005 too when free: the Editor port of ML-Agents 0.10).
        auto_port: let the OS pick a free port (never collides). None (default): the
            player's own default (yes for built-in scenes, no for builds); not possible
            with the Editor.
        no_graphics: pass ``-nographics -batchmode`` to the player.
        additional_args: extra command-line arguments for the player, passed verbatim.
        log_folder: folder of the player log ``Player-<worker_id>.log``; None uses a
            temporary folder, deleted at close unless an error pointed to it.
        timeout_wait: seconds to wait for each message from Unity (the first included).
        host: address the server binds; keep loopback unless Unity runs on another machine.
        engine_config: engine settings sent with the first RESET (an
            :class:`~gym_unity_il.protocol.channels.EngineConfig` or a dict such as
            ``{"time_scale": 20}``).
        max_message_bytes: the largest gRPC message accepted or sent (1 KiB to 2 GiB - 1).

    Raises:
        ConfigError: contradictory or out-of-range settings.
        ValueError: an ``engine_config`` dict with unknown settings.
    """

    file_name: str | os.PathLike[str] | None = None
    editor: bool = False
    worker_id: int = 0
    base_port: int | None = None
    auto_port: bool | None = None
    no_graphics: bool = True
    additional_args: Sequence[str] = ()
    log_folder: str | os.PathLike[str] | None = None
    timeout_wait: float = 60.0
    host: str = "127.0.0.1"
    engine_config: EngineConfig | Mapping[str, float] | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if self.file_name is not None and self.editor:
            raise ConfigError("give only one of file_name (a Unity build), scene (a built-in scene) or editor=True")
        object.__setattr__(self, "max_message_bytes", check_max_message_bytes(self.max_message_bytes))
        if self.timeout_wait <= 0:
            raise ConfigError(f"timeout_wait must be positive seconds, got {self.timeout_wait}")
        if self.worker_id < 0:
            raise ConfigError(f"worker_id must be >= 0, got {self.worker_id}")
        if self.editor and self.worker_id != 0:
            raise ConfigError(f"the Unity Editor listens on one port: use worker_id=0 (got {self.worker_id}) and set base_port instead")
        if self.editor and self.auto_port:
            raise ConfigError("auto_port=True cannot reach the Unity Editor, which connects to the port set in its settings (default 5004)")
        object.__setattr__(self, "additional_args", tuple(self.additional_args))
        if isinstance(self.engine_config, Mapping):
            object.__setattr__(self, "engine_config", EngineConfig.from_mapping(self.engine_config))

    @classmethod
    def from_kwargs(cls, launch: LaunchSettings | None = None, /, **fields: Any) -> LaunchSettings:
        """``launch`` (default: all defaults) with the given fields replaced.

        Raises:
            ConfigError: ``launch`` is not a LaunchSettings, or a keyword is not a field
                (the message names it and the fields).
        """
        if launch is not None and not isinstance(launch, LaunchSettings):
            raise ConfigError(f"launch must be a LaunchSettings, got {launch!r}")
        unknown = sorted(set(fields) - set(LAUNCH_FIELDS))
        if unknown:
            raise ConfigError(f"unknown keyword argument(s) {unknown}; the launch settings (LaunchSettings) are {list(LAUNCH_FIELDS)}")
        if launch is None:
            return cls(**fields)
        return dataclasses.replace(launch, **fields) if fields else launch

    @classmethod
    def take(cls, kwargs: Mapping[str, Any]) -> tuple[LaunchSettings, dict[str, Any]]:
        """The settings given among ``kwargs`` (``launch=`` and the fields, as in
        :meth:`from_kwargs`), and the other keyword arguments."""
        rest = dict(kwargs)
        launch = rest.pop("launch", None)
        fields = {name: rest.pop(name) for name in LAUNCH_FIELDS if name in rest}
        return cls.from_kwargs(launch, **fields), rest

    def port(self, *, auto_port: bool) -> int:
        """The port the trainer listens on: 0 (the OS picks one) with ``auto_port`` (the
        player's default, used when the setting is None), else ``base_port + worker_id``."""
        chosen = self.auto_port if self.auto_port is not None else auto_port
        if chosen:
            return 0
        base = self.base_port if self.base_port is not None else EDITOR_BASE_PORT if self.editor else BUILD_BASE_PORT
        return base + self.worker_id

    def extra_ports(self) -> tuple[int, ...]:
        """Ports the trainer listens on as well, when free: with the Editor and no ``base_port``,
        the Editor port of ML-Agents 0.10 and older (5005, protocol-legacy.md §3), so that an
        Editor of any era finds the trainer without settings."""
        return (API_10.editor_port,) if self.editor and self.base_port is None else ()


#: The names of the fields of :class:`LaunchSettings`, in order.
LAUNCH_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LaunchSettings))


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlayerCommand:
    """How to start a player other than a Unity build named by ``file_name``.

    Attributes:
        argv: the program and its own arguments; the session appends Unity's flags
            (``--mlagents-port``, ``-logFile``, ...) and ``additional_args``.
        description: how error messages name the player (e.g. ``"built-in scene 'ball'"``).
        environment: the child's environment variables (None: this process's).
        auto_port: whether the OS picks the port when the launch settings leave
            ``auto_port`` at None (a player that takes any port).
        draws_pictures: the player answers picture requests on
            :class:`~gym_unity_il.protocol.channels.ScenePictureChannel`, so the session
            opens that channel (``session.scene_pictures``).

    Raises:
        ConfigError: an empty ``argv``.
    """

    argv: Sequence[str]
    description: str
    environment: Mapping[str, str] | None = None
    auto_port: bool = False
    draws_pictures: bool = False

    def __post_init__(self) -> None:
        if not self.argv:
            raise ConfigError("a PlayerCommand needs a program to run: argv is empty")
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        if self.environment is not None:
            object.__setattr__(self, "environment", dict(self.environment))
