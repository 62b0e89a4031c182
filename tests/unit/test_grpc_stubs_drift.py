"""The committed typed gRPC stubs (*_pb2_grpc.pyi) are exactly what `make protos` produces."""

from __future__ import annotations

from pathlib import Path

from protos.generate import ROOT, generate


def test_typed_grpc_stubs_have_not_drifted(tmp_path: Path) -> None:
    # given the stubs protoc and mypy-protobuf write now
    generate(tmp_path)
    stubs = sorted(p.name for p in (tmp_path / "protos").glob("*_pb2_grpc.pyi"))

    # then each is committed, as written
    assert stubs == ["db_service_pb2_grpc.pyi", "logging_service_pb2_grpc.pyi"]
    stale = [
        name
        for name in stubs
        if (tmp_path / "protos" / name).read_text() != (ROOT / "protos" / name).read_text()
    ]
    assert not stale, f"stale: {stale}; run `make protos` and commit the result"
