"""DAgger with a teacher as the expert, over ``UnityIL-v0`` or every agent of a behavior.

`imitation`'s :class:`~imitation.algorithms.dagger.SimpleDAggerTrainer` runs the rounds:
in round 0 the teacher drives and labels; from round 1 on the student drives (``beta``
is 1 in round 0 and 0 after, the schedule of Ross et al.'s analysis), the teacher
labels every state the student reaches, and the student is trained again with BC on
every label so far. That is the cure for behavioral cloning's drift: the student
learns what to do in the states its own mistakes lead to.

The teacher is anything with SB3's ``predict`` over env observations (a scripted expert,
a saved model, a :class:`~gym_unity_il.train.teacher.HumanTeacher`); images reach it in
the env's own layout even though the student's policy sees them transposed.

* :func:`run_dagger`: the rounds on any VecEnv (e.g. a ``DummyVecEnv`` of ``UnityIL-v0``);
  `imitation`'s collector takes array observations only, so several sensors are packed
  into one vector (:class:`~gym_unity_il.train.policies.ObservationAdapter` with ``pack``);
* :func:`train_dagger`: what ``gym-unity-il train`` runs for ``trainer: dagger``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from gym_unity_il.errors import ConfigError
from gym_unity_il.train.config import RunConfig, TrainerSettings
from gym_unity_il.train.evaluation import Predictor
from gym_unity_il.train.policies import ObservationAdapter
from gym_unity_il.train.progress import RunRecorder

#: BC epochs after each round when ``num_epoch`` is null.
DAGGER_EPOCHS = 4


def first_round_only(round_num: int) -> float:
    """The beta schedule: the teacher drives round 0, the student every later round."""
    return 1.0 if round_num == 0 else 0.0


class AdaptedTeacher:
    """A teacher of env observations made to take the policy's (CHW images back to HWC).

    `imitation`'s DAgger gives the expert what the student sees; this undoes the
    :class:`~gym_unity_il.train.policies.ObservationAdapter` for the teacher.

    Args:
        teacher: reads env observations.
        adapter: the student's adapter.
        action_space: the env's action space.
    """

    def __init__(self, teacher: Predictor, adapter: ObservationAdapter, action_space: spaces.Space) -> None:
        self.teacher = teacher
        self.adapter = adapter
        self.observation_space = adapter.space
        self.action_space = action_space

    def to_env(self, obs: Any) -> Any:
        """Policy observations back in the env's layout."""
        parts = obs.unwrap() if hasattr(obs, "unwrap") else obs
        if self.adapter.pack:  # one float vector: split it, images back to uint8
            flat = np.asarray(parts, np.float32)
            pieces = np.split(flat, np.cumsum([p.size for p in self.adapter.layout])[:-1], axis=-1)
            out = {}
            for part, piece in zip(self.adapter.layout, pieces):
                value = piece.reshape(*flat.shape[:-1], *part.shape)
                if part.is_image:
                    value = np.moveaxis(np.rint(value * 255.0).clip(0, 255).astype(np.uint8), -3, -1)
                out[part.key] = value
            return out
        if not isinstance(parts, Mapping):
            part = self.adapter.layout[0]
            return np.moveaxis(np.asarray(parts), -3, -1) if part.is_image else parts
        return {p.key: np.moveaxis(np.asarray(parts[p.key]), -3, -1) if p.is_image else np.asarray(parts[p.key]) for p in self.adapter.layout}

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[Any, Any]:
        return self.teacher.predict(self.to_env(observation), state, episode_start, deterministic)

    def __call__(self, observations: Any, states: Any, episode_starts: Any) -> tuple[Any, Any]:
        """The policy-callable form of ``imitation.data.rollout``."""
        return self.predict(observations, states, episode_starts)


def run_dagger(
    *,
    venv: Any,
    teacher: Predictor,
    policy: Any,
    adapter: ObservationAdapter,
    settings: TrainerSettings,
    scratch_dir: str | os.PathLike[str],
    logger: Any,
    seed: int = 0,
    recorder: RunRecorder | None = None,
    demonstrations: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """DAgger rounds until ``settings.max_steps`` labelled env steps.

    Args:
        venv: the env in the policy's observations (``adapter.wrap(env_venv)``).
        teacher: labels env observations.
        policy: the student's SB3 ``ActorCriticPolicy``, trained in place.
        adapter: the student's adapter (packed for a Dict observation: `imitation`'s
            DAgger collects arrays only).
        settings: ``max_steps``, ``dagger_round_steps``, ``num_epoch`` (default 4),
            ``batch_size``, ``learning_rate``, ``ent_weight``, ``l2_weight``.
        scratch_dir: where `imitation` keeps the rounds' labelled trajectories.
        logger: an `imitation` logger (always given to the trainers: TensorBoard).
        seed: seeds the rollouts and BC's batches.
        recorder: progress bar and ``metrics.csv`` (a row per round).
        demonstrations: `imitation` trajectories (policy observations) added to round 0.

    Returns:
        ``{"rounds", "labels", "round_returns"}``: rounds run, teacher labels collected,
        mean return of the episodes of each round (round 0: the teacher driving).

    Raises:
        ConfigError: a round smaller than a batch.
    """
    from imitation.algorithms import bc, dagger
    from imitation.data import rollout

    if settings.dagger_round_steps < settings.batch_size:
        raise ConfigError(f"dagger_round_steps {settings.dagger_round_steps} is smaller than batch_size {settings.batch_size}: the first round would not fill one batch")
    rng = np.random.default_rng(seed)
    expert = AdaptedTeacher(teacher, adapter, venv.action_space)
    trainer_bc = bc.BC(
        observation_space=venv.observation_space, action_space=venv.action_space, rng=rng, policy=policy, batch_size=settings.batch_size,
        optimizer_kwargs={"lr": settings.learning_rate}, ent_weight=settings.ent_weight, l2_weight=settings.l2_weight, device=policy.device,
        custom_logger=logger,
    )  # fmt: skip
    trainer = dagger.SimpleDAggerTrainer(
        venv=venv, scratch_dir=scratch_dir, expert_policy=expert, rng=rng, expert_trajs=demonstrations, beta_schedule=first_round_only,
        bc_trainer=trainer_bc, custom_logger=logger,
    )  # fmt: skip
    epochs = settings.num_epoch if settings.num_epoch is not None else DAGGER_EPOCHS
    labels, returns = 0, []
    bar = recorder.bar("dagger", total=settings.max_steps, initial=0, unit="label") if recorder is not None else None
    import datasets  # imitation saves each round with Hugging Face datasets: keep its bars off ours

    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        while labels < settings.max_steps:
            collector = trainer.create_trajectory_collector()
            until = rollout.make_sample_until(min_timesteps=min(settings.dagger_round_steps, settings.max_steps - labels), min_episodes=1)
            trajectories = rollout.generate_trajectories(policy=expert, venv=collector, sample_until=until, rng=collector.rng)
            steps = sum(len(t) for t in trajectories)
            labels += steps
            round_return = float(np.mean([t.rews.sum() for t in trajectories]))
            returns.append(round_return)
            logger.record("dagger/round_return", round_return)
            logger.record("dagger/labels", labels)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
                trainer.extend_and_update({"n_epochs": epochs, "progress_bar": False, "log_rollouts_venv": None})
            if bar is not None:
                bar.update(steps)
            if recorder is not None:
                recorder.summary("dagger", labels, round_return)
            logger.dump(labels)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
        if bar is not None:
            bar.close()
    return {"rounds": trainer.round_num, "labels": labels, "round_returns": returns}


def train_dagger(
    config: RunConfig | str | os.PathLike[str],
    *,
    run_id: str,
    results_dir: str | os.PathLike[str] = "results",
    file_name: str | os.PathLike[str] | None = None,
    scene: str | None = None,
    scene_kwargs: Mapping[str, Any] | None = None,
    behavior_name: str | None = None,
    teacher: Predictor | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Any:
    """One ``dagger`` run over every agent of the behavior (results as :func:`~gym_unity_il.train.train`).

    The teacher is ``teacher``, else the config's ``teacher`` key; ``demo_path``, when
    set, adds demonstrations to round 0. Ctrl+C saves the policy (``model.zip``) and returns.

    Returns:
        A :class:`~gym_unity_il.train.run.RunResult`.
    """
    from imitation.util import logger as imitation_logger

    from gym_unity_il.train.env import make_training_env
    from gym_unity_il.train.evaluation import HELD_OUT_SEEDS, evaluate, plot_learning_curve
    from gym_unity_il.train.online import check_online_settings, start_live_run
    from gym_unity_il.train.policies import extractor_kwargs
    from gym_unity_il.train.run import RunResult, _check_actions, _make_model, _section
    from gym_unity_il.train.teacher import make_teacher

    started = time.perf_counter()
    config, run_dir, behavior_name, _, scene = start_live_run(
        config, results_dir=results_dir, run_id=run_id, behavior_name=behavior_name, scene=scene, file_name=file_name, kind="DAgger", seed=seed
    )
    venv, spec = make_training_env(file_name=file_name, scene=scene, scene_kwargs=scene_kwargs, behavior_name=behavior_name, num_envs=1, seed=seed)
    try:
        settings = config.for_behavior(spec.name)
        where = _section(config, spec.name)
        check_online_settings(settings, where)
        _check_actions(settings, spec, where)
        if teacher is None:
            teacher = make_teacher(settings.teacher, spec=spec, scene=scene, where=f"{where}.teacher")
        adapter = ObservationAdapter(venv.observation_space, pack=True)  # DAgger's collector takes arrays only
        policy_venv = adapter.wrap(venv)
        demos = None
        if settings.demo_path is not None:
            from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, read_demo

            demo = read_demo(settings.demo_path)
            check_demo_matches(demo.behavior_spec, spec, what_a=f"demo {settings.demo_path}", what_b="env")
            demos = adapter.trajectories(demo_to_trajectories(demo))
        model = _make_model(settings, policy_venv, {"net_arch": settings.net_arch(), **extractor_kwargs(adapter, None)}, seed)
        logger = imitation_logger.configure(run_dir / "tensorboard", ["tensorboard"])
        model.set_logger(logger)
        import yaml

        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        recorder = RunRecorder(run_dir=run_dir, logger=logger, summary_freq=settings.summary_freq, progress=progress)
        try:
            outcome = run_dagger(venv=policy_venv, teacher=teacher, policy=model.policy, adapter=adapter, settings=settings,
                                 scratch_dir=run_dir / "dagger", logger=logger, seed=seed, recorder=recorder, demonstrations=demos)  # fmt: skip
        except KeyboardInterrupt:
            model.save(run_dir / "model.zip")
            return RunResult(run_dir, spec.name, settings.trainer, True, None, time.perf_counter() - started)
        finally:
            close = getattr(teacher, "close", None)
            if callable(close):
                close()
        model.save(run_dir / "model.zip")
        evaluation = evaluate(model, policy_venv, episodes=settings.eval_episodes, seed=HELD_OUT_SEEDS + seed)
    finally:
        venv.close()
    wall = time.perf_counter() - started
    summary = {
        "behavior": spec.name, "trainer": settings.trainer, "algorithm": "PPO", "model": "model.zip", "teacher_labels": outcome["labels"],
        "rounds": outcome["rounds"], "round_returns": outcome["round_returns"], "phases": ["dagger"], "wall_time_s": wall, **evaluation.to_dict(),
    }  # fmt: skip
    (run_dir / "evaluation.json").write_text(json.dumps(summary, indent=2))
    plot_learning_curve(recorder.metrics_path, run_dir / "learning_curve.png", title=f"{run_id}: dagger on {spec.name}")
    return RunResult(run_dir, spec.name, settings.trainer, False, evaluation, wall)
