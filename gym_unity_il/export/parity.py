"""The parity check run after every export: onnxruntime against the torch policy.

A batch of observations in Unity's form (images NCHW with byte values / 255, vectors
drawn from a normal distribution, random action masks with at least one allowed action
per branch) goes through the exported model and, independently of the exported graph,
through the policy's own SB3 code: the observations are brought back to the env's form
in numpy (bytes, HWC), through ``VecNormalize.normalize_obs`` and the policy's observation
layout (:meth:`~gym_unity_il.export.layout.ObservationLayout.to_policy`: channels first,
packing), then ``policy.predict(..., deterministic=True)`` for continuous actions and the
policy's distribution logits (or DQN's Q-values) for discrete ones.

A recurrent policy is compared over a sequence of such batches (a batch of agents, one
observation each per step), each side carrying its own state: the model gets back its
``recurrent_out`` as the next ``recurrent_in``, zeroed for the agents starting an episode as
Unity zeroes it; the torch policy gets its own ``(h, c)`` and ``episode_start`` (SB3 resets
the state itself). Every agent starts at step 0, every other agent starts again halfway
and any agent at random, so memories are both carried and reset mid-sequence.

Deterministic outputs must agree: continuous within ``tolerance`` (max abs difference),
discrete exactly except where the two best allowed logits are within ``tolerance`` of each
other, and the memory (``recurrent_out`` against SB3's ``(h, c)``) within ``tolerance``
times its largest value when that exceeds 1 (the cell state is unbounded: float32 rounding
grows with it).
Sampled outputs must have the right shape and dtype, lie in [-1, 1] and respect the
masks. Anything else raises :class:`~gym_unity_il.errors.ExportParityError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gym_unity_il.export.adapters import PolicyPart, SensorPlan, memory_size
from gym_unity_il.export.contract import (
    ACTION_MASKS,
    CONTINUOUS_ACTIONS,
    DETERMINISTIC_CONTINUOUS_ACTIONS,
    DETERMINISTIC_DISCRETE_ACTIONS,
    DISCRETE_ACTIONS,
    RECURRENT_IN,
    RECURRENT_OUT,
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
        batch: number of observations compared (for a recurrent policy: of agents, per step).
        max_abs_diff: largest absolute difference between ``deterministic_continuous_actions``
            and the torch policy's deterministic actions (None without continuous actions).
        discrete_mismatches: deterministic discrete choices that differ from the torch
            policy's best allowed action beyond ties (None without discrete actions).
        steps: steps of the sequence, the memory carried through them (1 without memory).
        episode_starts: agents that started an episode after the first step (their memory zeroed).
        memory_max_abs_diff: largest absolute difference between ``recurrent_out`` and the
            torch policy's ``(h, c)`` over the sequence (None without memory).
    """

    batch: int
    max_abs_diff: float | None
    discrete_mismatches: int | None
    steps: int = 1
    episode_starts: int = 0
    memory_max_abs_diff: float | None = None


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


def parity_episode_starts(steps: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """Which agent starts an episode at which step, ``[steps, batch]`` booleans: everyone at
    step 0, every other agent again halfway, and any agent at random (1 step in 20)."""
    starts = rng.random((steps, batch)) < 0.05
    starts[0] = True
    if steps > 1:
        starts[steps // 2, ::2] = True
    return starts


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


class _TorchPolicy:
    """One prepared policy run step by step by its own SB3 code, carrying its LSTM state
    ``(h, c)`` (each ``[1, batch, hidden]``, SB3's form) when it has one."""

    def __init__(self, part: PolicyPart, batch: int) -> None:
        self.part = part
        hidden = part.resolved.memory_size // 2
        self.state: tuple[np.ndarray, np.ndarray] | None = None
        if hidden:
            zeros = np.zeros((1, batch, hidden), np.float32)
            self.state = (zeros, zeros)

    @property
    def memory(self) -> np.ndarray | None:
        """The state as Unity's memory, ``[batch, memory_size]`` (h then c); None without one."""
        return None if self.state is None else np.concatenate([self.state[0][0], self.state[1][0]], axis=-1)

    def actions(self, obs: Any, starts: np.ndarray) -> np.ndarray:
        """``predict(..., deterministic=True)``, clipped to [-1, 1], ``[batch, n]``."""
        module = self.part.resolved.module
        if self.state is None:
            actions = module.predict(obs, deterministic=True)[0]
        else:
            actions, state = module.predict(obs, state=self.state, episode_start=starts, deterministic=True)
            self.state = (np.asarray(state[0], np.float32), np.asarray(state[1], np.float32))
        return np.clip(np.asarray(actions, np.float32).reshape(len(starts), -1), -1.0, 1.0)

    def logits(self, obs: Any, starts: np.ndarray) -> np.ndarray:
        """The policy's own discrete logits (or Q-values), flattened over branches."""
        import torch

        module = self.part.resolved.module
        tensor, _ = module.obs_to_tensor(obs)
        with torch.no_grad():
            if self.part.resolved.kind == "dqn":
                return module(tensor).cpu().numpy()
            if self.state is None:
                dist = module.get_distribution(tensor).distribution
            else:
                state = tuple(torch.as_tensor(s) for s in self.state)
                wrapped, (h, c) = module.get_distribution(tensor, state, torch.as_tensor(starts, dtype=torch.float32))
                dist = wrapped.distribution
                self.state = (h.cpu().numpy(), c.cpu().numpy())
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
    steps: int = 50,
    seed: int = 0,
    inputs: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]] | None = None,
) -> ParityResult:
    """Compares the model at ``path`` with the policies it was exported from (for a recurrent
    policy, over a sequence with the memory carried, see the module's description).

    Args:
        path: the exported model (with its deterministic outputs).
        parts: the prepared policies (see :func:`~gym_unity_il.export.adapters.prepare_parts`).
        spec: the behavior spec.
        vec_normalize: the VecNormalize whose statistics were baked in, if any.
        tolerance: largest accepted absolute difference of continuous actions and of the
            memory (scaled by the memory's largest value past 1); also the logit gap under
            which two discrete choices count as a tie.
        batch: observations compared per step (when ``inputs`` is None).
        steps: the sequence's length for a recurrent policy (when ``inputs`` is None); a
            feed-forward policy is compared on one batch.
        seed: seed of the random observations, masks and episode starts.
        inputs: Unity-form inputs to use instead of random ones (``obs_<i>``, ``action_masks``):
            one batch, or a sequence of batches of the same agents.

    Raises:
        ExportParityError: outputs disagree beyond the tolerance, or sampled outputs are malformed.
    """
    memory = memory_size(parts)
    rng = np.random.default_rng(seed)
    if inputs is None:
        sequence = [parity_inputs(spec, batch, rng) for _ in range(steps if memory else 1)]
    else:
        sequence = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    n = len(sequence[0][observation_input_name(0)])
    starts = parity_episode_starts(len(sequence), n, rng)
    model = OnnxPolicy(path, behavior_spec=spec)
    references = [_TorchPolicy(part, n) for part in parts]
    branches = spec.action_spec.discrete_branches
    memory_in = np.zeros((n, 1, memory), np.float32)
    max_diff: float | None = None
    mismatches: int | None = None
    memory_diff: float | None = None
    memory_scale = 1.0  # the cell state is unbounded: its tolerance grows with it
    sampled: list[tuple[dict[str, np.ndarray], np.ndarray | None]] = []  # checked once the deterministic outputs agree
    for step, step_inputs in enumerate(sequence):
        feed = dict(step_inputs)
        if memory:
            feed[RECURRENT_IN] = np.where(starts[step][:, None, None], np.float32(0.0), memory_in)
        out = model.run(feed)
        masks = step_inputs.get(ACTION_MASKS)
        for reference in references:
            obs = _policy_observation(reference.part, step_inputs, vec_normalize)
            if reference.part.part == "continuous":
                want = reference.actions(obs, starts[step])
                got = out[DETERMINISTIC_CONTINUOUS_ACTIONS]
                if got.shape != want.shape:
                    raise ExportParityError(f"{DETERMINISTIC_CONTINUOUS_ACTIONS} has shape {got.shape}; the torch policy gives {want.shape}")
                diff = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
                max_diff = diff if max_diff is None else max(max_diff, diff)
            else:
                logits = reference.logits(obs, starts[step])
                mask = masks if masks is not None else np.ones_like(logits)
                chosen = out[DETERMINISTIC_DISCRETE_ACTIONS]
                mismatches = (mismatches or 0) + _discrete_mismatches(logits, mask, chosen.reshape(n, -1), branches, tolerance)
            if reference.memory is not None:
                memory_in = out[RECURRENT_OUT]
                if memory_in.shape != (n, 1, memory):
                    raise ExportParityError(f"{RECURRENT_OUT} has shape {memory_in.shape}; the memory is [{n}, 1, {memory}]")
                diff = float(np.max(np.abs(memory_in[:, 0, :].astype(np.float64) - reference.memory)))
                memory_diff = diff if memory_diff is None else max(memory_diff, diff)
                memory_scale = max(memory_scale, float(np.max(np.abs(reference.memory))))
        sampled.append((out, masks))
    what = f"{n} agents over {len(sequence)} steps" if memory else f"{n} observations"
    advice = "A policy whose forward pass branches on the data (see torch's TracerWarnings) exports one branch only; make it branch-free."
    if max_diff is not None and not max_diff <= tolerance:
        raise ExportParityError(
            f"onnxruntime and the torch policy disagree: max abs difference {max_diff:.3g} of "
            f"{DETERMINISTIC_CONTINUOUS_ACTIONS} over {what} exceeds the tolerance {tolerance:g}. {advice}"
        )
    if mismatches:
        raise ExportParityError(
            f"onnxruntime and the torch policy choose different discrete actions for {mismatches} of "
            f"{n * len(sequence) * len(branches)} branch decisions (masked argmax, tolerance {tolerance:g}). {advice}"
        )
    if memory_diff is not None and not memory_diff <= tolerance * memory_scale:
        raise ExportParityError(
            f"the model's memory drifts from the torch policy's LSTM state: max abs difference {memory_diff:.3g} of {RECURRENT_OUT} "
            f"against (h, c) over {what} exceeds the tolerance {tolerance:g} (times {memory_scale:.3g}, the largest state value)"
        )
    for out, masks in sampled:
        _check_sampled(out, spec, masks, n)
    return ParityResult(n, max_diff, mismatches, len(sequence), int(starts[1:].sum()), memory_diff)
