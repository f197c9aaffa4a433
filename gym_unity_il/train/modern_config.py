"""Today's ML-Agents trainer configs (release 10 and later: a top-level ``behaviors:``) read as
they are, translated into our own dialect (:mod:`gym_unity_il.train.config`).

:func:`translate` takes the parsed YAML of such a file and returns our dialect: a ``default``
section (from ``default_settings``) and a section per behavior, each read as ML-Agents reads
it (``default_settings`` merged under every behavior, ML-Agents' defaults for absent keys),
plus what our per-behavior settings do not hold, under the top-level keys of
:data:`RUN_SECTIONS` (remove them before :func:`~gym_unity_il.train.config.parse_config`):
``run``, per run section (``env_settings``, ``engine_settings``, ``checkpoint_settings``,
``torch_settings``, ``debug``) its values as fields of :class:`~gym_unity_il.train.config.RunSettings`
(:data:`RUN_FIELDS`), and ``environment_parameters``.

Every key ML-Agents documents is in :data:`KEYS` (section -> key -> how it is handled, the
table of ``docs/mlagents_config.md``): honoured where our settings have it, ignored with one
warning saying why where that does not change what is learned (or the difference is stated),
and refused with a :class:`~gym_unity_il.errors.ConfigError` naming the file, section, key
and the fix where ignoring it would change the result silently (``trainer_type: poca``,
``memory``, ``self_play``, ``init_path``, intrinsic rewards with SAC). Unknown
keys are errors, as in ML-Agents.

Which of our trainers a behavior gets:

* ``trainer_type: ppo``: ``ppo`` (PPO on the env's reward, plus ``gail.strength`` times the
  GAIL reward with a ``gail`` signal), or ``gail`` when GAIL is the only reward signal; with
  ``behavioral_cloning``, BC updates beside PPO's (``cloning.during_rl``), as ML-Agents does;
* ``trainer_type: sac``: ``bc_then_sac`` (BC pretraining of SAC's actor) with
  ``behavioral_cloning``, else ``sac``.

``environment_parameters`` become data under the top-level key ``environment_parameters``:
parameter name -> a list of lessons ``{"name", "value", "completion_criteria"}`` (a constant
or a sampler is one lesson without completion criteria), where ``value`` is one of
``{"sampler_type": "constant", "value"}``, ``{"sampler_type": "uniform", "min_value",
"max_value"}``, ``{"sampler_type": "gaussian", "mean", "st_dev"}`` and
``{"sampler_type": "multirange_uniform", "intervals"}`` (each sampler may hold ``seed``), and
``completion_criteria`` is ``{"behavior", "measure", "threshold", "min_lesson_length",
"signal_smoothing", "require_reset"}`` with ML-Agents' defaults filled in
(:func:`read_environment_parameters` reads our own dialect's section too). Runs apply them:
:mod:`~gym_unity_il.train.curriculum`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gym_unity_il.errors import ConfigError, quote
from gym_unity_il.train.key_tables import Key, KeyReader

#: Top-level keys of the translated dict that are not behavior sections (``parse_config`` takes
#: the dict without them): the run's settings and the environment parameters.
RUN_SECTIONS: tuple[str, ...] = ("run", "environment_parameters")





_RESTARTS = "gym-unity-il's own restart policy applies (max_restarts); a player's timeout is timeout_wait of the launch settings"
_CHECKPOINTS = "our run keeps one checkpoint, written on Ctrl+C and at the end (resume continues from it)"

#: Every key of today's ML-Agents configs, per section: how it is handled. Where the handling
#: depends on the value, ``how`` says when (the code follows this table; a test checks the docs
#: against it).
KEYS: dict[str, dict[str, Key]] = {
    "top level": {
        "behaviors": Key("honoured", "one section of ours per behavior, with default_settings merged under it"),
        "default_settings": Key("honoured", "our default section (behaviors not listed get it)"),
        "environment_parameters": Key("honoured", "sent to the players through the environment parameters channel, each curriculum "
                                                  "advanced as the run goes (see environment_parameters above)"),
        "env_settings": Key("honoured", "the run's settings under the command line's flags (rows below)"),
        "engine_settings": Key("honoured", "the run's settings under the command line's flags (rows below)"),
        "checkpoint_settings": Key("honoured", "the run's settings under the command line's flags (rows below)"),
        "torch_settings": Key("honoured", "the run's settings under the command line's flags (rows below)"),
        "debug": Key("honoured", "log at DEBUG level, as --debug"),
    },
    "behavior": {
        "trainer_type": Key("honoured", "ppo -> ppo / gail, sac -> sac / bc_then_sac (see above); "
                                        "poca (multi-agent) is refused"),
        "hyperparameters": Key("honoured", "see the hyperparameters rows; refused without trainer_type, as in ML-Agents"),
        "network_settings": Key("honoured", "see the network_settings rows"),
        "reward_signals": Key("honoured", "see the reward_signals rows; absent: extrinsic alone, as in ML-Agents"),
        "behavioral_cloning": Key("approximated", "ppo: BC updates beside PPO's, as ML-Agents (cloning.during_rl); sac: BC pretraining "
                                                  "before SAC (bc_then_sac), not BC beside it"),
        "max_steps": Key("honoured", "max_steps (env steps of all agents; default 500000)"),
        "summary_freq": Key("honoured", "summary_freq (default 50000)"),
        "time_horizon": Key("ignored", "SB3 bootstraps the value at the end of each rollout (buffer_size), not every time_horizon steps"),
        "keep_checkpoints": Key("ignored", _CHECKPOINTS),
        "even_checkpoints": Key("ignored", _CHECKPOINTS),
        "checkpoint_interval": Key("ignored", _CHECKPOINTS),
        "threaded": Key("ignored", "SB3 collects a rollout, then updates (like threaded: false)"),
        "init_path": Key("refused", "refused unless null: starting from another run's model is not built (training from scratch would "
                                    "change the result)"),
        "self_play": Key("refused", "refused unless null: self-play is not built"),
    },
    "hyperparameters": {
        "batch_size": Key("honoured", "ppo.batch_size / sac.batch_size (and BC's and GAIL's demo batch unless behavioral_cloning sets "
                                      "its own)"),
        "buffer_size": Key("honoured", "PPO: ppo.buffer_size, steps of all agents together between updates (each agent collects "
                                       "buffer_size / agents); SAC: sac.buffer_size"),
        "learning_rate": Key("honoured", "ppo.learning_rate / sac.learning_rate; BC's is learning_rate x behavioral_cloning.strength"),
        "learning_rate_schedule": Key("honoured", "ppo.learning_rate_schedule / sac.learning_rate_schedule (default: linear with PPO, "
                                                  "constant with SAC); linear falls to 1e-10 at max_steps"),
    },
    "hyperparameters (ppo)": {
        "beta": Key("honoured", "ppo.ent_coef"),
        "beta_schedule": Key("honoured", "ppo.ent_coef_schedule (default: learning_rate_schedule); linear falls to 1e-5 at max_steps"),
        "epsilon": Key("honoured", "ppo.clip_range"),
        "epsilon_schedule": Key("honoured", "ppo.clip_range_schedule (default: learning_rate_schedule); linear falls to 0.1 at max_steps"),
        "lambd": Key("honoured", "ppo.gae_lambda"),
        "num_epoch": Key("honoured", "ppo.n_epochs (and BC's epochs unless behavioral_cloning sets num_epoch)"),
        "shared_critic": Key("ignored", "true is ignored with a warning: policy and value have separate networks; false is honoured",
                             "true: the policy and the value function have separate networks"),
    },
    "hyperparameters (sac)": {
        "buffer_init_steps": Key("honoured", "sac.learning_starts"),
        "tau": Key("refused", "0.005 (SB3's) is honoured; other values are refused: our SAC's target update rate is fixed"),
        "steps_per_update": Key("ignored", "SB3 takes one gradient step per step of all agents together"),
        "save_replay_buffer": Key("honoured", "true: checkpoints hold SAC's replay buffer; false is ignored with a warning (they always do)",
                                  "false: our checkpoints always hold SAC's replay buffer"),
        "init_entcoef": Key("ignored", "1.0 is honoured; other values are ignored with a warning: SB3's entropy coefficient starts at 1.0",
                            "SB3's automatic entropy coefficient starts at 1.0"),
        "reward_signal_steps_per_update": Key("ignored", "SAC learns from the env's reward alone (GAIL with SAC is refused)"),
    },
    "network_settings": {
        "normalize": Key("approximated", "normalize: with the demonstrations' statistics (fixed), not a running mean; "
                                         "ignored with a warning without demonstrations"),
        "hidden_units": Key("honoured", "hidden_units"),
        "num_layers": Key("honoured", "num_layers"),
        "vis_encode_type": Key("approximated", "simple, nature_cnn: our CNN (NatureCNN's layers from 36 x 36 pixels, a small CNN below); "
                                               "resnet, match3, fully_connected: the same, with a warning"),
        "memory": Key("honoured", "our memory section: an LSTM policy (refused with SAC, which has none); null: no memory"),
        "goal_conditioning_type": Key("ignored", "hyper is ignored with a warning: goal signals are inputs like the other observations "
                                                 "(none); none is honoured",
                                      "hyper: goal signals are inputs like the other observations (as none)"),
        "deterministic": Key("ignored", "true is ignored with a warning: training samples actions, evaluation takes the most probable one",
                             "true: training samples actions; evaluation and export take the most probable one"),
    },
    "network_settings.memory": {
        "memory_size": Key("honoured", "memory.memory_size (default 128; even: half hidden, half cell state)"),
        "sequence_length": Key("honoured", "memory.sequence_length (default 64)"),
    },
    "reward_signals": {
        "extrinsic": Key("honoured", "the env's reward, at weight 1 (see its rows)"),
        "gail": Key("honoured", "the GAIL reward: mixed into PPO's (gail.strength), or GAIL alone when it is the only signal; "
                                "refused with SAC"),
        "curiosity": Key("honoured", "the curiosity (ICM) reward added to PPO's, weighted by its strength (our curiosity section); "
                                     "strength 0 is ignored with a warning; refused with SAC and with GAIL as the only other signal"),
        "rnd": Key("honoured", "the RND reward added to PPO's, weighted by its strength (our rnd section); strength 0 is ignored with a "
                               "warning; refused with SAC and with GAIL as the only other signal"),
    },
    "reward_signals.extrinsic": {
        "strength": Key("refused", "1.0 is honoured (0 drops the signal); "
                                   "other values are refused: our trainers take the env's reward at weight 1"),
        "gamma": Key("honoured", "ppo.gamma / sac.gamma"),
        "network_settings": Key("ignored", "the value function has the policy's hidden layers"),
    },
    "reward_signals.gail": {
        "strength": Key("honoured", "gail.strength (its weight beside the env's reward); 0 drops the signal with a warning"),
        "gamma": Key("approximated", "ppo.gamma when GAIL is the only signal; beside extrinsic, one gamma (extrinsic's) for both, "
                                     "with a warning when they differ"),
        "demo_path": Key("honoured", "demo_path (the same file as behavioral_cloning's, or refused)"),
        "encoding_size": Key("ignored", "the discriminator has the policy's hidden layers (hidden_units x num_layers)"),
        "learning_rate": Key("honoured", "gail.disc_learning_rate"),
        "use_actions": Key("approximated", "true is honoured; false is ignored with a warning: our discriminator always sees the actions"),
        "use_vail": Key("ignored", "true is ignored with a warning: the discriminator has no variational bottleneck",
                        "true: the discriminator has no variational bottleneck (plain GAIL)"),
        "network_settings": Key("ignored", "the discriminator has the policy's hidden layers (hidden_units x num_layers)"),
    },
    **{
        f"reward_signals.{name}": {
            "strength": Key("honoured", f"{name}.strength"),
            "gamma": Key("approximated", "one gamma (extrinsic's) for every signal, with a warning when they differ"),
            "encoding_size": Key("honoured", f"{name}.encoding_size (default 64)"),
            "learning_rate": Key("honoured", f"{name}.learning_rate (default {default})"),
            "network_settings": Key("ignored", "the encoder has one hidden layer of encoding_size units (a CNN first for images)"),
        }
        for name, default in (("curiosity", "3e-4"), ("rnd", "1e-4"))
    },
    "behavioral_cloning": {
        "demo_path": Key("honoured", "demo_path"),
        "strength": Key("honoured", "BC's learning_rate is the trainer's learning_rate x strength, as in ML-Agents"),
        "steps": Key("honoured", "ppo: cloning.steps, BC's learning rate falls linearly to nothing over them (0: it stays); "
                                 "sac: ignored with a warning (pretraining)"),
        "batch_size": Key("honoured", "batch_size (BC's; default: the trainer's)"),
        "num_epoch": Key("honoured", "num_epoch: ppo: BC epochs after each rollout (default: PPO's num_epoch); sac: epochs of BC "
                                     "pretraining (default 10)"),
        "samples_per_update": Key("honoured", "0: an epoch is a pass over the demos; n: batches_per_epoch = n / batch_size"),
    },
    "self_play": {
        key: Key("refused", "with self_play")
        for key in ("save_steps", "team_change", "swap_steps", "window", "play_against_latest_model_ratio", "initial_elo")
    },
    "environment parameter": {
        "curriculum": Key("honoured", "a list of lessons, each ending by its completion_criteria; the lesson number is logged as "
                                      "Environment/Lesson Number/<parameter>"),
        "sampler_type": Key("honoured", "uniform, gaussian, multirange_uniform (also written multirangeuniform): sent as a sampler, "
                                        "the player draws a value at each reset; a plain number is a constant"),
        "sampler_parameters": Key("honoured", "see the sampler_parameters rows"),
    },
    "sampler_parameters": {
        "min_value": Key("honoured", "uniform (default 0.0)"),
        "max_value": Key("honoured", "uniform (default 1.0)"),
        "mean": Key("honoured", "gaussian (default 1.0)"),
        "st_dev": Key("honoured", "gaussian (default 1.0)"),
        "intervals": Key("honoured", "multirange_uniform: [[min, max], ...]"),
        "seed": Key("honoured", "the sampler's seed; absent or -1: the run's seed plus the number of lessons without a seed before it"),
        "value": Key("honoured", "constant"),
    },
    "lesson": {
        "name": Key("honoured", "the lesson's name (logged when the lesson begins)"),
        "value": Key("honoured", "a number or a sampler, sent when the lesson begins"),
        "completion_criteria": Key("honoured", "required but on the last lesson (where it is ignored with a warning)"),
    },
    "completion_criteria": {
        "behavior": Key("honoured", "a behavior of the file; the lesson of another behavior than the run's never ends (a warning says so)"),
        "measure": Key("honoured", "reward (default): the mean return of the behavior's episodes in the lesson; progress: its steps / "
                                   "max_steps"),
        "threshold": Key("honoured", "default 0.0: the lesson ends when the measure is above it; within [0, 1] for progress"),
        "min_lesson_length": Key("honoured", "default 0: episodes the lesson lasts at least; the reward's mean is over the last ones, as "
                                             "many as the behavior's largest min_lesson_length (at least 1)"),
        "signal_smoothing": Key("honoured", "default true: the reward measure is 0.25 x its previous value + 0.75 x the new mean"),
        "require_reset": Key("honoured", "default false; true: every Unity process is reset when the lesson ends (episodes cut there)"),
    },
    "env_settings": {
        **{key: Key("honoured", f"as --{key.replace('_', '-')}") for key in ("base_port", "num_envs", "seed")},
        "env_path": Key("honoured", "as --env"),
        "env_args": Key("honoured", "as --env-args"),
        **{key: Key("ignored", _RESTARTS, "") for key in ("timeout_wait", "max_lifetime_restarts", "restarts_rate_limit_n", "restarts_rate_limit_period_s")},
        "num_areas": Key("ignored", "one training area per process (1 is accepted silently)"),
    },
    "engine_settings": {
        key: Key("honoured", f"as --{key.replace('_', '-')}")
        for key in ("width", "height", "quality_level", "time_scale", "target_frame_rate", "capture_frame_rate", "no_graphics")
    },
    "checkpoint_settings": {
        **{key: Key("honoured", f"as --{key.replace('_', '-')}") for key in ("run_id", "resume", "force", "results_dir")},
        "initialize_from": Key("honoured", "as --initialize-from: a new run starts from that run's trained model"),
        "load_model": Key("honoured", "the former name of resume, read as resume (with a note)"),
        "train_model": Key("ignored", "gym-unity-il train always trains (ML-Agents ignores it too)"),
        "inference": Key("refused", "true asks for a run that only plays the policy; false is accepted"),
    },
    "torch_settings": {"device": Key("honoured", "as --torch-device (cpu)")},
}
#: The field of :class:`~gym_unity_il.train.config.RunSettings` each honoured run-section key sets.
RUN_FIELDS: dict[str, str] = {"env_path": "env_path", "env_args": "env_args", "base_port": "base_port", "num_envs": "num_envs", "seed": "seed",
                              "width": "width", "height": "height", "quality_level": "quality_level", "time_scale": "time_scale",
                              "target_frame_rate": "target_frame_rate", "capture_frame_rate": "capture_frame_rate",
                              "no_graphics": "no_graphics", "run_id": "run_id", "initialize_from": "initialize_from", "resume": "resume",
                              "load_model": "resume", "force": "force", "results_dir": "results_dir", "device": "torch_device"}  # fmt: skip

#: ML-Agents' defaults of the keys we translate (release 20's settings), for keys a file leaves out.
PPO_DEFAULTS: dict[str, Any] = {"batch_size": 1024, "buffer_size": 10240, "learning_rate": 3.0e-4, "beta": 5.0e-3, "epsilon": 0.2, "lambd": 0.95,
                                "num_epoch": 3}  # fmt: skip
SAC_DEFAULTS: dict[str, Any] = {"batch_size": 128, "buffer_size": 50000, "learning_rate": 3.0e-4, "buffer_init_steps": 0}
BEHAVIOR_DEFAULTS: dict[str, Any] = {"max_steps": 500_000, "summary_freq": 50_000, "hidden_units": 128, "num_layers": 2, "normalize": False,
                                     "gamma": 0.99}  # fmt: skip
#: The value of a key that ML-Agents and our trainers share, where only that value is honoured.
_OURS: dict[str, Any] = {"tau": 0.005, "init_entcoef": 1.0}

_SAMPLERS = {"uniform": ("min_value", "max_value"), "gaussian": ("mean", "st_dev"), "multirange_uniform": ("intervals",), "constant": ("value",)}
_SAMPLER_DEFAULTS = {"min_value": 0.0, "max_value": 1.0, "mean": 1.0, "st_dev": 1.0, "intervals": [[0.0, 1.0]], "value": 0.0}


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``, nested mappings key by key (how ML-Agents lays a behavior on
    ``default_settings``)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
    return out


def translate(raw: Mapping[str, Any], *, source: str) -> tuple[dict[str, Any], list[str]]:
    """The ML-Agents file ``raw`` (parsed YAML with a top-level ``behaviors:``) in our own
    dialect, and the warnings to log (one per ignored key, saying what is ignored and why).

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a key that would silently
            change the result if ignored (naming the file, section and key, and the fix).
    """
    reader = KeyReader(source, KEYS, 'ML-Agents configs')
    top = reader.mapping(raw, f"{source}: top level")
    reader.known(top, ("top level",), f"{source}: top level")
    behaviors = reader.mapping(top.get("behaviors"), f"{source}: behaviors")
    if not behaviors:
        raise ConfigError(f"{source}: behaviors: no behavior sections; add one per behavior name (e.g. '3DBall:') under behaviors")
    defaults = reader.mapping(top.get("default_settings"), f"{source}: section 'default_settings'")
    out: dict[str, Any] = {}
    if "default_settings" in top:
        out["default"] = _behavior(reader, defaults, f"{source}: section 'default_settings'")
    for name, section in behaviors.items():
        where = f"{source}: section {quote('behaviors.' + str(name))}"
        if name == "default" or name in RUN_SECTIONS:
            raise ConfigError(f"{where}: the behavior name {name!r} is a reserved section name of our dialect; rename the behavior")
        out[name] = _behavior(reader, _merged(defaults, reader.mapping(section, where)), where)
    if top.get("environment_parameters") is not None:
        out["environment_parameters"] = _environment_parameters(reader, top["environment_parameters"], list(behaviors))
    out["run"] = _run(reader, top)
    return out, reader.warnings


def _run(reader: KeyReader, top: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per run section, its values as fields of :class:`~gym_unity_il.train.config.RunSettings` (see :data:`RUN_FIELDS`)."""
    sections: dict[str, dict[str, Any]] = {}
    for section in ("env_settings", "engine_settings", "checkpoint_settings", "torch_settings"):
        run = sections[section] = {}
        where = f"{reader.source}: section {section!r}"
        values = reader.mapping(top.get(section), where)
        reader.known(values, (section,), where)
        for key, value in values.items():
            entry = KEYS[section][key]
            if key == "inference" and value:
                raise ConfigError(f"{where}.inference: true asks for an inference-only run; gym-unity-il train always trains: remove the key")
            if entry.handling == "ignored":
                if value is not None and key != "train_model" and (key, value) != ("num_areas", 1):
                    reader.ignored(where, section, key)
            elif value is not None and key in RUN_FIELDS:
                if key == "load_model" and value:
                    reader.warn(f"{where}.load_model", "the former name of resume; read as resume: true")
                run[RUN_FIELDS[key]] = value
    if top.get("debug") is not None:
        sections["debug"] = {"debug": reader.flag(top["debug"], f"{reader.source}: debug")}
    return sections


def _behavior(reader: KeyReader, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One behavior's settings (``default_settings`` already merged under it) in our dialect."""
    reader.known(raw, ("behavior",), where)
    if "hyperparameters" in raw and "trainer_type" not in raw:
        raise ConfigError(f"{where}: hyperparameters are given without trainer_type; add trainer_type: ppo or sac (ML-Agents requires it too)")
    kind = raw.get("trainer_type", "ppo")
    if kind == "poca":
        raise ConfigError(f"{where}.trainer_type: 'poca' (MA-POCA, cooperative multi-agent) is not supported; use trainer_type: ppo or sac")
    kind = reader.choice(kind, ("ppo", "sac"), f"{where}.trainer_type")
    if raw.get("init_path") is not None:
        raise ConfigError(f"{where}.init_path: starting from another run's model is not built; remove init_path to train from scratch")
    if raw.get("self_play") is not None:
        reader.known(reader.mapping(raw["self_play"], f"{where}.self_play"), ("self_play",), f"{where}.self_play")
        raise ConfigError(f"{where}.self_play: self-play (teams playing against past versions of the policy) is not built; remove self_play")

    out: dict[str, Any] = {}
    for key in ("max_steps", "summary_freq"):
        out[key] = reader.number(raw.get(key, BEHAVIOR_DEFAULTS[key]), f"{where}.{key}", integer=True, key=key)
    for key in ("time_horizon", "keep_checkpoints", "even_checkpoints", "checkpoint_interval", "threaded"):
        if key in raw:
            reader.ignored(where, "behavior", key)

    hyper_where = f"{where}.hyperparameters"
    hyper = _hyperparameters(reader, kind, reader.mapping(raw.get("hyperparameters"), hyper_where), hyper_where)
    out[kind] = hyper["algorithm"]
    network = _network(reader, reader.mapping(raw.get("network_settings"), f"{where}.network_settings"), f"{where}.network_settings")
    out.update(hidden_units=network["hidden_units"], num_layers=network["num_layers"])
    if "memory" in network:
        out["memory"] = network["memory"]
    signals_where = f"{where}.reward_signals"
    signals = _reward_signals(reader, reader.mapping(raw.get("reward_signals", {"extrinsic": {}}), signals_where), signals_where)
    out[kind]["gamma"] = signals["gamma"]

    bc_where = f"{where}.behavioral_cloning"
    bc = reader.mapping(raw["behavioral_cloning"], bc_where) if raw.get("behavioral_cloning") is not None else None
    if bc is not None:
        out.update(_behavioral_cloning(reader, bc, hyper, kind, bc_where))
        if signals.get("demo_path", bc["demo_path"]) != bc["demo_path"]:
            raise ConfigError(f"{bc_where}.demo_path: {bc['demo_path']!r} differs from reward_signals.gail.demo_path "
                              f"{signals['demo_path']!r}; our trainers read one set of demonstrations: give both the same path")  # fmt: skip
    demo_path = bc["demo_path"] if bc is not None else signals.get("demo_path")
    if demo_path is not None:
        out["demo_path"] = demo_path
    if "gail" in signals:
        out["gail"] = {**signals["gail"], "demo_batch_size": hyper["batch_size"]}

    for name in ("gail", "curiosity", "rnd"):
        if name in signals and kind == "sac":
            raise ConfigError(f"{where}.reward_signals.{name}: our SAC learns from the env's reward alone (the {name} reward is added to PPO's "
                              f"rollouts only); use trainer_type: ppo, or remove {name}")  # fmt: skip
        if name != "gail" and name in signals:
            out[name] = signals[name]
    if bc is not None and kind == "sac":
        out["trainer"] = "bc_then_sac"
    elif signals["extrinsic"]:
        out["trainer"] = kind
    else:
        out["trainer"] = "gail"
        out["gail"].pop("strength")  # GAIL alone: its reward is the whole reward, at any weight

    normalize = network["normalize"]
    if normalize and "demo_path" not in out:
        reader.warn(f"{where}.network_settings.normalize", "ignored: our normalize standardizes with the demonstrations' statistics, and "
                    "this behavior has none (no behavioral_cloning or gail demo_path); observations reach the policy as they are")  # fmt: skip
        normalize = False
    out["normalize"] = normalize
    return out


def _hyperparameters(reader: KeyReader, kind: str, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Our ``ppo`` / ``sac`` section from ``hyperparameters``, with the batch size and learning
    rate BC and GAIL default to."""
    reader.known(raw, ("hyperparameters", f"hyperparameters ({kind})"), where)
    values = {**(PPO_DEFAULTS if kind == "ppo" else SAC_DEFAULTS), **raw}
    batch_size = reader.number(values["batch_size"], f"{where}.batch_size", integer=True, key="batch_size")
    learning_rate = reader.number(values["learning_rate"], f"{where}.learning_rate", key="learning_rate")
    schedules = ("constant", "linear")
    lr_schedule = reader.choice(raw.get("learning_rate_schedule", "linear" if kind == "ppo" else "constant"), schedules,
                                f"{where}.learning_rate_schedule")  # fmt: skip
    if kind == "ppo":
        if "shared_critic" in raw and reader.flag(raw["shared_critic"], f"{where}.shared_critic"):
            reader.ignored(where, "hyperparameters (ppo)", "shared_critic")
        algorithm = {
            "buffer_size": reader.number(values["buffer_size"], f"{where}.buffer_size", integer=True, key="buffer_size"),
            "learning_rate_schedule": lr_schedule,
            "ent_coef_schedule": reader.choice(raw.get("beta_schedule", lr_schedule), schedules, f"{where}.beta_schedule"),
            "clip_range_schedule": reader.choice(raw.get("epsilon_schedule", lr_schedule), schedules, f"{where}.epsilon_schedule"),
            "batch_size": batch_size,
            "n_epochs": reader.number(values["num_epoch"], f"{where}.num_epoch", integer=True, key="n_epochs"),
            "learning_rate": learning_rate,
            "ent_coef": reader.number(values["beta"], f"{where}.beta", key="ent_coef"),
            "clip_range": reader.number(values["epsilon"], f"{where}.epsilon", key="clip_range"),
            "gae_lambda": reader.number(values["lambd"], f"{where}.lambd", key="gae_lambda"),
        }
        return {"algorithm": algorithm, "batch_size": batch_size, "learning_rate": learning_rate, "num_epoch": algorithm["n_epochs"]}
    if "tau" in raw and reader.number(raw["tau"], f"{where}.tau") != _OURS["tau"]:
        raise ConfigError(f"{where}.tau: {quote(raw['tau'])}, but our SAC updates its target network at SB3's rate, 0.005; set tau to 0.005")
    if "init_entcoef" in raw and reader.number(raw["init_entcoef"], f"{where}.init_entcoef") != _OURS["init_entcoef"]:
        reader.ignored(where, "hyperparameters (sac)", "init_entcoef")
    if "save_replay_buffer" in raw and not reader.flag(raw["save_replay_buffer"], f"{where}.save_replay_buffer"):
        reader.ignored(where, "hyperparameters (sac)", "save_replay_buffer")
    for key in ("steps_per_update", "reward_signal_steps_per_update"):
        if key in raw:
            reader.number(raw[key], f"{where}.{key}")
            reader.ignored(where, "hyperparameters (sac)", key)
    algorithm = {
        "buffer_size": reader.number(values["buffer_size"], f"{where}.buffer_size", integer=True, key="buffer_size"),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_schedule": lr_schedule,
        "learning_starts": reader.number(values["buffer_init_steps"], f"{where}.buffer_init_steps", integer=True, key="learning_starts"),
    }
    return {"algorithm": algorithm, "batch_size": batch_size, "learning_rate": learning_rate, "num_epoch": None}


def _network(reader: KeyReader, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``hidden_units``, ``num_layers`` and ``normalize`` from ``network_settings``."""
    reader.known(raw, ("network_settings",), where)
    out: dict[str, Any] = {}
    memory = raw.get("memory")
    if memory not in (None, False):
        memory = reader.mapping(memory, f"{where}.memory")
        reader.known(memory, ("network_settings.memory",), f"{where}.memory")
        out["memory"] = {key: reader.number(memory.get(key, default), f"{where}.memory.{key}", integer=True, key=key)
                         for key, default in (("memory_size", 128), ("sequence_length", 64))}  # fmt: skip
    encoder = raw.get("vis_encode_type", "simple")
    encoders = ("simple", "nature_cnn", "resnet", "match3", "fully_connected")
    if reader.choice(encoder, encoders, f"{where}.vis_encode_type") not in ("simple", "nature_cnn"):
        reader.warn(f"{where}.vis_encode_type", f"approximated: {encoder} is not built; images (if any) go through our CNN "
                    "(NatureCNN's layers from 36 x 36 pixels, a small CNN below)")  # fmt: skip
    goal = raw.get("goal_conditioning_type")
    if goal is not None and reader.choice(goal, ("hyper", "none"), f"{where}.goal_conditioning_type") == "hyper":
        reader.ignored(where, "network_settings", "goal_conditioning_type")
    if "deterministic" in raw and reader.flag(raw["deterministic"], f"{where}.deterministic"):
        reader.ignored(where, "network_settings", "deterministic")
    for key in ("hidden_units", "num_layers"):
        out[key] = reader.number(raw.get(key, BEHAVIOR_DEFAULTS[key]), f"{where}.{key}", integer=True, key=key)
    return {**out, "normalize": reader.flag(raw.get("normalize", BEHAVIOR_DEFAULTS["normalize"]), f"{where}.normalize")}


def _reward_signals(reader: KeyReader, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The reward signals in our terms: ``extrinsic`` (whether the env's reward is used),
    ``gamma``, and, with GAIL, ``gail`` (our gail section) and ``demo_path``."""
    reader.known(raw, ("reward_signals",), where)
    signals = {name: reader.mapping(raw[name], f"{where}.{name}") for name in raw}
    for name, values in signals.items():
        reader.known(values, (f"reward_signals.{name}",), f"{where}.{name}")
    strengths, gammas = {}, {}
    for name, value in signals.items():
        strengths[name] = reader.number(value.get("strength", 1.0), f"{where}.{name}.strength", key="strength")
        gammas[name] = reader.number(value.get("gamma", BEHAVIOR_DEFAULTS["gamma"]), f"{where}.{name}.gamma", key="gamma")
    intrinsic = {}
    for name in ("curiosity", "rnd"):
        if name in signals and strengths[name] > 0:
            intrinsic[name] = _intrinsic(reader, signals[name], strengths[name], name, f"{where}.{name}")
        elif name in signals:
            reader.warn(f"{where}.{name}", f"ignored: strength 0, so the {name} reward adds nothing")
    extrinsic = strengths.get("extrinsic", 0.0)
    if extrinsic not in (0.0, 1.0):
        raise ConfigError(
            f"{where}.extrinsic.strength: {extrinsic}, but our trainers take the env's reward at weight 1; set it to 1.0 "
            f"(and divide the other signals' strengths by {extrinsic} for the same mix)"
        )
    if "network_settings" in signals.get("extrinsic", {}):
        reader.ignored(f"{where}.extrinsic", "reward_signals.extrinsic", "network_settings")
    out: dict[str, Any] = {"extrinsic": extrinsic == 1.0, "gamma": gammas.get("extrinsic", BEHAVIOR_DEFAULTS["gamma"])}
    if "gail" in signals and strengths["gail"] == 0:
        reader.warn(f"{where}.gail", "ignored: strength 0, so the GAIL reward adds nothing")
    elif "gail" in signals:
        out.update(_gail(reader, signals["gail"], strengths["gail"], f"{where}.gail"))
        if not out["extrinsic"]:
            out["gamma"] = gammas["gail"]
        elif gammas["gail"] != gammas["extrinsic"]:
            reader.warn(f"{where}.gail.gamma", f"approximated: our PPO discounts the env's and the GAIL reward alike, with extrinsic's "
                        f"gamma {gammas['extrinsic']}")  # fmt: skip
    if not out["extrinsic"] and "gail" not in out:
        raise ConfigError(f"{where}: no reward signal with a nonzero strength; add 'extrinsic: {{strength: 1.0, gamma: 0.99}}'")
    if intrinsic and not out["extrinsic"]:
        raise ConfigError(f"{where}.{next(iter(intrinsic))}: intrinsic rewards are added to PPO's beside the env's reward, and GAIL is the only "
                          "other signal (our gail trainer takes GAIL's reward alone); add 'extrinsic: {strength: 1.0, gamma: 0.99}'")  # fmt: skip
    for name in intrinsic:
        if gammas[name] != out["gamma"]:
            reader.warn(f"{where}.{name}.gamma", f"approximated: our PPO discounts every reward alike, with extrinsic's gamma {out['gamma']}")
    out.update(intrinsic)
    return out


def _intrinsic(reader: KeyReader, raw: Mapping[str, Any], strength: float, name: str, where: str) -> dict[str, Any]:
    """Our ``curiosity`` / ``rnd`` section from the reward signal of that name."""
    if "network_settings" in raw:
        reader.ignored(where, f"reward_signals.{name}", "network_settings")
    defaults = {"curiosity": 3.0e-4, "rnd": 1.0e-4}
    return {
        "strength": strength,
        "encoding_size": reader.number(raw.get("encoding_size", 64), f"{where}.encoding_size", integer=True, key="encoding_size"),
        "learning_rate": reader.number(raw.get("learning_rate", defaults[name]), f"{where}.learning_rate", key="learning_rate"),
    }


def _gail(reader: KeyReader, raw: Mapping[str, Any], strength: float, where: str) -> dict[str, Any]:
    """Our ``gail`` section and ``demo_path`` from ``reward_signals.gail``."""
    if "demo_path" not in raw:
        raise ConfigError(f"{where}.demo_path: GAIL learns from demonstrations; set demo_path to a .demo file or folder")
    for key in ("encoding_size", "network_settings"):
        if key in raw:
            reader.ignored(where, "reward_signals.gail", key)
    if not reader.flag(raw.get("use_actions", False), f"{where}.use_actions"):
        reader.warn(f"{where}.use_actions", "approximated: false (ML-Agents' default), but our discriminator always sees the actions "
                    "(as use_actions: true)")  # fmt: skip
    if reader.flag(raw.get("use_vail", False), f"{where}.use_vail"):
        reader.ignored(where, "reward_signals.gail", "use_vail")
    learning_rate = reader.number(raw.get("learning_rate", 3.0e-4), f"{where}.learning_rate", key="disc_learning_rate")
    gail = {"strength": strength, "disc_learning_rate": learning_rate}
    return {"gail": gail, "demo_path": reader.text(raw["demo_path"], f"{where}.demo_path")}


def _behavioral_cloning(reader: KeyReader, raw: Mapping[str, Any], hyper: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    """Our BC keys (``batch_size``, ``learning_rate``, ``num_epoch``, ``batches_per_epoch``, and
    with PPO ``cloning``: BC beside its updates) from ``behavioral_cloning``."""
    reader.known(raw, ("behavioral_cloning",), where)
    _, strength, steps = reader.cloning(raw, "behavioral_cloning", where)
    out: dict[str, Any] = {
        "batch_size": reader.number(raw.get("batch_size") or hyper["batch_size"], f"{where}.batch_size", integer=True, key="batch_size"),
        "learning_rate": reader.number(hyper["learning_rate"] * strength, f"{where}.strength", key="learning_rate"),
    }
    num_epoch = raw.get("num_epoch") or hyper["num_epoch"]
    if num_epoch is not None:
        out["num_epoch"] = reader.number(num_epoch, f"{where}.num_epoch", integer=True, key="num_epoch")
    samples = reader.number(raw.get("samples_per_update", 0), f"{where}.samples_per_update", integer=True)
    if samples < 0:
        raise ConfigError(f"{where}.samples_per_update: {samples} is out of range; accepted: 0 (all the demos) or more")
    if samples:
        out["batches_per_epoch"] = max(1, samples // out["batch_size"])
    if kind == "ppo":
        out["cloning"] = {"during_rl": True, "steps": steps}
    elif steps:
        reader.warn(f"{where}.steps", "ignored: with SAC, BC is pretraining of num_epoch epochs before the RL, not annealed during it")
    return out


def read_environment_parameters(raw: Any, *, source: str, behaviors: list[str] | None = None) -> tuple[dict[str, list[Any]], list[str]]:
    """An ``environment_parameters`` section in ML-Agents' own shape (today's files, and our
    own dialect's top-level section) as data: parameter -> lessons (see the module
    docstring), and the warnings to log.

    Args:
        raw: the section's parsed YAML.
        source: the file, as errors name it.
        behaviors: the file's behaviors, which completion criteria must name (None: any
            name; the run checks that it trains the one named).

    Raises:
        ConfigError: an unknown key or a value of the wrong type, naming the file and the key.
    """
    reader = KeyReader(source, KEYS, "ML-Agents configs")
    return _environment_parameters(reader, raw, behaviors), reader.warnings


def _environment_parameters(reader: KeyReader, raw: Any, behaviors: list[str] | None) -> dict[str, list[dict[str, Any]]]:
    """``environment_parameters`` as data: parameter -> lessons (see the module docstring)."""
    where = f"{reader.source}: section 'environment_parameters'"
    out = {}
    for name, value in reader.mapping(raw, where).items():
        here = f"{where}.{name}"
        if isinstance(value, Mapping) and "curriculum" in value:
            reader.known(value, ("environment parameter",), here)
            lessons = value["curriculum"]
            if not isinstance(lessons, list) or not lessons:
                raise ConfigError(f"{here}.curriculum: expected a list of lessons ('- name: ...'), got {quote(lessons)}")
            last = len(lessons) - 1
            out[name] = [_lesson(reader, lesson, i == last, behaviors, f"{here}.curriculum[{i}]") for i, lesson in enumerate(lessons)]
        else:
            out[name] = [{"name": name, "value": _sampler(reader, value, here), "completion_criteria": None}]
    return out


def _lesson(reader: KeyReader, raw: Any, last: bool, behaviors: list[str] | None, where: str) -> dict[str, Any]:
    lesson = reader.mapping(raw, where)
    reader.known(lesson, ("lesson",), where)
    for key in ("name", "value"):
        if key not in lesson:
            raise ConfigError(f"{where}: a lesson needs {key}")
    criteria = lesson.get("completion_criteria")
    if criteria is None and not last:
        raise ConfigError(f"{where}.completion_criteria: every lesson but the last needs completion_criteria")
    if criteria is not None and last:
        reader.warn(f"{where}.completion_criteria", "ignored: the last lesson lasts to the end of the run")
        criteria = None
    if criteria is not None:
        here = f"{where}.completion_criteria"
        criteria = _completion_criteria(reader, reader.mapping(criteria, here), behaviors, here)
    return {"name": reader.text(lesson["name"], f"{where}.name"), "value": _sampler(reader, lesson["value"], f"{where}.value"),
            "completion_criteria": criteria}  # fmt: skip


def _completion_criteria(reader: KeyReader, raw: Mapping[str, Any], behaviors: list[str] | None, where: str) -> dict[str, Any]:
    reader.known(raw, ("completion_criteria",), where)
    if behaviors is not None and raw.get("behavior") not in behaviors:
        raise ConfigError(f"{where}.behavior: expected one of the file's behaviors {behaviors}, got {quote(raw.get('behavior'))}")
    if not isinstance(raw.get("behavior"), str):
        raise ConfigError(f"{where}.behavior: expected the behavior whose training ends the lesson, got {quote(raw.get('behavior'))}")
    measure = reader.choice(raw.get("measure", "reward"), ("reward", "progress"), f"{where}.measure")
    threshold = reader.number(raw.get("threshold", 0.0), f"{where}.threshold")
    if measure == "progress" and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"{where}.threshold: {threshold} is out of range for measure progress; accepted: 0 to 1")
    min_length = reader.number(raw.get("min_lesson_length", 0), f"{where}.min_lesson_length", integer=True)
    if min_length < 0:
        raise ConfigError(f"{where}.min_lesson_length: {min_length} is out of range; accepted: 0 or more")
    return {
        "behavior": raw["behavior"],
        "measure": measure,
        "threshold": threshold,
        "min_lesson_length": min_length,
        "signal_smoothing": reader.flag(raw.get("signal_smoothing", True), f"{where}.signal_smoothing"),
        "require_reset": reader.flag(raw.get("require_reset", False), f"{where}.require_reset"),
    }


def _sampler(reader: KeyReader, raw: Any, where: str) -> dict[str, Any]:
    """A lesson's value: a number (a constant) or ``{sampler_type, sampler_parameters}``."""
    if not isinstance(raw, Mapping):
        return {"sampler_type": "constant", "value": reader.number(raw, where)}
    reader.known(raw, ("environment parameter",), where)
    if "curriculum" in raw or "sampler_type" not in raw or "sampler_parameters" not in raw:
        raise ConfigError(f"{where}: expected a number or a sampler (sampler_type and sampler_parameters), got {quote(dict(raw))}")
    kind = {"multirangeuniform": "multirange_uniform"}.get(raw["sampler_type"], raw["sampler_type"])
    kind = reader.choice(kind, tuple(_SAMPLERS), f"{where}.sampler_type")
    parameters = reader.mapping(raw["sampler_parameters"], f"{where}.sampler_parameters")
    reader.known(parameters, ("sampler_parameters",), f"{where}.sampler_parameters")
    extra = [key for key in parameters if key not in (*_SAMPLERS[kind], "seed")]
    if extra:
        raise ConfigError(f"{where}.sampler_parameters: {extra[0]!r} is not a parameter of the {kind} sampler; "
                          f"its parameters are {list(_SAMPLERS[kind])} and seed")
    out: dict[str, Any] = {"sampler_type": kind}
    for key in _SAMPLERS[kind]:
        value = parameters.get(key, _SAMPLER_DEFAULTS[key])
        here = f"{where}.sampler_parameters.{key}"
        out[key] = _intervals(reader, value, here) if key == "intervals" else reader.number(value, here)
    if kind == "uniform" and out["min_value"] > out["max_value"]:
        raise ConfigError(f"{where}.sampler_parameters: min_value {out['min_value']} is larger than max_value {out['max_value']}")
    if kind == "gaussian" and out["st_dev"] < 0:
        raise ConfigError(f"{where}.sampler_parameters.st_dev: {out['st_dev']} is negative")
    seed = reader.number(parameters.get("seed", -1), f"{where}.sampler_parameters.seed", integer=True)
    if not -1 <= seed < 2**31:
        raise ConfigError(f"{where}.sampler_parameters.seed: {seed} is out of range; accepted: 0 to {2**31 - 1} (or -1: the run's seed)")
    if seed != -1:  # -1, as in ML-Agents: the run's seed plus the lesson's place among the file's lessons
        out["seed"] = seed
    return out


def _intervals(reader: KeyReader, raw: Any, where: str) -> list[list[float]]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: expected a list of [min, max] intervals, got {quote(raw)}")
    out = []
    for interval in raw:
        if not isinstance(interval, list) or len(interval) != 2:
            raise ConfigError(f"{where}: the interval {quote(interval)} must hold exactly two numbers, [min, max]")
        low, high = (reader.number(v, where) for v in interval)
        if low > high:
            raise ConfigError(f"{where}: the interval {quote(interval)} has its minimum above its maximum")
        out.append([low, high])
    return out
