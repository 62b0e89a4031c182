"""Regenerate the Python code for the .proto files in this folder.

    python -m protos.generate            # rewrite protos/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py(i)
    python -m protos.generate OUT_DIR    # write them under OUT_DIR/protos/ instead (drift test)

Paths are given relative to the repository root so the generated modules import each other as
`from protos import …_pb2`. The `*_pb2_grpc.pyi` stubs come from mypy-protobuf's plugin: they
type each RPC's request and reply, so mypy checks every gRPC call.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_FILES = ("protos/db_service.proto", "protos/logging_service.proto")


def generate(out_dir: Path = ROOT) -> None:
    """Run protoc (from grpcio-tools) for every proto file, writing under `out_dir`."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        # The plugin is installed beside the interpreter (the venv's bin/), not always on PATH.
        f"--plugin=protoc-gen-mypy_grpc={Path(sys.executable).parent / 'protoc-gen-mypy_grpc'}",
        f"--mypy_grpc_out={out_dir}",
        *PROTO_FILES,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed; see the messages above")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
