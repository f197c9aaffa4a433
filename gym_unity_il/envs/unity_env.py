"""``UnityILEnv``: one agent of a Unity scene (build, Editor or built-in scene) as a Gymnasium env.

Registered as ``UnityIL-v0``::

    import gymnasium as gym
    import gym_unity_il  # noqa: F401

    env = gym.make("UnityIL-v0")                                  # built-in scene "ball", one agent
    env = gym.make("UnityIL-v0", scene="grid")                    # another built-in scene
    env = gym.make("UnityIL-v0", file_name="Builds/MyGame.x86_64")  # a Unity build
    env = gym.make("UnityIL-v0", editor=True)                     # the Editor: press Play

The launch settings (``file_name``, ``editor``, ``worker_id``, ``timeout_wait``, ...) are
the fields of :class:`~gym_unity_il.link.launch.LaunchSettings`, given as keywords or as
``launch=LaunchSettings(...)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from gym_unity_il.envs.source import open_session
from gym_unity_il.envs.worker import MAX_MESSAGES, decided_by_unity, resolve_behavior
from gym_unity_il.errors import AgentNeverDecidesError, ConfigError, EnvClosedError, ResetNeededError
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.link.session import UnitySession
from gym_unity_il.protocol.agents import StepBatch
from gym_unity_il.protocol.channels import StatsAggregationMethod
from gym_unity_il.spec import BehaviorSpec, ImageFormat

_RESET_OPTIONS = ("env_parameters",)


class UnityILEnv(gym.Env):
    """One agent of one behavior of a Unity scene, over ML-Agents' gRPC protocol.

    The env drives the *first* agent of the chosen behavior. Any other agents of the scene
    (of that behavior or of other behaviors) keep running with all-zero actions; to control
    every agent at once, use the VecEnv of :mod:`gym_unity_il.envs`. Built-in scenes that
    take ``num_agents`` are started with one agent unless ``scene_kwargs`` says otherwise.

    Spaces come from the behavior's spec (:mod:`gym_unity_il.spec`): the observation is the
    one sensor's Box, or a Dict keyed by sensor name for several sensors; actions are
    ``Box(-1, 1)``, ``Discrete``, ``MultiDiscrete`` or
    ``Dict(continuous=Box, discrete=MultiDiscrete)`` for hybrid behaviors.

    ``step()`` returns ``terminated`` when the agent's episode ended on its own and
    ``truncated`` when it was cut (``max_step_reached``); the reward is the sum of everything
    the agent received since its last decision (several Unity messages when it decides less
    often than other agents). ``info`` holds ``behavior_name``, ``agent_id``, ``stats``
    (what the scene recorded with its StatsRecorder since the previous call:
    ``key -> [(value, StatsAggregationMethod), ...]``) and, for discrete behaviors,
    ``action_mask`` (flattened over branches, True = allowed; see :meth:`action_masks`).

    Args:
        scene: a built-in scene: a name of ``gym_unity_il.scenes.SCENES``, ``"module:Class"``
            or a Scene subclass. With neither ``file_name``, ``scene`` nor ``editor``,
            the scene ``"ball"`` runs.
        scene_kwargs: constructor arguments of the built-in scene.
        behavior_name: the behavior to control, with or without ``?team=N``; default: the
            first one Unity announces.
        seed: seed sent to Unity at the handshake.
        image_format: ``"hwc_uint8"`` (uint8 HWC images) or ``"chw_float"`` (float32 CHW in [0, 1]).
        env_parameters: environment parameters set before the first reset.
        render_mode: None or ``"rgb_array"``: :meth:`render` returns the built-in scene's
            picture of the controlled agent's area, or for a Unity build its first camera
            observation.
        render_size: ``(height, width)`` of a built-in scene's picture.
        launch: the :class:`~gym_unity_il.link.launch.LaunchSettings`: which build
            (``file_name``) or the Editor (``editor=True``: press Play after creating the
            env), ``worker_id``, ``base_port``, ``auto_port``, ``no_graphics``,
            ``additional_args``, ``log_folder``, ``timeout_wait``, ``host``,
            ``engine_config``, ``max_message_bytes``.
        **launch_fields: those fields as keywords (they replace the values of ``launch``).

    Raises:
        UnityExecutableNotFoundError, PortInUseError, UnityTimeoutError,
        UnityProcessExitedError, UnityVersionError: see :class:`~gym_unity_il.link.session.UnitySession`.
        ConfigError: an unknown behavior, render mode or argument; ``render_mode="rgb_array"``
            with neither a scene picture nor a camera.
    """

    #: ``render_fps``: the built-in scenes' Academy step is 0.02 s, Unity's default fixed time step.
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        *,
        scene: str | type | None = None,
        scene_kwargs: Mapping[str, Any] | None = None,
        behavior_name: str | None = None,
        seed: int = 0,
        image_format: ImageFormat = "hwc_uint8",
        env_parameters: Mapping[str, float] | None = None,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (160, 160),
        launch: LaunchSettings | None = None,
        **launch_fields: Any,
    ) -> None:
        self._session: UnitySession | None = None
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        launch = LaunchSettings.from_kwargs(launch, **launch_fields)
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.image_format: ImageFormat = image_format
        self._session = open_session(
            scene=scene,
            scene_kwargs=scene_kwargs,
            scene_defaults={"num_agents": 1},  # the env drives one agent
            launch=launch,
            seed=seed,
            image_format=image_format,
            env_parameters=env_parameters,
        )
        try:
            pictures = self._session.scene_pictures if render_mode == "rgb_array" else None
            if pictures is not None:
                pictures.request(behavior=behavior_name or "", size=self.render_size)  # does the scene draw itself?
            self._session.reset()
            #: The channel render() reads, when the scene answered with a picture.
            self._pictures = pictures if pictures is not None and any(p is not None for p in pictures.pictures.values()) else None
            self._behavior = resolve_behavior(self._session.behavior_specs, behavior_name, unity_decides=decided_by_unity(self._session))
            self.behavior_spec: BehaviorSpec = self._session.behavior_specs[self._behavior]
            self.observation_space = self.behavior_spec.observation_space(image_format)
            self.action_space = self.behavior_spec.action_space()
            self._camera = next((i for i, o in enumerate(self.behavior_spec.observation_specs) if o.is_visual), None)
            if self._camera is None and self._pictures is None:
                if self._session.scene_pictures is None:
                    self.metadata = {**self.metadata, "render_modes": []}  # nothing to render: no camera, no scene picture
                if render_mode == "rgb_array":
                    raise ConfigError(
                        f"render_mode='rgb_array' needs a camera observation or a built-in scene that draws itself (Scene.render); "
                        f"{self.behavior_spec.describe()} has no camera"
                    )
        except BaseException:
            self.close()
            raise
        self._agent_id: int | None = None
        self._row = 0
        self._needs_reset = True
        self._last_obs: tuple[np.ndarray, ...] = ()
        self._last_mask: np.ndarray | None = None

    # ------------------------------------------------------------------ gymnasium API

    @property
    def behavior_name(self) -> str:
        """The fully qualified name of the controlled behavior."""
        return self._behavior

    @property
    def session(self) -> UnitySession:
        """The live connection (environment parameter samplers, engine settings, stats)."""
        if self._session is None:
            raise EnvClosedError("the env is closed")
        return self._session

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Resets every agent of the scene and returns the first observation of the controlled one.

        Args:
            seed: seeds ``self.np_random`` and reseeds the scene (deterministic on built-in
                scenes; a Unity build honours it if it reads the parameter ``gym_unity_il.seed``).
            options: ``{"env_parameters": {key: float}}`` sets environment parameters first.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(_RESET_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown reset option(s) {unknown}; supported: {list(_RESET_OPTIONS)}")
        self._request_picture(-1)  # the agent the env is about to choose: the behavior's first deciding agent
        steps = self.session.reset(seed=seed, env_parameters=options.get("env_parameters"))
        decision, _ = steps[self._behavior]
        for _ in range(MAX_MESSAGES):
            if len(decision):
                break
            decision, _ = self.session.step()[self._behavior]  # no decision yet: let the scene run
        else:
            raise AgentNeverDecidesError(f"no agent of {self._behavior!r} asked for a decision in {MAX_MESSAGES} messages after the reset")
        self._agent_id = int(decision.agent_id[0])
        self._row = 0
        self._needs_reset = False
        self._remember(decision, 0)
        return self._observation(), self._info(decision, 0)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Applies ``action`` to the controlled agent and runs until its next decision or episode end."""
        if self._needs_reset:
            raise ResetNeededError("call reset() before step(): the episode has ended or has not started")
        session = self.session
        act = self.behavior_spec.action_spec
        continuous, discrete = act.split(action)
        n = len(session.steps[self._behavior][0])
        if n == 1:  # only the controlled agent decides
            all_continuous, all_discrete = continuous[None], discrete[None]
        else:  # the other agents get zero actions
            all_continuous = np.zeros((n, act.continuous_size), np.float32)
            all_discrete = np.zeros((n, act.discrete_size), np.int32)
            all_continuous[self._row] = continuous
            all_discrete[self._row] = discrete
        actions: dict[str, tuple[np.ndarray, np.ndarray]] = {self._behavior: (all_continuous, all_discrete)}
        reward = 0.0
        stats: dict[str, list[tuple[float, StatsAggregationMethod]]] = {}
        for _ in range(MAX_MESSAGES):
            self._request_picture(self._agent_id)
            steps = session.step(actions)
            for key, values in session.take_stats().items():
                stats.setdefault(key, []).extend(values)
            decision, terminal = steps[self._behavior]
            i = _row_of(terminal, self._agent_id, 0)
            if i is not None:
                reward += float(terminal.reward[i])
                truncated = bool(terminal.interrupted[i])
                self._needs_reset = True
                self._remember(terminal, i)
                return self._observation(), reward, not truncated, truncated, self._info(terminal, i, stats)
            i = _row_of(decision, self._agent_id, self._row)
            if i is not None:
                self._row = i
                reward += float(decision.reward[i])
                self._remember(decision, i)
                return self._observation(), reward, False, False, self._info(decision, i, stats)
            actions = {}  # the agent did not decide in this message: other agents get zero actions
        raise AgentNeverDecidesError(
            f"agent {self._agent_id} of {self._behavior!r} sent nothing in {MAX_MESSAGES} messages from Unity: "
            "was it disabled or destroyed? Call reset()."
        )

    def action_masks(self) -> np.ndarray:
        """The controlled agent's current action mask, flattened over branches (True = allowed),
        as sb3-contrib's MaskablePPO expects. All True when the scene masks nothing."""
        branches = self.behavior_spec.action_spec.discrete_branches
        if not branches:
            raise ConfigError(f"behavior {self._behavior!r} has no discrete actions, so no action mask")
        return self._last_mask.copy() if self._last_mask is not None else np.ones(sum(branches), bool)

    def render(self) -> np.ndarray | None:
        """What the controlled agent's area looks like now, RGB ``uint8 (H, W, 3)``; None
        unless ``render_mode="rgb_array"`` (and before the first :meth:`reset`).

        * A built-in scene: its own picture of the agent's area, ``render_size`` pixels
          (``Scene.render``: e.g. the ball on its plate, the grid with the target goal
          framed), whatever the scene's cameras. The env asks the scene for it with every
          reset and step while ``render_mode="rgb_array"`` (nothing is drawn otherwise).
        * A Unity build or the Editor, or a custom scene without a picture: the agent's
          first camera observation (grayscale repeated to three channels).
        """
        if self.render_mode != "rgb_array" or not self._last_obs:
            return None
        if self._pictures is not None:
            return self._pictures.pictures.get(self._agent_id)
        image = self._last_obs[self._camera]
        if self.image_format == "chw_float":
            image = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        return np.ascontiguousarray(image[:, :, :3])

    def close(self) -> None:
        """Ends the Unity process and frees the port (idempotent)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __repr__(self) -> str:
        return f"UnityILEnv({self._session!r})"

    # ------------------------------------------------------------------ internals

    def _request_picture(self, agent_id: int | None) -> None:
        """Asks a scene that draws itself for the agent's picture with the next message."""
        if self._pictures is not None:
            self._pictures.request(agent_id=-1 if agent_id is None else agent_id, behavior=self._behavior, size=self.render_size)

    def _remember(self, batch: StepBatch, i: int) -> None:
        # Rows of the batch's own arrays: every message of Unity is decoded into new arrays.
        self._last_obs = tuple([o[i] for o in batch.obs])
        self._last_mask = batch.action_mask[i] if batch.action_mask is not None else None

    def _observation(self) -> Any:
        if len(self._last_obs) == 1:
            return self._last_obs[0]
        return OrderedDict(zip(self.behavior_spec.observation_keys, self._last_obs))

    def _info(self, batch: StepBatch, i: int, stats: dict[str, Any] | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "behavior_name": self._behavior,
            "agent_id": int(batch.agent_id[i]),
            "stats": stats if stats is not None else self.session.take_stats(),
        }
        if self.behavior_spec.action_spec.discrete_branches:
            info["action_mask"] = self.action_masks()
        return info


def _row_of(batch: StepBatch, agent_id: int | None, guess: int) -> int | None:
    """The row of ``agent_id`` in ``batch`` (None when absent); looks at row ``guess`` first,
    where an agent usually stays from one message to the next."""
    n = len(batch)
    if n == 0:
        return None
    if guess < n and batch.agent_id[guess] == agent_id:
        return guess
    rows = np.flatnonzero(batch.agent_id == agent_id)
    return int(rows[0]) if rows.size else None
