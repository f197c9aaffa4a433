"""Running an exported model with onnxruntime the way Unity runs it, on the env's observations.

:class:`OnnxPolicy` takes observations as ``UnityIL-v0`` returns them (uint8 HWC or float
CHW images, Dict observations keyed by sensor name), feeds them to the model as Unity
does (``obs_<i>`` float32, images NCHW in [0, 1], ``action_masks`` with 1 = allowed) and
returns actions in the env's action space, like SB3's ``predict``. Use it to check a
model in Python before shipping it, or to drive a scene with it.

A model with memory (``memory_size`` > 0) keeps it as Unity does: zeros for an agent that
starts an episode, else the agent's last ``recurrent_out``. :class:`OnnxPolicy` keeps the
memory of the last batch between calls (or takes the one passed as ``state``), and returns
it beside the actions like a recurrent SB3 policy returns its ``(h, c)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from gym_unity_il.errors import ConfigError, SpecMismatchError
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
from gym_unity_il.spec import BehaviorSpec, ImageFormat, check_image_format


def inference_session(model: str | os.PathLike[str] | bytes, *, threads: int = 1):  # type: ignore[no-untyped-def]
    """An onnxruntime CPU session over a model file (or its bytes) using ``threads`` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxPolicy:
    """An exported model as a policy over the env's observations.

    Args:
        path: the ``.onnx`` file.
        behavior_spec: the behavior the model was exported for (sensor order and shapes).
        image_format: the layout of the image observations that will be passed in.
        threads: onnxruntime threads.

    Attributes:
        memory_size: the model's recurrent state size (the last dimension of
            ``recurrent_in``), 0 for a model without memory.
        memory: the memory kept after the last :meth:`predict`, ``[batch, 1, memory_size]``;
            None before the first call, after :meth:`reset` and without memory.

    Raises:
        SpecMismatchError: the model lacks an input the behavior needs, or its
            ``recurrent_in`` is not ``[batch, 1, memory_size]``.
    """

    def __init__(self, path: str | os.PathLike[str], *, behavior_spec: BehaviorSpec, image_format: ImageFormat = "hwc_uint8", threads: int = 1) -> None:
        check_image_format(image_format)
        self.behavior_spec = behavior_spec
        self.image_format: ImageFormat = image_format
        self.session = inference_session(path, threads=threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        wanted = [observation_input_name(i) for i in range(len(behavior_spec.observation_specs))]
        missing = [n for n in wanted if n not in self.input_names]
        if missing:
            raise SpecMismatchError(f"{path}: the model has no input {missing}; inputs are {self.input_names} ({behavior_spec.describe()})")
        self.memory_size = 0
        self.memory: np.ndarray | None = None
        for model_input in self.session.get_inputs():
            if model_input.name == RECURRENT_IN:
                shape = model_input.shape
                if len(shape) != 3 or shape[1] != 1 or not isinstance(shape[2], int) or shape[2] <= 0:
                    raise SpecMismatchError(f"{path}: input '{RECURRENT_IN}' has shape {shape}; a model's memory is [batch, 1, memory_size]")
                self.memory_size = int(shape[2])

    def reset(self) -> None:
        """Forgets the kept memory: the next :meth:`predict` starts every agent from zeros."""
        self.memory = None

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of the model for Unity-layout ``inputs`` (only the model's own inputs are fed;
        a model with memory needs ``recurrent_in``).

        Raises:
            ConfigError: a model with memory without ``recurrent_in`` in ``inputs``.
        """
        if self.memory_size and RECURRENT_IN not in inputs:
            raise ConfigError(f"the model has memory: give '{RECURRENT_IN}' [batch, 1, {self.memory_size}] (zeros for new episodes), or use predict()")
        feed = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items() if k in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feed)))

    def unity_inputs(self, observation: Any, action_masks: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], bool]:
        """The model inputs for one observation or a batch as the env returns them, and whether it was one."""
        spec = self.behavior_spec
        if hasattr(observation, "unwrap") and not isinstance(observation, np.ndarray):
            observation = observation.unwrap()  # imitation's DictObs
        if isinstance(observation, Mapping):
            arrays = [np.asarray(observation[k]) for k in spec.observation_keys]
        elif len(spec.observation_specs) == 1:
            arrays = [np.asarray(observation)]
        else:
            raise ConfigError(f"the behavior has sensors {list(spec.observation_keys)}; pass a dict observation")
        first = spec.observation_specs[0].output_shape(self.image_format)
        single = arrays[0].shape == first
        inputs = {}
        for i, (o_spec, array) in enumerate(zip(spec.observation_specs, arrays)):
            batch = array[None] if single else array
            if o_spec.is_visual and self.image_format == "hwc_uint8":
                batch = batch.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
            batch = batch.astype(np.float32, copy=False)
            want = unity_input_shape(o_spec)
            if batch.shape[1:] != want:
                raise SpecMismatchError(f"observation {spec.observation_keys[i]!r} has shape {array.shape}; expected {o_spec.output_shape(self.image_format)} ({self.image_format})")
            inputs[observation_input_name(i)] = batch
        branches = spec.action_spec.discrete_branches
        if branches:
            n = len(inputs[observation_input_name(0)])
            masks = np.ones((n, sum(branches)), np.float32) if action_masks is None else np.asarray(action_masks, np.float32).reshape(n, sum(branches))
            inputs[ACTION_MASKS] = masks
        return inputs, single

    def predict(
        self,
        observation: Any,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | bool | None = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[Any, np.ndarray | None]:
        """Actions for one observation or a batch, in the env's action space (SB3's ``predict`` form).

        Args:
            observation: as the env returns it (or a batch of them).
            state: for a model with memory, the memory to start from, ``[batch, 1,
                memory_size]`` (what an earlier call returned); None: the memory kept from
                the last call. Ignored without memory.
            episode_start: per agent (one bool for one observation), True where an episode
                starts: its memory starts from zeros, as Unity does. None: no agent starts one.
            deterministic: use the ``deterministic_*`` outputs (Unity's *Deterministic
                Inference*) rather than the sampled ones.
            action_masks: True / 1 = allowed, flattened over branches (``info["action_mask"]``
                or ``env.action_masks()``); all allowed when None.

        Returns:
            The actions, and for a model with memory the new memory ``[batch, 1,
            memory_size]`` (also kept for the next call; batched even for one observation),
            else None.

        Raises:
            ConfigError: ``state`` or ``episode_start`` do not fit the batch, or the batch
                differs in size from the kept memory while some of its agents continue an episode.
        """
        inputs, single = self.unity_inputs(observation, action_masks)
        if self.memory_size:
            inputs[RECURRENT_IN] = self._memory_in(len(inputs[observation_input_name(0)]), state, episode_start)
        out = self.run(inputs)
        memory = None
        if self.memory_size:
            self.memory = out[RECURRENT_OUT]
            memory = self.memory.copy()
        act = self.behavior_spec.action_spec
        continuous = out[DETERMINISTIC_CONTINUOUS_ACTIONS if deterministic else CONTINUOUS_ACTIONS] if act.continuous_size else None
        discrete = out[DETERMINISTIC_DISCRETE_ACTIONS if deterministic else DISCRETE_ACTIONS].astype(np.int64) if act.discrete_branches else None
        if act.is_hybrid:
            action: Any = {"continuous": continuous, "discrete": discrete}
            return ({k: v[0] for k, v in action.items()} if single else action), memory
        if continuous is not None:
            action = continuous
        elif len(act.discrete_branches) == 1:
            action = discrete[:, 0]  # type: ignore[index]
        else:
            action = discrete
        return (action[0] if single else action), memory

    def _memory_in(self, n: int, state: np.ndarray | None, episode_start: np.ndarray | bool | None) -> np.ndarray:
        """``recurrent_in`` for a batch of ``n`` agents: ``state``, else the kept memory, zeroed
        where an episode starts (all zeros when nothing is kept)."""
        shape = (n, 1, self.memory_size)
        starts = np.zeros(n, bool) if episode_start is None else np.asarray(episode_start, bool).reshape(-1)
        if starts.size != n:
            raise ConfigError(f"episode_start has {starts.size} value(s) for a batch of {n} observation(s); give one per agent")
        if state is not None:
            memory = np.asarray(state, np.float32)
            if memory.shape != shape:
                raise ConfigError(f"state has shape {memory.shape}; the model's memory for {n} agent(s) is {list(shape)} (what predict returned)")
        elif self.memory is None:
            memory = np.zeros(shape, np.float32)
        elif len(self.memory) != n:
            if not starts.all():
                raise ConfigError(
                    f"the policy keeps the memory of {len(self.memory)} agent(s) but got a batch of {n}: pass episode_start True for "
                    "every agent (new episodes), the state to continue from, or call reset() first"
                )
            memory = np.zeros(shape, np.float32)
        else:
            memory = self.memory
        return np.where(starts[:, None, None], np.float32(0.0), memory).astype(np.float32)
