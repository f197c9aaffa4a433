"""Training configurations: YAML files with a ``default`` section and per-behavior sections.

In the spirit of ML-Agents' trainer configs::

    default:
      trainer: offline_bc
      demo_path: demos/
      batch_size: 64
      learning_rate: 3.0e-4
      num_epoch: 5
      hidden_units: 128
      num_layers: 2
    3DBall:
      trainer: gail
      max_steps: 5.0e4
      gail:
        demo_batch_size: 256

A behavior's settings are the ``default`` section overlaid with the behavior's own section
(nested sections merge key by key). Unknown keys and values of the wrong type are
:class:`~gym_unity_il.errors.ConfigError`\\ s that name the section and the key, and so are
numbers that are not finite or outside their range (:data:`NUMERIC_RANGES`). A key's former
name (:data:`FORMER_KEYS`) is still read, with a logged note naming the current one.

A config is data: a UTF-8 text file of at most :data:`MAX_CONFIG_BYTES`, read with YAML's
safe loader, without anchors and aliases (``&name``, ``*name``), which would let a tiny
file expand into gigabytes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from gym_unity_il.errors import ConfigError, quote

logger = logging.getLogger(__name__)

TrainerType = Literal["offline_bc", "gail", "ppo", "sac", "bc_then_ppo", "bc_then_sac", "online_bc", "dagger"]
TRAINER_TYPES: tuple[str, ...] = get_args(TrainerType)
#: The trainers whose model is SB3's SAC (every other trainer's is PPO).
SAC_TRAINERS: tuple[str, ...] = ("sac", "bc_then_sac")
#: How a setting changes over an RL run: ``constant``, or ``linear``: from its value at the
#: first step to ML-Agents' floor (learning rate 1e-10, clip range 0.1, entropy coefficient
#: 1e-5) at ``max_steps``.
Schedule = Literal["constant", "linear"]


@dataclass(frozen=True)
class PPOSettings:
    """Settings of the SB3 PPO learner (``ppo``, GAIL's generator, BC-then-PPO's fine-tuning)."""

    #: steps per agent between updates (ignored when ``buffer_size`` is set)
    n_steps: int = 512
    #: ML-Agents' ``buffer_size``: steps of all agents together between updates; when set,
    #: each of the VecEnv's agents collects ``buffer_size / agents`` steps (rounded up)
    buffer_size: int | None = None
    batch_size: int = 64
    n_epochs: int = 5
    learning_rate: float = 3.0e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    clip_range: float = 0.2
    learning_rate_schedule: Schedule = "constant"
    ent_coef_schedule: Schedule = "constant"
    clip_range_schedule: Schedule = "constant"

    def steps_per_agent(self, agents: int) -> int:
        """SB3's ``n_steps`` for a VecEnv of ``agents`` agents."""
        return self.n_steps if self.buffer_size is None else max(1, -(-self.buffer_size // agents))


@dataclass(frozen=True)
class SACSettings:
    """Settings of the SB3 SAC learner (``sac``, BC-then-SAC's fine-tuning)."""

    buffer_size: int = 100_000
    batch_size: int = 256
    learning_rate: float = 3.0e-4
    learning_starts: int = 1000
    gamma: float = 0.99
    learning_rate_schedule: Schedule = "constant"


@dataclass(frozen=True)
class GAILSettings:
    """Settings of `imitation`'s GAIL and of the GAIL reward mixed into RL fine-tuning."""

    demo_batch_size: int = 256
    n_disc_updates_per_round: int = 4
    disc_learning_rate: float = 3.0e-4
    gen_replay_buffer_capacity: int | None = None
    #: weight of the GAIL reward when mixed with the env reward (ppo, bc_then_ppo); 0 disables it
    strength: float = 0.0


@dataclass(frozen=True)
class IntrinsicSettings:
    """Settings of an intrinsic reward for exploration (:mod:`gym_unity_il.train.intrinsic`):
    ML-Agents' ``curiosity`` (an ICM: ``encoding_size`` is the width of the state encoding its
    forward and inverse models work on) or ``rnd`` (random network distillation: the width of
    the target's and the predictor's output; its learning rate defaults to 1e-4)."""

    #: weight of the reward added to the env reward; 0 disables it
    strength: float = 0.0
    gamma: float = 0.99
    encoding_size: int = 64
    learning_rate: float = 3.0e-4


@dataclass(frozen=True)
class CloningSettings:
    """Behavioral cloning beside the RL, as ML-Agents' ``behavioral_cloning`` does it (``ppo``,
    ``bc_then_ppo`` and ``gail``): after each rollout, ``num_epoch`` epochs of BC on the
    demonstrations (an epoch: ``batches_per_epoch`` batches, default one pass) at
    ``learning_rate``, annealed linearly to nothing over ``steps`` env steps."""

    #: BC updates during the RL (false: BC, if any, is pretraining before it)
    during_rl: bool = False
    #: env steps over which BC's learning rate falls to zero (0: it stays)
    steps: int = 0


@dataclass(frozen=True)
class MemorySettings:
    """An LSTM in the policy, as ML-Agents' ``network_settings.memory``: ``memory_size`` is the
    state Unity keeps for each agent between decisions (the LSTM's hidden and cell state side
    by side, so the LSTM has ``memory_size // 2`` units); 0 (default) turns memory off.
    Training runs the LSTM over windows of ``sequence_length`` steps of an episode."""

    #: floats of recurrent state per agent (even; 0: no memory)
    memory_size: int = 0
    #: steps of the windows backpropagation runs through
    sequence_length: int = 64

    @property
    def enabled(self) -> bool:
        return self.memory_size > 0

    @property
    def hidden_size(self) -> int:
        """The LSTM's units: half the state is its hidden state, half its cell state."""
        return self.memory_size // 2

    def check(self, where: str) -> None:
        """Raises ConfigError for an odd ``memory_size`` (it holds two halves)."""
        if self.memory_size % 2:
            raise ConfigError(
                f"{where}.memory_size: {self.memory_size} is odd; the state holds the LSTM's hidden and cell state, two halves of "
                f"memory_size // 2 each: use an even number, e.g. {self.memory_size + 1}"
            )


@dataclass(frozen=True)
class TrainerSettings:
    """Everything one behavior is trained with. See the module docstring for the file format.

    What the keys mean for ``gym-unity-il train`` (:func:`gym_unity_il.train.train`):

    * ``trainer``: ``offline_bc`` (behavioral cloning from ``demo_path``), ``gail`` (GAIL
      with a PPO generator, from scratch), ``ppo`` / ``sac`` (RL on the env's reward, after
      BC pretraining when ``num_epoch`` > 0; PPO adds ``gail.strength`` times the GAIL
      reward, ``sac`` refuses ``gail.strength`` > 0), ``bc_then_ppo`` / ``bc_then_sac`` (the
      same with BC pretraining of 10 epochs when ``num_epoch`` is null; ``bc_then_sac`` logs
      ``gail.strength`` as ignored), ``online_bc`` (students learn live from a teacher
      playing in the same scene: :mod:`gym_unity_il.train.online`), ``dagger``
      (`imitation`'s DAgger with the teacher as the expert: :mod:`gym_unity_il.train.dagger`).
    * ``demo_path``: a `.demo` file or a folder of them, or a Minari dataset: its folder or
      its id in ``MINARI_DATASETS_PATH`` (the ``datasets`` extra;
      :func:`~gym_unity_il.demo.read_demonstrations`). ``offline_bc``, ``gail`` and
      ``bc_then_*`` need it; ``ppo`` / ``sac`` need it for BC pretraining, the GAIL reward or
      ``normalize`` (without it they learn from the env's reward alone); ``online_bc`` and
      ``dagger`` learn from the teacher (DAgger starts from the demos when given).
    * ``batch_size``, ``learning_rate``, ``ent_weight``, ``l2_weight``: behavioral cloning.
    * An epoch of BC is ``batches_per_epoch`` batches (default: one pass over the demos).
      ``offline_bc`` trains ``num_epoch`` epochs, or ``max_steps`` demo samples when
      ``num_epoch`` is null; BC pretraining trains ``num_epoch`` epochs (``bc_then_*``:
      default 10; ``ppo`` / ``sac``: default none).
    * ``max_steps``: env steps of GAIL / RL (demo samples for ``offline_bc``).
    * ``hidden_units`` x ``num_layers``: the policy's (and discriminator's) hidden layers;
      images go through a CNN first.
    * ``normalize``: standardize vector observations with the demos' mean and standard
      deviation, inside the policy (the saved model takes raw observations).
    * ``summary_freq``: steps between rows of ``metrics.csv`` (BC: demo samples, with an
      evaluation episode per env copy, at least two batches per step of a demo episode apart;
      RL: env steps, the mean return of the episodes that ended since the previous row).
    * ``ppo.n_steps``: steps per agent between PPO updates, or ``ppo.buffer_size``: steps of
      all agents together (ML-Agents' ``buffer_size``), shared by the VecEnv's agents.
    * ``ppo.learning_rate_schedule``, ``ppo.clip_range_schedule``, ``ppo.ent_coef_schedule``,
      ``sac.learning_rate_schedule``: ``constant`` (default) or ``linear`` (from the value at
      step 0 to ML-Agents' floor at ``max_steps``: :mod:`gym_unity_il.train.schedules`).
    * ``cloning``: ``during_rl: true`` trains BC beside PPO's updates (``ppo``, ``gail``) as
      ML-Agents' ``behavioral_cloning`` does, instead of pretraining: after each rollout,
      ``num_epoch`` epochs (default: ``ppo.n_epochs``) at ``learning_rate``, annealed to
      nothing over ``cloning.steps`` env steps (0: never).
    * ``brain_to_imitate``: ``online_bc``: the teacher's behavior (the students are the
      trained behavior); accepted and ignored by the other trainers.
    * ``teacher``: ``online_bc`` and ``dagger``: ``expert`` (default: the built-in scene's
      scripted expert), ``human`` (a pygame window: :class:`~gym_unity_il.train.teacher.HumanTeacher`)
      or the path of a saved SB3 model.
    * ``online_bc``: ``max_steps`` scene steps, each recording the teacher and training
      ``batches_per_epoch`` batches (default 1) of ``batch_size`` teacher pairs.
    * ``dagger``: ``max_steps`` env steps in all, in rounds of at least ``dagger_round_steps``
      env steps, each followed by ``num_epoch`` epochs of BC (default 4) over every label so far.
    * ``curiosity``, ``rnd``: intrinsic rewards for exploration, ``strength`` times ML-Agents'
      curiosity (ICM) or RND reward added to the env's reward, their models trained on the
      rollouts (:mod:`gym_unity_il.train.intrinsic`); strength 0 (default) turns one off.
    * ``memory``: ``memory_size`` > 0 gives the policy an LSTM after its features (sb3-contrib's
      ``RecurrentPPO`` policy, ``memory_size // 2`` units), trained over windows of
      ``sequence_length`` steps (:mod:`gym_unity_il.train.memory`); Unity keeps
      ``memory_size`` floats per agent for it (not ``sac`` / ``bc_then_sac``).
    * ``max_restarts``: how many failures of a Unity process (it crashed, hung past the
      timeout or broke the protocol) the run survives by restarting that process; its
      agents' episodes end there (cut) and training goes on. Each restart logs a warning,
      the count so far is logged as ``unity/restarts`` (TensorBoard) and written to
      ``evaluation.json`` as ``unity_restarts``. 0 (default): the first failure stops the
      run. Trainers from demonstrations only (not ``online_bc`` / ``dagger``).
    """

    trainer: TrainerType = "offline_bc"
    demo_path: str | None = None
    batch_size: int = 64
    learning_rate: float = 3.0e-4
    num_epoch: int | None = None
    batches_per_epoch: int | None = None
    max_steps: int = 50_000
    hidden_units: int = 128
    num_layers: int = 2
    normalize: bool = False
    summary_freq: int = 1000
    #: Unity processes of the training VecEnv (each brings every agent of the behavior, so
    #: the VecEnv's ``num_envs`` is the number of agents); ``num_envs`` is its former name
    num_processes: int = 1
    #: Unity process failures survived by restarting the process (0: the first one ends the run)
    max_restarts: int = 0
    #: episodes of the evaluation written beside the trained model
    eval_episodes: int = 10
    ent_weight: float = 1.0e-3
    l2_weight: float = 0.0
    brain_to_imitate: str | None = None
    teacher: str | None = None
    dagger_round_steps: int = 500
    ppo: PPOSettings = field(default_factory=PPOSettings)
    sac: SACSettings = field(default_factory=SACSettings)
    gail: GAILSettings = field(default_factory=GAILSettings)
    curiosity: IntrinsicSettings = field(default_factory=IntrinsicSettings)
    rnd: IntrinsicSettings = field(default_factory=lambda: IntrinsicSettings(learning_rate=1.0e-4))
    cloning: CloningSettings = field(default_factory=CloningSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)

    def net_arch(self) -> list[int]:
        """The hidden layer sizes for SB3 / imitation policies."""
        return [self.hidden_units] * self.num_layers


@dataclass(frozen=True)
class RunSettings:
    """How a run is launched and where it writes: ``mlagents-learn``'s command line and the
    run sections of today's ML-Agents files (``env_settings``, ``engine_settings``,
    ``checkpoint_settings``, ``torch_settings``, ``debug``). None is "not set": a flag
    that is set wins over the file (:meth:`over`), as in ML-Agents.

    ``env_path`` is the Unity build and ``env_args`` the player's extra arguments;
    ``num_envs`` replaces ``num_processes`` of every behavior section; the engine settings
    (``width`` ... ``capture_frame_rate``) are sent to the player at its first reset.
    """

    env_path: str | None = None
    env_args: tuple[str, ...] | None = None
    base_port: int | None = None
    num_envs: int | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    quality_level: int | None = None
    time_scale: float | None = None
    target_frame_rate: int | None = None
    capture_frame_rate: int | None = None
    no_graphics: bool | None = None
    run_id: str | None = None
    initialize_from: str | None = None
    resume: bool | None = None
    force: bool | None = None
    results_dir: str | None = None
    torch_device: str | None = None
    debug: bool | None = None

    #: ML-Agents' screen size, for the side a file or command line leaves out
    SCREEN_SIDE: typing.ClassVar[int] = 84

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: str) -> RunSettings:
        """Settings from ``values`` (field name -> value), each checked against its field's type.

        Raises:
            ConfigError: an unknown key or a value of the wrong type, naming ``where`` and the key.
        """
        values = dict(values)
        if values.get("seed") == -1:
            logger.warning("%s.seed: -1 (ML-Agents: a random seed) is read as not set: the run's seed is its default 0, so runs repeat", where)
            values.pop("seed")
        args = values.pop("env_args", None)
        if args is not None and (not isinstance(args, (list, tuple)) or not all(isinstance(a, str) for a in args)):
            raise ConfigError(f"{where}.env_args: expected a list of strings (the player's arguments), got {quote(args)}")
        settings: RunSettings = _build(cls, values, where, cls())
        _validate(settings, where, {}, RUN_RANGES)
        return dataclasses.replace(settings, env_args=None if args is None else tuple(args))

    def over(self, other: RunSettings) -> RunSettings:
        """These settings where they are set, else ``other``'s."""
        return dataclasses.replace(other, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None})

    def engine_config(self) -> dict[str, float] | None:
        """The engine settings that are set (width and height go together: a missing one is
        ML-Agents' 84), or None when none is."""
        names = ("width", "height", "quality_level", "time_scale", "target_frame_rate", "capture_frame_rate")
        values = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if ("width" in values) != ("height" in values):
            values.setdefault("width", self.SCREEN_SIDE)
            values.setdefault("height", self.SCREEN_SIDE)
        return values or None


@dataclass(frozen=True)
class CompletionCriteria:
    """When a lesson ends (ML-Agents' ``completion_criteria``, applied by
    :mod:`~gym_unity_il.train.curriculum`): once ``behavior`` finished ``min_lesson_length``
    episodes in the lesson, its ``measure`` above ``threshold``: ``progress`` (its steps /
    its ``max_steps``) or ``reward`` (the mean return of those episodes, smoothed with the
    previous value when ``signal_smoothing``). ``require_reset`` resets the env then."""

    behavior: str
    measure: Literal["reward", "progress"] = "reward"
    threshold: float = 0.0
    min_lesson_length: int = 0
    signal_smoothing: bool = True
    require_reset: bool = False


@dataclass(frozen=True)
class Lesson:
    """A lesson of an environment parameter (ML-Agents' ``environment_parameters``; a constant
    or a sampler is one lesson): the value it sends, and when it ends (None: the last lesson,
    which lasts to the end of the run).

    ``value`` is what :mod:`~gym_unity_il.train.modern_config` reads: ``{"sampler_type":
    "constant", "value": v}``, or a sampler Unity draws from at each reset: ``uniform``
    (``min_value``, ``max_value``), ``gaussian`` (``mean``, ``st_dev``) or ``multirange_uniform``
    (``intervals``), with ``seed`` when the file gives one.
    """

    name: str
    value: Mapping[str, Any]
    completion_criteria: CompletionCriteria | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Lesson:
        """A lesson from the data the config readers give (``name``, ``value``, ``completion_criteria``)."""
        criteria = data.get("completion_criteria")
        return cls(data["name"], dict(data["value"]), None if criteria is None else CompletionCriteria(**criteria))

    def value_dict(self) -> Any:
        """The value in ML-Agents' own shape: a number, or ``{sampler_type, sampler_parameters}``."""
        kind = self.value["sampler_type"]
        parameters = {key: value for key, value in self.value.items() if key != "sampler_type"}
        return parameters["value"] if kind == "constant" else {"sampler_type": kind, "sampler_parameters": parameters}


def environment_parameters_dict(parameters: Mapping[str, tuple[Lesson, ...]]) -> dict[str, Any]:
    """``environment_parameters`` in ML-Agents' own shape, which every dialect reads back: a
    parameter of one lesson named after it without completion criteria as its value, any
    other as its ``curriculum``."""
    out: dict[str, Any] = {}
    for name, lessons in parameters.items():
        if len(lessons) == 1 and lessons[0].name == name and lessons[0].completion_criteria is None:
            out[name] = lessons[0].value_dict()
            continue
        curriculum = []
        for lesson in lessons:
            entry = {"name": lesson.name, "value": lesson.value_dict()}
            if lesson.completion_criteria is not None:
                entry["completion_criteria"] = dataclasses.asdict(lesson.completion_criteria)
            curriculum.append(entry)
        out[name] = {"curriculum": curriculum}
    return out


@dataclass(frozen=True)
class RunConfig:
    """A whole config file: settings per behavior, with the default for any other behavior."""

    default: TrainerSettings
    behaviors: Mapping[str, TrainerSettings]
    source: str = "<memory>"
    #: the file's run sections (today's ML-Agents files; our dialect has none)
    run: RunSettings = field(default_factory=RunSettings)
    #: ML-Agents' ``environment_parameters``: parameter -> its lessons, in order (every dialect
    #: but the seed era's; runs apply them: :mod:`~gym_unity_il.train.curriculum`)
    environment_parameters: Mapping[str, tuple[Lesson, ...]] = field(default_factory=dict)

    def for_behavior(self, name: str) -> TrainerSettings:
        """The settings of ``name`` (with or without its ``?team=N`` suffix), else the default."""
        return self.behaviors.get(self._section(name), self.default)

    def where(self, name: str) -> str:
        """The section ``name``'s settings come from, as errors name it: ``"<file>: section 'Name'"``."""
        return f"{self.source}: section {self._section(name)!r}"

    def _section(self, name: str) -> str:
        """The section of ``name``: its own (with or without ``?team=N``), else ``default``."""
        base = name.split("?team=")[0]
        return name if name in self.behaviors else base if base in self.behaviors else "default"

    def with_max_steps(self, max_steps: int) -> RunConfig:
        """This config with ``max_steps`` of every section replaced (``--max-steps``), checked
        like a value of the file.

        Raises:
            ConfigError: ``max_steps`` out of range.
        """
        return self._with_every_section("max_steps", max_steps, "--max-steps")

    def with_num_processes(self, num_processes: int) -> RunConfig:
        """This config with ``num_processes`` of every section replaced (``--num-envs``,
        ``env_settings.num_envs``), checked like a value of the file.

        Raises:
            ConfigError: ``num_processes`` out of range.
        """
        return self._with_every_section("num_processes", num_processes, "--num-envs")

    def _with_every_section(self, key: str, value: Any, flag: str) -> RunConfig:
        sections = {"default": self.default, **self.behaviors}
        changed = {name: _build(TrainerSettings, {key: value}, f"override ({flag})", s) for name, s in sections.items()}
        default = changed.pop("default")
        return dataclasses.replace(self, default=default, behaviors=changed)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, fit for ``yaml.safe_dump`` (what a run saves beside its results)."""
        out = {"default": dataclasses.asdict(self.default)}
        out.update({k: dataclasses.asdict(v) for k, v in self.behaviors.items()})
        if self.environment_parameters:
            out["environment_parameters"] = environment_parameters_dict(self.environment_parameters)
        return out


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    args = [a for a in get_args(tp) if a is not type(None)]
    if args:
        name = " | ".join(_type_name(a) for a in args)
        return f"{name} or null" if type(None) in get_args(tp) else name
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked (and, for whole floats like 5.0e4 given for an int, converted) against ``tp``."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {quote(value)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where}: expected one of {_type_name(tp)}, got {quote(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                as_float = float(value)  # YAML 1.1 reads "5e4" as a string
            except ValueError:
                pass
            else:
                if as_float.is_integer():
                    return int(as_float)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {quote(value)} ({type(value).__name__})")


#: Keys of a config file that were renamed, former name -> current name. The former name is
#: still read, with a logged note; giving both in one section is a ConfigError.
FORMER_KEYS: dict[str, str] = {"num_envs": "num_processes"}


def _current_names(values: Mapping[str, Any], known: set[str], where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``values`` with former key names (:data:`FORMER_KEYS`) replaced by the current ones,
    and current -> former name of each key replaced (errors name a key as the file wrote it)."""
    current_values, written = dict(values), {}
    for former, current in FORMER_KEYS.items():
        if former not in current_values or current not in known:
            continue
        if current in current_values:
            raise ConfigError(f"{where}: {former} and {current} are both given; {former} is the former name of {current}: keep {current}")
        logger.warning("%s: %s is the former name of %s; write %s instead (%s is still read)", where, former, current, current, former)
        current_values[current] = current_values.pop(former)
        written[current] = former
    return current_values, written


def _build(cls: type, values: Mapping[str, Any], where: str, base: Any = None) -> Any:
    """An instance of the settings dataclass ``cls`` from ``values`` overlaid on ``base``."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {quote(values)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    values, written = _current_names(values, known, where)
    unknown = [key for key in values if key not in known]
    if unknown:
        raise ConfigError(f"{where}: unknown key {quote(unknown[0])}; known keys are {sorted(known)}")
    out = {}
    for f in fields(cls):
        current = getattr(base, f.name) if base is not None else None
        if f.name not in values:
            if base is not None:
                out[f.name] = current
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out[f.name] = _build(tp, values[f.name] or {}, f"{where}.{f.name}", current)
        else:
            out[f.name] = _coerce(values[f.name], tp, f"{where}.{written.get(f.name, f.name)}")
    settings = cls(**out)
    _validate(settings, where, written)
    if hasattr(settings, "check"):
        settings.check(where)
    return settings


#: Accepted range of every numeric setting: (lowest, highest, lowest excluded). Numbers
#: must also be finite; the upper bounds keep a typo (1e29 hidden units, 1e308 epochs)
#: from reaching torch, SB3 or the progress bar.
NUMERIC_RANGES: dict[str, tuple[float, float, bool]] = {
    "batch_size": (1, 1_000_000, False),
    "learning_rate": (0.0, 10.0, True),
    "disc_learning_rate": (0.0, 10.0, True),
    "num_epoch": (0, 1_000_000, False),
    "batches_per_epoch": (0, 1_000_000_000, False),
    "max_steps": (1, 10**12, False),
    "hidden_units": (1, 4096, False),
    "num_layers": (0, 32, False),
    "summary_freq": (1, 10**12, False),
    "num_processes": (1, 256, False),
    "max_restarts": (0, 1_000_000, False),
    "eval_episodes": (1, 1_000_000, False),
    "ent_weight": (0.0, 1.0e6, False),
    "l2_weight": (0.0, 1.0e6, False),
    "dagger_round_steps": (1, 10**9, False),
    "n_steps": (1, 10_000_000, False),
    "n_epochs": (1, 10_000, False),
    "gamma": (0.0, 1.0, False),
    "gae_lambda": (0.0, 1.0, False),
    "ent_coef": (0.0, 1.0e6, False),
    "clip_range": (0.0, 10.0, True),
    "buffer_size": (1, 10_000_000, False),
    "learning_starts": (0, 10**12, False),
    "demo_batch_size": (1, 1_000_000, False),
    "n_disc_updates_per_round": (1, 10_000, False),
    "gen_replay_buffer_capacity": (1, 10_000_000, False),
    "strength": (0.0, 1.0e6, False),
    "encoding_size": (1, 4096, False),
    "steps": (0, 10**12, False),
    "memory_size": (0, 4096, False),
    "sequence_length": (1, 100_000, False),
}

#: Accepted range of every numeric run setting (:class:`RunSettings`), as in :data:`NUMERIC_RANGES`.
RUN_RANGES: dict[str, tuple[float, float, bool]] = {
    "seed": (0, 2**32 - 1, False),
    "base_port": (1, 65_535, False),
    "num_envs": (1, 256, False),
    "width": (1, 16_384, False),
    "height": (1, 16_384, False),
    "quality_level": (0, 1_000, False),
    "time_scale": (0.0, 1_000.0, True),
    "target_frame_rate": (-1, 10_000, False),
    "capture_frame_rate": (0, 10_000, False),
}


def _range_text(low: float, high: float, open_low: bool, integer: bool) -> str:
    if integer:
        return f"an integer from {low} to {high}"
    return f"a finite number {'>' if open_low else '>='} {low:g} and <= {high:g}"


def _validate(settings: Any, where: str, written: Mapping[str, str], ranges: Mapping[str, tuple[float, float, bool]] = NUMERIC_RANGES) -> None:
    """Every numeric setting is finite and within ``ranges`` (``written``: the name a key
    has in the file, where it is a former one)."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name not in ranges or value is None or isinstance(value, bool):
            continue
        low, high, open_low = ranges[f.name]
        integer = isinstance(value, int)
        inside = (math.isfinite(value) if not integer else True) and (low < value if open_low else low <= value) and value <= high
        if not inside:
            key, accepted = written.get(f.name, f.name), _range_text(low, high, open_low, integer)
            raise ConfigError(f"{where}.{key}: {quote(value)} is out of range; accepted: {accepted}")


def parse_config(data: Mapping[str, Any] | None, *, source: str = "<memory>") -> RunConfig:
    """A RunConfig from already-loaded YAML data (a mapping of section name to settings)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must map section names (default, behavior names) to settings")
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{source}: section name {quote(key)} is not a string")
    default = _build(TrainerSettings, data.get("default") or {}, f"{source}: section 'default'", TrainerSettings())
    behaviors = {
        name: _build(TrainerSettings, section or {}, f"{source}: section {quote(name)}", default)
        for name, section in data.items()
        if name != "default"
    }
    return RunConfig(default=default, behaviors=behaviors, source=source)


#: Largest config file read (a config is a few hundred bytes; anything far larger is a wrong file).
MAX_CONFIG_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader refusing anchors and aliases: a config is plain data, and aliases
    let a tiny file expand into gigabytes (a "billion laughs" file)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            line = event.start_mark.line + 1
            raise ConfigError(f"{self.name}, line {line}: YAML anchors and aliases (&name, *name) are not accepted in a config; write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """As YAML's, which keeps the last of a key given twice (ML-Agents' own files have such
        keys, e.g. ``sequence_length`` in 0.10's Hallway section), with a warning naming it."""
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    logger.warning("%s, line %d: %r is given twice (first on line %d); the later value %r is used, as YAML readers and "
                                   "ML-Agents read it", self.name, line, key_node.value, seen[key_node.value], getattr(value_node, "value", "..."))  # fmt: skip
                seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> Any:
    """The parsed YAML of a config file, of any dialect (:func:`gym_unity_il.train.dialects.load_config`
    reads and validates it).

    The file must be UTF-8 text of at most :data:`MAX_CONFIG_BYTES` bytes, without YAML
    anchors or aliases.

    Raises:
        ConfigError: the file cannot be read, or is not such a file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; a training config is a small YAML file, is this the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); a training config is a YAML text file") from None
    if "\0" in text:
        raise ConfigError(f"{path}: holds NUL bytes, so it is not a text file; a training config is a YAML text file")
    loader = _NoAliasLoader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except ConfigError:
        raise
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError(f"{path}: a value cannot be read: {quote(str(exc).split(';')[0])}") from None
    finally:
        loader.dispose()


def resolve_demo_paths(config: RunConfig, folder: Path) -> RunConfig:
    """``config`` with each relative ``demo_path`` that exists under ``folder`` (the config
    file's) made that path."""
    return dataclasses.replace(
        config,
        default=_resolve_demo_path(config.default, folder),
        behaviors={k: _resolve_demo_path(v, folder) for k, v in config.behaviors.items()},
    )


def _resolve_demo_path(settings: TrainerSettings, folder: Path) -> TrainerSettings:
    if settings.demo_path is None or Path(settings.demo_path).is_absolute():
        return settings
    candidate = folder / settings.demo_path
    try:
        found = candidate.exists()
    except OSError:  # a name too long for the file system: left as given, reading it names the problem
        found = False
    return dataclasses.replace(settings, demo_path=str(candidate)) if found else settings
