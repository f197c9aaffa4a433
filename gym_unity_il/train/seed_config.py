"""ML-Agents 0.10 / 0.11 trainer configs (``config/trainer_config.yaml``,
``sac_trainer_config.yaml``, ``offline_bc_config.yaml``, ``online_bc_config.yaml``,
``gail_config.yaml``) read as they are, translated into our own dialect
(:mod:`gym_unity_il.train.config`).

Such a file has a ``default`` section and a section per brain (0.10) or behavior (0.11), each
naming its ``trainer``. As ML-Agents did, a brain's section replaces the ``default`` section's
keys one by one, whole: a brain's ``reward_signals`` replaces the default's, it is not merged
into it. A section whose value is another section's name is that section.

:func:`translate` returns our dialect: the ``default`` section and a section per brain, each
complete (our own parser lays brain sections on ``default`` key by key, so every key a brain
does not set is given our default value), and the warnings to log.

Every key of those releases is in :data:`KEYS` (section -> key -> how it is handled, the table
of ``docs/mlagents_config.md``): honoured where our settings have it, ignored with one warning
saying why, and refused with a :class:`~gym_unity_il.errors.ConfigError` naming the file,
section, key and the fix where ignoring it would change the result silently
(``use_recurrent: true``, curiosity with SAC, ``use_vail: true``). A key a
trainer of ML-Agents did not read (a PPO key in an ``offline_bc`` section) is ignored with a
warning, as ML-Agents ignored it. Unknown keys are errors.

Which of our trainers a section gets: ``offline_bc`` and ``online_bc`` the same; ``ppo``:
``ppo`` (plus the GAIL reward with a ``gail`` signal), or ``gail`` when GAIL is the only reward
signal, with BC beside PPO's updates (``cloning.during_rl``) when there is ``pretraining:``,
as ML-Agents did; ``sac``: ``sac`` (BC pretraining of its actor first with ``pretraining:``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gym_unity_il.errors import ConfigError, quote
from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.key_tables import Key, KeyReader

_BC_TRAINERS = "offline_bc, online_bc"
#: Why ``time_horizon`` is ignored, per trainer that read it.
_TIME_HORIZON = {
    "ppo": "SB3 bootstraps the value at the end of each rollout and of cut episodes, not every time_horizon steps",
    "sac": "SB3's SAC bootstraps every step from its replay buffer",
    "online_bc": "online_bc trains on teacher pairs as soon as they are recorded",
}

#: Every key of ML-Agents 0.10 / 0.11 trainer configs, per section: how it is handled. Where
#: the handling depends on the value, ``handling`` is the strictest case and ``how`` says when
#: (the code follows this table; a test checks the docs against it).
KEYS: dict[str, dict[str, Key]] = {
    "section": {
        "trainer": Key("honoured", "offline_bc, online_bc, sac: ours of the same name; ppo: ppo, or gail when GAIL is the only reward signal"),
        "demo_path": Key("honoured", "offline_bc: demo_path"),
        "brain_to_imitate": Key("honoured", "online_bc: brain_to_imitate (the teacher's behavior)"),
        "batch_size": Key("honoured", f"{_BC_TRAINERS}: batch_size; ppo: ppo.batch_size; sac: sac.batch_size; "
                          "also BC pretraining's (see pretraining.batch_size)"),
        "batches_per_epoch": Key("honoured", f"{_BC_TRAINERS}: batches trained per env step (offline_bc: folded into max_steps, see there)"),
        "learning_rate": Key("honoured", "BC's learning_rate; ppo: ppo.learning_rate; sac: sac.learning_rate"),
        "max_steps": Key("approximated", "online_bc, ppo, sac: max_steps (env steps); "
                         "offline_bc: ML-Agents trained batches_per_epoch batches per env step, "
                         "so max_steps = max_steps x batches_per_epoch x batch_size demo samples"),
        "summary_freq": Key("approximated", "summary_freq; offline_bc: converted to demo samples like max_steps"),
        "hidden_units": Key("honoured", "hidden_units"),
        "num_layers": Key("honoured", "num_layers"),
        "beta": Key("honoured", "ppo.ent_coef"),
        "epsilon": Key("honoured", "ppo.clip_range"),
        "lambd": Key("honoured", "ppo.gae_lambda"),
        "num_epoch": Key("honoured", "ppo.n_epochs (and BC's epochs per update, unless pretraining.num_epoch)"),
        "buffer_size": Key("honoured", "ppo: ppo.buffer_size, steps of all agents together between updates "
                           "(each agent collects buffer_size / agents); sac: sac.buffer_size"),
        "buffer_init_steps": Key("honoured", "sac.learning_starts"),
        "learning_rate_schedule": Key("honoured", "ppo.learning_rate_schedule / sac.learning_rate_schedule (default: linear with PPO, "
                                      "constant with SAC); PPO's beta and epsilon always fell linearly in these releases "
                                      "(ppo.ent_coef_schedule, ppo.clip_range_schedule: linear)"),
        "time_horizon": Key("ignored", "; ".join(f"{trainer}: {why}" for trainer, why in _TIME_HORIZON.items())),
        "normalize": Key("approximated", "true with demonstrations (pretraining or gail): approximated, "
                         "standardized with the demos' statistics instead of "
                         "running ones; true without demonstrations: ignored with a warning; false: honoured"),
        "use_recurrent": Key("honoured", "true: an LSTM policy (memory.memory_size; refused with sac, which has none); false: no memory"),
        "memory_size": Key("honoured", "memory.memory_size with use_recurrent: true (needed then); ignored with a warning otherwise"),
        "sequence_length": Key("honoured", "memory.sequence_length with use_recurrent: true (default 64); ignored with a warning otherwise"),
        "vis_encode_type": Key("ignored", "images go through our CNN (NatureCNN's layers from 36 x 36 pixels, a small CNN below)"),
        "init_entcoef": Key("ignored", "1.0: honoured (SB3's SAC tunes its entropy coefficient from 1.0); other values: ignored with a warning"),
        "tau": Key("refused", "0.005: honoured (SB3's rate); other values: refused, our SAC updates its target network at 0.005"),
        "num_update": Key("ignored", "1: honoured (SB3's one gradient step per step); other values: ignored with a warning"),
        "train_interval": Key("ignored", "1: honoured (SB3 trains every step); other values: ignored with a warning"),
        "reward_signal_num_update": Key("ignored", "the GAIL reward is mixed into PPO only; SAC has no reward signal besides extrinsic here"),
        "save_replay_buffer": Key("ignored", "our checkpoint always holds SAC's replay buffer"),
        "keep_checkpoints": Key("ignored", "our run keeps one checkpoint, written on Ctrl+C and at the end (resume continues from it)"),
        "threaded": Key("ignored", "SB3 updates the policy between env steps"),
        "pretraining": Key("honoured", "ppo: BC beside PPO's updates, as ML-Agents (cloning.during_rl); sac: BC pretraining "
                           "(see the pretraining rows)"),
        "reward_signals": Key("honoured", "ppo, sac: see the reward_signals rows; without it the env's reward at gamma 0.99"),
    },
    "pretraining": {
        "demo_path": Key("honoured", "demo_path"),
        "strength": Key("honoured", "BC's learning_rate is the trainer's learning_rate x strength, as in ML-Agents"),
        "steps": Key("honoured", "ppo: cloning.steps, BC's learning rate falls linearly to nothing over them (0: it stays); "
                     "sac: ignored with a warning (pretraining)"),
        "batch_size": Key("honoured", "batch_size (BC's; default: the trainer's)"),
        "num_epoch": Key("honoured", "num_epoch: ppo: BC epochs after each rollout (default: PPO's num_epoch); "
                         "sac: epochs of BC pretraining (default 10)"),
        "samples_per_update": Key("honoured", "0: an epoch is a pass over the demos; n: batches_per_epoch = n / batch_size"),
    },
    "reward_signals": {
        "extrinsic": Key("honoured", "the env's reward (strength 1.0, or 0 / absent: not used)"),
        "gail": Key("honoured", "ppo: the GAIL reward (see the gail rows); sac: refused with a nonzero strength"),
        "curiosity": Key("honoured", "ppo: the curiosity (ICM) reward added to PPO's, weighted by its strength (our curiosity section); "
                         "strength 0: ignored with a warning; refused with sac and with GAIL as the only other signal"),
    },
    "reward_signals.extrinsic": {
        "strength": Key("refused", "1.0: honoured; 0: the env's reward is not used; "
                        "other values: refused (divide the other strengths by it instead)"),
        "gamma": Key("honoured", "ppo.gamma / sac.gamma"),
    },
    "reward_signals.gail": {
        "strength": Key("honoured", "gail.strength (with extrinsic); GAIL alone: the gail trainer"),
        "gamma": Key("approximated", "with extrinsic: approximated, the env's and the GAIL reward are discounted alike with extrinsic's gamma; "
                     "alone: ppo.gamma"),
        "demo_path": Key("honoured", "demo_path (must be pretraining's, if both are given)"),
        "encoding_size": Key("ignored", "the discriminator has the policy's hidden layers (hidden_units x num_layers)"),
        "learning_rate": Key("honoured", "gail.disc_learning_rate"),
        "use_actions": Key("approximated", "true: honoured; false (ML-Agents' default): approximated, "
                           "our discriminator always sees the actions"),
        "use_vail": Key("refused", "false: honoured; true: refused, the variational bottleneck is not built"),
        "num_epoch": Key("ignored", "imitation's GAIL sets the discriminator's updates itself (gail.n_disc_updates_per_round)"),
        "samples_per_update": Key("ignored", "imitation's GAIL sets the discriminator's updates itself (gail.demo_batch_size)"),
    },
    "reward_signals.curiosity": {
        "strength": Key("honoured", "curiosity.strength"),
        "gamma": Key("approximated", "one gamma (extrinsic's) for every signal, with a warning when they differ"),
        "encoding_size": Key("honoured", "curiosity.encoding_size (default 128, as these releases)"),
        "learning_rate": Key("honoured", "curiosity.learning_rate (default 3e-4)"),
        "num_epoch": Key("ignored", "the curiosity models train with PPO's num_epoch passes over each rollout"),
    },
}

_COMMON = frozenset({"trainer", "batch_size", "learning_rate", "max_steps", "summary_freq", "hidden_units", "num_layers", "use_recurrent",
                     "memory_size", "sequence_length", "vis_encode_type", "keep_checkpoints", "threaded"})  # fmt: skip
_RL = frozenset({"buffer_size", "learning_rate_schedule", "normalize", "time_horizon", "reward_signals", "pretraining"})
#: The keys each trainer of ML-Agents read; the others of :data:`KEYS` are ignored with a warning.
USED_BY: dict[str, frozenset[str]] = {
    "offline_bc": _COMMON | {"demo_path", "batches_per_epoch"},
    "online_bc": _COMMON | {"brain_to_imitate", "batches_per_epoch", "time_horizon"},
    "ppo": _COMMON | _RL | {"beta", "epsilon", "lambd", "num_epoch"},
    "sac": _COMMON | _RL | {"buffer_init_steps", "init_entcoef", "tau", "num_update", "train_interval", "reward_signal_num_update",
                            "save_replay_buffer"},
}

#: BC pretraining's epochs with SAC when ``pretraining.num_epoch`` is not given (SAC has no num_epoch).
SAC_PRETRAINING_EPOCHS = 10


class _Section:
    """One brain's values (``default`` already laid under its own keys ``own``), with the
    place of each key as errors and warnings name it: the section where the key is written."""

    def __init__(self, reader: KeyReader, name: str, values: Mapping[str, Any], own: Mapping[str, Any]) -> None:
        self.reader, self.name, self.values, self.own = reader, name, values, own

    def where(self, key: str) -> str:
        written = self.name if key in self.own or self.name == "default" else "default"
        return f"{self.reader.source}: section {written!r}.{key}"

    def ignored(self, key: str, why: str | None = None) -> None:
        self.reader.warn(self.where(key), f"ignored: {why or KEYS['section'][key].how}")

    def number(self, key: str, *, integer: bool = False, ours: str | None = None) -> Any:
        return self.reader.number(self.values[key], self.where(key), integer=integer, key=ours or key)

    def flag(self, key: str) -> bool:
        return self.reader.flag(self.values[key], self.where(key))


def translate(raw: Mapping[str, Any], *, source: str) -> tuple[dict[str, Any], list[str]]:
    """The ML-Agents 0.10 / 0.11 file ``raw`` (parsed YAML: ``default`` and brain sections
    naming a ``trainer``) in our own dialect, and the warnings to log (one per ignored key,
    saying what is ignored and why).

    Raises:
        ConfigError: an unknown key or trainer, a value of the wrong type, or a key that
            would silently change the result if ignored (naming the file, section and key,
            and the fix).
    """
    reader = KeyReader(source, KEYS, 'ML-Agents 0.10 / 0.11 configs')
    top = reader.mapping(raw, f"{source}: top level")
    default = reader.mapping(top.get("default"), f"{source}: section 'default'")
    translated: dict[str, dict[str, Any]] = {}
    if "trainer" in default or len(top) <= 1:
        translated["default"] = _translate(_Section(reader, "default", default, default))
    for name in top:
        if name != "default":
            own = _resolve(reader, top, name)
            translated[name] = _translate(_Section(reader, name, {**default, **own}, own))
    base = translated.pop("default", None)
    out = {} if base is None else {"default": base}
    out.update({name: _complete(section, base or {}) for name, section in translated.items()})
    return out, reader.warnings


def _resolve(reader: KeyReader, top: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The section ``name``, following sections whose value names another section."""
    seen = [name]
    value = top[name]
    while isinstance(value, str):
        if value not in top or value in seen:
            raise ConfigError(f"{reader.source}: section {name!r}: {quote(value)} names no other section of the file; "
                              "give the section's settings or another section's name")
        seen.append(value)
        value = top[value]
    return reader.mapping(value, f"{reader.source}: section {name!r}")


def _complete(section: dict[str, Any], default: Mapping[str, Any]) -> dict[str, Any]:
    """``section`` with every key of the translated ``default`` it lacks set to our own
    default: ML-Agents replaced the default's keys whole, our parser would merge them."""
    ours = TrainerSettings()
    out = dict(section)
    for key, value in default.items():
        if isinstance(value, Mapping):
            nested, given = getattr(ours, key), out.get(key, {})
            out[key] = {k: given.get(k, getattr(nested, k)) for k in {*value, *given}}
        elif key not in out:
            out[key] = getattr(ours, key)
    return out


def _translate(section: _Section) -> dict[str, Any]:
    """One brain's settings in our dialect."""
    reader, values = section.reader, section.values
    reader.known(values, "section", f"{reader.source}: section {section.name!r}")
    if "trainer" not in values:
        raise ConfigError(f"{reader.source}: section {section.name!r}: no trainer; "
                          f"set trainer to one of {', '.join(USED_BY)} (here or in the default section)")
    trainer = values["trainer"]
    if trainer not in USED_BY:
        raise ConfigError(f"{section.where('trainer')}: unknown trainer {quote(trainer)}; "
                          f"the trainers of ML-Agents 0.10 / 0.11 are {', '.join(USED_BY)}")
    for key in values:
        if key not in USED_BY[trainer]:
            section.ignored(key, f"ML-Agents' {trainer} trainer does not read it")
    memory = _memory(section)
    for key in ("vis_encode_type", "keep_checkpoints", "threaded", "reward_signal_num_update", "save_replay_buffer"):
        if key in values and key in USED_BY[trainer]:
            section.ignored(key)
    if "time_horizon" in values and "time_horizon" in USED_BY[trainer]:
        section.ignored("time_horizon", _TIME_HORIZON[trainer])
    out: dict[str, Any] = {"trainer": trainer}
    for key in ("hidden_units", "num_layers", "max_steps", "summary_freq"):
        if key in values:
            out[key] = section.number(key, integer=True)
    out.update(_bc(section, trainer) if trainer in ("offline_bc", "online_bc") else _rl(section, trainer))
    if memory is not None:
        out["memory"] = memory
    return out


def _memory(section: _Section) -> dict[str, int] | None:
    """Our ``memory`` section from ``use_recurrent``, ``memory_size`` and ``sequence_length``
    (None without memory: the other two are then ignored)."""
    if "use_recurrent" in section.values and section.flag("use_recurrent"):
        if "memory_size" not in section.values:
            raise ConfigError(f"{section.where('use_recurrent')}: true, but memory_size is not set; "
                              "set memory_size (ML-Agents' default section gives 256) or use_recurrent: false")  # fmt: skip
        memory = {"memory_size": section.number("memory_size", integer=True)}
        if "sequence_length" in section.values:
            memory["sequence_length"] = section.number("sequence_length", integer=True)
        return memory
    for key in ("memory_size", "sequence_length"):
        if key in section.values:
            section.number(key, integer=True)
            section.ignored(key, "used only with use_recurrent: true")
    return None


def _bc(section: _Section, trainer: str) -> dict[str, Any]:
    """``offline_bc`` / ``online_bc``: the BC keys, with offline BC's steps in demo samples."""
    values = section.values
    out: dict[str, Any] = {key: section.number(key, integer=True) for key in ("batch_size", "batches_per_epoch") if key in values}
    if "learning_rate" in values:
        out["learning_rate"] = section.number("learning_rate")
    if trainer == "online_bc":
        if "brain_to_imitate" in values:
            out["brain_to_imitate"] = section.reader.text(values["brain_to_imitate"], section.where("brain_to_imitate"))
        return out
    if "demo_path" in values:
        out["demo_path"] = section.reader.text(values["demo_path"], section.where("demo_path"))
    per_step = out.get("batches_per_epoch", 1) * out.get("batch_size", TrainerSettings.batch_size)
    for key in ("max_steps", "summary_freq"):
        if key in values:
            out[key] = section.reader.number(section.number(key, integer=True) * per_step, section.where(key), integer=True, key=key)
    out["num_epoch"] = None
    return out


#: SAC's keys honoured at SB3's value only (others are ignored): key -> (SB3's value, what SB3 does).
_SAC_FIXED = {
    "init_entcoef": (1.0, "SB3's SAC tunes its entropy coefficient starting from 1.0"),
    "num_update": (1, "SB3's SAC takes one gradient step per env step"),
    "train_interval": (1, "SB3's SAC trains every env step"),
}


def _rl(section: _Section, trainer: str) -> dict[str, Any]:
    """``ppo`` / ``sac``: the learner's settings, the reward signals and BC pretraining."""
    reader, values = section.reader, section.values
    algorithm: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if "batch_size" in values:
        algorithm["batch_size"] = section.number("batch_size", integer=True)
    if "learning_rate" in values:
        algorithm["learning_rate"] = out["learning_rate"] = section.number("learning_rate")
    schedule = values.get("learning_rate_schedule", "linear" if trainer == "ppo" else "constant")
    algorithm["learning_rate_schedule"] = reader.choice(schedule, ("constant", "linear"), section.where("learning_rate_schedule"))
    if trainer == "ppo":
        algorithm.update(ent_coef_schedule="linear", clip_range_schedule="linear")  # always, in these releases
        mapped = {"buffer_size": ("buffer_size", True), "num_epoch": ("n_epochs", True), "beta": ("ent_coef", False),
                  "epsilon": ("clip_range", False), "lambd": ("gae_lambda", False)}  # fmt: skip
        for key, (ours, integer) in mapped.items():
            if key in values:
                algorithm[ours] = section.number(key, integer=integer, ours=ours)
    else:
        if "tau" in values and section.number("tau") != 0.005:
            raise ConfigError(f"{section.where('tau')}: {quote(values['tau'])}, but our SAC updates its target network at SB3's rate 0.005; "
                              "set tau to 0.005 or remove it")
        for key, (sb3, why) in _SAC_FIXED.items():
            if key in values and section.number(key) != sb3:
                section.ignored(key, f"{quote(values[key])}, but {why}")
        for key, ours in (("buffer_size", "buffer_size"), ("buffer_init_steps", "learning_starts")):
            if key in values:
                algorithm[ours] = section.number(key, integer=True, ours=ours)
    where_signals = section.where("reward_signals")
    signals = _reward_signals(reader, reader.mapping(values.get("reward_signals"), where_signals), trainer, where_signals)
    algorithm["gamma"] = signals.pop("gamma")
    gail_only = signals.pop("gail_only")
    if "disc_learning_rate" in signals["gail"]:  # a GAIL signal: its demo batches are the policy's, as in ML-Agents
        signals["gail"]["demo_batch_size"] = algorithm.get("batch_size", TrainerSettings().ppo.batch_size)
    out.update(signals)
    out["num_epoch"] = 0
    if values.get("pretraining") is not None:
        out.update(_pretraining(section, trainer, algorithm, out.get("demo_path")))
    if gail_only:
        out["trainer"] = "gail"
    out["normalize"] = False
    if "normalize" in values and section.flag("normalize"):
        if out.get("demo_path") is None:
            section.ignored("normalize", "our normalization standardizes with the demonstrations' statistics, and this section has none "
                            "(no pretraining or gail); observations are used raw")  # fmt: skip
        else:
            out["normalize"] = True
            reader.warn(section.where("normalize"), "approximated: standardized with the demonstrations' statistics instead of running ones")
    out[trainer] = algorithm
    return out


def _reward_signals(reader: KeyReader, raw: Mapping[str, Any], trainer: str, where: str) -> dict[str, Any]:
    """``gamma``, ``gail_only`` (GAIL is the only reward), and with GAIL our ``gail`` section
    and ``demo_path``."""
    reader.known(raw, "reward_signals", where)
    out: dict[str, Any] = {"gamma": TrainerSettings().ppo.gamma, "gail_only": False, "gail": {"strength": 0.0}}
    if not raw:
        return out
    signals = {name: reader.mapping(raw[name], f"{where}.{name}") for name in raw}
    for name, values in signals.items():
        reader.known(values, f"reward_signals.{name}", f"{where}.{name}")
    strengths = {name: reader.number(values.get("strength", 1.0), f"{where}.{name}.strength", key="strength")
                 for name, values in signals.items()}
    gammas = {name: reader.number(values.get("gamma", 0.99), f"{where}.{name}.gamma", key="gamma") for name, values in signals.items()}
    curiosity = strengths.get("curiosity", 0.0)
    if "curiosity" in signals and not curiosity:
        reader.warn(f"{where}.curiosity", "ignored: strength 0, so the curiosity reward adds nothing")
    extrinsic, gail = strengths.get("extrinsic", 0.0), strengths.get("gail", 0.0)
    if curiosity:
        if trainer == "sac" or not extrinsic:
            raise ConfigError(f"{where}.curiosity.strength: {curiosity}, but the curiosity reward is added to PPO's rollouts beside the env's "
                              "reward only; " + ("use trainer: ppo" if trainer == "sac" else "add reward_signals.extrinsic (strength 1.0)")
                              + ", or remove reward_signals.curiosity")  # fmt: skip
        raw_curiosity = signals["curiosity"]
        if "num_epoch" in raw_curiosity:
            reader.number(raw_curiosity["num_epoch"], f"{where}.curiosity.num_epoch", integer=True)
            reader.ignored(f"{where}.curiosity", "reward_signals.curiosity", "num_epoch")
        if gammas["curiosity"] != gammas["extrinsic"]:
            reader.warn(f"{where}.curiosity.gamma", f"approximated: our PPO discounts every reward alike, with extrinsic's gamma {gammas['extrinsic']}")
        out["curiosity"] = {
            "strength": curiosity,
            "encoding_size": reader.number(raw_curiosity.get("encoding_size", 128), f"{where}.curiosity.encoding_size", integer=True, key="encoding_size"),
            "learning_rate": reader.number(raw_curiosity.get("learning_rate", 3.0e-4), f"{where}.curiosity.learning_rate", key="learning_rate"),
        }
    if extrinsic not in (0.0, 1.0):
        raise ConfigError(f"{where}.extrinsic.strength: {extrinsic}, but our trainers take the env's reward at weight 1; set it to 1.0 "
                          f"(and divide the other signals' strengths by {extrinsic} for the same mix)")  # fmt: skip
    if "gail" in signals and not gail:
        reader.warn(f"{where}.gail", "ignored: strength 0, so the GAIL reward adds nothing")
    if not extrinsic and not gail:
        raise ConfigError(f"{where}: no reward signal with a nonzero strength; add 'extrinsic: {{strength: 1.0, gamma: 0.99}}'")
    out["gamma"] = gammas["extrinsic"] if extrinsic else gammas["gail"]
    if not gail:
        return out
    if trainer == "sac":
        raise ConfigError(f"{where}.gail.strength: {gail}, but our SAC cannot add the GAIL reward (it is mixed into PPO's rollouts only); "
                          "remove reward_signals.gail or use trainer: ppo")  # fmt: skip
    if extrinsic and gammas["gail"] != gammas["extrinsic"]:
        reader.warn(f"{where}.gail.gamma", "approximated: our PPO discounts the env's and the GAIL reward alike, "
                    f"with extrinsic's gamma {gammas['extrinsic']}")
    out["gail_only"] = not extrinsic
    out.update(_gail(reader, signals["gail"], gail if extrinsic else 0.0, f"{where}.gail"))
    return out


def _gail(reader: KeyReader, raw: Mapping[str, Any], strength: float, where: str) -> dict[str, Any]:
    """Our ``gail`` section (strength 0 when GAIL is the only reward: the gail trainer) and ``demo_path``."""
    if "demo_path" not in raw:
        raise ConfigError(f"{where}.demo_path: GAIL learns from demonstrations; set demo_path to a .demo file or folder")
    if reader.flag(raw.get("use_vail", False), f"{where}.use_vail"):
        raise ConfigError(f"{where}.use_vail: true, but the variational bottleneck (VAIL) is not built; set use_vail to false or remove it")
    for key in ("encoding_size", "num_epoch", "samples_per_update"):
        if key in raw:
            reader.number(raw[key], f"{where}.{key}", integer=True)
            reader.ignored(where, "reward_signals.gail", key)
    if not reader.flag(raw.get("use_actions", False), f"{where}.use_actions"):
        reader.warn(f"{where}.use_actions", "approximated: false (ML-Agents' default), but our discriminator always sees the actions "
                    "(as use_actions: true)")
    disc_learning_rate = reader.number(raw.get("learning_rate", 3.0e-4), f"{where}.learning_rate", key="disc_learning_rate")
    gail = {"strength": strength, "disc_learning_rate": disc_learning_rate}
    return {"gail": gail, "demo_path": reader.text(raw["demo_path"], f"{where}.demo_path")}


def _pretraining(section: _Section, trainer: str, algorithm: Mapping[str, Any], gail_demos: str | None) -> dict[str, Any]:
    """Our BC keys (``demo_path``, ``batch_size``, ``learning_rate``, ``num_epoch``,
    ``batches_per_epoch``, and with PPO ``cloning``: BC beside its updates) from ``pretraining``."""
    reader, where = section.reader, section.where("pretraining")
    raw = reader.mapping(section.values["pretraining"], where)
    reader.known(raw, "pretraining", where)
    demo_path, strength, steps = reader.cloning(raw, "pretraining", where)
    if gail_demos is not None and gail_demos != demo_path:
        raise ConfigError(f"{where}.demo_path: {quote(demo_path)}, but reward_signals.gail.demo_path is {quote(gail_demos)}; "
                          "our BC and GAIL learn from one demo_path: give both the same file or folder")  # fmt: skip
    ours = TrainerSettings()
    learner = ours.ppo if trainer == "ppo" else ours.sac
    batch_size = raw.get("batch_size") or algorithm.get("batch_size", learner.batch_size)
    out: dict[str, Any] = {
        "demo_path": demo_path,
        "batch_size": reader.number(batch_size, f"{where}.batch_size", integer=True, key="batch_size"),
        "learning_rate": reader.number(algorithm.get("learning_rate", learner.learning_rate) * strength, f"{where}.strength",
                                       key="learning_rate"),
    }
    epochs = raw.get("num_epoch") or (algorithm.get("n_epochs", ours.ppo.n_epochs) if trainer == "ppo" else SAC_PRETRAINING_EPOCHS)
    out["num_epoch"] = reader.number(epochs, f"{where}.num_epoch", integer=True, key="num_epoch")
    samples = reader.number(raw.get("samples_per_update", 0), f"{where}.samples_per_update", integer=True)
    if samples < 0:
        raise ConfigError(f"{where}.samples_per_update: {samples} is out of range; accepted: 0 (all the demos) or more")
    out["batches_per_epoch"] = max(1, samples // out["batch_size"]) if samples else None
    if trainer == "ppo":
        out["cloning"] = {"during_rl": True, "steps": steps}
    elif steps:
        reader.warn(f"{where}.steps", "ignored: with SAC, BC is pretraining of num_epoch epochs before the RL, not annealed during it")
    return out
