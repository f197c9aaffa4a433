"""Torch modules that put a Stable-Baselines3 policy into Unity ML-Agents' model contract.

:func:`build_unity_module` turns a policy (or, for hybrid actions, one policy per action
part) into a ``torch.nn.Module`` whose forward takes Unity's inputs (``obs_<i>`` with
images NCHW in [0, 1], then ``action_masks``, then ``recurrent_in``) and returns the action
outputs Unity applies as they are (then ``recurrent_out``). Everything SB3 does around the
network is baked in:

* observations: Unity's [0, 1] floats back to byte values for policies trained on uint8
  images (``image_format="hwc_uint8"``), the layout the policy expects (HWC as the env
  returns it, or CHW after ``VecTransposeImage``), ``VecNormalize`` statistics, and
  the policy's own preprocessing (``/ 255`` of uint8 images);
* continuous actions: the policy's distribution (diagonal Gaussian, gSDE, SAC's squashed
  Gaussian, TD3's deterministic actor), ``unscale_action`` for squashing policies and the
  clipping ``predict`` applies, then clipping to [-1, 1] (UnityILEnv's ``Box(-1, 1)``);
* discrete actions: logits (or DQN's Q-values) masked with ``action_masks``
  (1 = allowed), one ``Multinomial`` draw per branch and the ``ArgMax``;
* memory: sb3-contrib's recurrent policies (``RecurrentPPO``) run their actor LSTM one step
  between the features and the actor's MLP. Unity keeps one memory vector per agent, so the
  LSTM state travels as ML-Agents packs it: ``recurrent_in`` / ``recurrent_out`` are
  ``[batch, 1, memory_size]`` with the hidden state ``h`` in the first half and the cell
  state ``c`` in the second (``memory_size = 2 * hidden``). Unity feeds zeros to a new agent
  or episode, which is where SB3 resets the state too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from gym_unity_il.errors import ConfigError, SpecMismatchError
from gym_unity_il.export.contract import unity_input_shape
from gym_unity_il.export.layout import ObservationLayout, SensorLayout
from gym_unity_il.export.saved import TrainedPolicy
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ImageFormat, check_image_format

PolicyKind = Literal["actor_critic", "sac", "td3", "dqn"]
#: Added to a masked logit's complement, as ML-Agents' exporter does (``logits * mask - 1e8 * (1 - mask)``).
MASK_PENALTY = 1.0e8
#: SB3's variance floor for gSDE.
_SDE_EPSILON = 1e-6


# ---------------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class ResolvedPolicy:
    """The part of an SB3 object that decides, and how it decides.

    Attributes:
        kind: ``actor_critic`` (PPO, A2C, imitation's BC and policies built like them), ``sac`` / ``td3``
            (the actor), ``dqn`` (the Q-network).
        module: the torch module whose forward pass is exported.
        observation_space: the observation space the policy was built for.
        action_space: its action space.
        memory_size: the size of the recurrent state Unity keeps per agent (``2 * hidden``
            of the actor LSTM), 0 for a policy without memory.
    """

    kind: PolicyKind
    module: Any
    observation_space: spaces.Space
    action_space: spaces.Space
    memory_size: int = 0


def resolve_policy(policy: Any) -> ResolvedPolicy:
    """Finds the deciding module in an SB3 algorithm, an SB3 policy or an ``imitation`` BC
    (sb3-contrib's ``RecurrentPPO`` and its recurrent policies included).

    Raises:
        ConfigError: the object is of a kind that cannot be exported (MultiBinary actions,
            recurrent policies whose LSTM state does not fit one memory vector, anything that
            is not an SB3 policy).
    """
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
    from stable_baselines3.sac.policies import Actor as SACActor
    from stable_baselines3.sac.policies import SACPolicy
    from stable_baselines3.td3.policies import Actor as TD3Actor
    from stable_baselines3.td3.policies import TD3Policy

    if not isinstance(policy, BasePolicy) and isinstance(getattr(policy, "policy", None), BasePolicy):
        policy = policy.policy  # an SB3 algorithm or imitation's BC
    if not isinstance(policy, BasePolicy):
        raise ConfigError(
            f"cannot export a {type(policy).__name__}: pass an SB3 algorithm (PPO, A2C, SAC, TD3, DDPG, DQN), "
            "its .policy, or imitation's BC (or bc.policy)"
        )
    memory_size = _memory_size(policy) if hasattr(policy, "lstm_actor") else 0
    if isinstance(policy, (SACPolicy, TD3Policy)):
        policy = policy.actor
    elif isinstance(policy, DQNPolicy):
        policy = policy.q_net
    if isinstance(policy, SACActor):
        kind: PolicyKind = "sac"
    elif isinstance(policy, TD3Actor):
        kind = "td3"
    elif isinstance(policy, QNetwork):
        kind = "dqn"
    elif all(hasattr(policy, a) for a in ("mlp_extractor", "action_net", "action_dist")):
        kind = "actor_critic"
        _check_actor_critic_distribution(policy)
    else:
        raise ConfigError(f"cannot export {type(policy).__name__}: supported are actor-critic policies (PPO, A2C, BC), SAC and TD3 actors, DQN Q-networks")
    return ResolvedPolicy(kind, policy, policy.observation_space, policy.action_space, memory_size)


def _memory_size(policy: Any) -> int:
    """The memory Unity keeps for a recurrent policy: ``h`` and ``c`` of its one-layer actor LSTM.

    Raises:
        ConfigError: an LSTM whose state is not one ``(h, c)`` pair of equal size.
    """
    lstm = policy.lstm_actor
    name = type(policy).__name__
    if not isinstance(lstm, nn.LSTM):
        raise ConfigError(f"{name}.lstm_actor is a {type(lstm).__name__}; only torch.nn.LSTM actors can be exported")
    if lstm.num_layers != 1:
        raise ConfigError(
            f"{name} has {lstm.num_layers} LSTM layers; Unity keeps one memory vector per agent, which holds the (h, c) state of one "
            "layer as ML-Agents packs it: train with policy_kwargs={'n_lstm_layers': 1} (a wider lstm_hidden_size instead of more layers)"
        )
    if lstm.bidirectional or lstm.proj_size or lstm.batch_first:
        raise ConfigError(
            f"{name}'s LSTM is built with bidirectional={lstm.bidirectional}, proj_size={lstm.proj_size}, batch_first={lstm.batch_first}; "
            "a step-by-step policy whose memory is (h, c) of equal size needs the defaults: drop them from lstm_kwargs"
        )
    return 2 * int(lstm.hidden_size)


def _check_actor_critic_distribution(policy: Any) -> None:
    from stable_baselines3.common import distributions as d

    known = (d.DiagGaussianDistribution, d.StateDependentNoiseDistribution, d.CategoricalDistribution, d.MultiCategoricalDistribution)
    if not isinstance(policy.action_dist, known):
        raise ConfigError(f"cannot export a policy with {type(policy.action_dist).__name__}: Unity actions are continuous (Box) or discrete branches")


def check_action_space(resolved: ResolvedPolicy, part: ActionSpec, *, what: str) -> None:
    """Raises SpecMismatchError unless the policy's action space is ``part`` in gymnasium form."""
    space = resolved.action_space
    if part.discrete_branches:
        if isinstance(space, spaces.Discrete):
            ok = part.discrete_branches == (int(space.n),) and int(getattr(space, "start", 0)) == 0
        elif isinstance(space, spaces.MultiDiscrete):
            ok = tuple(int(n) for n in np.ravel(space.nvec)) == part.discrete_branches and not np.any(getattr(space, "start", 0))
        else:
            ok = False
        if ok and resolved.kind in ("sac", "td3"):
            ok = False
    else:
        ok = isinstance(space, spaces.Box) and space.shape == (part.continuous_size,) and resolved.kind != "dqn"
    if not ok:
        raise SpecMismatchError(f"{what} acts in {space}, but the behavior's actions ({_describe_part(part)}) need {part.space()}")


def _describe_part(part: ActionSpec) -> str:
    if part.discrete_branches:
        return f"discrete branches {list(part.discrete_branches)}"
    return f"{part.continuous_size} continuous actions"


# ---------------------------------------------------------------------------------- observations


@dataclass(frozen=True)
class SensorPlan:
    """How one Unity observation input becomes what the policy takes, as its
    :class:`~gym_unity_il.export.layout.ObservationLayout` says.

    Unity's input ``[batch, *unity_shape]`` (images NCHW in [0, 1]) is brought to the env's
    form (``to_bytes``: byte values, layout ``env_shape``), normalised when VecNormalize
    says so (in the env's layout), then permuted into the policy's layout.

    Attributes:
        index: the sensor index (input ``obs_<index>``).
        key: the env's Dict key of the sensor (``BehaviorSpec.observation_keys``).
        policy_key: the key in the policy's Dict observation space, None for a Box space.
        unity_shape: the input shape Unity feeds (without batch).
        env_shape: the shape the env returns for the layout's image format.
        to_bytes: multiply by 255 and round (images of ``image_format="hwc_uint8"``).
        unity_to_env: axis permutation (with batch) from Unity's layout to the env's, or None.
        env_to_policy: axis permutation (with batch) from the env's layout to the policy's, or None.
    """

    index: int
    key: str
    policy_key: str | None
    unity_shape: tuple[int, ...]
    env_shape: tuple[int, ...]
    to_bytes: bool
    unity_to_env: tuple[int, ...] | None
    env_to_policy: tuple[int, ...] | None


def _subspaces(space: spaces.Space, spec: BehaviorSpec, what: str) -> dict[str, spaces.Box]:
    """The policy's observation space per env key."""
    keys = list(spec.observation_keys)
    if isinstance(space, spaces.Dict):
        if len(keys) == 1 or set(space.spaces) != set(keys):
            raise SpecMismatchError(f"{what} observes a Dict with keys {sorted(space.spaces)}, but the behavior's sensors are {keys} ({spec.describe()})")
        return {k: space.spaces[k] for k in keys}  # type: ignore[misc]
    if len(keys) != 1:
        raise SpecMismatchError(f"{what} observes one array {space}, but the behavior has {len(keys)} sensors {keys}: a Dict observation is needed")
    if not isinstance(space, spaces.Box):
        raise SpecMismatchError(f"{what} observes {space}; only Box and Dict-of-Box observations come from Unity sensors")
    return {keys[0]: space}


def is_packed(space: spaces.Space, spec: BehaviorSpec) -> bool:
    """Whether a policy takes the behavior's sensors packed into one float vector: every
    sensor flattened in sensor order, images as CHW floats in [0, 1] (as ``gym-unity-il
    train`` packs them for GAIL). Only for behaviors with several sensors."""
    if len(spec.observation_specs) < 2 or not isinstance(space, spaces.Box) or len(space.shape) != 1 or space.dtype == np.uint8:
        return False
    return int(space.shape[0]) == _packed_size(spec)


def _packed_size(spec: BehaviorSpec) -> int:
    return sum(int(np.prod(unity_input_shape(o))) for o in spec.observation_specs)


def infer_image_format(space: spaces.Space, spec: BehaviorSpec, *, normalized_keys: Sequence[str] = ()) -> ImageFormat:
    """The image format a policy was trained with: ``hwc_uint8`` when it takes uint8 images,
    ``chw_float`` when it takes float images; ``hwc_uint8`` (the env default) when it cannot tell."""
    if is_packed(space, spec):
        return "hwc_uint8"
    subspaces = _subspaces(space, spec, "the policy")
    for key, o_spec in zip(spec.observation_keys, spec.observation_specs):
        if o_spec.is_visual and key not in normalized_keys:
            return "hwc_uint8" if subspaces[key].dtype == np.uint8 else "chw_float"
    return "hwc_uint8"


def infer_layout(space: spaces.Space, spec: BehaviorSpec, *, image_format: ImageFormat | None = None, normalized_keys: Sequence[str] = (),
                 what: str = "the policy") -> ObservationLayout:  # fmt: skip
    """The observation layout of a policy saved without one (by other code, or an older
    version), read from its observation space: packed when it takes one float vector the
    size of every sensor together; else an image is channels first unless the policy takes
    it in the env's own shape or channels last; the image format is ``image_format``, else
    :func:`infer_image_format`'s. :func:`plan_observations` checks the result."""
    fmt = image_format or infer_image_format(space, spec, normalized_keys=normalized_keys)
    check_image_format(fmt)
    pairs = list(zip(spec.observation_keys, spec.observation_specs))
    if is_packed(space, spec):
        return ObservationLayout(tuple(SensorLayout(key, unity_input_shape(o), o.is_visual) for key, o in pairs), fmt, packed=True)
    subspaces = _subspaces(space, spec, what)
    sensors = []
    for key, o_spec in pairs:
        shape = tuple(int(n) for n in subspaces[key].shape)
        channels_first = fmt == "chw_float" if o_spec.is_visual and shape == o_spec.output_shape(fmt) else shape == unity_input_shape(o_spec)
        sensors.append(SensorLayout(key, shape, o_spec.is_visual, channels_first))
    return ObservationLayout(tuple(sensors), fmt)


def _compose(first: tuple[int, ...] | None, then: tuple[int, ...] | None, rank: int) -> tuple[int, ...] | None:
    a = first or tuple(range(rank))
    b = then or tuple(range(rank))
    out = tuple(a[k] for k in b)
    return None if out == tuple(range(rank)) else out


def plan_observations(space: spaces.Space, spec: BehaviorSpec, layout: ObservationLayout, *, what: str = "the policy") -> list[SensorPlan]:
    """How each of the behavior's sensors reaches a policy with observation space ``space``
    taking them as ``layout`` says.

    Raises:
        SpecMismatchError: the layout or the policy's observations do not match the sensors
            (count, keys, shapes, image dtype for the layout's image format).
    """
    fmt = layout.image_format
    pairs = list(zip(spec.observation_keys, spec.observation_specs))
    keys = [s.key for s in layout.sensors]
    if len(keys) != len(pairs) or (len(keys) > 1 and tuple(keys) != spec.observation_keys):
        raise SpecMismatchError(f"{what} was trained on the sensors {keys}, but the behavior's are {list(spec.observation_keys)} ({spec.describe()})")
    if layout.packed and not is_packed(space, spec):
        raise SpecMismatchError(f"{what} observes {space}, but its sensors packed into one vector need Box({_packed_size(spec)},) ({spec.describe()})")
    subspaces = {} if layout.packed else _subspaces(space, spec, what)
    plans = []
    for i, (sensor, (key, o_spec)) in enumerate(zip(layout.sensors, pairs)):
        env_shape = o_spec.output_shape(fmt)
        to_bytes = o_spec.is_visual and fmt == "hwc_uint8"
        unity_to_env = (0, 2, 3, 1) if to_bytes else None
        if layout.packed:  # the packed vector is Unity's inputs flattened: nothing to permute
            plans.append(SensorPlan(i, key, None, unity_input_shape(o_spec), env_shape, to_bytes, unity_to_env, None))
            continue
        sub = subspaces[key]
        if o_spec.is_visual and (sub.dtype == np.uint8) != to_bytes:
            raise SpecMismatchError(
                f"{what} takes {sub.dtype} images for sensor {key!r}, but image_format={fmt!r} gives "
                f"{np.dtype(np.uint8 if to_bytes else np.float32)} images; pass the image_format the policy was trained with"
            )
        env_to_policy = None
        want = env_shape
        if o_spec.is_visual and sensor.channels_first != (fmt == "chw_float"):
            env_to_policy = (0, 3, 1, 2) if sensor.channels_first else (0, 2, 3, 1)  # HWC -> CHW, as VecTransposeImage does, or back
            want = tuple(env_shape[k - 1] for k in env_to_policy[1:])
        if tuple(sub.shape) != want:
            raise SpecMismatchError(
                f"{what} observes {key!r} with shape {tuple(sub.shape)}, but the sensor gives {env_shape} (image_format={fmt!r}; {spec.describe()})"
            )
        policy_key = key if isinstance(space, spaces.Dict) else None
        plans.append(SensorPlan(i, key, policy_key, unity_input_shape(o_spec), env_shape, to_bytes, unity_to_env, env_to_policy))
    return plans


@dataclass(frozen=True)
class Normalization:
    """VecNormalize's statistics for one sensor, in the env's layout (float64, as SB3 keeps them)."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float
    clip: float


def normalizations(vec_normalize: Any, plans: Sequence[SensorPlan]) -> dict[int, Normalization]:
    """The statistics a ``VecNormalize`` applies to each sensor (by sensor index).

    Raises:
        SpecMismatchError: the statistics do not fit the sensors.
    """
    if vec_normalize is None or not getattr(vec_normalize, "norm_obs", False):
        return {}
    rms = vec_normalize.obs_rms
    out = {}
    for plan in plans:
        if isinstance(rms, Mapping):
            if plan.key not in (vec_normalize.norm_obs_keys or ()):
                continue
            stats = rms[plan.key]
        elif plan.policy_key is None:
            stats = rms
        else:
            raise SpecMismatchError("VecNormalize holds statistics of one array, but the policy observes a Dict")
        mean, var = np.asarray(stats.mean, np.float64), np.asarray(stats.var, np.float64)
        if mean.shape != plan.env_shape:
            raise SpecMismatchError(f"VecNormalize statistics for {plan.key!r} have shape {mean.shape}; the env returns {plan.env_shape}")
        out[plan.index] = Normalization(mean, var, float(vec_normalize.epsilon), float(vec_normalize.clip_obs))
    if isinstance(rms, Mapping):
        unknown = sorted(set(vec_normalize.norm_obs_keys or ()) - {plan.key for plan in plans})
        if unknown:
            raise SpecMismatchError(f"VecNormalize normalises keys {unknown} that the behavior has no sensor for")
    return out


class ObservationModule(nn.Module):
    """Unity's observation inputs -> the observation (tensor or dict) a policy takes, as planned
    from its :class:`~gym_unity_il.export.layout.ObservationLayout`."""

    def __init__(self, plans: Sequence[SensorPlan], norms: Mapping[int, Normalization], *, packed: bool = False) -> None:
        super().__init__()
        self.plans = list(plans)
        self.packed = packed
        self.perms: list[tuple[int, ...] | None] = []
        for plan in self.plans:
            rank = len(plan.unity_shape) + 1
            self.perms.append(_compose(plan.unity_to_env, plan.env_to_policy, rank))
            norm = norms.get(plan.index)
            if norm is not None:
                axes = [p - 1 for p in plan.env_to_policy[1:]] if plan.env_to_policy else None
                mean = norm.mean.transpose(axes) if axes else norm.mean
                inv_std = 1.0 / np.sqrt(norm.var + norm.epsilon)
                inv_std = inv_std.transpose(axes) if axes else inv_std
                self.register_buffer(f"mean_{plan.index}", torch.as_tensor(mean, dtype=torch.float32))
                self.register_buffer(f"inv_std_{plan.index}", torch.as_tensor(inv_std, dtype=torch.float32))
        self.clips = {i: n.clip for i, n in norms.items()}

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        if self.packed:
            return torch.cat([torch.flatten(x, 1) for x in inputs], dim=1)
        out: dict[str, torch.Tensor] = {}
        for plan, perm, x in zip(self.plans, self.perms, inputs):
            if plan.to_bytes:
                x = torch.floor(x * 255.0 + 0.5)  # Unity writes byte / 255; opset 9 has no Round
            if perm is not None:
                x = x.permute(*perm)
            if plan.index in self.clips:
                mean, inv_std = getattr(self, f"mean_{plan.index}"), getattr(self, f"inv_std_{plan.index}")
                clip = self.clips[plan.index]
                x = torch.clamp((x - mean) * inv_std, -clip, clip)
            out[plan.policy_key or plan.key] = x
        if len(self.plans) == 1 and self.plans[0].policy_key is None:
            return out[self.plans[0].key]
        return out


# ---------------------------------------------------------------------------------- heads


def _features(policy: Any, obs: Any, extractor: Any) -> torch.Tensor:
    """SB3's own preprocessing (``/ 255`` of uint8 images, float cast) and features extractor."""
    from stable_baselines3.common.policies import BaseModel

    return BaseModel.extract_features(policy, obs, extractor)


def _actor_latent(policy: Any, obs: Any, memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An actor-critic policy's actor latent and, for a recurrent policy, its new memory:
    features, one step of the actor LSTM from ``memory`` when given, then the actor's MLP."""
    features = _features(policy, obs, getattr(policy, "pi_features_extractor", policy.features_extractor))
    if memory is not None:
        features, memory = _lstm_step(policy.lstm_actor, features, memory)
    return policy.mlp_extractor.forward_actor(features), memory


def _lstm_step(lstm: nn.LSTM, features: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of a one-layer LSTM on Unity's memory.

    Args:
        lstm: the LSTM (sequence first, one layer).
        features: its input, ``[batch, input_size]``.
        memory: ``[batch, 1, 2 * hidden]``, ``h`` then ``c``.

    Returns:
        The LSTM's output ``[batch, hidden]`` and the new memory ``[batch, 1, 2 * hidden]``.
    """
    hidden = lstm.hidden_size
    state = memory.transpose(0, 1)  # [1, batch, 2 * hidden]: (layers, batch, size) as the LSTM takes it
    h, c = state[:, :, :hidden].contiguous(), state[:, :, hidden:].contiguous()  # two Slice nodes
    out, (h, c) = lstm(features.unsqueeze(0), (h, c))
    return out.reshape(-1, hidden), torch.cat([h, c], dim=2).transpose(0, 1)


class ContinuousHead(nn.Module):
    """``(sampled, deterministic)`` continuous actions, as Unity should apply them."""

    def __init__(self, resolved: ResolvedPolicy, observation: ObservationModule) -> None:
        super().__init__()
        self.kind = resolved.kind
        self.policy = resolved.module
        self.observation = observation
        space = resolved.action_space
        self.squashed = bool(resolved.module.squash_output)
        low = np.asarray(space.low, np.float64)
        high = np.asarray(space.high, np.float64)
        self.rescale = self.squashed and not (np.all(low == -1.0) and np.all(high == 1.0))
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        # predict() clips unsquashed actions to the Box, Unity needs [-1, 1]: one clip does both.
        lo, hi = np.maximum(low, -1.0), np.minimum(high, 1.0)
        self.uniform = bool(np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]))
        self.bounds = (float(lo.flat[0]), float(hi.flat[0])) if self.uniform else (-1.0, 1.0)
        self.register_buffer("clip_low", torch.as_tensor(lo, dtype=torch.float32))
        self.register_buffer("clip_high", torch.as_tensor(hi, dtype=torch.float32))

    def _mean_std(self, obs: Any, memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        policy = self.policy
        if self.kind == "td3":
            return policy(obs), None, None
        if self.kind == "sac":
            mean, log_std, extra = policy.get_action_dist_params(obs)
            if policy.use_sde:
                return mean, _sde_std(policy.action_dist, log_std, extra["latent_sde"]), None
            return mean, log_std.exp(), None
        latent, memory = _actor_latent(policy, obs, memory)
        mean = policy.action_net(latent)
        from stable_baselines3.common.distributions import StateDependentNoiseDistribution

        if isinstance(policy.action_dist, StateDependentNoiseDistribution):
            return mean, _sde_std(policy.action_dist, policy.log_std, latent), memory
        return mean, policy.log_std.exp(), memory  # broadcast over the batch (no Expand node)

    def forward(self, inputs: Sequence[torch.Tensor], memory: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(sampled, deterministic, new memory)``; the memory is None without ``memory``."""
        mean, std, memory = self._mean_std(self.observation(inputs), memory)
        deterministic = mean
        sampled = mean if std is None else mean + torch.randn_like(mean) * std
        if self.squashed and self.kind != "td3":  # TD3's actor ends with its own tanh
            deterministic, sampled = torch.tanh(deterministic), torch.tanh(sampled)
        return self._bound(sampled), self._bound(deterministic), memory

    def _bound(self, actions: torch.Tensor) -> torch.Tensor:
        if self.rescale:  # SB3's unscale_action: [-1, 1] -> [low, high]
            actions = self.low + 0.5 * (actions + 1.0) * (self.high - self.low)
        if self.uniform:
            return torch.clamp(actions, *self.bounds)
        return torch.min(torch.max(actions, self.clip_low), self.clip_high)


def _sde_std(distribution: Any, log_std: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """The per-state standard deviation of gSDE noise: ``sqrt(latent^2 @ std^2 + eps)``."""
    return torch.sqrt(torch.mm(latent**2, distribution.get_std(log_std) ** 2) + _SDE_EPSILON)


class DiscreteHead(nn.Module):
    """Unmasked logits (or Q-values) of every branch, flattened: ``[batch, sum(branches)]``."""

    def __init__(self, resolved: ResolvedPolicy, observation: ObservationModule) -> None:
        super().__init__()
        self.kind = resolved.kind
        self.policy = resolved.module
        self.observation = observation
        #: Actor-critic policies sample from softmax(logits); DQN acts greedily.
        self.samples = resolved.kind == "actor_critic"

    def forward(self, inputs: Sequence[torch.Tensor], memory: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, new memory)``; the memory is None without ``memory``."""
        obs = self.observation(inputs)
        policy = self.policy
        if self.kind == "dqn":
            return policy(obs), None
        latent, memory = _actor_latent(policy, obs, memory)
        return policy.action_net(latent), memory


class UnityPolicyModule(nn.Module):
    """Unity's inputs -> ``(continuous_actions, deterministic_continuous_actions,
    discrete_actions, deterministic_discrete_actions, recurrent_out)``, each action pair
    present when the behavior has that kind of action, ``recurrent_out`` when the policy has
    memory. Inputs: ``obs_0 ... obs_{n-1}``, then ``action_masks`` when there are discrete
    actions, then ``recurrent_in`` when the policy has memory.

    Args:
        memory_size: the recurrent state size (0: no memory); the head of the recurrent
            policy steps its LSTM on ``recurrent_in`` (one head: hybrid behaviors have no memory).
    """

    def __init__(self, *, n_observations: int, continuous: ContinuousHead | None, discrete: DiscreteHead | None, branches: tuple[int, ...],
                 memory_size: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.n_observations = n_observations
        self.continuous = continuous
        self.discrete = discrete
        self.branches = list(branches)
        self.memory_size = memory_size

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        observations = inputs[: self.n_observations]
        memory = inputs[-1] if self.memory_size else None
        outputs: list[torch.Tensor] = []
        memory_out = None
        if self.continuous is not None:
            sampled, deterministic, memory_out = self.continuous(observations, memory)
            outputs.extend([sampled, deterministic])
        if self.discrete is not None:
            mask = inputs[self.n_observations]
            logits, discrete_memory = self.discrete(observations, memory)
            memory_out = memory_out if discrete_memory is None else discrete_memory
            masked = logits * mask - MASK_PENALTY * (1.0 - mask)
            parts = torch.split(masked, self.branches, dim=1) if len(self.branches) > 1 else (masked,)
            greedy = [torch.argmax(p, dim=1, keepdim=True) for p in parts]
            if self.discrete.samples:
                sampled = [torch.multinomial(torch.softmax(p, dim=1), 1) for p in parts]
            else:
                sampled = greedy
            join = (lambda xs: torch.cat(xs, dim=1)) if len(parts) > 1 else (lambda xs: xs[0])
            outputs.extend([join(sampled), join(greedy)])
        if memory_out is not None:
            outputs.append(memory_out)
        return tuple(outputs)


# ---------------------------------------------------------------------------------- building


@dataclass(frozen=True)
class PolicyPart:
    """One exported policy, what it is used for and how its observations reach it."""

    resolved: ResolvedPolicy
    part: Literal["continuous", "discrete"]
    layout: ObservationLayout
    plans: tuple[SensorPlan, ...]
    norms: Mapping[int, Normalization]


def split_policies(policy: Any, spec: BehaviorSpec) -> dict[str, Any]:
    """``{"continuous": ..., "discrete": ...}``: which object decides which action part.

    Raises:
        SpecMismatchError: a single policy for a hybrid behavior, or a mapping for another.
    """
    act = spec.action_spec
    if isinstance(policy, Mapping):
        unknown = sorted(set(policy) - {"continuous", "discrete"})
        if unknown:
            raise ConfigError(f"a policy mapping takes the keys 'continuous' and 'discrete', got {unknown}")
        if not act.is_hybrid or set(policy) != {"continuous", "discrete"}:
            raise SpecMismatchError(
                f"a mapping {{'continuous': ..., 'discrete': ...}} is for hybrid behaviors, with both keys; "
                f"this behavior has {spec.describe()}: pass one policy"
            )
        return dict(policy)
    if act.is_hybrid:
        raise SpecMismatchError(
            f"the behavior has hybrid actions (continuous {act.continuous_size} + discrete {list(act.discrete_branches)}) and SB3 "
            "policies act in one space: pass {'continuous': policy_c, 'discrete': policy_d}, two policies trained on the two parts "
            "(e.g. with hybrid_actions='continuous' and 'discrete')"
        )
    return {"continuous" if act.continuous_size else "discrete": policy}


def prepare_parts(policy: Any, spec: BehaviorSpec, *, image_format: ImageFormat | None, vec_normalize: Any) -> list[PolicyPart]:
    """Resolves, checks and plans every policy against the behavior spec. A policy of
    :func:`~gym_unity_il.export.saved.load_policy` brings its observation layout; any other
    has it inferred (:func:`infer_layout`).

    Raises:
        SpecMismatchError: besides the mismatches of the plan, an ``image_format`` other than
            the one the policy was saved with.
        ConfigError: a recurrent policy in a hybrid mapping.
    """
    act = spec.action_spec
    if not spec.observation_specs:
        raise SpecMismatchError(f"the behavior has no sensors ({spec.describe()}); a model needs at least obs_0")
    parts = []
    for part, obj in split_policies(policy, spec).items():
        resolved = resolve_policy(obj)
        what = f"the {part} policy" if act.is_hybrid else "the policy"
        if act.is_hybrid and resolved.memory_size:
            raise ConfigError(
                f"{what} is recurrent: Unity keeps one memory vector per agent, which an export fills from the LSTM of a single policy; "
                "export a hybrid behavior's two parts with feed-forward policies (recurrent policies export for continuous-only or discrete-only behaviors)"
            )
        check_action_space(resolved, ActionSpec(act.continuous_size, ()) if part == "continuous" else ActionSpec(0, act.discrete_branches), what=what)
        normalized = _normalized_keys(vec_normalize, spec)
        layout = obj.layout if isinstance(obj, TrainedPolicy) else None
        if layout is None:
            layout = infer_layout(resolved.observation_space, spec, image_format=image_format, normalized_keys=normalized, what=what)
        elif image_format is not None and image_format != layout.image_format:
            raise SpecMismatchError(f"{what} was trained on image_format={layout.image_format!r} (saved with it), not {image_format!r}")
        plans = plan_observations(resolved.observation_space, spec, layout, what=what)
        if layout.packed and normalized:
            raise ConfigError(f"{what} takes the sensors packed into one vector; VecNormalize statistics cannot be baked into such a policy")
        parts.append(PolicyPart(resolved, part, layout, tuple(plans), normalizations(vec_normalize, plans)))  # type: ignore[arg-type]
    return parts


def _normalized_keys(vec_normalize: Any, spec: BehaviorSpec) -> list[str]:
    if vec_normalize is None or not getattr(vec_normalize, "norm_obs", False):
        return []
    if isinstance(vec_normalize.obs_rms, Mapping):
        return list(vec_normalize.norm_obs_keys or ())
    return list(spec.observation_keys)


def memory_size(parts: Sequence[PolicyPart]) -> int:
    """The model's ``memory_size``: the recurrent policy's state size, 0 without one."""
    return max((p.resolved.memory_size for p in parts), default=0)


def build_unity_module(parts: Sequence[PolicyPart], spec: BehaviorSpec) -> UnityPolicyModule:
    """The exportable module for prepared policy parts."""
    continuous = discrete = None
    for p in parts:
        observation = ObservationModule(p.plans, p.norms, packed=p.layout.packed)
        if p.part == "continuous":
            continuous = ContinuousHead(p.resolved, observation)
        else:
            discrete = DiscreteHead(p.resolved, observation)
    return UnityPolicyModule(
        n_observations=len(spec.observation_specs),
        continuous=continuous,
        discrete=discrete,
        branches=spec.action_spec.discrete_branches,
        memory_size=memory_size(parts),
    )
