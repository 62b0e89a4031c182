"""The domain error codes on the wire: what db_service writes is what the gateway reads."""

from __future__ import annotations

import pytest

from protos import db_service_pb2 as pb
from protos.errors import ErrorCode, ErrorMetadata, error_metadata, read_error_metadata


def test_every_proto_error_code_has_a_member_and_no_more() -> None:
    # given the proto's enum, less its unset value
    in_proto = {v.name for v in pb.ErrorCode.DESCRIPTOR.values if v.number != 0}

    # then the Python enum names exactly those, each valued by its wire name
    assert {code.value for code in ErrorCode} == in_proto
    assert all(code.name == code.value for code in ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_a_code_written_is_the_code_read(code: ErrorCode) -> None:
    assert read_error_metadata(error_metadata(code)) == ErrorMetadata(code, None)


def test_retry_after_travels_with_the_code() -> None:
    sent = error_metadata(ErrorCode.RATE_LIMITED, retry_after_s=7)

    assert read_error_metadata(sent) == ErrorMetadata(ErrorCode.RATE_LIMITED, 7)


def test_no_metadata_means_no_code() -> None:
    assert read_error_metadata(None) == ErrorMetadata(None, None)
