"""The parity check run after every export: onnxruntime against the torch policy.

A batch of observations in Unity's form (images NCHW with byte values / 255, vectors
drawn from a normal distribution, random action masks with at least one allowed action
per branch) goes through the exported model and, independently of the exported graph,
through the policy's own SB3 code: the observations are brought back to the env's form
in numpy (bytes, HWC), through ``VecNormalize.normalize_obs`` and the policy's observation
layout (:meth:`~gym_unity_il.export.layout.ObservationLayout.to_policy`: channels first,
packing), then ``policy.predict(..., deterministic=True)`` for continuous actions and the
policy's distribution logits (or DQN's Q-values) for discrete ones.

Deterministic outputs must agree: continuous within ``tolerance`` (max abs difference),
discrete exactly except where the two best allowed logits are within ``tolerance`` of each
other. Sampled outputs must have the right shape and dtype, lie in [-1, 1] and respect
the masks. Anything else raises :class:`~gym_unity_il.errors.ExportParityError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gym_unity_il.export.adapters import PolicyPart, SensorPlan
from gym_unity_il.export.contract import (
    ACTION_MASKS,
    CONTINUOUS_ACTIONS,
    DETERMINISTIC_CONTINUOUS_ACTIONS,
    DETERMINISTIC_DISCRETE_ACTIONS,
    DISCRETE_ACTIONS,
    observation_input_name,
    unity_input_shape,
)
from gym_unity_il.errors import ExportParityError
from gym_unity_il.export.runtime import OnnxPolicy
from gym_unity_il.spec import BehaviorSpec


@dataclass(frozen=True)
class ParityResult:
    """What the parity check measured.

    Attributes:
        batch: number of observations compared.
        max_abs_diff: largest absolute difference between ``deterministic_continuous_actions``
            and the torch policy's deterministic actions (None without continuous actions).
        discrete_mismatches: deterministic discrete choices that differ from the torch
            policy's best allowed action beyond ties (None without discrete actions).
    """

    batch: int
    max_abs_diff: float | None
    discrete_mismatches: int | None


def parity_inputs(spec: BehaviorSpec, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A batch of model inputs as Unity fills them: images of whole byte values / 255, vectors
    from N(0, 1), masks (first row all allowed, then random with one allowed action or more per branch)."""
    inputs: dict[str, np.ndarray] = {}
    for i, o_spec in enumerate(spec.observation_specs):
        shape = (batch, *unity_input_shape(o_spec))
        if o_spec.is_visual:
            inputs[observation_input_name(i)] = (rng.integers(0, 256, shape) / 255.0).astype(np.float32)
        else:
            inputs[observation_input_name(i)] = rng.normal(0.0, 1.0, shape).astype(np.float32)
    branches = spec.action_spec.discrete_branches
    if branches:
        masks = rng.random((batch, sum(branches))) < 0.6
        masks[0] = True
        start = 0
        for b in branches:
            keep = rng.integers(0, b, batch)
            masks[np.arange(batch), start + keep] = True
            start += b
        inputs[ACTION_MASKS] = masks.astype(np.float32)
    return inputs


def _env_observation(plans: Sequence[SensorPlan], inputs: Mapping[str, np.ndarray]) -> Any:
    """Unity-form inputs back to the env's form (uint8 HWC images for ``hwc_uint8``)."""
    out = {}
    for plan in plans:
        x = inputs[observation_input_name(plan.index)]
        if plan.to_bytes:
            x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        if plan.unity_to_env is not None:
            x = np.transpose(x, plan.unity_to_env)
        out[plan.key] = x
    if len(plans) == 1 and plans[0].policy_key is None:
        return out[plans[0].key]
    return out


def _policy_observation(part: PolicyPart, inputs: Mapping[str, np.ndarray], vec_normalize: Any) -> Any:
    """What the policy takes: the env's observation, normalised by VecNormalize, converted as
    the policy's observation layout says."""
    obs = _env_observation(part.plans, inputs)
    if vec_normalize is not None:
        obs = vec_normalize.normalize_obs(obs)
    return part.layout.to_policy(obs)


def _reference_logits(part: PolicyPart, obs: Any) -> np.ndarray:
    """The policy's own discrete logits (or Q-values), flattened over branches."""
    import torch

    module = part.resolved.module
    tensor, _ = module.obs_to_tensor(obs)
    with torch.no_grad():
        if part.resolved.kind == "dqn":
            return module(tensor).cpu().numpy()
        dist = module.get_distribution(tensor).distribution
        parts = dist if isinstance(dist, (list, tuple)) else [dist]
        return torch.cat([d.logits for d in parts], dim=1).cpu().numpy()


def _discrete_mismatches(logits: np.ndarray, masks: np.ndarray, chosen: np.ndarray, branches: Sequence[int], tolerance: float) -> int:
    mismatches = 0
    start = 0
    for k, b in enumerate(branches):
        values = np.where(masks[:, start : start + b] > 0, logits[:, start : start + b].astype(np.float64), -np.inf)
        best = values.max(axis=1)
        pick = chosen[:, k]
        valid = (pick >= 0) & (pick < b)
        picked = np.where(valid, values[np.arange(len(pick)), np.clip(pick, 0, b - 1)], -np.inf)
        mismatches += int(np.sum(~(picked >= best - tolerance)))
        start += b
    return mismatches


def _check_sampled(out: Mapping[str, np.ndarray], spec: BehaviorSpec, masks: np.ndarray | None, n: int) -> None:
    act = spec.action_spec
    problems = []
    if act.continuous_size:
        sampled = out[CONTINUOUS_ACTIONS]
        if sampled.shape != (n, act.continuous_size) or sampled.dtype != np.float32:
            problems.append(f"{CONTINUOUS_ACTIONS} is {sampled.dtype} {sampled.shape}, expected float32 {(n, act.continuous_size)}")
        elif not np.all(np.isfinite(sampled)) or np.any(np.abs(sampled) > 1.0):
            problems.append(f"{CONTINUOUS_ACTIONS} leaves [-1, 1] (min {np.nanmin(sampled):.4g}, max {np.nanmax(sampled):.4g})")
    if act.discrete_branches:
        sampled = out[DISCRETE_ACTIONS]
        k = len(act.discrete_branches)
        if sampled.shape != (n, k) or sampled.dtype.kind != "i":
            problems.append(f"{DISCRETE_ACTIONS} is {sampled.dtype} {sampled.shape}, expected int64 {(n, k)}")
        else:
            start = 0
            for j, b in enumerate(act.discrete_branches):
                pick = sampled[:, j]
                if np.any((pick < 0) | (pick >= b)):
                    problems.append(f"{DISCRETE_ACTIONS} branch {j} holds {sorted(set(pick.tolist()))}, outside [0, {b})")
                elif masks is not None and not np.all(masks[np.arange(n), start + pick] > 0):
                    problems.append(f"{DISCRETE_ACTIONS} branch {j} chose masked actions")
                start += b
    if problems:
        raise ExportParityError("the sampled outputs are wrong: " + "; ".join(problems))


def parity_check(
    path: str | os.PathLike[str],
    parts: Sequence[PolicyPart],
    spec: BehaviorSpec,
    *,
    vec_normalize: Any = None,
    tolerance: float = 1e-4,
    batch: int = 32,
    seed: int = 0,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> ParityResult:
    """Compares the model at ``path`` with the policies it was exported from.

    Args:
        path: the exported model (with its deterministic outputs).
        parts: the prepared policies (see :func:`~gym_unity_il.export.adapters.prepare_parts`).
        spec: the behavior spec.
        vec_normalize: the VecNormalize whose statistics were baked in, if any.
        tolerance: largest accepted absolute difference of continuous actions; also the
            logit gap under which two discrete choices count as a tie.
        batch: observations compared (when ``inputs`` is None).
        seed: seed of the random observations and masks.
        inputs: Unity-form inputs to use instead of random ones (``obs_<i>``, ``action_masks``).

    Raises:
        ExportParityError: outputs disagree beyond the tolerance, or sampled outputs are malformed.
    """
    if inputs is None:
        inputs = parity_inputs(spec, batch, np.random.default_rng(seed))
    n = len(inputs[observation_input_name(0)])
    out = OnnxPolicy(path, behavior_spec=spec).run(inputs)
    masks = inputs.get(ACTION_MASKS)
    max_diff: float | None = None
    mismatches: int | None = None
    for part in parts:
        obs = _policy_observation(part, inputs, vec_normalize)
        if part.part == "continuous":
            want = np.clip(np.asarray(part.resolved.module.predict(obs, deterministic=True)[0], np.float32).reshape(n, -1), -1.0, 1.0)
            got = out[DETERMINISTIC_CONTINUOUS_ACTIONS]
            if got.shape != want.shape:
                raise ExportParityError(f"{DETERMINISTIC_CONTINUOUS_ACTIONS} has shape {got.shape}; the torch policy gives {want.shape}")
            max_diff = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
        else:
            logits = _reference_logits(part, obs)
            mask = masks if masks is not None else np.ones_like(logits)
            chosen = out[DETERMINISTIC_DISCRETE_ACTIONS]
            mismatches = _discrete_mismatches(logits, mask, chosen.reshape(n, -1), spec.action_spec.discrete_branches, tolerance)
    if max_diff is not None and not max_diff <= tolerance:
        raise ExportParityError(
            f"onnxruntime and the torch policy disagree: max abs difference {max_diff:.3g} of "
            f"{DETERMINISTIC_CONTINUOUS_ACTIONS} over {n} observations exceeds the tolerance {tolerance:g}. A policy whose "
            "forward pass branches on the data (see torch's TracerWarnings) exports one branch only; make it branch-free."
        )
    if mismatches:
        raise ExportParityError(
            f"onnxruntime and the torch policy choose different discrete actions for {mismatches} of "
            f"{n * len(spec.action_spec.discrete_branches)} branch decisions (masked argmax, tolerance {tolerance:g}). A policy whose "
            "forward pass branches on the data (see torch's TracerWarnings) exports one branch only; make it branch-free."
        )
    _check_sampled(out, spec, masks, n)
    return ParityResult(n, max_diff, mismatches)
