"""The committed generated code is exactly what `make protos` produces now."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.generate import ROOT, generate

GENERATED = sorted(
    p.name
    for p in (ROOT / "protos").iterdir()
    if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
)


def test_every_proto_has_its_three_generated_files() -> None:
    assert (
        sorted(
            f"{stem}{suffix}"
            for stem in ("db_service", "logging_service")
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
        )
        == GENERATED
    )


@pytest.mark.parametrize("name", GENERATED)
def test_generated_code_has_not_drifted(tmp_path: Path, name: str) -> None:
    generate(tmp_path)

    fresh = (tmp_path / "protos" / name).read_text()
    committed = (ROOT / "protos" / name).read_text()

    assert fresh == committed, f"protos/{name} is stale: run `make protos` and commit the result"


def test_update_user_request_keeps_the_report_field_numbers() -> None:
    from protos import db_service_pb2 as pb

    fields = pb.UpdateUserRequest.DESCRIPTOR.fields_by_name
    assert (fields["sid"].number, fields["username"].number) == (1, 2)
