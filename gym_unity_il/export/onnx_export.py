"""``export_onnx``: a trained SB3 / imitation policy as an ONNX model Unity ML-Agents runs.

The policy is wrapped by :mod:`gym_unity_il.export.adapters` (observation conversion,
normalisation, sampling, masks, clipping, the memory of a recurrent policy), traced by
torch's TorchScript-based ONNX exporter (a static graph, opset 9 by default, dynamic batch
dimension named ``batch``), then given the constant outputs Unity reads (float32
initializers through ``Identity``), checked against the contract
(:func:`~gym_unity_il.export.contract.check_model`) and against the torch policy
(:func:`~gym_unity_il.export.parity.parity_check`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gym_unity_il import __version__
from gym_unity_il.errors import ConfigError, ExportParityError, ModelContractError, OutputError
from gym_unity_il.export.adapters import PolicyPart, build_unity_module, memory_size, prepare_parts
from gym_unity_il.export.contract import (
    ACTION_MASKS,
    BATCH_DIM,
    CONTINUOUS_ACTIONS,
    CONTINUOUS_SHAPE,
    DEFAULT_OPSET,
    DETERMINISTIC_CONTINUOUS_ACTIONS,
    DETERMINISTIC_DISCRETE_ACTIONS,
    DISCRETE_ACTIONS,
    DISCRETE_SHAPE,
    MEMORY_SIZE,
    MODEL_VERSION,
    OPSET_RANGE,
    OUTPUT_ORDER,
    RECURRENT_IN,
    RECURRENT_OUT,
    VERSION_NUMBER,
    check_model,
    observation_input_name,
    unity_input_shape,
)
from gym_unity_il.export.loading import load_vec_normalize
from gym_unity_il.export.parity import ParityResult
from gym_unity_il.export.parity import parity_check as check_parity
from gym_unity_il.spec import BehaviorSpec, ImageFormat


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and measured.

    Attributes:
        path: the model file.
        opset: its default-domain opset.
        inputs: input names in order.
        outputs: output names in order.
        image_format: the image format the policy was trained with (baked into the model).
        parity: the parity check's figures, None when it was skipped.
    """

    path: Path
    opset: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    image_format: ImageFormat
    parity: ParityResult | None

    def summary(self) -> str:
        """One human-readable paragraph."""
        lines = [f"wrote {self.path} (opset {self.opset}, image format {self.image_format})",
                 f"  inputs   {', '.join(self.inputs)}", f"  outputs  {', '.join(self.outputs)}"]  # fmt: skip
        if self.parity is None:
            lines.append("  parity   not checked")
        else:
            p = self.parity
            figures = []
            if p.max_abs_diff is not None:
                figures.append(f"max abs difference {p.max_abs_diff:.3g} (continuous)")
            if p.discrete_mismatches is not None:
                figures.append(f"{p.discrete_mismatches} discrete mismatches")
            what = f"{p.batch} observations"
            if p.memory_max_abs_diff is not None:
                figures.append(f"max abs difference {p.memory_max_abs_diff:.3g} (memory)")
                what = f"{p.batch} agents over {p.steps} steps, memory carried, {p.episode_starts} episode starts mid-sequence"
            lines.append(f"  parity   onnxruntime vs torch on {what}: {', '.join(figures)}")
        return "\n".join(lines)


@contextlib.contextmanager
def _export_mode() -> Iterator[None]:
    """No distribution argument validation, no autograd, no exporter deprecation noise."""
    import torch

    previous = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
            warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
            yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


def _load_vec_normalize(vec_normalize: Any) -> Any:
    if vec_normalize is None or not isinstance(vec_normalize, (str, os.PathLike)):
        return vec_normalize
    return load_vec_normalize(vec_normalize)


@contextlib.contextmanager
def _cpu_eval(parts: list[PolicyPart]) -> Iterator[list[PolicyPart]]:
    """The parts with their modules on the CPU in eval mode; each module's training flag is
    restored afterwards. Modules on another device are copied, never moved."""
    out, flags = [], []
    for p in parts:
        module = p.resolved.module
        if any(t.device.type != "cpu" for t in module.parameters()):
            module = copy.deepcopy(module).to("cpu")
            p = dataclasses.replace(p, resolved=dataclasses.replace(p.resolved, module=module))
        flags.append((module, module.training))
        module.set_training_mode(False)
        out.append(p)
    try:
        yield out
    finally:
        for module, training in flags:
            module.set_training_mode(training)


def _trace(parts: list[PolicyPart], spec: BehaviorSpec, opset: int) -> Any:
    """The ONNX model of the action outputs (no constants yet)."""
    import onnx
    import torch

    module = build_unity_module(parts, spec).eval()
    act = spec.action_spec
    batch = 2
    args = [torch.zeros((batch, *unity_input_shape(o)), dtype=torch.float32) for o in spec.observation_specs]
    input_names = [observation_input_name(i) for i in range(len(args))]
    if act.discrete_branches:
        args.append(torch.ones((batch, sum(act.discrete_branches)), dtype=torch.float32))
        input_names.append(ACTION_MASKS)
    if module.memory_size:
        args.append(torch.zeros((batch, 1, module.memory_size), dtype=torch.float32))
        input_names.append(RECURRENT_IN)
    output_names = []
    if act.continuous_size:
        output_names += [CONTINUOUS_ACTIONS, DETERMINISTIC_CONTINUOUS_ACTIONS]
    if act.discrete_branches:
        output_names += [DISCRETE_ACTIONS, DETERMINISTIC_DISCRETE_ACTIONS]
    if module.memory_size:
        output_names.append(RECURRENT_OUT)
    buffer = io.BytesIO()
    with _export_mode():
        # the LSTM's initial state is an input (recurrent_in), which is what this warning asks for; its own checks of static sizes trace as constants
        warnings.filterwarnings("ignore", message=r".*batch_size other than 1.*LSTM.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.modules\.rnn")
        torch.onnx.export(
            module,
            tuple(args),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes={name: {0: BATCH_DIM} for name in input_names + output_names},
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def _add_constants(model: Any, spec: BehaviorSpec, memory: int) -> None:
    """Adds the constant outputs as float32 initializers routed through Identity
    (``memory_size`` = ``memory``), and puts the outputs in the order ML-Agents' exporter
    writes them."""
    from onnx import TensorProto, helper, numpy_helper

    act = spec.action_spec
    constants: dict[str, np.ndarray] = {VERSION_NUMBER: np.array([MODEL_VERSION], np.float32), MEMORY_SIZE: np.array([memory], np.float32)}
    if act.continuous_size:
        constants[CONTINUOUS_SHAPE] = np.array([act.continuous_size], np.float32)
    if act.discrete_branches:
        constants[DISCRETE_SHAPE] = np.array([act.discrete_branches], np.float32)
    graph = model.graph
    taken = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
    for name, value in constants.items():
        source = f"{name}_value"
        while source in taken:
            source += "_"
        graph.initializer.append(numpy_helper.from_array(value, name=source))
        graph.node.append(helper.make_node("Identity", [source], [name], name=f"{name}_identity"))
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    outputs = sorted(graph.output, key=lambda o: OUTPUT_ORDER.index(o.name))
    ordered = [copy.deepcopy(o) for o in outputs]
    del graph.output[:]
    graph.output.extend(ordered)


def _drop_outputs(model: Any, names: set[str]) -> None:
    """Removes outputs and every node and initializer only they needed."""
    graph = model.graph
    kept = [copy.deepcopy(o) for o in graph.output if o.name not in names]
    del graph.output[:]
    graph.output.extend(kept)
    needed = {o.name for o in graph.output}
    nodes = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            nodes.append(copy.deepcopy(node))
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(nodes))
    initializers = [copy.deepcopy(t) for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def export_onnx(
    policy: Any,
    path: str | os.PathLike[str],
    behavior_spec: BehaviorSpec,
    *,
    image_format: ImageFormat | None = None,
    vec_normalize: Any = None,
    deterministic_too: bool = True,
    parity_check: bool = True,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
    parity_batch: int = 32,
    parity_steps: int = 50,
    seed: int = 0,
) -> ExportReport:
    """Writes ``policy`` as an ONNX model in Unity ML-Agents' model contract.

    The model takes Unity's inputs (``obs_<i>`` in the behavior's sensor order, images NCHW
    in [0, 1]; ``action_masks`` for discrete actions, 1 = allowed; ``recurrent_in``
    ``[batch, 1, memory_size]`` for a recurrent policy) and returns what Unity applies as
    is: continuous actions clipped to [-1, 1], discrete branch indices of the masked logits
    (one Multinomial draw per branch, and the ArgMax for deterministic inference), the new
    state ``recurrent_out`` of a recurrent policy, plus the constants ``version_number``
    (3), ``memory_size`` (``2 * hidden`` of the LSTM, 0 without memory) and the action shapes.

    Args:
        policy: an SB3 algorithm or policy (PPO, A2C, SAC, TD3, DDPG, DQN; MLP, CNN or
            MultiInput), sb3-contrib's RecurrentPPO (one LSTM layer; its memory is (h, c)
            packed as ML-Agents packs it), an ``imitation`` BC (or ``bc.policy``); for a
            hybrid behavior, ``{"continuous": policy_c, "discrete": policy_d}``, two
            feed-forward policies trained on the two action parts; or what :func:`~gym_unity_il.export.saved.load_policy` returns,
            whose saved observation layout says how it takes the sensors. Otherwise its
            observation space must be the env's for this behavior (Dict keys = sensor names;
            images HWC, or CHW after VecTransposeImage), or every sensor packed into one vector.
        path: the ``.onnx`` file to write. Missing folders of this path are created. A
            failed export leaves no file there (and an older file in place).
        behavior_spec: the behavior the model is for (``env.unwrapped.behavior_spec``, a
            ``.demo`` file's spec, a built-in scene's spec).
        image_format: the image format the policy was trained with; None: the one it was
            saved with, else inferred from the policy's image dtype (uint8: ``hwc_uint8``,
            float: ``chw_float``).
        vec_normalize: an SB3 ``VecNormalize`` (or the path of one saved with ``.save``)
            whose observation statistics are baked in.
        deterministic_too: also write the ``deterministic_*`` outputs (Unity's
            *Deterministic Inference*).
        parity_check: compare onnxruntime with the torch policy after writing.
        opset: default-domain opset, within Unity's range (7 to 15).
        tolerance: largest accepted max abs difference in the parity check.
        parity_batch: observations compared in the parity check (for a recurrent policy:
            agents, each stepped through ``parity_steps`` observations).
        parity_steps: steps of the parity check's sequence for a recurrent policy, the
            memory carried from step to step (feed-forward policies: one batch).
        seed: seed of the parity check's observations.

    Returns:
        An :class:`ExportReport` with the parity figures.

    Raises:
        ConfigError: an unsupported policy or option.
        SpecMismatchError: the policy's spaces do not fit the behavior spec.
        ModelContractError: the model breaks the contract (a bug).
        ExportParityError: onnxruntime and the torch policy disagree beyond ``tolerance``.
        OutputError: the file cannot be written (full disk, read-only folder, ...), naming
            it, the reason and the fix; nothing is left there, an older file stays in place.
    """
    low, high = OPSET_RANGE
    if not low <= opset <= high:
        raise ConfigError(f"opset={opset} is outside the range Unity's inference engines import ({low} to {high}); use {DEFAULT_OPSET}")
    if parity_batch < 1:
        raise ConfigError(f"parity_batch must be at least 1, got {parity_batch}")
    if parity_steps < 1:
        raise ConfigError(f"parity_steps must be at least 1, got {parity_steps}")
    vec_normalize = _load_vec_normalize(vec_normalize)
    prepared = prepare_parts(policy, behavior_spec, image_format=image_format, vec_normalize=vec_normalize)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError.from_os_error(path, exc, f"Its folder {path.parent} could not be created.") from None
    draft = path.with_name(f".{path.name}.partial")  # replaces ``path`` only once every check passed
    parity = None
    try:
        with _cpu_eval(prepared) as parts:
            model = _trace(parts, behavior_spec, opset)
            _add_constants(model, behavior_spec, memory_size(parts))
            model.producer_name = "gym_unity_il"
            model.producer_version = __version__
            model.doc_string = f"Policy for {behavior_spec.describe()}"
            _save(model, draft, path, behavior_spec)
            if parity_check:
                try:
                    parity = check_parity(draft, parts, behavior_spec, vec_normalize=vec_normalize, tolerance=tolerance, batch=parity_batch,
                                          steps=parity_steps, seed=seed)  # fmt: skip
                except ExportParityError as exc:
                    raise ExportParityError(f"{path} was not written: {exc}") from None
        if not deterministic_too:
            _drop_outputs(model, {DETERMINISTIC_CONTINUOUS_ACTIONS, DETERMINISTIC_DISCRETE_ACTIONS})
            _save(model, draft, path, behavior_spec)
        try:
            os.replace(draft, path)
        except OSError as exc:
            raise OutputError.from_os_error(path, exc, _NOT_WRITTEN) from None
    finally:
        with contextlib.suppress(OSError):  # nothing to remove (a read-only folder refuses even that)
            draft.unlink(missing_ok=True)
    return ExportReport(
        path=path,
        opset=opset,
        inputs=tuple(i.name for i in model.graph.input),
        outputs=tuple(o.name for o in model.graph.output),
        image_format=prepared[0].layout.image_format,
        parity=parity,
    )


_NOT_WRITTEN = "The model was not written (an older file there stays as it was)."


def _save(model: Any, draft: Path, path: Path, spec: BehaviorSpec) -> None:
    """Writes ``model`` to ``draft`` (the file that becomes ``path``) and checks it."""
    import onnx

    try:
        onnx.save(model, str(draft))
    except OSError as exc:
        raise OutputError.from_os_error(path, exc, _NOT_WRITTEN) from None
    violations = check_model(draft, spec)
    if violations:
        raise ModelContractError("the exported model breaks Unity's model contract:\n  - " + "\n  - ".join(violations))
