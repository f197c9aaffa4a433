"""The trainers that learn from demonstrations (``.demo`` files): offline BC, GAIL and
BC-then-RL (PPO, with or without GAIL's reward, or SAC).

:class:`DemoTrainer` reads the demos, checks them against the env's behavior spec and
builds the phases of the chosen trainer: BC (:mod:`.bc`, :mod:`.pretrain` for SAC's
actor), then GAIL (:mod:`.gail`) or RL (:mod:`.pretrain`). Its runs keep a checkpoint, so
``resume`` continues one that Ctrl+C stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_wrapper

from gym_unity_il.demo import check_demo_matches, demo_to_trajectories, read_demo
from gym_unity_il.errors import ConfigError
from gym_unity_il.spec import BehaviorSpec
from gym_unity_il.train.bc import BCPhase, bc_batches, count_transitions
from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.env import RestartLog, make_training_env
from gym_unity_il.train.gail import GAILPhase
from gym_unity_il.train.policies import ObservationAdapter, make_model, observation_statistics
from gym_unity_il.train.pretrain import RLPhase, SACActorPretraining
from gym_unity_il.train.progress import Phase
from gym_unity_il.train.runner import Run, Training, check_actions, check_trainer


class DemoTrainer:
    """``offline_bc``, ``gail``, ``bc_then_ppo`` and ``bc_then_sac`` (see
    :class:`~gym_unity_il.train.config.TrainerSettings` for what each trains)."""

    names = ("offline_bc", "gail", "bc_then_ppo", "bc_then_sac")
    resumable = True

    def check(self, settings: TrainerSettings, where: str) -> None:
        check_trainer(settings, self, where)
        if settings.demo_path is None:
            raise ConfigError(f"{where}.demo_path: trainer {settings.trainer!r} learns from demonstrations; set demo_path to a .demo file or folder")

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
        demo = read_demo(settings.demo_path)  # type: ignore[arg-type]
        check_demo_matches(demo.behavior_spec, spec, what_a=f"demo {settings.demo_path}", what_b="env")
        trajectories = demo_to_trajectories(demo)
        n_transitions = count_transitions(trajectories)

        uses_gail = settings.trainer == "gail" or (settings.trainer == "bc_then_ppo" and settings.gail.strength > 0)
        batches = bc_batches(settings, n_transitions, pretraining=settings.trainer != "offline_bc", where=where) if settings.trainer != "gail" else 0
        if uses_gail and n_transitions < settings.gail.demo_batch_size:
            raise ConfigError(f"{where}.gail.demo_batch_size: {settings.gail.demo_batch_size} is larger than the {n_transitions} transitions of the demos; lower it or record more")

        adapter = ObservationAdapter(venv.observation_space, pack=uses_gail)  # imitation's GAIL takes arrays only
        policy_venv = adapter.wrap(venv)
        demos = adapter.trajectories(trajectories)
        normalization = observation_statistics(trajectories, venv.observation_space) if settings.normalize else None
        model = make_model(settings, policy_venv, adapter, seed=seed, logger=run.logger, normalization=normalization)
        restart_log = unwrap_vec_wrapper(venv, RestartLog)
        if restart_log is not None:
            restart_log.logger = run.logger

        def evaluate_return() -> float:
            return run.held_out_return(model, policy_venv)

        phases: list[Phase] = []
        if settings.trainer in ("offline_bc", "bc_then_ppo"):
            phases.append(BCPhase(policy=model.policy, trajectories=demos, settings=settings, batches=batches,
                                  rng=np.random.default_rng(seed), logger=run.logger, evaluate_return=evaluate_return))  # fmt: skip
        if settings.trainer == "bc_then_sac":
            phases.append(SACActorPretraining(model=model, trajectories=demos, settings=settings, batches=batches,
                                              rng=np.random.default_rng(seed), evaluate_return=evaluate_return))  # fmt: skip
            phases.append(RLPhase(name="sac", model=model, total_steps=settings.max_steps))
        if uses_gail:
            strength = settings.gail.strength if settings.trainer == "bc_then_ppo" else None
            phases.append(GAILPhase(name="gail" if strength is None else "ppo", model=model, venv=policy_venv, trajectories=demos, settings=settings,
                                    adapter=adapter, normalization=normalization, total_steps=settings.max_steps, logger=run.logger,
                                    strength=strength))  # fmt: skip
        elif settings.trainer == "bc_then_ppo":
            phases.append(RLPhase(name="ppo", model=model, total_steps=settings.max_steps))

        def summary() -> dict[str, Any]:
            return {"demo_path": str(settings.demo_path), "demo_transitions": n_transitions, "env_steps": int(model.num_timesteps),
                    "unity_restarts": venv.unwrapped.restart_count}  # fmt: skip

        return Training(spec.name, settings, model, policy_venv, adapter.observation_layout, phases, summary)
