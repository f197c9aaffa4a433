"""The trainers that learn from demonstrations (``.demo`` files), from the env's reward, or
both: offline BC, GAIL, and RL (PPO, with or without GAIL's reward, or SAC) after an
optional BC pretraining.

:class:`DemoTrainer` reads the demos (when given), checks them against the env's behavior
spec and builds the phases of the chosen trainer: BC (:mod:`.bc`, :mod:`.pretrain` for
SAC's actor), then GAIL (:mod:`.gail`) or RL (:mod:`.pretrain`). ``ppo`` and ``bc_then_ppo``
are one trainer (and ``sac`` and ``bc_then_sac``): only the BC pretraining's default
differs. Its runs keep a checkpoint, so ``resume`` continues one that Ctrl+C stopped.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_wrapper

from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, read_demonstrations
from gym_unity_il.errors import ConfigError
from gym_unity_il.spec import BehaviorSpec
from gym_unity_il.train.bc import BCPhase, RolloutCloning, bc_batches, count_transitions
from gym_unity_il.train.config import SAC_TRAINERS, TrainerSettings
from gym_unity_il.train.curriculum import attach_environment_parameters, lesson_checkpoints
from gym_unity_il.train.env import RestartLog, make_training_env
from gym_unity_il.train.gail import GAILPhase
from gym_unity_il.train.policies import ObservationAdapter, make_model, observation_statistics
from gym_unity_il.train.pretrain import RLPhase, SACActorPretraining
from gym_unity_il.train.intrinsic import IntrinsicRewards
from gym_unity_il.train.memory import check_memory, sequences_per_update, updates_per_pass
from gym_unity_il.train.progress import Helper, KeptState, Phase
from gym_unity_il.train.schedules import Schedules
from gym_unity_il.train.runner import Run, Training, check_actions, check_trainer

logger = logging.getLogger(__name__)

#: The trainers that end with RL on the env's reward (``ppo`` / ``sac``: BC pretraining only
#: when ``num_epoch`` > 0; ``bc_then_*``: always, 10 epochs when ``num_epoch`` is null).
RL_TRAINERS = ("ppo", "sac", "bc_then_ppo", "bc_then_sac")


#: The trainers that can clone the demos beside PPO's updates (``cloning.during_rl``).
CLONING_TRAINERS = ("ppo", "gail")


def _pretrains(settings: TrainerSettings) -> bool:
    """Whether the run starts with behavioral cloning (for ``offline_bc``, all it does)."""
    if settings.trainer in ("ppo", "sac"):
        return bool(settings.num_epoch) and not settings.cloning.during_rl
    return settings.trainer != "gail"


def _explores(settings: TrainerSettings) -> bool:
    """Whether PPO's reward gets intrinsic rewards (``curiosity``, ``rnd``)."""
    return settings.curiosity.strength > 0 or settings.rnd.strength > 0


def _mixes_gail(settings: TrainerSettings) -> bool:
    """Whether RL on the env's reward adds ``gail.strength`` times the GAIL reward (PPO only)."""
    return settings.trainer in ("ppo", "bc_then_ppo") and settings.gail.strength > 0


class DemoTrainer:
    """``offline_bc``, ``gail``, ``ppo``, ``sac``, ``bc_then_ppo`` and ``bc_then_sac`` (see
    :class:`~gym_unity_il.train.config.TrainerSettings` for what each trains)."""

    names = ("offline_bc", "gail", *RL_TRAINERS)
    resumable = True

    def check(self, settings: TrainerSettings, where: str) -> None:
        check_trainer(settings, self, where)
        check_memory(settings, where)
        if settings.trainer == "sac" and settings.gail.strength > 0:
            raise ConfigError(
                f"{where}.gail.strength: {settings.gail.strength}, but 'sac' cannot add the GAIL reward: it is mixed into PPO's rollouts only "
                "(SAC's replay buffer would keep rewards of a discriminator trained since); set gail.strength to 0, or use 'ppo'"
            )
        if _explores(settings) and settings.trainer not in ("ppo", "bc_then_ppo"):
            signal = "curiosity" if settings.curiosity.strength > 0 else "rnd"
            raise ConfigError(
                f"{where}.{signal}.strength: {getattr(settings, signal).strength}, but trainer {settings.trainer!r} cannot add intrinsic rewards: "
                "they are added to PPO's rewards beside the env's ('ppo', 'bc_then_ppo'; GAIL's reward as well with gail.strength); "
                f"use trainer 'ppo', or set {signal}.strength to 0"
            )
        if settings.cloning.during_rl and settings.trainer not in CLONING_TRAINERS:
            raise ConfigError(
                f"{where}.cloning.during_rl: true, but trainer {settings.trainer!r} has no PPO updates to clone beside; "
                f"use one of {list(CLONING_TRAINERS)}, or set cloning.during_rl to false"
                + (" (the bc_then_* trainers clone before the RL)" if settings.trainer.startswith("bc_then") else "")
            )
        if settings.demo_path is not None:
            return
        if settings.cloning.during_rl:
            raise ConfigError(f"{where}.demo_path: cloning.during_rl clones demonstrations; set demo_path to a .demo file or folder")
        if settings.trainer not in ("ppo", "sac"):
            raise ConfigError(f"{where}.demo_path: trainer {settings.trainer!r} learns from demonstrations; set demo_path to a .demo file or folder")
        needs = {
            "num_epoch": (_pretrains(settings), "BC pretraining", "num_epoch to 0 or null"),
            "gail.strength": (_mixes_gail(settings), "the GAIL reward", "gail.strength to 0"),
            "normalize": (settings.normalize, "the observation statistics of normalize", "normalize to false"),
        }
        for key, (used, what, off) in needs.items():
            if used:
                raise ConfigError(
                    f"{where}.demo_path: {key} asks for {what}, learned from demonstrations; set demo_path to a .demo file or folder, "
                    f"or {off} to train {settings.trainer!r} on the env's reward alone"
                )

    def start(self, run: Run) -> Training:
        request, first = run.request, run.request.settings
        venv, spec = make_training_env(**request.env_source, behavior_name=request.behavior_name, num_processes=first.num_processes, seed=request.seed,
                                       max_restarts=first.max_restarts)  # fmt: skip
        try:
            return self._setup(run, venv, spec)
        except BaseException:
            venv.close()
            raise

    def _setup(self, run: Run, venv: VecEnv, spec: BehaviorSpec) -> Training:
        seed = run.request.seed
        settings = run.request.config.for_behavior(spec.name)
        where = run.request.where(spec.name)
        self.check(settings, where)
        check_actions(settings, spec, where)
        pretrains, uses_gail = _pretrains(settings), settings.trainer == "gail" or _mixes_gail(settings)
        uses_demos = pretrains or uses_gail or settings.normalize or settings.cloning.during_rl
        if settings.trainer == "bc_then_sac" and settings.gail.strength > 0:
            logger.warning("%s.gail.strength: ignored: 'bc_then_sac' learns from the env's reward alone (the GAIL reward is mixed into PPO's "
                           "rollouts only; 'sac' refuses it)", where)  # fmt: skip
        if settings.demo_path is not None and not uses_demos:
            logger.warning("%s.demo_path: ignored: trainer %r uses demonstrations for BC pretraining (num_epoch > 0), the GAIL reward "
                           "(gail.strength > 0), BC beside the RL (cloning.during_rl) or normalize, and none is set", where, settings.trainer)  # fmt: skip
        trajectories: list[Any] = []
        if uses_demos:
            demo = read_demonstrations(settings.demo_path)  # type: ignore[arg-type]
            check_demo_matches(demo.behavior_spec, spec, what_a=f"demo {settings.demo_path}", what_b="env")
            trajectories = demo_to_trajectories(demo)
        n_transitions = count_transitions(trajectories)

        per_pass = updates_per_pass([len(t.acts) for t in trajectories], sequences_per_update(settings), settings.memory.sequence_length) if settings.memory.enabled else None
        batches = bc_batches(settings, n_transitions, pretraining=settings.trainer != "offline_bc", where=where, per_pass=per_pass) if pretrains else 0
        if uses_gail and n_transitions < settings.gail.demo_batch_size:
            raise ConfigError(f"{where}.gail.demo_batch_size: {settings.gail.demo_batch_size} is larger than the {n_transitions} transitions of the demos; lower it or record more")

        venv = attach_environment_parameters(venv, run.request.config, spec.name, settings.max_steps, run.logger, seed=seed)
        adapter = ObservationAdapter(venv.observation_space, pack=uses_gail)  # imitation's GAIL takes arrays only
        policy_venv = adapter.wrap(venv)
        demos = adapter.trajectories(trajectories)
        normalization = observation_statistics(trajectories, venv.observation_space) if settings.normalize else None
        train_venv = policy_venv  # what the RL steps: with intrinsic rewards added (evaluations see the env's own)
        if _explores(settings):
            train_venv = IntrinsicRewards(policy_venv, adapter, curiosity=settings.curiosity, rnd=settings.rnd,
                                          update_every=settings.ppo.steps_per_agent(policy_venv.num_envs), batch_size=settings.ppo.batch_size,
                                          epochs=settings.ppo.n_epochs, seed=seed, normalization=normalization, logger=run.logger)  # fmt: skip
        model = make_model(settings, train_venv, adapter, seed=seed, logger=run.logger, normalization=normalization)
        restart_log = unwrap_vec_wrapper(venv, RestartLog)
        if restart_log is not None:
            restart_log.logger = run.logger

        def evaluate_return() -> list[float]:
            return run.held_out_returns(model, policy_venv)

        helpers: list[Helper] = [Schedules(settings)] if Schedules.needed(settings, model) else []
        helpers.extend(lesson_checkpoints(venv))  # the lessons of the environment parameters, if any
        if train_venv is not policy_venv:
            helpers.append(KeptState(train_venv))  # the intrinsic rewards' models
        if settings.cloning.during_rl:
            helpers.append(RolloutCloning(policy=model.policy, trajectories=demos, settings=settings, rng=np.random.default_rng(seed)))
        phases: list[Phase] = []
        sac = settings.trainer in SAC_TRAINERS
        if pretrains and not sac:
            phases.append(BCPhase(policy=model.policy, trajectories=demos, settings=settings, batches=batches,
                                  rng=np.random.default_rng(seed), logger=run.logger, evaluate_return=evaluate_return))  # fmt: skip
        if pretrains and sac:
            phases.append(SACActorPretraining(model=model, trajectories=demos, settings=settings, batches=batches,
                                              rng=np.random.default_rng(seed), evaluate_return=evaluate_return))  # fmt: skip
        if sac:
            phases.append(RLPhase(name="sac", model=model, total_steps=settings.max_steps, helpers=helpers))
        elif uses_gail:
            strength = settings.gail.strength if settings.trainer in RL_TRAINERS else None
            phases.append(GAILPhase(name="gail" if strength is None else "ppo", model=model, venv=train_venv, trajectories=demos, settings=settings,
                                    adapter=adapter, normalization=normalization, total_steps=settings.max_steps, logger=run.logger,
                                    strength=strength, helpers=helpers))  # fmt: skip
        elif settings.trainer in RL_TRAINERS:
            phases.append(RLPhase(name="ppo", model=model, total_steps=settings.max_steps, helpers=helpers))

        def summary() -> dict[str, Any]:
            return {"demo_path": str(settings.demo_path) if uses_demos else None, "demo_transitions": n_transitions, "env_steps": int(model.num_timesteps),
                    "unity_restarts": venv.unwrapped.restart_count}  # fmt: skip

        return Training(spec.name, settings, model, policy_venv, adapter.observation_layout, phases, summary)
