"""Regenerates gym_unity_il/proto/*_pb2.py(i) from the .proto files in this folder.

Usage: ``python protos/generate.py [OUT_DIR]`` (default: ``gym_unity_il/proto``).

Requires ``grpcio-tools`` at the version pinned in ``constraints.txt``; the generated code
is committed and a test checks that this script reproduces it byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_DIR.parent / "gym_unity_il" / "proto"


def generate(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Compiles every ``*.proto`` in this folder into ``out_dir``; returns the files written."""
    from grpc_tools import protoc  # imported here: only needed to regenerate

    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(p.name for p in PROTO_DIR.glob("*.proto"))
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", *sources]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed for {sources}")
    return sorted(out_dir.glob("*_pb2.py*"))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT):
        print(path)
