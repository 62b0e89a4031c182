"""The wire-format explainer agrees with protobuf, byte for byte, both ways (report Q4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from protos import db_service_pb2 as pb
from protos import logging_service_pb2 as log_pb
from protos.explain import (
    LEN,
    WireField,
    build_message,
    decode,
    explain,
    main,
    read_fields,
    read_varint,
)

ROOT = Path(__file__).resolve().parents[2]
REPORT_HEX = "0a0831323131333035331206737265796e79"


def test_the_report_example_prints_its_bytes() -> None:
    # given the report's command line
    command = [sys.executable, "-m", "protos.explain", "UpdateUserRequest"]
    command += ["sid=12113053", "username=sreyny"]

    # when it runs
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)

    # then the hex of the whole message is on a line of its own
    assert REPORT_HEX in result.stdout.splitlines()


def test_the_report_bytes_are_protobufs_own_serialisation() -> None:
    # given the report's message built by protobuf itself
    message = pb.UpdateUserRequest(sid="12113053", username="sreyny")

    # when protobuf serialises it
    data = message.SerializeToString()

    # then it is the report's byte string, and it decodes back to the same message
    assert data.hex() == REPORT_HEX
    assert pb.UpdateUserRequest.FromString(bytes.fromhex(REPORT_HEX)) == message


def test_the_report_example_is_split_into_tag_length_and_payload() -> None:
    # given the report's bytes
    data = bytes.fromhex(REPORT_HEX)

    # when the explainer's own reader splits them
    records = read_fields(data)

    # then each field is (field_number << 3) | wire_type, a length varint and the UTF-8 payload
    assert records == [
        WireField(1, LEN, bytes([(1 << 3) | 2]), b"\x08", b"12113053"),
        WireField(2, LEN, bytes([(2 << 3) | 2]), b"\x06", b"sreyny"),
    ]


def test_the_explanation_annotates_every_part() -> None:
    # given the report's message
    message = build_message("UpdateUserRequest", ["sid=12113053", "username=sreyny"])

    # when it is explained
    text = explain(message)

    # then tags, lengths and payloads are spelled out
    assert "(1 << 3) | 2 = 10" in text
    assert "(2 << 3) | 2 = 18" in text
    assert "08                   8 (payload bytes)" in text
    assert '3132313133303533     "12113053"' in text
    assert "by field: 0a 08 3132313133303533  12 06 737265796e79" in text


EXAMPLES: list[tuple[str, list[str], Message]] = [
    (
        "UpdateUserRequest",
        ["sid=12113053", "username=sreyny"],
        pb.UpdateUserRequest(sid="12113053", username="sreyny"),
    ),
    ("UpdateUserRequest", ["sid=1", "username="], pb.UpdateUserRequest(sid="1", username="")),
    (
        "PlaceOrderRequest",
        ["product_id=1", "quantity=150", "idempotency_key=k-1"],
        pb.PlaceOrderRequest(product_id=1, quantity=150, idempotency_key="k-1"),
    ),
    (
        "GetUsersByIdsRequest",
        ["ids=1,2,300,2147483647"],
        pb.GetUsersByIdsRequest(ids=[1, 2, 300, 2**31 - 1]),
    ),
    (
        "User",
        ["id=7", "role=ROLE_ADMIN", "is_active=true", "created_at=2024-11-30T00:14:43.5Z"],
        pb.User(
            id=7,
            role=pb.ROLE_ADMIN,
            is_active=True,
            created_at=Timestamp(seconds=1732925683, nanos=500_000_000),
        ),
    ),
    (
        "LogRecord",
        ["ts=1732925683.25", "duration_ms=-0.5", "offset=-1", "operation=Mutation.placeOrder"],
        log_pb.LogRecord(
            ts=1732925683.25, duration_ms=-0.5, offset=-1, operation="Mutation.placeOrder"
        ),
    ),
    ("TailLogsRequest", ["from_beginning=true"], log_pb.TailLogsRequest(from_beginning=True)),
]


@pytest.mark.parametrize(
    ("name", "assignments", "expected"), EXAMPLES, ids=[e[0] + ":" + e[1][0] for e in EXAMPLES]
)
def test_messages_round_trip_through_the_explainers_reader(
    name: str, assignments: list[str], expected: Message
) -> None:
    # given a message built from command-line words
    message = build_message(name, assignments)
    data = message.SerializeToString(deterministic=True)

    # when the explainer's own reader decodes its bytes
    decoded = decode(data, message.DESCRIPTOR)

    # then it is the message protobuf built, and protobuf reads the same bytes the same way
    assert message == expected
    assert decoded == expected
    assert type(expected).FromString(data) == decoded
    assert data.hex() in explain(message).splitlines()


def test_a_nested_message_is_explained_in_place() -> None:
    # given an order with a timestamp
    message = build_message("Order", ["id=3", "created_at=2024-11-30T00:00:00Z"])

    # when it is explained
    text = explain(message)

    # then the Timestamp's own fields are annotated under it
    assert "field 9 created_at (Timestamp)" in text
    assert "    field 1 seconds (int64)" in text


@pytest.mark.parametrize(
    ("data", "value", "end"),
    [
        (b"\x00", 0, 1),
        (b"\x01", 1, 1),
        (b"\x96\x01", 150, 2),
        (b"\xff\xff\xff\xff\x0f", 2**32 - 1, 5),
        (b"\xff" * 9 + b"\x01", 2**64 - 1, 10),
    ],
)
def test_varints_are_read_seven_bits_at_a_time(data: bytes, value: int, end: int) -> None:
    # the value, and the position just after its last byte (the one without the high bit)
    assert read_varint(data, 0) == (value, end)


@pytest.mark.parametrize(
    "data",
    [b"\x0a\x05abc", b"\x08", b"\x0b\x00", b"\x00\x00", b"\xff" * 11],
    ids=["short payload", "missing varint", "group wire type", "field zero", "endless varint"],
)
def test_malformed_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        read_fields(data)


@pytest.mark.parametrize(
    "argv",
    [["NoSuchMessage"], ["UpdateUserRequest", "nosuchfield=1"], ["User", "is_active=maybe"]],
)
def test_bad_command_lines_exit_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # when the command line names no message, no field, or a bad value
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_varint_fields_show_their_seven_bit_groups() -> None:
    # given a varint that needs two bytes; when it is explained
    text = explain(pb.PlaceOrderRequest(quantity=150))

    # then the low 7 bits come first, then the next 7

    assert "150  (varint: 0x16 + 0x01 << 7)" in text
