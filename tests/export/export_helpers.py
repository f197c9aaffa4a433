"""Helpers of the export tests: rolling policies through UnityIL-v0 and training tiny policies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gym_unity_il.envs.unity_env import UnityILEnv
from gym_unity_il.scenes import expert_policy
from gym_unity_il.spec import BehaviorSpec

#: Small cameras keep the CNN cheap (NatureCNN needs 36 x 36 at least).
GRID_KWARGS = {"camera_height": 36, "camera_width": 36, "max_steps": 30}
BALL_KWARGS = {"max_steps": 100}
HYBRID_KWARGS = {"max_steps": 40}


@dataclass
class Trained:
    """A briefly trained policy and where it came from."""

    policy: Any  # what export_onnx takes: an algorithm, a policy, or {"continuous", "discrete"}
    spec: BehaviorSpec
    scene: str
    scene_kwargs: dict[str, Any]
    image_format: str = "hwc_uint8"
    vec_normalize: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_env(scene: str, scene_kwargs: Mapping[str, Any], *, image_format: str = "hwc_uint8", seed: int = 0) -> UnityILEnv:
    return UnityILEnv(scene=scene, scene_kwargs=dict(scene_kwargs), image_format=image_format, seed=seed, timeout_wait=30)


def episode_returns(env: UnityILEnv, act: Callable[[Any, dict], Any], seeds: Sequence[int]) -> list[float]:
    """The return of one episode per seed, ``act(obs, info) -> action``."""
    returns = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs, info))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def expert_transitions(scene: str, scene_kwargs: Mapping[str, Any], *, episodes: int, image_format: str = "hwc_uint8") -> tuple[list[Any], list[Any]]:
    """Observations and the scripted expert's actions over ``episodes`` episodes of the env."""
    expert = expert_policy(scene, image_format=image_format)
    env = make_env(scene, scene_kwargs, image_format=image_format)
    observations, actions = [], []
    try:
        for seed in range(episodes):
            obs, _ = env.reset(seed=100 + seed)
            done = False
            while not done:
                action = expert.predict(obs)[0]
                observations.append(obs)
                actions.append(action)
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
    finally:
        env.close()
    return observations, actions


def train_bc(observation_space: Any, action_space: Any, observations: list[Any], actions: np.ndarray, *, batches: int, seed: int = 0) -> Any:
    """imitation's BC on (observation, action) pairs; returns the trained policy."""
    from imitation.algorithms import bc
    from imitation.data import types
    from imitation.util import logger

    if isinstance(observations[0], Mapping):
        obs: Any = types.DictObs.stack([types.DictObs({k: np.asarray(v) for k, v in o.items()}) for o in observations])
    else:
        obs = np.stack(observations)
    n = len(actions)
    transitions = types.Transitions(obs=obs, acts=np.asarray(actions), infos=np.array([{}] * n), next_obs=obs, dones=np.zeros(n, bool))
    torch.manual_seed(seed)
    trainer = bc.BC(observation_space=observation_space, action_space=action_space, demonstrations=transitions, rng=np.random.default_rng(seed), batch_size=32, device="cpu",
                     custom_logger=logger.configure(format_strs=[]))  # fmt: skip
    trainer.train(n_batches=batches, log_interval=10**9, progress_bar=False)
    return trainer.policy


def masked_argmax(policy: Any, obs: Any, mask: np.ndarray | None) -> np.ndarray:
    """The torch policy's best allowed action per branch (SB3's own distribution logits or Q-values)."""
    module = getattr(policy, "policy", policy)
    module = getattr(module, "q_net", module)
    tensor, _ = module.obs_to_tensor(obs)
    with torch.no_grad():
        if hasattr(module, "get_distribution"):
            dist = module.get_distribution(tensor).distribution
            logits = torch.cat([d.logits for d in (dist if isinstance(dist, list) else [dist])], dim=1).numpy()[0]
        else:
            logits = module(tensor).numpy()[0]
    branches = [int(n) for n in np.atleast_1d(getattr(module.action_space, "nvec", getattr(module.action_space, "n", 0)))]
    mask = np.ones(sum(branches), bool) if mask is None else np.asarray(mask, bool)
    out, start = [], 0
    for b in branches:
        out.append(int(np.argmax(np.where(mask[start : start + b], logits[start : start + b], -np.inf))))
        start += b
    return np.array(out)
