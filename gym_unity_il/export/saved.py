"""What a training run leaves behind, and how it is read back.

* :class:`RunFiles`: the names in a run folder ``results/<run-id>/``, the one place they
  are defined: ``gym-unity-il train`` writes them, export and the command line read them;
* :func:`save_model`: an SB3 model as ``model.zip`` with what loading it needs besides SB3's
  own files: its algorithm and the :class:`~gym_unity_il.export.layout.ObservationLayout`
  it was trained through (the member :data:`SAVED_MEMBER`, which SB3 ignores);
* :func:`load_policy`: the one loader of saved models and policies (evaluation, teachers,
  ``demo record --policy``, ``gym-unity-il export``), and :class:`TrainedPolicy`, what
  it returns: a policy of the env's own observations;
* :func:`read_run_dir`: the model and the behavior of a run folder.

Saved SB3 models and bare policies are pickles: load only files you trust.
"""

from __future__ import annotations

import inspect
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gymnasium import spaces

from gym_unity_il.errors import ConfigError
from gym_unity_il.export.layout import ObservationLayout
from gym_unity_il.extras import require

#: The SB3 algorithms a saved model may name.
SB3_ALGORITHMS = ("ppo", "a2c", "sac", "td3", "ddpg", "dqn")
#: The sb3-contrib algorithms a saved model may name (the ``contrib`` extra), by their class.
CONTRIB_ALGORITHMS = {"recurrentppo": "RecurrentPPO"}
#: What ``algo`` of :func:`load_policy` may be: ``auto``, an SB3 or sb3-contrib algorithm, or ``policy``.
ALGOS = ("auto", *SB3_ALGORITHMS, *CONTRIB_ALGORITHMS, "policy")
#: The member of a saved ``model.zip`` naming its algorithm and observation layout.
SAVED_MEMBER = "gym_unity_il.json"


@dataclass(frozen=True)
class RunFiles:
    """The files of one run folder ``results/<run-id>/`` (what each holds:
    :mod:`gym_unity_il.train.run`). Make it with :meth:`at`.

    Attributes:
        root: the run folder.
        config: the resolved config.
        model: the trained model (:func:`save_model`).
        evaluation: the final evaluation, written last: its presence means a finished run.
        metrics: the rows of returns against steps.
        learning_curve: their plot.
        tensorboard: the TensorBoard event files.
        dagger: `imitation`'s DAgger rounds.
        checkpoint: what ``resume`` continues from.
    """

    root: Path
    config: Path
    model: Path
    evaluation: Path
    metrics: Path
    learning_curve: Path
    tensorboard: Path
    dagger: Path
    checkpoint: CheckpointFiles

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> RunFiles:
        """The files of the run folder ``root``."""
        root = Path(root)
        return cls(root, config=root / "config.yaml", model=root / "model.zip", evaluation=root / "evaluation.json", metrics=root / "metrics.csv",
                   learning_curve=root / "learning_curve.png", tensorboard=root / "tensorboard", dagger=root / "dagger",
                   checkpoint=CheckpointFiles.at(root / "checkpoint"))  # fmt: skip

    @property
    def entries(self) -> frozenset[str]:
        """Every name a run writes in its folder."""
        checkpoint = self.checkpoint
        paths = (self.config, self.model, self.evaluation, self.metrics, self.learning_curve, self.tensorboard, self.dagger,
                 checkpoint.root, checkpoint.draft.root, checkpoint.old.root)  # fmt: skip
        return frozenset(path.name for path in paths)


@dataclass(frozen=True)
class CheckpointFiles:
    """The files of a run's checkpoint folder (make it with :meth:`at`): the model, SAC's
    replay buffer, each phase's state and the run's state."""

    root: Path
    model: Path
    replay_buffer: Path
    phases: Path
    state: Path

    @classmethod
    def at(cls, root: Path) -> CheckpointFiles:
        return cls(root, model=root / "model.zip", replay_buffer=root / "replay_buffer.pkl", phases=root / "phases.pt", state=root / "state.json")

    @property
    def draft(self) -> CheckpointFiles:
        """Where the next checkpoint is written before it takes this one's place."""
        return CheckpointFiles.at(self.root.with_name(f"{self.root.name}.tmp"))

    @property
    def old(self) -> CheckpointFiles:
        """Where this checkpoint goes while the next one takes its place."""
        return CheckpointFiles.at(self.root.with_name(f"{self.root.name}.old"))


def save_model(model: Any, path: Path, layout: ObservationLayout) -> None:
    """Saves an SB3 model (``model.save``) with its algorithm and observation layout.

    Raises:
        OSError: the file cannot be written.
    """
    model.save(path)
    saved = {"algorithm": type(model).__name__.lower(), "observations": layout.to_dict()}
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(SAVED_MEMBER, json.dumps(saved, indent=2))


class TrainedPolicy:
    """A saved model or policy that takes the env's own observations, converted as in training.

    Attributes:
        model: the SB3 algorithm, or the SB3 policy (a bare policy file, or a model whose
            algorithm the file does not name), as loaded.
        layout: how env observations reach it (None: as they are).
    """

    def __init__(self, model: Any, layout: ObservationLayout | None = None) -> None:
        self.model = model
        self.layout = layout

    @property
    def policy(self) -> Any:
        """The SB3 policy that decides (``model.policy`` of an algorithm)."""
        return getattr(self.model, "policy", self.model)

    def policy_observation(self, observation: Any) -> Any:
        """Env observations (one or a batch) as the policy takes them."""
        return observation if self.layout is None else self.layout.to_policy(observation)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[Any, Any]:
        """SB3's ``predict`` on env observations: ``(actions, state)``. A recurrent policy
        (``RecurrentPPO``) takes the state it returned last time and ``episode_start`` (True
        where an episode starts: its state starts from zeros) and returns its new ``(h, c)``;
        others ignore both and return None."""
        return self.model.predict(self.policy_observation(observation), state=state, episode_start=episode_start, deterministic=deterministic)


def load_policy(path: str | os.PathLike[str], env_observation_space: spaces.Space | None = None, *, algo: str = "auto") -> TrainedPolicy:
    """The model or policy saved at ``path``, on the CPU, taking the env's own observations.

    Args:
        path: an SB3 model (``model.save``, a run's ``model.zip``, any algorithm, and
            sb3-contrib's ``RecurrentPPO`` with the ``contrib`` extra) or a bare policy
            (``policy.save``, as imitation's BC policy is saved).
        env_observation_space: for a file without a saved observation layout (written by
            other code, or by an older version): the env's observation space; images are
            then brought channels first, and a Dict packed into one vector when the policy
            takes one array, as ``gym-unity-il train`` does. None: observations reach such
            a policy as they are.
        algo: ``auto`` loads through the algorithm the file names (``gym-unity-il train``
            names it), else rebuilds the policy from the file alone (the policy class and
            its arguments are stored in it); an algorithm name loads through that class's
            ``load``; ``policy`` reads a bare policy file.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ConfigError: an unknown ``algo``, a file that is neither kind, or a damaged
            :data:`SAVED_MEMBER`.
        MissingExtraError: an sb3-contrib model (named, or whose policy class the file
            names) without sb3-contrib installed.
    """
    path = Path(path)
    if algo not in ALGOS:
        raise ConfigError(f"--algo {algo!r} is not one of {ALGOS}")
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    named, layout = _read_saved(path)
    algo = named if algo == "auto" and named else algo
    if algo not in ("auto", "policy"):
        model = _algorithm_class(algo).load(str(path), device="cpu")
    else:
        if not zipfile.is_zipfile(path):
            raise ConfigError(f"{path} is not a saved SB3 model or policy (not a zip archive)")
        with zipfile.ZipFile(path) as archive:
            is_algorithm = {"data", "policy.pth"} <= set(archive.namelist())
        model = _policy_from_algorithm_file(path) if algo == "auto" and is_algorithm else _policy_from_policy_file(path)
    if layout is None and env_observation_space is not None:
        pack = isinstance(env_observation_space, spaces.Dict) and not isinstance(model.observation_space, spaces.Dict)
        layout = ObservationLayout.from_env_space(env_observation_space, pack=pack)
    return TrainedPolicy(model, layout)


#: The name ``gym-unity-il export`` and its documentation give :func:`load_policy`.
load_policy_file = load_policy


def _algorithm_class(algo: str) -> Any:
    """The class of an SB3 or sb3-contrib algorithm by its lower-case name."""
    if algo in CONTRIB_ALGORITHMS:
        contrib = require("sb3_contrib", "contrib", f"loading a {CONTRIB_ALGORITHMS[algo]} model")
        return getattr(contrib, CONTRIB_ALGORITHMS[algo])
    import stable_baselines3

    return getattr(stable_baselines3, algo.upper())


def _read_saved(path: Path) -> tuple[str | None, ObservationLayout | None]:
    """The algorithm and observation layout :func:`save_model` wrote into ``path``, or None and None."""
    if not zipfile.is_zipfile(path):
        return None, None
    with zipfile.ZipFile(path) as archive:
        if SAVED_MEMBER not in archive.namelist():
            return None, None
        text = archive.read(SAVED_MEMBER)
    try:
        saved = json.loads(text)
        algorithm = saved["algorithm"]
        if algorithm not in SB3_ALGORITHMS and algorithm not in CONTRIB_ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        return algorithm, ObservationLayout.from_dict(saved["observations"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: its {SAVED_MEMBER} is damaged or not written by gym_unity_il ({exc})") from None


def _policy_from_algorithm_file(path: Path) -> Any:
    """Rebuilds ``model.policy`` from an algorithm's zip without the algorithm class."""
    from stable_baselines3.common.save_util import load_from_zip_file

    if _policy_class_module(path).startswith("sb3_contrib"):
        require("sb3_contrib", "contrib", f"loading {path} (an sb3-contrib policy)")
    data, params, _ = load_from_zip_file(str(path), device="cpu", print_system_info=False)
    if data is None or "policy_class" not in data or "policy" not in params:
        raise ConfigError(f"{path}: the archive has no policy class or policy weights; pass --algo with the model's algorithm")
    cls = data["policy_class"]
    if isinstance(cls, str) or not callable(cls):
        raise ConfigError(f"{path}: the policy class could not be restored ({cls!r}); pass --algo with the model's algorithm")
    kwargs = dict(data.get("policy_kwargs") or {})
    if "use_sde" in inspect.signature(cls).parameters and "use_sde" not in kwargs and "use_sde" in data:
        kwargs["use_sde"] = data["use_sde"]  # on-policy algorithms pass it beside policy_kwargs
    policy = cls(data["observation_space"], data["action_space"], lambda _: 0.0, **kwargs)
    policy.load_state_dict(params["policy"])
    return policy.to("cpu")


def _policy_class_module(path: Path) -> str:
    """The module of the policy class an algorithm's zip names ("" when it names none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
        return str(data["policy_class"]["__module__"])
    except (KeyError, TypeError, ValueError):
        return ""


def _policy_from_policy_file(path: Path) -> Any:
    """A bare SB3 policy file (``BasePolicy.save``) as an ActorCriticPolicy."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    saved = torch.load(str(path), map_location="cpu", weights_only=False)  # a pickle: trusted files only
    if not isinstance(saved, Mapping) or "data" not in saved or "state_dict" not in saved:
        raise ConfigError(f"{path} is not a saved SB3 policy (expected the 'data' and 'state_dict' that policy.save writes)")
    if any(str(key).startswith("lstm_actor.") for key in saved["state_dict"]):
        raise ConfigError(
            f"{path} is a bare recurrent policy, whose file does not record its LSTM's size: save the algorithm instead "
            "(RecurrentPPO.save, or gym-unity-il train's model.zip) and load that"
        )
    policy = ActorCriticPolicy(**saved["data"])
    policy.load_state_dict(saved["state_dict"])
    return policy


@dataclass(frozen=True)
class TrainingRun:
    """What an export takes from a training run's folder.

    Attributes:
        model_path: the saved SB3 model (``model.zip``).
        behavior_name: the behavior trained, when the run recorded it.
        demo_path: the demonstrations it learned from (their spec is the behavior's), when
            the recorded path still exists.
    """

    model_path: Path
    behavior_name: str | None
    demo_path: Path | None


def read_run_dir(run_dir: str | os.PathLike[str]) -> TrainingRun:
    """The model and the behavior of ``results/<run-id>/`` as ``gym-unity-il train`` writes it.

    The demo path comes from ``evaluation.json`` (else ``config.yaml``); a relative path is
    looked up from the working directory, then from the run's folder.

    Raises:
        ConfigError: the folder holds no ``model.zip`` (a run that has not finished).
    """
    files = RunFiles.at(run_dir)
    if not files.model.is_file():
        raise ConfigError(f"{files.root} holds no {files.model.name}: is it a finished run of 'gym-unity-il train' (results/<run-id>/)?")
    behavior, demo = None, None
    if files.evaluation.is_file():
        data = json.loads(files.evaluation.read_text(encoding="utf-8"))
        behavior, demo = data.get("behavior"), data.get("demo_path")
    elif files.config.is_file():
        import yaml

        config = yaml.safe_load(files.config.read_text(encoding="utf-8")) or {}
        sections = [v for k, v in config.items() if k != "default" and isinstance(v, Mapping)] or [config.get("default") or {}]
        demo = sections[0].get("demo_path") if len(sections) == 1 else None
    demo_path = None
    if demo:
        candidates = [Path(demo)] if Path(demo).is_absolute() else [Path(demo), files.root / demo]
        demo_path = next((c for c in candidates if c.exists()), None)
    return TrainingRun(files.model, behavior, demo_path)
