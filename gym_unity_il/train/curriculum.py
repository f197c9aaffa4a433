"""ML-Agents' ``environment_parameters`` applied during training: constants, samplers and curricula.

A config's :attr:`~gym_unity_il.train.config.RunConfig.environment_parameters` map each
parameter to its lessons (a constant or a sampler is one lesson). A run applies them as
``mlagents-learn`` does:

* every parameter's current lesson goes to every Unity process through the environment
  parameters channel: a constant as a number, a sampler as a sampler, which the scene draws
  a value from at each reset. A sampler without a seed gets the run's seed plus the number of
  lessons without a seed before it in the file (as ML-Agents numbers them);
* after each step, a lesson with completion criteria ends when, after at least
  ``min_lesson_length`` episodes of the trained behavior since the last lesson change (of
  any parameter), its measure is above ``threshold``: ``progress`` (the behavior's steps,
  counted over all its agents, / ``max_steps``) or ``reward`` (the mean return of its last
  episodes, as many as the largest ``min_lesson_length`` of its criteria and at least one,
  with ``signal_smoothing`` 0.25 x the previous value + 0.75 x the new mean). One lesson at
  most per parameter and step; the next lesson's value is sent at once (with the next step),
  and ``require_reset`` resets every process;
* the lesson numbers are logged as ``Environment/Lesson Number/<parameter>`` (ML-Agents'
  TensorBoard tag), and each change as a log line;
* a run trains one behavior: a curriculum on another behavior of the config stays in its
  lesson (as in ML-Agents, where only the behaviors trained move lessons on), with a warning;
  one on a behavior the config does not have is refused.

:class:`Curriculum` decides (no I/O); :class:`EnvironmentParameterEnv` drives it on the
training VecEnv of any trainer that steps one (SB3's PPO and SAC, GAIL, DAgger), made by
:func:`attach_environment_parameters`; :func:`paused` keeps evaluations out of it, and
:func:`lesson_checkpoints` puts its state in the checkpoint of an RL phase. A trainer
that drives a :class:`~gym_unity_il.envs.worker.SessionWorker` itself (online BC) uses the
:class:`Curriculum` directly (see its docstring).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from gym_unity_il.envs.vec_env import UnityVecEnv
from gym_unity_il.errors import ConfigError
from gym_unity_il.protocol.channels import Sampler, SamplerType
from gym_unity_il.train.config import CompletionCriteria, Lesson, RunConfig
from gym_unity_il.train.progress import Helper, KeptState

logger = logging.getLogger(__name__)

#: The TensorBoard tag of a parameter's lesson number (ML-Agents').
LESSON_TAG = "Environment/Lesson Number/{}"
#: Seeds travel as 32-bit signed integers; a seed made from the run's seed wraps into them.
SEED_MODULUS = 2**31
#: Weight of the previous value in the smoothed reward measure (ML-Agents').
SMOOTHING = 0.25

_SAMPLER_TYPES = {"uniform": SamplerType.UNIFORM, "gaussian": SamplerType.GAUSSIAN, "multirange_uniform": SamplerType.MULTIRANGEUNIFORM}


def parameter_value(value: Mapping[str, Any], seed: int) -> float | Sampler:
    """A lesson's value (:attr:`Lesson.value <gym_unity_il.train.config.Lesson.value>`) as
    the channel sends it: the constant, or a :class:`~gym_unity_il.protocol.channels.Sampler`
    seeded with its own seed, else ``seed``."""
    kind = value["sampler_type"]
    if kind == "constant":
        return float(value["value"])
    if kind == "uniform":
        arguments: tuple[float, ...] = (value["min_value"], value["max_value"])
    elif kind == "gaussian":
        arguments = (value["mean"], value["st_dev"])
    else:
        arguments = tuple(bound for interval in value["intervals"] for bound in interval)
    return Sampler(_SAMPLER_TYPES[kind], int(value.get("seed", seed)), tuple(float(a) for a in arguments))


@dataclass(frozen=True)
class LessonChange:
    """What an update of a :class:`Curriculum` changed.

    Attributes:
        values: each parameter that began a new lesson -> that lesson's value.
        reset: a lesson that ended has ``require_reset``: the env must be reset now.
    """

    values: dict[str, float | Sampler]
    reset: bool


class Curriculum:
    """The lesson each environment parameter is in, and when it moves on (see the module docstring).

    With a :class:`~gym_unity_il.envs.worker.SessionWorker` (online BC): send :meth:`values`
    before the first reset (``worker.set_env_parameters``); after each step, pass the step
    count and the returns of the trained behavior's episodes that ended to :meth:`update`, and
    send what it returns (``worker.reset()`` when it says ``reset``).

    Args:
        parameters: parameter -> its lessons (:attr:`RunConfig.environment_parameters
            <gym_unity_il.train.config.RunConfig.environment_parameters>`).
        behavior: the behavior the run trains (with or without ``?team=N``).
        max_steps: its step budget (the ``progress`` measure's denominator).
        seed: the run's seed (for samplers without their own).
        behaviors: the config's behavior sections (a lesson of one the run does not train never ends).
        where: the config, as errors name it.

    Raises:
        ConfigError: a lesson's completion criteria name a behavior that is neither the
            trained one nor one of ``behaviors`` (a misspelt name would keep it forever).
    """

    def __init__(self, parameters: Mapping[str, Sequence[Lesson]], *, behavior: str, max_steps: int, seed: int, behaviors: Collection[str] = (),
                 where: str = "<memory>") -> None:  # fmt: skip
        self.lessons = {name: tuple(lessons) for name, lessons in parameters.items()}
        self.max_steps = max_steps
        self._trained = {behavior, behavior.split("?team=")[0]}
        offset = 0
        self._values: dict[str, list[float | Sampler]] = {}
        for name, lessons in self.lessons.items():
            for i, lesson in enumerate(lessons[:-1]):
                criteria = lesson.completion_criteria
                if criteria is None or criteria.behavior in self._trained:
                    continue
                here = f"{where}: environment_parameters.{name}.curriculum[{i}].completion_criteria.behavior: {criteria.behavior!r}"
                if criteria.behavior not in behaviors:
                    raise ConfigError(f"{here} is not a behavior of the config, and this run trains {behavior!r}; name the behavior whose "
                                      "training ends the lesson")  # fmt: skip
                logger.warning("%s, which this run does not train (it trains %r): %s goes no further than lesson %d (%r), as in "
                               "ML-Agents where only the behaviors trained move lessons on", here, behavior, name, i, lesson.name)  # fmt: skip
                break
            values = []
            for lesson in lessons:  # as ML-Agents: every lesson without a seed takes the next one after the run's
                values.append(parameter_value(lesson.value, (seed + offset) % SEED_MODULUS))
                offset += "seed" not in lesson.value
            self._values[name] = values
        #: parameter -> the number of its current lesson (0 first)
        self.lesson = dict.fromkeys(self.lessons, 0)
        self._smoothed = dict.fromkeys(self.lessons, 0.0)
        lengths = [c.min_lesson_length for lessons in self.lessons.values() for c in self._criteria(lessons) if c.behavior in self._trained]
        self._returns: collections.deque[float] = collections.deque(maxlen=max([1, *lengths]))

    def values(self) -> dict[str, float | Sampler]:
        """Every parameter's value in its current lesson."""
        return {name: values[self.lesson[name]] for name, values in self._values.items()}

    def update(self, step: int, returns: Iterable[float]) -> LessonChange | None:
        """Takes the returns of the episodes that ended since the last call, at the run's
        ``step``; returns what changed (None: nothing).
        """
        self._returns.extend(float(r) for r in returns)
        values: dict[str, float | Sampler] = {}
        reset = False
        for name, lessons in self.lessons.items():
            number = self.lesson[name]
            criteria = lessons[number].completion_criteria if number < len(lessons) - 1 else None
            if criteria is None or criteria.behavior not in self._trained or len(self._returns) < criteria.min_lesson_length:
                continue
            if criteria.measure == "progress":
                done = step / self.max_steps > criteria.threshold
            elif not self._returns:
                continue
            else:
                measure = float(np.mean(self._returns))
                if criteria.signal_smoothing:
                    measure = self._smoothed[name] = SMOOTHING * self._smoothed[name] + (1 - SMOOTHING) * measure
                done = measure > criteria.threshold
            if done:
                self.lesson[name] = number + 1
                values[name] = self._values[name][number + 1]
                reset |= criteria.require_reset
                logger.info("environment parameter %r: lesson %d (%r) begins at step %d", name, number + 1, lessons[number + 1].name, step)
        if not values:
            return None
        self._returns.clear()
        return LessonChange(values, reset)

    def record(self, logger: Any) -> None:
        """Records every parameter's lesson number in ``logger`` (an SB3 or `imitation` logger)
        under ML-Agents' TensorBoard tag (:data:`LESSON_TAG`)."""
        for name, number in self.lesson.items():
            logger.record(LESSON_TAG.format(name), number)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (``torch.save``-able with ``weights_only``)."""
        return {"lesson": dict(self.lesson), "smoothed": dict(self._smoothed), "returns": list(self._returns)}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state`; a parameter the checkpoint does not know starts at its first lesson.

        Raises:
            ConfigError: the checkpoint's lesson of a parameter is past its last one.
        """
        for name, number in state["lesson"].items():
            if name not in self.lessons:
                continue
            if not 0 <= int(number) < len(self.lessons[name]):
                raise ConfigError(f"the checkpoint is in lesson {number} of environment parameter {name!r}, which has {len(self.lessons[name])} "
                                  "lessons in this config; resume with the config the run was started with")  # fmt: skip
            self.lesson[name] = int(number)
            self._smoothed[name] = float(state["smoothed"].get(name, 0.0))
        self._returns.clear()
        self._returns.extend(float(r) for r in state["returns"])

    @staticmethod
    def _criteria(lessons: Sequence[Lesson]) -> list[CompletionCriteria]:
        return [lesson.completion_criteria for lesson in lessons[:-1] if lesson.completion_criteria is not None]


class EnvironmentParameterEnv(VecEnvWrapper):
    """Drives a :class:`Curriculum` on a training VecEnv over a :class:`~gym_unity_il.envs.UnityVecEnv`.

    Sends the current lessons' values to every Unity process at once (they go with the next
    reset or step), counts the steps (``num_envs`` per step, as SB3 counts them) and the
    returns of the episodes that end, updates the curriculum after each step, sends what
    changed, and with ``require_reset`` resets the env within the step: every slot's
    episode ends there, cut (``done``, ``info["TimeLimit.truncated"]``, its last observation
    as ``info["terminal_observation"]``), and the step returns the first observations after
    the reset. Each step records every parameter's lesson number in :attr:`logger` (when set).
    Within :meth:`paused` (evaluations) steps are neither counted nor measured.

    Args:
        venv: the training VecEnv (a UnityVecEnv, possibly wrapped).
        curriculum: what it drives.
        logger: an SB3 ``Logger`` or `imitation`'s ``HierarchicalLogger`` (may be set later).

    Raises:
        ConfigError: ``venv`` is not over a UnityVecEnv; a sampler for a 0.x build.
    """

    def __init__(self, venv: VecEnv, curriculum: Curriculum, logger: Any = None) -> None:
        super().__init__(venv)
        if not isinstance(venv.unwrapped, UnityVecEnv):
            raise ConfigError(f"environment parameters are sent to Unity processes; {type(venv.unwrapped).__name__} is not a UnityVecEnv")
        self.unity: UnityVecEnv = venv.unwrapped
        self.curriculum = curriculum
        self.logger = logger
        #: steps of the run so far (``num_envs`` per step of the env)
        self.steps = 0
        self._paused = False
        self._running = np.zeros(self.num_envs)
        self.unity.set_env_parameters(curriculum.values())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Within the block the steps are no training (an evaluation): neither counted nor
        measured, and no lesson changes."""
        was, self._paused = self._paused, True
        try:
            yield
        finally:
            self._paused = was

    def reset(self) -> VecEnvObs:
        self._running[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        dones = np.asarray(dones, bool)
        self._running += rewards
        finished = self._running[dones].tolist()
        self._running[dones] = 0.0
        if self._paused:
            return obs, rewards, dones, infos
        self.steps += self.num_envs
        change = self.curriculum.update(self.steps, finished)
        if change is not None:
            self.unity.set_env_parameters(change.values)
            if change.reset:
                obs, dones = self._cut(obs, dones, infos)
        if self.logger is not None:
            self.curriculum.record(self.logger)
        return obs, rewards, dones, infos

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the steps and the curriculum's state."""
        return {"steps": self.steps, **self.curriculum.state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state` and sends the lessons' values (with the next reset or step)."""
        self.curriculum.load_state(state)
        self.steps = int(state["steps"])
        self.unity.set_env_parameters(self.curriculum.values())

    def _cut(self, obs: VecEnvObs, dones: np.ndarray, infos: list[dict[str, Any]]) -> tuple[VecEnvObs, np.ndarray]:
        """Resets the env within a step: the episodes under way end, cut."""
        for i in np.flatnonzero(~dones).tolist():
            infos[i]["terminal_observation"] = {k: v[i] for k, v in obs.items()} if isinstance(obs, Mapping) else obs[i]
            infos[i]["TimeLimit.truncated"] = True
        first = self.reset()
        return first, np.ones_like(dones)


def attach_environment_parameters(venv: VecEnv, config: RunConfig, behavior: str, max_steps: int, logger: Any, *, seed: int) -> VecEnv:
    """``venv`` driving the config's environment parameters (an :class:`EnvironmentParameterEnv`
    on it), or ``venv`` itself when the config has none.

    Args:
        venv: the run's training VecEnv (over a UnityVecEnv).
        config: the run's config.
        behavior: the behavior the run trains.
        max_steps: its step budget.
        logger: the run's logger (the lesson numbers go to TensorBoard through it).
        seed: the run's seed.

    Raises:
        ConfigError: see :class:`Curriculum` and :class:`EnvironmentParameterEnv`.
    """
    if not config.environment_parameters:
        return venv
    curriculum = Curriculum(config.environment_parameters, behavior=behavior, max_steps=max_steps, seed=seed, behaviors=list(config.behaviors),
                            where=config.source)  # fmt: skip
    return EnvironmentParameterEnv(venv, curriculum, logger)


@contextlib.contextmanager
def paused(venv: VecEnv) -> Iterator[None]:
    """Within the block, the :class:`EnvironmentParameterEnv` in ``venv``'s wrappers (if any)
    is :meth:`~EnvironmentParameterEnv.paused`: what is run there (an evaluation) is no training."""
    wrapper = unwrap_vec_wrapper(venv, EnvironmentParameterEnv)
    with wrapper.paused() if isinstance(wrapper, EnvironmentParameterEnv) else contextlib.nullcontext():
        yield


def lesson_checkpoints(venv: VecEnv) -> list[Helper]:
    """The helpers that keep the state of ``venv``'s :class:`EnvironmentParameterEnv` in an
    RL phase's checkpoint: one, or none without environment parameters."""
    wrapper = unwrap_vec_wrapper(venv, EnvironmentParameterEnv)
    return [KeptState(wrapper)] if isinstance(wrapper, EnvironmentParameterEnv) else []
