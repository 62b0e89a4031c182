"""The committed typed gRPC stubs (*_pb2_grpc.pyi) are exactly what `make protos` produces."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.generate import ROOT, generate

STUBS = ["db_service_pb2_grpc.pyi", "logging_service_pb2_grpc.pyi"]


@pytest.mark.parametrize("name", STUBS)
def test_typed_grpc_stubs_have_not_drifted(tmp_path: Path, name: str) -> None:
    generate(tmp_path)

    fresh = (tmp_path / "protos" / name).read_text()
    committed = (ROOT / "protos" / name).read_text()

    assert fresh == committed, f"protos/{name} is stale: run `make protos` and commit the result"
