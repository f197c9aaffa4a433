"""Measures a policy's return on a built-in scene in-process, without the gRPC link, and the
policy and evaluation types every evaluation shares.

:func:`evaluate_in_process` drives a :class:`~gym_unity_il.scenes.base.Scene` directly
with one agent and hands the policy observations exactly as the env returns them (a bare
array for one sensor, a dict keyed by sensor name for several; images ``uint8`` HWC or
``float32`` CHW), so the figures in the scene docstrings are what a user of the env sees;
``python -m gym_unity_il.scenes.evaluate`` measures them again.

* :class:`Predictor`: what every evaluation and trainer takes as a policy;
* :class:`RandomPolicy`: the uniform baseline;
* :class:`Evaluation`: the returns and lengths an evaluation measured (also
  :func:`gym_unity_il.train.evaluate`'s result).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from gym_unity_il.errors import ConfigError
from gym_unity_il.scenes import SCENES, expert_policy, make_scene
from gym_unity_il.scenes.hallway import GuessPolicy
from gym_unity_il.spec import BehaviorSpec, ImageFormat, check_image_format


class Predictor(Protocol):
    """Anything with SB3's ``predict``: models, policies, scripted experts, teachers.

    ``deterministic`` defaults to False as in SB3; every evaluation and trainer of this
    package passes it explicitly.
    """

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> tuple[Any, Any]: ...


def env_observation(spec: BehaviorSpec, observations: list[np.ndarray], image_format: ImageFormat = "hwc_uint8") -> np.ndarray | dict[str, np.ndarray]:
    """A scene's per-sensor arrays ``[n, *shape]`` in the form the env returns them.

    Args:
        spec: the behavior the arrays belong to.
        observations: one array per sensor, images ``uint8`` HWC, as in an ``AgentBatch``.
        image_format: ``"hwc_uint8"`` (images as they are) or ``"chw_float"`` (images
            ``float32`` in [0, 1], channels first).

    Returns:
        The only sensor's array, or an ordered dict keyed by ``spec.observation_keys``.
    """
    check_image_format(image_format)
    converted = []
    for obs_spec, array in zip(spec.observation_specs, observations):
        if obs_spec.is_visual and image_format == "chw_float":
            array = np.moveaxis(array, -1, 1).astype(np.float32) / np.float32(255.0)
        converted.append(array)
    if len(converted) == 1:
        return converted[0]
    return OrderedDict(zip(spec.observation_keys, converted))


class RandomPolicy:
    """Uniform actions of an action space (action masks ignored).

    Args:
        source: a behavior spec (then a single observation gets a single action) or an
            action space (then observations come in batches, as from a VecEnv).
        seed: seed of the action sampler.
    """

    def __init__(self, source: BehaviorSpec | spaces.Space, *, seed: int = 0) -> None:
        self.spec = source if isinstance(source, BehaviorSpec) else None
        self.action_space = source.action_space() if isinstance(source, BehaviorSpec) else source
        self.action_space.seed(seed)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> tuple[Any, None]:
        """One sampled action for a single observation, else one per row of the batch."""
        first = next(iter(observation.values())) if isinstance(observation, dict) else observation
        if self.spec is not None and np.ndim(first) == len(self.spec.observation_specs[0].shape):
            return self.action_space.sample(), None
        samples = [self.action_space.sample() for _ in range(len(first))]
        if isinstance(samples[0], dict):
            return {k: np.stack([s[k] for s in samples]) for k in samples[0]}, None
        return np.stack(samples), None


@dataclass(frozen=True)
class Evaluation:
    """Returns and lengths (decisions) of evaluated episodes, and the seed they started from."""

    returns: list[float]
    lengths: list[int]
    seed: int

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths))

    def to_dict(self) -> dict[str, Any]:
        """The figures as ``evaluation.json`` holds them."""
        return {
            "episodes": len(self.returns), "seed": self.seed, "mean_return": self.mean_return, "std_return": self.std_return,
            "mean_length": self.mean_length, "returns": self.returns, "lengths": self.lengths,
        }  # fmt: skip


def evaluate_in_process(
    scene_name: str,
    policy: Predictor | str,
    episodes: int = 20,
    seed: int = 0,
    *,
    image_format: ImageFormat = "hwc_uint8",
    **scene_kwargs: Any,
) -> Evaluation:
    """Runs ``episodes`` episodes of one agent of a built-in scene and records their returns.

    The policy's recurrent state goes round as in SB3: every ``predict`` gets the state the
    previous one returned and ``episode_start`` (``bool [1]``), true at each episode's first
    decision; policies without state take and return None.

    Args:
        scene_name: a key of :data:`gym_unity_il.scenes.SCENES`.
        policy: an object with SB3's ``predict``, or ``"expert"`` / ``"random"`` for the
            scene's scripted expert / :class:`RandomPolicy` (seeded with ``seed``).
        episodes: number of complete episodes.
        seed: the scene's seed (the same seed gives the same episodes).
        image_format: how images reach the policy.
        **scene_kwargs: more constructor arguments of the scene (``num_agents`` is 1).

    Returns:
        The episodes' returns and lengths.
    """
    scene = make_scene(scene_name, num_agents=1, seed=seed, **scene_kwargs)
    specs = scene.behavior_specs()
    if len(specs) != 1:
        raise ConfigError(f"evaluate_in_process needs a scene with one behavior; {scene_name!r} has {sorted(specs)}")
    (behavior, spec), = specs.items()
    if policy == "expert":
        policy = expert_policy(scene_name, image_format=image_format)
    elif policy == "random":
        policy = RandomPolicy(spec, seed=seed)
    elif isinstance(policy, str):
        raise ConfigError(f"policy {policy!r} is not known; pass 'expert', 'random' or an object with predict()")
    returns: list[float] = []
    lengths: list[int] = []
    episode_return, episode_length = 0.0, 0
    state: Any = None  # a recurrent policy's state, carried from decision to decision
    episode_start = True
    while len(returns) < episodes:
        batch = scene.observe()[behavior]
        for reward, done in zip(batch.rewards, batch.done):
            episode_return += float(reward)
            if done:
                returns.append(episode_return)
                lengths.append(episode_length)
                episode_return, episode_length = 0.0, 0
                episode_start = True
        if len(returns) >= episodes:
            break
        decision = int(np.flatnonzero(~batch.done)[0])
        observation = env_observation(spec, [o[decision : decision + 1] for o in batch.observations], image_format)
        observation = {k: v[0] for k, v in observation.items()} if isinstance(observation, dict) else observation[0]
        action, state = policy.predict(observation, state=state, episode_start=np.array([episode_start]), deterministic=True)
        episode_start = False
        continuous, discrete = spec.action_spec.split(action)
        scene.act({behavior: (continuous[None], discrete[None])})
        episode_length += 1
    return Evaluation(returns, lengths, seed)


def main() -> None:
    """Prints the returns the scene docstrings quote: the expert and random ones of every
    built-in scene with its defaults, and the hallway's without memory and with its camera."""
    for name in SCENES:
        runs: list[tuple[str, Predictor | str, dict[str, Any]]] = [("expert", "expert", {}), ("random", "random", {})]
        if name == "hallway":
            camera = {"camera": True}
            runs += [("guess", GuessPolicy(seed=0), {}), ("expert", "expert", camera), ("guess", GuessPolicy(seed=0), camera), ("random", "random", camera)]
        for label, policy, kwargs in runs:
            result = evaluate_in_process(name, policy, episodes=20, seed=0, **kwargs)
            variant = "".join(f"  ({k}={v})" for k, v in kwargs.items())
            print(f"{name:8s} {label:7s} return {result.mean_return:8.3f} +- {result.std_return:6.3f}  length {result.mean_length:7.1f}{variant}")


if __name__ == "__main__":
    main()
