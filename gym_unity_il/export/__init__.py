"""Exporting trained policies as ONNX models in Unity ML-Agents' model contract.

::

    from gym_unity_il.export import export_onnx, check_model

    report = export_onnx(model, "MyBehavior.onnx", env.unwrapped.behavior_spec)
    print(report.summary())                       # parity figures: onnxruntime vs torch
    assert check_model("MyBehavior.onnx") == []   # any ONNX file, any exporter

Needs the ``export`` extra (onnx, onnxruntime, onnxscript). What a training run leaves behind
and how it is read back (run folder, saved model, observation layout, the policy loader:
:mod:`.saved`, :mod:`.layout`) lives here too, below training, which writes through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gym_unity_il.errors import ExportParityError, ModelContractError

if TYPE_CHECKING:  # the names as type checkers see them
    from gym_unity_il.export.contract import DEFAULT_OPSET, MODEL_VERSION, OPSET_RANGE, check_model, unity_input_shape
    from gym_unity_il.export.layout import ObservationLayout, SensorLayout
    from gym_unity_il.export.loading import behavior_spec_from_demo, behavior_spec_from_json, behavior_spec_from_scene, load_vec_normalize
    from gym_unity_il.export.onnx_export import ExportReport, export_onnx
    from gym_unity_il.export.parity import ParityResult, parity_check
    from gym_unity_il.export.runtime import OnnxPolicy
    from gym_unity_il.export.saved import RunFiles, TrainedPolicy, load_policy, load_policy_file, read_run_dir, save_model

#: Public name -> the module defining it. Loaded on first use, so that checking a model
#: (onnx only) does not import torch.
_EXPORTS = {
    "DEFAULT_OPSET": "contract",
    "MODEL_VERSION": "contract",
    "OPSET_RANGE": "contract",
    "check_model": "contract",
    "unity_input_shape": "contract",
    "ObservationLayout": "layout",
    "SensorLayout": "layout",
    "behavior_spec_from_demo": "loading",
    "behavior_spec_from_json": "loading",
    "behavior_spec_from_scene": "loading",
    "load_vec_normalize": "loading",
    "RunFiles": "saved",
    "TrainedPolicy": "saved",
    "load_policy": "saved",
    "load_policy_file": "saved",
    "read_run_dir": "saved",
    "save_model": "saved",
    "ExportReport": "onnx_export",
    "export_onnx": "onnx_export",
    "ParityResult": "parity",
    "parity_check": "parity",
    "OnnxPolicy": "runtime",
}

__all__ = sorted([*_EXPORTS, "ExportParityError", "ModelContractError"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
