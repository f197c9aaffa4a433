"""Unity ML-Agents' ONNX model contract, and a checker that names every violation of it.

The contract is the one com.unity.ml-agents 2.x and 3.x read (model API version 3, the
format ML-Agents' own exporter writes):

* inputs, all ``float32``, first dimension dynamic (the batch of agents deciding
  together), every other dimension static: ``obs_<i>`` per sensor in the behavior's sensor
  order (images NCHW with values in [0, 1]), ``action_masks`` ``[batch, sum(branches)]``
  (1 = allowed) when the model has discrete outputs, ``recurrent_in`` ``[batch, 1,
  memory_size]`` when it has memory; no other names (Unity throws on an unknown input);
* constant outputs, ``float32`` initializers routed through ``Identity``:
  ``version_number`` ``[3.0]``, ``memory_size`` (``[0.0]`` without memory),
  ``continuous_action_output_shape`` ``[n]``, ``discrete_action_output_shape``
  ``[[b1, ..., bk]]``;
* action outputs: ``continuous_actions`` / ``deterministic_continuous_actions`` (``float32
  [batch, n]``), ``discrete_actions`` / ``deterministic_discrete_actions`` (integer
  ``[batch, k]``);
* memory: when ``memory_size`` > 0, ``recurrent_in`` and the output ``recurrent_out``, both
  ``float32 [batch, 1, memory_size]`` (Unity feeds zeros to a new agent or episode, then
  the agent's last ``recurrent_out``); neither without memory;
* default-domain opset 7 to 15 (ML-Agents exports 9, the opset Barracuda recommends).

:func:`check_model` validates any ONNX file against it, optionally against a behavior spec.
Version-2 (ML-Agents 1.x) models are checked for what Unity refuses at run time only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gym_unity_il.spec import BehaviorSpec, ObservationSpec

#: The model API version this package writes (``MLAgents2_0``).
MODEL_VERSION = 3
#: The versions Unity accepts: 2 (ML-Agents 1.x format) and 3.
ACCEPTED_VERSIONS = (2, 3)
#: Default-domain opsets Unity's inference engines import (Sentis 1.x: 7 to 15).
OPSET_RANGE = (7, 15)
#: The opset ML-Agents' exporter uses and Barracuda's maintainers recommend.
DEFAULT_OPSET = 9

VERSION_NUMBER = "version_number"
MEMORY_SIZE = "memory_size"
CONTINUOUS_ACTIONS = "continuous_actions"
DETERMINISTIC_CONTINUOUS_ACTIONS = "deterministic_continuous_actions"
CONTINUOUS_SHAPE = "continuous_action_output_shape"
DISCRETE_ACTIONS = "discrete_actions"
DETERMINISTIC_DISCRETE_ACTIONS = "deterministic_discrete_actions"
DISCRETE_SHAPE = "discrete_action_output_shape"
ACTION_MASKS = "action_masks"
RECURRENT_IN = "recurrent_in"
RECURRENT_OUT = "recurrent_out"
#: The outputs in the order ML-Agents' exporter writes them.
OUTPUT_ORDER = (
    VERSION_NUMBER,
    MEMORY_SIZE,
    CONTINUOUS_ACTIONS,
    CONTINUOUS_SHAPE,
    DETERMINISTIC_CONTINUOUS_ACTIONS,
    DISCRETE_ACTIONS,
    DISCRETE_SHAPE,
    DETERMINISTIC_DISCRETE_ACTIONS,
    RECURRENT_OUT,
)
#: Input names Unity fills besides ``obs_<i>`` (the last four are TensorFlow-era and optional).
KNOWN_INPUTS = (ACTION_MASKS, RECURRENT_IN, "prev_action", "epsilon", "sequence_length", "batch_size")
#: The name of the dynamic batch dimension.
BATCH_DIM = "batch"

_OBS_NAME = re.compile(r"obs_(\d+)$")
_LEGACY_VISUAL = re.compile(r"visual_observation_(\d+)$")


def observation_input_name(index: int) -> str:
    """``obs_<index>``: the input of the sensor with this index."""
    return f"obs_{index}"


def unity_input_shape(spec: ObservationSpec) -> tuple[int, ...]:
    """The shape (without batch) in which Unity feeds this sensor to a model: images as
    ``(channels, height, width)``, everything else as the sensor declares it."""
    if spec.is_visual:
        h, w, c = spec.hwc
        return (c, h, w)
    return spec.shape


@dataclass(frozen=True)
class _Tensor:
    """What the graph says about one input or output."""

    name: str
    elem_type: int
    dims: tuple[int | str | None, ...] | None  # int: static, str: named dynamic, None: unknown; None: no shape

    def describe(self) -> str:
        if self.dims is None:
            return "unknown shape"
        return "[" + ", ".join(str(d) if d is not None else "?" for d in self.dims) + "]"


def _tensor(value) -> _Tensor:  # type: ignore[no-untyped-def]
    tensor_type = value.type.tensor_type
    dims: tuple[int | str | None, ...] | None = None
    if tensor_type.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim)
    return _Tensor(value.name, tensor_type.elem_type, dims)


def _type_name(elem_type: int) -> str:
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, ValueError, TypeError):
        return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type else "undefined"


class _Graph:
    """Lookups over one model's main graph."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.producers = {out: node for node in graph.node for out in node.output}
        self.inputs = {v.name: _tensor(v) for v in graph.input if v.name not in self.initializers}
        self.outputs = {v.name: _tensor(v) for v in graph.output}

    def constant(self, name: str) -> tuple[np.ndarray | None, str]:
        """The value of ``name`` when it is a constant (an initializer or a Constant node,
        possibly through Identity nodes), with how it was found; else ``(None, reason)``."""
        from onnx import numpy_helper

        seen = 0
        while seen < 100:
            seen += 1
            if name in self.initializers:
                return numpy_helper.to_array(self.initializers[name]), "initializer"
            node = self.producers.get(name)
            if node is None:
                return None, "it is neither computed nor an initializer"
            if node.op_type == "Identity" and node.domain in ("", "ai.onnx"):
                name = node.input[0]
                continue
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attribute in node.attribute:
                    if attribute.name == "value":
                        return numpy_helper.to_array(attribute.t), "Constant node"
                return None, "it is a Constant node without a tensor 'value'"
            return None, f"it is computed by a {node.op_type} node"
        return None, "it is an Identity cycle"


def _load(model):  # type: ignore[no-untyped-def]
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}")
    return onnx.load(str(path))


def check_model(model: str | os.PathLike[str] | object, behavior_spec: BehaviorSpec | None = None) -> list[str]:
    """Every way an ONNX model breaks the model contract Unity ML-Agents reads.

    Args:
        model: the path of an ``.onnx`` file, or an ``onnx.ModelProto``.
        behavior_spec: when given, inputs and action outputs are also checked against it
            (one ``obs_<i>`` per sensor with Unity's NCHW image shape, continuous size,
            branch sizes).

    Returns:
        One message per violation, each naming the input, output or field and what Unity
        expects; an empty list when the model is fine.

    Raises:
        FileNotFoundError: there is no file at ``model``.
    """
    try:
        proto = _load(model)
    except FileNotFoundError:
        raise
    except Exception as exc:  # protobuf decode errors share no useful base class
        return [f"{model}: not an ONNX model (it cannot be parsed: {exc})"]
    return list(_violations(proto, behavior_spec))


def _violations(model, spec: BehaviorSpec | None) -> Iterator[str]:  # type: ignore[no-untyped-def]
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        yield f"the ONNX checker rejects the graph: {first}"
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes are then taken as declared
        pass
    yield from _opset_violations(model)
    graph = _Graph(model)
    version = yield from _constant_scalar(graph, VERSION_NUMBER, "the model version; Unity reads a missing one as -1 and refuses the model")
    memory = yield from _constant_scalar(graph, MEMORY_SIZE, "the recurrent state size, 0 without memory")
    if version is not None and version not in ACCEPTED_VERSIONS:
        yield f"output '{VERSION_NUMBER}' is {version:g}; Unity accepts {ACCEPTED_VERSIONS[0]} (ML-Agents 1.x format) or {ACCEPTED_VERSIONS[1]} (ML-Agents 2.0 format, what this package exports)"
    if memory is not None and (memory < 0 or memory != int(memory)):
        yield f"output '{MEMORY_SIZE}' is {memory:g}; it must be a whole number >= 0"
    if version == 2:
        yield from _legacy_violations(graph, memory)
        return
    yield from _input_violations(graph, spec)
    yield from _action_violations(graph, spec)
    if memory:
        yield from _memory_violations(graph, int(memory))
    elif memory == 0:
        if RECURRENT_IN in graph.inputs:
            yield f"input '{RECURRENT_IN}' exists but '{MEMORY_SIZE}' is 0: Unity never feeds it; set memory_size to the state size or drop the input"
        if RECURRENT_OUT in graph.outputs:
            yield (f"output '{RECURRENT_OUT}' exists but '{MEMORY_SIZE}' is 0: Unity never reads it, so the model has no memory; "
                   "set memory_size to the state size or drop the output")  # fmt: skip


def _opset_violations(model) -> Iterator[str]:  # type: ignore[no-untyped-def]
    low, high = OPSET_RANGE
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not default:
        yield f"the model imports no default-domain opset; export with an opset from {low} to {high} ({DEFAULT_OPSET} recommended)"
    elif not low <= default[0] <= high:
        yield f"opset {default[0]} is outside the range Unity's inference engines import ({low} to {high}); export with opset_version={DEFAULT_OPSET}"
    for other in sorted({o.domain for o in model.opset_import if o.domain not in ("", "ai.onnx")}):
        yield f"the model uses operators of domain '{other}', which Unity's inference engines do not import"


def _constant_values(graph: _Graph, name: str, meaning: str) -> Generator[str, None, np.ndarray | None]:
    """Yields the violations of constant output ``name``; returns its float values or None."""
    if name not in graph.outputs:
        yield f"missing output '{name}' ({meaning}): add a float32 constant routed to an output through Identity"
        return None
    value, how = graph.constant(name)
    if value is None:
        yield f"output '{name}' is not a constant ({how}): Barracuda and Sentis 1.x read it from the model's constants; use a float32 initializer through Identity"
        return None
    if value.dtype != np.float32:
        yield f"output '{name}' is a constant of type {value.dtype.name}; Unity reads constant outputs as float32 (Sentis 2 fails on any other type)"
    return value.astype(np.float64)


def _constant_scalar(graph: _Graph, name: str, meaning: str) -> Generator[str, None, float | None]:
    """Like :func:`_constant_values` for a one-value constant; returns the value or None."""
    values = yield from _constant_values(graph, name, meaning)
    if values is None:
        return None
    if values.size != 1:
        yield f"output '{name}' has {values.size} values {values.ravel().tolist()}; it must hold one value (shape [1])"
        return None
    return float(values.ravel()[0])


def _batch_violation(kind: str, tensor: _Tensor) -> str | None:
    """A message when ``tensor``'s first dimension is not dynamic."""
    if not tensor.dims:
        return None
    first = tensor.dims[0]
    if isinstance(first, int) and first > 0:
        return (f"{kind} '{tensor.name}' has a fixed batch dimension of {first} ({tensor.describe()}): Unity sets the first "
                f"dimension to the number of agents deciding together; export it as a dynamic axis named '{BATCH_DIM}'")  # fmt: skip
    return None


def _input_violations(graph: _Graph, spec: BehaviorSpec | None) -> Iterator[str]:
    obs_indices: dict[int, _Tensor] = {}
    for name, tensor in graph.inputs.items():
        match = _OBS_NAME.match(name)
        if match:
            obs_indices[int(match.group(1))] = tensor
        elif name not in KNOWN_INPUTS:
            yield (f"unknown input '{name}': Unity throws at inference ('Unknown tensorProxy expected as input'); inputs must be "
                   f"obs_<i> (one per sensor, in the behavior's sensor order), {ACTION_MASKS} or {RECURRENT_IN}")  # fmt: skip
            continue
        if tensor.elem_type != 1:
            yield f"input '{name}' is {_type_name(tensor.elem_type)}; Unity feeds every input as float32"
        if tensor.dims is None:
            yield f"input '{name}' has no declared shape; give it [{BATCH_DIM}, ...] with static sizes after the batch"
            continue
        message = _batch_violation("input", tensor)
        if message:
            yield message
        for axis, dim in enumerate(tensor.dims[1:], start=1):
            if not isinstance(dim, int) or dim <= 0:
                yield f"input '{name}' has a dynamic dimension {axis} ({tensor.describe()}); only the first (batch) dimension may be dynamic"
    if spec is None:
        expected = range(max(obs_indices) + 1) if obs_indices else range(0)
        for i in expected:
            if i not in obs_indices:
                yield f"missing input 'obs_{i}': observation inputs must be numbered obs_0 ... obs_{max(obs_indices)} without gaps"
        if not obs_indices:
            yield "the model has no observation input (obs_0, obs_1, ...)"
        return
    for i, o_spec in enumerate(spec.observation_specs):
        key = spec.observation_keys[i]
        want = unity_input_shape(o_spec)
        tensor = obs_indices.pop(i, None)
        if tensor is None:
            yield f"missing input 'obs_{i}' for sensor {key!r} (shape [{BATCH_DIM}, {', '.join(map(str, want))}])"
            continue
        if tensor.dims is None:
            continue
        got = tuple(tensor.dims[1:])
        if got == want:
            continue
        h, w, c = o_spec.hwc if o_spec.is_visual else (0, 0, 0)
        if o_spec.is_visual and got == (h, w, c):
            yield (f"input 'obs_{i}' ({key!r}) is NHWC {tensor.describe()}; Unity feeds images as NCHW "
                   f"[{BATCH_DIM}, {c}, {h}, {w}] (channels first, values in [0, 1])")  # fmt: skip
        else:
            yield f"input 'obs_{i}' ({key!r}) has shape {tensor.describe()}; the sensor needs [{BATCH_DIM}, {', '.join(map(str, want))}]"
    for i in sorted(obs_indices):
        yield f"input 'obs_{i}' has no sensor: the behavior has {len(spec.observation_specs)} ({spec.describe()})"


def _action_violations(graph: _Graph, spec: BehaviorSpec | None) -> Iterator[str]:
    outputs = graph.outputs
    action_names = (CONTINUOUS_ACTIONS, DETERMINISTIC_CONTINUOUS_ACTIONS, DISCRETE_ACTIONS, DETERMINISTIC_DISCRETE_ACTIONS)
    if not any(n in outputs for n in action_names):
        yield f"no action output: the model needs {CONTINUOUS_ACTIONS} and/or {DISCRETE_ACTIONS} (and their deterministic_* twins)"
        if spec is None:
            return
    has_continuous = CONTINUOUS_ACTIONS in outputs or DETERMINISTIC_CONTINUOUS_ACTIONS in outputs
    has_discrete = DISCRETE_ACTIONS in outputs or DETERMINISTIC_DISCRETE_ACTIONS in outputs
    if spec is not None:
        act = spec.action_spec
        if act.continuous_size and not has_continuous:
            yield f"the behavior has {act.continuous_size} continuous actions but the model has no '{CONTINUOUS_ACTIONS}' output"
        if not act.continuous_size and has_continuous:
            yield f"the model has continuous action outputs but the behavior has no continuous actions ({spec.describe()})"
        if act.discrete_branches and not has_discrete:
            yield f"the behavior has discrete branches {list(act.discrete_branches)} but the model has no '{DISCRETE_ACTIONS}' output"
        if not act.discrete_branches and has_discrete:
            yield f"the model has discrete action outputs but the behavior has no discrete actions ({spec.describe()})"
    if has_continuous:
        yield from _continuous_violations(graph, spec)
    if has_discrete:
        yield from _discrete_violations(graph, spec)


def _continuous_violations(graph: _Graph, spec: BehaviorSpec | None) -> Iterator[str]:
    outputs = graph.outputs
    if CONTINUOUS_ACTIONS not in outputs:
        yield (f"missing output '{CONTINUOUS_ACTIONS}' beside '{DETERMINISTIC_CONTINUOUS_ACTIONS}': com.unity.ml-agents before 3.0.0 "
               "use the split action outputs only when it exists; export the sampled actions too")  # fmt: skip
    values = yield from _constant_values(graph, CONTINUOUS_SHAPE, "the number of continuous actions")
    size: int | None = None
    if values is not None:
        if values.size != 1 or values.ravel()[0] <= 0 or values.ravel()[0] != int(values.ravel()[0]):
            yield f"output '{CONTINUOUS_SHAPE}' is {values.ravel().tolist()}; it must be one whole number > 0 (Unity ignores the continuous outputs otherwise)"
        else:
            size = int(values.ravel()[0])
    if spec is not None and size is not None and spec.action_spec.continuous_size and size != spec.action_spec.continuous_size:
        yield f"output '{CONTINUOUS_SHAPE}' is {size}; the behavior has {spec.action_spec.continuous_size} continuous actions"
    for name in (CONTINUOUS_ACTIONS, DETERMINISTIC_CONTINUOUS_ACTIONS):
        tensor = outputs.get(name)
        if tensor is None:
            continue
        if tensor.elem_type != 1:
            yield f"output '{name}' is {_type_name(tensor.elem_type)}; continuous actions must be float32"
        message = _batch_violation("output", tensor)
        if message:
            yield message
        if tensor.dims is not None and (len(tensor.dims) != 2 or (size is not None and isinstance(tensor.dims[1], int) and tensor.dims[1] != size)):
            yield f"output '{name}' has shape {tensor.describe()}; it must be [{BATCH_DIM}, {size if size is not None else 'n'}]"


def _discrete_violations(graph: _Graph, spec: BehaviorSpec | None) -> Iterator[str]:
    outputs = graph.outputs
    if DISCRETE_ACTIONS not in outputs:
        yield (f"missing output '{DISCRETE_ACTIONS}' beside '{DETERMINISTIC_DISCRETE_ACTIONS}': com.unity.ml-agents before 3.0.0 "
               "use the split action outputs only when it exists; export the sampled actions too")  # fmt: skip
    values = yield from _constant_values(graph, DISCRETE_SHAPE, "the size of each discrete branch, shape [1, branches]")
    branches: tuple[int, ...] | None = None
    if values is not None:
        flat = values.ravel()
        if not flat.size or np.any(flat <= 0) or np.any(flat != np.floor(flat)):
            yield f"output '{DISCRETE_SHAPE}' is {flat.tolist()}; it must list each branch size (whole numbers > 0)"
        else:
            branches = tuple(int(b) for b in flat)
    if spec is not None and branches is not None and spec.action_spec.discrete_branches and branches != spec.action_spec.discrete_branches:
        yield f"output '{DISCRETE_SHAPE}' lists branch sizes {list(branches)}; the behavior has {list(spec.action_spec.discrete_branches)}"
    if spec is not None and spec.action_spec.discrete_branches:
        branches = spec.action_spec.discrete_branches
    for name in (DISCRETE_ACTIONS, DETERMINISTIC_DISCRETE_ACTIONS):
        tensor = outputs.get(name)
        if tensor is None:
            continue
        if tensor.elem_type not in (6, 7):  # int32, int64
            yield f"output '{name}' is {_type_name(tensor.elem_type)}; discrete actions must be integers (int64, as ML-Agents exports them)"
        message = _batch_violation("output", tensor)
        if message:
            yield message
        count = len(branches) if branches is not None else "branches"
        if tensor.dims is not None and (len(tensor.dims) != 2 or (branches is not None and isinstance(tensor.dims[1], int) and tensor.dims[1] != len(branches))):
            yield f"output '{name}' has shape {tensor.describe()}; it must be [{BATCH_DIM}, {count}] (one index per branch)"
    mask = graph.inputs.get(ACTION_MASKS)
    if mask is None:
        yield f"missing input '{ACTION_MASKS}': a model with discrete outputs must take the masks [{BATCH_DIM}, sum of branch sizes] (1 = allowed)"
    elif branches is not None and mask.dims is not None and (len(mask.dims) != 2 or mask.dims[1] != sum(branches)):
        yield f"input '{ACTION_MASKS}' has shape {mask.describe()}; it must be [{BATCH_DIM}, {sum(branches)}] (the branch sizes {list(branches)} summed)"
    prev = graph.inputs.get("prev_action")
    if prev is not None and branches is not None and prev.dims and prev.dims[-1] != len(branches):
        yield f"input 'prev_action' has shape {prev.describe()}; its last dimension must be the number of branches ({len(branches)})"


def _memory_violations(graph: _Graph, memory: int) -> Iterator[str]:
    """The state tensors of a model with ``memory_size`` = ``memory`` > 0 (the input's dtype
    and batch are checked with every input)."""
    for kind, name, tensors in (("input", RECURRENT_IN, graph.inputs), ("output", RECURRENT_OUT, graph.outputs)):
        tensor = tensors.get(name)
        if tensor is None:
            yield (f"missing {kind} '{name}': '{MEMORY_SIZE}' is {memory}, so Unity feeds the recurrent state to '{RECURRENT_IN}' and reads "
                   f"the next one from '{RECURRENT_OUT}', both [{BATCH_DIM}, 1, {memory}]; export both, or memory_size 0 without memory")  # fmt: skip
            continue
        if tensor.dims is not None and tuple(tensor.dims[1:]) != (1, memory):
            yield f"{kind} '{name}' has shape {tensor.describe()}; it must be [{BATCH_DIM}, 1, {memory}] ('{MEMORY_SIZE}' is {memory})"
        if kind == "output":
            if tensor.elem_type != 1:
                yield f"output '{name}' is {_type_name(tensor.elem_type)}; Unity reads the recurrent state as float32"
            message = _batch_violation("output", tensor)
            if message:
                yield message


def _legacy_violations(graph: _Graph, memory: float | None) -> Iterator[str]:
    """What Unity refuses in a version-2 (ML-Agents 1.x) model."""
    if memory:
        yield f"output '{MEMORY_SIZE}' is {memory:g} in a version-2 model: Unity refuses legacy recurrent models"
    if not any(n in graph.outputs for n in ("action", CONTINUOUS_ACTIONS, DISCRETE_ACTIONS)):
        yield f"no action output: a version-2 model needs 'action' (or {CONTINUOUS_ACTIONS} / {DISCRETE_ACTIONS})"
    for name, tensor in graph.inputs.items():
        known = _OBS_NAME.match(name) or _LEGACY_VISUAL.match(name) or name == "vector_observation" or name in KNOWN_INPUTS
        known = known or name.endswith(("_h", "_c"))  # Barracuda-managed LSTM memories
        if not known:
            yield f"unknown input '{name}': Unity throws at inference ('Unknown tensorProxy expected as input')"
        if tensor.elem_type != 1:
            yield f"input '{name}' is {_type_name(tensor.elem_type)}; Unity feeds every input as float32"
