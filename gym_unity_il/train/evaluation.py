"""Evaluating policies on the same seeds, and drawing learning curves.

The policy type every evaluation takes (:class:`~gym_unity_il.scenes.evaluate.Predictor`)
and its result (:class:`~gym_unity_il.scenes.evaluate.Evaluation`) live with the in-process
evaluation of the built-in scenes; trained models are loaded by
:func:`~gym_unity_il.export.saved.load_policy`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv

from gym_unity_il.export.saved import TrainedPolicy
from gym_unity_il.scenes.evaluate import Evaluation, Predictor
from gym_unity_il.train.curriculum import paused
from gym_unity_il.train.memory import is_recurrent


def action_masks(venv: VecEnv) -> np.ndarray | None:
    """The sub-envs' current action masks, ``bool [num_envs, sum(branches)]`` (True =
    allowed), or None for continuous actions or a VecEnv without masks."""
    if not isinstance(venv.action_space, (spaces.Discrete, spaces.MultiDiscrete)):
        return None
    base = venv.unwrapped
    if hasattr(base, "action_masks"):  # UnityVecEnv: every slot's at once
        return np.asarray(base.action_masks(), bool)
    envs = [env.unwrapped for env in getattr(base, "envs", [])]  # DummyVecEnv of UnityIL-v0
    if envs and all(hasattr(env, "action_masks") for env in envs):
        return np.stack([env.action_masks() for env in envs]).astype(bool)
    return None


def masked_predict(
    policy: Any, observation: Any, masks: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None, deterministic: bool = True
) -> tuple[np.ndarray, Any]:
    """Discrete actions of an SB3 actor-critic policy (or a model holding one) with the
    action masks applied to its logits, as Unity's inference applies them: a forbidden
    action is never chosen. In the form of SB3's ``predict``: ``(actions, state)``.

    A recurrent policy (sb3-contrib's ``RecurrentActorCriticPolicy``, as ``RecurrentPPO``
    holds) takes ``state`` and ``episode_start`` as its own ``predict`` does and returns
    its new LSTM state; a feed-forward one returns ``state`` as it came (None stays None).

    Args:
        policy: an SB3 ``ActorCriticPolicy`` or an algorithm with one (PPO, A2C, RecurrentPPO).
        observation: a batch of policy observations.
        masks: ``bool [batch, sum(branches)]``, True = allowed.
        state: a recurrent policy's state from the previous call (its hidden and cell
            arrays ``[layers, batch, units]``); None: zeros.
        episode_start: ``bool [batch]``, True where a row's episode begins (its state is
            reset there); None: no row begins.
        deterministic: the most likely allowed action (else sampled among the allowed).

    Returns:
        The actions and the state to pass to the next call.
    """
    policy = getattr(policy, "policy", policy)
    policy.set_training_mode(False)
    obs, _ = policy.obs_to_tensor(observation)
    allowed = th.as_tensor(np.asarray(masks, bool), device=policy.device)
    with th.no_grad():
        if is_recurrent(policy):  # sb3-contrib's recurrent policies
            rows = len(allowed)
            if state is None:
                zeros = np.zeros((policy.lstm_hidden_state_shape[0], rows, policy.lstm_hidden_state_shape[2]), np.float32)
                state = (zeros, zeros)
            starts = np.zeros(rows, bool) if episode_start is None else np.asarray(episode_start, bool)
            lstm_states = tuple(th.as_tensor(np.asarray(s), dtype=th.float32, device=policy.device) for s in state)
            distribution, lstm_states = policy.get_distribution(obs, lstm_states, th.as_tensor(starts, dtype=th.float32, device=policy.device))
            state = tuple(s.cpu().numpy() for s in lstm_states)
        else:
            distribution = policy.get_distribution(obs)
        branches = distribution.distribution if isinstance(distribution.distribution, list) else [distribution.distribution]
        sizes = [b.logits.shape[-1] for b in branches]
        choices = []
        for branch, mask in zip(branches, th.split(allowed, sizes, dim=1)):
            logits = branch.logits.masked_fill(~mask, -th.inf)
            choices.append(logits.argmax(dim=1) if deterministic else th.distributions.Categorical(logits=logits).sample())
    actions = th.stack(choices, dim=1).cpu().numpy()
    return (actions[:, 0] if isinstance(policy.action_space, spaces.Discrete) else actions), state


def _decide(policy: Predictor, obs: Any, masks: np.ndarray | None, state: Any, episode_start: np.ndarray, deterministic: bool) -> tuple[Any, Any]:
    """``policy``'s actions and next state, with the env's action masks applied when it is an SB3 actor-critic model."""
    if masks is not None:
        model, model_obs = (policy.model, policy.policy_observation(obs)) if isinstance(policy, TrainedPolicy) else (policy, obs)
        if isinstance(getattr(model, "policy", model), ActorCriticPolicy):
            return masked_predict(model, model_obs, masks, state, episode_start, deterministic)
    return policy.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)


#: Training runs evaluate their policy on seeds ``HELD_OUT_SEEDS + seed``, ``+ 1``, ...: apart
#: from the seeds ``demo record`` and ``record_episodes`` give episodes (``seed``, ``seed + 1``,
#: ...), so a run is never scored on the starts its demonstrations saw.
HELD_OUT_SEEDS = 1_000_000


def evaluate(policy: Predictor, venv: VecEnv, *, episodes: int, seed: int = 0, deterministic: bool = True) -> Evaluation:
    """Runs ``episodes`` whole episodes of ``policy`` on ``venv``, in waves of up to ``num_envs``.

    Each wave starts from ``venv.seed(seed + episodes so far)`` and a reset and counts the
    first episode of its first sub-envs, so two policies evaluated with the same seed face
    the same starts (on scenes that honour the seed, like the built-in ones). With one
    agent per sub-env process, episode ``i`` is seeded ``seed + i``.

    The policy's recurrent state is carried as SB3's ``predict`` takes it: the state it
    returns goes into its next call, and ``episode_start`` (``bool [num_envs]``) is True for
    every sub-env on a wave's first step and, after that, for each sub-env whose previous
    step ended its episode (the policy resets that row's state there). Feed-forward
    policies return None and are unaffected.

    With discrete actions, an SB3 actor-critic model (or a :class:`TrainedPolicy` of one),
    recurrent or not, acts with the env's action masks applied (:func:`masked_predict`), as
    it would in Unity. On a training env its environment parameters' curricula do not
    count the evaluation (:func:`~gym_unity_il.train.curriculum.paused`).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    returns: list[float] = []
    lengths: list[int] = []
    state: Any = None
    with paused(venv):
        while len(returns) < episodes:
            wave = min(venv.num_envs, episodes - len(returns))
            venv.seed(seed + len(returns))
            obs = venv.reset()
            totals = np.zeros(venv.num_envs)
            steps = np.zeros(venv.num_envs, np.int64)
            running = np.arange(venv.num_envs) < wave
            episode_start = np.ones(venv.num_envs, bool)
            while running.any():
                actions, state = _decide(policy, obs, action_masks(venv), state, episode_start, deterministic)
                obs, rewards, dones, _ = venv.step(actions)
                episode_start = np.asarray(dones, bool)
                totals[running] += rewards[running]
                steps[running] += 1
                running &= ~episode_start
            returns.extend(float(r) for r in totals[:wave])
            lengths.extend(int(n) for n in steps[:wave])
    return Evaluation(returns=returns, lengths=lengths, seed=seed)


def plot_learning_curve(metrics_csv: str | Path, png: str | Path, *, title: str = "") -> None:
    """Draws ``return`` against ``step`` of a run's ``metrics.csv``, one panel per phase, into ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    phases: dict[str, tuple[list[float], list[float]]] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            steps, values = phases.setdefault(row["phase"], ([], []))
            if row["return"] != "":
                steps.append(float(row["step"]))
                values.append(float(row["return"]))
    fig, axes = plt.subplots(1, max(1, len(phases)), figsize=(5 * max(1, len(phases)), 3.6), squeeze=False)
    for ax, (phase, (steps, values)) in zip(axes[0], phases.items()):
        ax.plot(steps, values, marker="o", markersize=3)
        if not values:
            ax.text(0.5, 0.5, "no episode finished yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("demo samples" if phase == "bc" else "env steps")
        ax.set_ylabel("return")
        ax.set_title(phase)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
