"""The package version, in a module of its own that imports nothing.

Every layer may read it (the link sends it in the handshake, export writes it into ONNX
models) without importing the package root; ``setup.cfg`` reads it from here.
"""

__version__ = "0.1.0"
