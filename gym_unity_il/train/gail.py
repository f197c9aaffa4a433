"""GAIL with `imitation`'s adversarial trainer and an SB3 PPO generator, and the same
discriminator mixed into the env's reward for BC-then-PPO (``gail.strength``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from gym_unity_il.train.config import TrainerSettings
from gym_unity_il.train.memory import is_recurrent
from gym_unity_il.train.policies import Normalization, ObservationAdapter, SensorRewardNet
from gym_unity_il.train.progress import Helper, ProgressCallback, RunRecorder, helper_states, load_helper_states


class _EnvTap(VecEnvWrapper):
    """Passes everything through and keeps, of the latest step, the env's rewards and which
    agents' episodes ended for good (``ended``: done, and not cut by a step limit)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.rewards = np.zeros(venv.num_envs, np.float32)
        self.ended = np.zeros(venv.num_envs, bool)

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.rewards = np.asarray(rewards, np.float32).copy()
        self.ended = np.array([bool(done) and not info.get("TimeLimit.truncated", False) for done, info in zip(dones, infos)], bool)
        return obs, rewards, dones, infos


def _recurrent_generator_gail() -> type:
    """`imitation`'s GAIL for a generator with memory (RecurrentPPO). Its discriminator judges
    single (observation, action) pairs, as ML-Agents' does beside a recurrent policy; only the
    generator's log-probability of each pair, which `imitation` computes for every adversarial
    trainer but only AIRL's discriminator reads, has no meaning without the LSTM state of the
    pair's episode, so it is left out (GAIL never reads it)."""
    from imitation.algorithms.adversarial.gail import GAIL

    class RecurrentGeneratorGAIL(GAIL):
        def _get_log_policy_act_prob(self, obs_th: Any, acts_th: Any) -> None:
            return None

    return RecurrentGeneratorGAIL


class GAILPhase:
    """Trains ``model`` (PPO) against a GAIL discriminator for ``total_steps`` env steps.

    Each round collects the model's ``n_steps`` per agent (``ppo.buffer_size`` steps of all
    agents together, or ``ppo.n_steps`` each), updates the generator, then takes
    ``gail.n_disc_updates_per_round`` discriminator steps on ``gail.demo_batch_size`` expert
    and as many generator samples (of that round, unless ``gail.gen_replay_buffer_capacity``
    keeps more). How often the generator updates sets how much experience GAIL needs: on
    "ball" an update every 1,536 agent steps reaches the expert in about a quarter of the
    steps an update every 24,576 takes (``examples/configs/gail.yaml``).
    With ``strength`` set, the generator's reward is the env's reward plus ``strength`` times
    the GAIL reward instead of the GAIL reward alone.

    The GAIL reward is ``-log(1 - D)``, ML-Agents' form (``D``: the discriminator's
    probability that a step is the expert's). It is never negative, so on its own it pays
    for every step an episode lasts, and GAIL would learn to keep away from an end that
    comes with success (reaching a goal). So the step that ends an episode for good counts
    as the state the episode ends in, the absorbing state of DAC (Kostrikov et al., 2019),
    entered with that step and kept for ever: its reward ``r`` becomes ``r / (1 - gamma)``.
    Ending where the expert ends is then worth about as much as going on, ending where it
    never does about nothing. Episodes Unity cuts at ``max_steps`` are bootstrapped from the
    value of their last observation instead (SB3 reads ``TimeLimit.truncated``), as ML-Agents
    does. Episodes of Unity scenes have no fixed length, so the trainer runs with
    ``allow_variable_horizon=True``.

    Args:
        name: the phase's name in ``metrics.csv`` (``gail`` or ``ppo``).
        model: the PPO generator, built on ``venv``.
        venv: the policy-side VecEnv (observations adapted).
        trajectories: demonstrations, observations adapted like ``venv``'s.
        settings: the ``gail`` section and the network size.
        adapter: how observations reach the networks (array observations: GAIL packs Dicts).
        normalization: observation statistics for the discriminator (None: raw).
        total_steps: the budget in env steps.
        logger: the run's `imitation` logger.
        strength: weight of the GAIL reward added to the env's (None: GAIL reward only).
        helpers: what else acts during the generator's training (schedules, BC beside it);
            their state is the phase's.
    """

    def __init__(
        self,
        *,
        name: str,
        model: PPO,
        venv: VecEnv,
        trajectories: Sequence[Any],
        settings: TrainerSettings,
        adapter: ObservationAdapter,
        normalization: Normalization | None,
        total_steps: int,
        logger: Any,
        strength: float | None = None,
        helpers: Sequence[Helper] = (),
    ) -> None:
        from imitation.algorithms.adversarial.gail import GAIL
        from imitation.rewards.reward_wrapper import RewardVecEnvWrapper

        self.name = name
        self.model = model
        self.total = total_steps
        self.helpers = list(helpers)
        gail = settings.gail
        self.reward_net = SensorRewardNet(adapter, venv.action_space, hidden=settings.net_arch(), normalization=normalization)
        tap = _EnvTap(venv)
        self.trainer = (_recurrent_generator_gail() if is_recurrent(model) else GAIL)(
            demonstrations=trajectories,
            demo_batch_size=gail.demo_batch_size,
            venv=tap,
            gen_algo=model,
            reward_net=self.reward_net,
            n_disc_updates_per_round=gail.n_disc_updates_per_round,
            disc_opt_kwargs={"lr": gail.disc_learning_rate},
            gen_replay_buffer_capacity=gail.gen_replay_buffer_capacity,
            custom_logger=logger,
            allow_variable_horizon=True,
        )
        discriminator_reward = self.trainer.reward_train.predict_processed
        forever = 1.0 / (1.0 - model.gamma)

        def reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
            gail_reward = discriminator_reward(obs, acts, next_obs, dones)
            gail_reward = np.where(tap.ended, gail_reward * forever, gail_reward)
            return gail_reward if strength is None else tap.rewards + strength * gail_reward

        # The trainer's generator env, rebuilt around that reward (same attributes
        # GAIL.__init__ sets, so train_gen() uses it).
        self.trainer.venv_wrapped = RewardVecEnvWrapper(self.trainer.venv_buffering, reward_fn=reward)
        self.trainer.venv_train = self.trainer.venv_wrapped
        self.trainer.gen_callback = self.trainer.venv_wrapped.make_log_callback()
        model.set_env(self.trainer.venv_train)

    def run(self, recorder: RunRecorder) -> None:
        from imitation.util import networks

        bar = recorder.bar(self.name, total=self.total, initial=self.model.num_timesteps, unit="step")
        gen_callback = self.trainer.gen_callback
        progress = ProgressCallback(recorder, self.name, bar)
        self.trainer.gen_callback = CallbackList([gen_callback, progress, *self.helpers])
        try:
            while self.model.num_timesteps < self.total:
                self.trainer.train_gen(self.trainer.gen_train_timesteps)
                for _ in range(self.trainer.n_disc_updates_per_round):
                    with networks.training(self.trainer.reward_train):
                        self.trainer.train_disc()
                self.trainer.logger.dump(self.model.num_timesteps)
            # the last row, unless written (also when resumed after the last step, before its row)
            recorder.catch_up(self.name, self.model.num_timesteps, ())
        finally:
            self.trainer.gen_callback = gen_callback
            bar.close()

    def state(self) -> dict[str, Any]:
        return {"reward_net": self.reward_net.state_dict(), **helper_states(self.helpers)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.reward_net.load_state_dict(state["reward_net"])
        load_helper_states(self.helpers, state)
