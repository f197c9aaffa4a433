"""Exporting trained policies as ONNX models in Unity ML-Agents' model contract."""
