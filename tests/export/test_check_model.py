"""The contract checker accepts a hand-built model that follows Unity's contract and names
each violation of deliberately broken ones (built with onnx.helper)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gym_unity_il.cli import main
from gym_unity_il.export import check_model
from gym_unity_il.spec import ActionSpec, BehaviorSpec, ObservationSpec

#: A camera (HWC 4 x 4 x 3, fed to models as NCHW), a vector of 2, continuous 2 + discrete [3, 2].
SPEC = BehaviorSpec(
    "Toy?team=0",
    (ObservationSpec((4, 4, 3), name="Camera"), ObservationSpec((2,), name="Vector")),
    ActionSpec(2, (3, 2)),
)


def build(
    *,
    version: np.ndarray | None = np.array([3.0], np.float32),
    memory: np.ndarray | None = np.array([0.0], np.float32),
    branches: list[int] = [3, 2],  # noqa: B006 - read only
    image_shape: list[int | str] = ["batch", 3, 4, 4],  # noqa: B006
    vector_name: str = "obs_1",
    vector_batch: int | str = "batch",
    with_masks: bool = True,
    opset: int = 9,
    computed_version: bool = False,
) -> onnx.ModelProto:
    """A small model in Unity's contract (by default), with one thing changed at a time."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(50, 2)).astype(np.float32), "w_continuous"),
        numpy_helper.from_array(rng.normal(size=(50, 5)).astype(np.float32), "w_discrete"),
    ]
    nodes = [
        helper.make_node("Flatten", ["obs_0"], ["image_flat"], axis=1),
        helper.make_node("Concat", ["image_flat", vector_name], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "w_continuous"], ["deterministic_continuous_actions"]),
        helper.make_node("Identity", ["deterministic_continuous_actions"], ["continuous_actions"]),
        helper.make_node("MatMul", ["features", "w_discrete"], ["logits"]),
    ]
    if with_masks:
        nodes.append(helper.make_node("Mul", ["logits", "action_masks"], ["masked"]))
    else:
        nodes.append(helper.make_node("Identity", ["logits"], ["masked"]))
    nodes += [
        helper.make_node("Split", ["masked"], ["branch_0", "branch_1"], axis=1, split=[3, 2]),
        helper.make_node("ArgMax", ["branch_0"], ["pick_0"], axis=1, keepdims=1),
        helper.make_node("ArgMax", ["branch_1"], ["pick_1"], axis=1, keepdims=1),
        helper.make_node("Concat", ["pick_0", "pick_1"], ["deterministic_discrete_actions"], axis=1),
        helper.make_node("Identity", ["deterministic_discrete_actions"], ["discrete_actions"]),
    ]
    outputs = [
        helper.make_tensor_value_info("continuous_actions", TensorProto.FLOAT, ["batch", 2]),
        helper.make_tensor_value_info("deterministic_continuous_actions", TensorProto.FLOAT, ["batch", 2]),
        helper.make_tensor_value_info("discrete_actions", TensorProto.INT64, ["batch", 2]),
        helper.make_tensor_value_info("deterministic_discrete_actions", TensorProto.INT64, ["batch", 2]),
    ]
    constants = {
        "version_number": version,
        "memory_size": memory,
        "continuous_action_output_shape": np.array([2.0], np.float32),
        "discrete_action_output_shape": np.array([branches], np.float32),
    }
    for name, value in constants.items():
        if value is None:
            continue
        if name == "version_number" and computed_version:  # 1.5 * 2 computed at run time, not a constant
            inits.append(numpy_helper.from_array(np.array([1.5], np.float32), "half_version"))
            nodes.append(helper.make_node("Add", ["half_version", "half_version"], [name]))
        else:
            inits.append(numpy_helper.from_array(value, f"{name}_value"))
            nodes.append(helper.make_node("Identity", [f"{name}_value"], [name]))
        outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
    inputs = [
        helper.make_tensor_value_info("obs_0", TensorProto.FLOAT, image_shape),
        helper.make_tensor_value_info(vector_name, TensorProto.FLOAT, [vector_batch, 2]),
    ]
    if with_masks:
        inputs.append(helper.make_tensor_value_info("action_masks", TensorProto.FLOAT, ["batch", 5]))
    graph = helper.make_graph(nodes, "toy", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


def test_a_model_in_the_contract_passes_and_runs(tmp_path: Path) -> None:
    model = build()
    path = tmp_path / "toy.onnx"
    onnx.save(model, path)
    assert check_model(path) == []
    assert check_model(path, SPEC) == []
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {
        "obs_0": np.zeros((3, 3, 4, 4), np.float32), "obs_1": np.ones((3, 2), np.float32), "action_masks": np.ones((3, 5), np.float32),
    })))  # fmt: skip
    assert out["version_number"].tolist() == [3.0]
    assert out["discrete_actions"].shape == (3, 2)


CASES: dict[str, tuple[Callable[[], onnx.ModelProto], str]] = {
    "wrong version": (lambda: build(version=np.array([4.0], np.float32)), "output 'version_number' is 4; Unity accepts 2"),
    "missing version": (lambda: build(version=None), "missing output 'version_number'"),
    "missing memory_size": (lambda: build(memory=None), "missing output 'memory_size'"),
    "int constant": (lambda: build(version=np.array([3], np.int64)), "output 'version_number' is a constant of type int64; Unity reads constant outputs as float32"),
    "computed constant": (lambda: build(computed_version=True), "output 'version_number' is not a constant (it is computed by a Add node)"),
    "wrong input name": (lambda: build(vector_name="vector_observation_1"), "unknown input 'vector_observation_1'"),
    "NHWC image": (lambda: build(image_shape=["batch", 4, 4, 3]), "input 'obs_0' ('Camera') is NHWC [batch, 4, 4, 3]; Unity feeds images as NCHW [batch, 3, 4, 4]"),
    "missing action_masks": (lambda: build(with_masks=False), "missing input 'action_masks'"),
    "wrong branch sizes": (lambda: build(branches=[4, 1]), "output 'discrete_action_output_shape' lists branch sizes [4, 1]; the behavior has [3, 2]"),
    "static batch": (lambda: build(vector_batch=1), "input 'obs_1' has a fixed batch dimension of 1"),
    "opset too new": (lambda: build(opset=17), "opset 17 is outside the range Unity's inference engines import (7 to 15)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_violation_is_named(case: str) -> None:
    make, message = CASES[case]
    violations = check_model(make(), SPEC)
    assert any(message in v for v in violations), violations


def test_spec_free_checks_and_spec_checks_differ() -> None:
    """Without a spec the branch sizes cannot be wrong; with one they are."""
    model = build(branches=[4, 1])
    assert check_model(model) == []
    assert check_model(model, SPEC) != []


def test_recurrent_models_need_their_state_tensors() -> None:
    violations = check_model(build(memory=np.array([8.0], np.float32)), SPEC)
    assert any("missing input 'recurrent_in'" in v for v in violations), violations
    assert any("missing output 'recurrent_out'" in v for v in violations), violations
    legacy = check_model(build(version=np.array([2.0], np.float32), memory=np.array([8.0], np.float32)))
    assert any("Unity refuses legacy recurrent models" in v for v in legacy), legacy


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    violations = check_model(path)
    assert len(violations) == 1 and "not an ONNX model" in violations[0]
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        check_model(tmp_path / "missing.onnx")


def test_check_model_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(build(), good)
    onnx.save(build(with_masks=False, vector_batch=1), bad)
    spec_json = '{"observations": [[3, 4, 4], [2]], "continuous": 2, "discrete": [3, 2]}'
    assert main(["check-model", str(good), "--behavior-spec", spec_json]) == 0
    assert "follows Unity's model contract" in capsys.readouterr().out
    assert main(["check-model", str(bad), "--behavior-spec", spec_json]) == 1
    out = capsys.readouterr().out
    assert "violation(s) of Unity's model contract" in out
    assert "missing input 'action_masks'" in out and "input 'obs_1' has a fixed batch dimension of 1" in out
    assert main(["check-model", str(good), "--behavior-spec", '{"observations": [[3, 4, 4], [2]], "discrete": [5]}']) == 1
    assert "the behavior has no continuous actions" in capsys.readouterr().out
    assert main(["check-model", str(good), "--behavior-spec", "{not json"]) == 2
    assert "--behavior-spec is not valid JSON" in capsys.readouterr().err
