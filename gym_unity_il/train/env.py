"""The VecEnv training runs on: every agent of one behavior of a Unity build or built-in scene."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from gym_unity_il.envs.vec_env import make_unity_vec_env
from gym_unity_il.link.launch import LaunchSettings
from gym_unity_il.spec import BehaviorSpec

#: The logger key of the number of Unity process restarts so far.
RESTARTS_KEY = "unity/restarts"


class RestartLog(VecEnvWrapper):
    """Shows the restarts of the Unity processes below it in a training logger.

    Once :attr:`logger` is set (an SB3 ``Logger`` or `imitation`'s ``HierarchicalLogger``),
    every step records ``unity/restarts`` (``restart_count`` of the
    :class:`~gym_unity_il.envs.vec_env.UnityVecEnv` it wraps, possibly through other
    wrappers), so each dump of the logger (TensorBoard, CSV, stdout) shows the count.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.logger: Any = None

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        result = self.venv.step_wait()
        if self.logger is not None:
            self.logger.record(RESTARTS_KEY, self.venv.unwrapped.restart_count)
        return result


def make_training_env(
    *,
    scene: str | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    num_processes: int = 1,
    seed: int = 0,
    max_restarts: int = 0,
    launch: LaunchSettings | None = None,
    **launch_fields: Any,
) -> tuple[VecEnv, BehaviorSpec]:
    """Every agent of the behavior in ``num_processes`` Unity processes as one VecEnv
    (:func:`~gym_unity_il.envs.make_unity_vec_env`), wrapped in SB3's ``VecMonitor`` so
    episode returns are logged, and the behavior's spec.

    Process ``p`` gets the seed ``seed + p``. Observations are ``hwc_uint8``: images are
    ``uint8`` HWC. Built-in scenes keep their own number of agents (``ball``: 12) unless
    ``scene_kwargs`` sets ``num_agents``. With ``max_restarts`` > 0 a crashed or hung
    Unity process is restarted up to that many times in all (its agents' episodes end
    there, cut), and a :class:`RestartLog` sits under the ``VecMonitor``: give it the
    run's logger (``unwrap_vec_wrapper(venv, RestartLog).logger = logger``) to log the count.
    The Unity build (``file_name``) and the other launch settings come as
    ``launch=LaunchSettings(...)`` or as its fields (:class:`~gym_unity_il.link.launch.LaunchSettings`).

    Raises:
        ConfigError, GymUnityILError: see :class:`~gym_unity_il.envs.vec_env.UnityVecEnv`.
    """
    venv = make_unity_vec_env(
        scene=scene, num_processes=num_processes, scene_kwargs=scene_kwargs, behavior_name=behavior_name, seed=seed, max_restarts=max_restarts,
        launch=LaunchSettings.from_kwargs(launch, **launch_fields),
    )  # fmt: skip
    return VecMonitor(RestartLog(venv) if max_restarts else venv), venv.behavior_spec
