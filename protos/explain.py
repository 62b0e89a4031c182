"""Show how a protobuf message is laid out on the wire, byte by byte (the report's Q4).

    python -m protos.explain UpdateUserRequest sid=12113053 username=sreyny

prints the serialised bytes in hex, then each field's parts: the tag, which is the varint of
(field_number << 3) | wire_type; for length-delimited fields the length varint; and the payload.
protobuf's own `SerializeToString` makes the bytes; the annotation comes from a small wire-format
reader written here, so the explanation is derived from the bytes, not from the message.
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from protos import db_service_pb2, logging_service_pb2

# Wire types of the protobuf encoding (groups, 3 and 4, are deprecated and not produced by proto3).
VARINT, I64, LEN, I32 = 0, 1, 2, 5
WIRE_TYPE_NAMES = {VARINT: "VARINT", I64: "I64", LEN: "LEN", I32: "I32"}

_F = FieldDescriptor
_TYPE_NAMES = {
    _F.TYPE_DOUBLE: "double",
    _F.TYPE_FLOAT: "float",
    _F.TYPE_INT64: "int64",
    _F.TYPE_UINT64: "uint64",
    _F.TYPE_INT32: "int32",
    _F.TYPE_FIXED64: "fixed64",
    _F.TYPE_FIXED32: "fixed32",
    _F.TYPE_BOOL: "bool",
    _F.TYPE_STRING: "string",
    _F.TYPE_BYTES: "bytes",
    _F.TYPE_UINT32: "uint32",
    _F.TYPE_SFIXED32: "sfixed32",
    _F.TYPE_SFIXED64: "sfixed64",
    _F.TYPE_SINT32: "sint32",
    _F.TYPE_SINT64: "sint64",
}
_INTEGER_TYPES = {
    _F.TYPE_INT64,
    _F.TYPE_UINT64,
    _F.TYPE_INT32,
    _F.TYPE_UINT32,
    _F.TYPE_SINT32,
    _F.TYPE_SINT64,
    _F.TYPE_FIXED32,
    _F.TYPE_FIXED64,
    _F.TYPE_SFIXED32,
    _F.TYPE_SFIXED64,
}
_FIXED_FORMATS = {
    _F.TYPE_DOUBLE: "<d",
    _F.TYPE_FLOAT: "<f",
    _F.TYPE_FIXED64: "<Q",
    _F.TYPE_FIXED32: "<I",
    _F.TYPE_SFIXED64: "<q",
    _F.TYPE_SFIXED32: "<i",
}
_MODULES = (db_service_pb2, logging_service_pb2)


@dataclass(frozen=True, slots=True)
class WireField:
    """One field record as it sits in the bytes."""

    number: int
    wire_type: int
    tag: bytes
    length: bytes  # the length varint; empty unless wire_type is LEN
    payload: bytes  # the value's bytes (for VARINT, the varint itself)


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, f"{field.name} is not a message field"
    return field.message_type


def _enum_type(field: FieldDescriptor) -> EnumDescriptor:
    assert field.enum_type is not None, f"{field.name} is not an enum field"
    return field.enum_type


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint starting at `pos` (7 bits a byte, low group first) and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 64:
            raise ValueError("varint longer than 10 bytes")


def read_fields(data: bytes) -> list[WireField]:
    """Split serialised bytes into field records, without knowing the message type."""
    fields: list[WireField] = []
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 0x7
        tag = data[start:pos]
        length = b""
        if wire_type == VARINT:
            _, end = read_varint(data, pos)
        elif wire_type == I64:
            end = pos + 8
        elif wire_type == I32:
            end = pos + 4
        elif wire_type == LEN:
            size, after = read_varint(data, pos)
            length, pos, end = data[pos:after], after, after + size
        else:
            raise ValueError(f"unsupported wire type {wire_type} at byte {start}")
        if number == 0 or end > len(data):
            raise ValueError(f"malformed field at byte {start}")
        fields.append(WireField(number, wire_type, tag, length, data[pos:end]))
        pos = end
    return fields


def _varints(payload: bytes) -> list[int]:
    values, pos = [], 0
    while pos < len(payload):
        value, pos = read_varint(payload, pos)
        values.append(value)
    return values


def _scalar(field: FieldDescriptor, raw: bytes | int) -> Any:
    """One scalar value of `field` from its payload bytes (or its varint, already read)."""
    if isinstance(raw, int):
        if field.type in (_F.TYPE_SINT32, _F.TYPE_SINT64):
            return (raw >> 1) ^ -(raw & 1)  # zigzag
        if field.type == _F.TYPE_BOOL:
            return bool(raw)
        if field.type in (_F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_ENUM) and raw >= 1 << 63:
            return raw - (1 << 64)  # negative numbers are sign-extended to 64 bits
        return raw
    if field.type == _F.TYPE_STRING:
        return raw.decode("utf-8")
    if field.type == _F.TYPE_BYTES:
        return raw
    return struct.unpack(_FIXED_FORMATS[field.type], raw)[0]


def field_values(field: FieldDescriptor, record: WireField) -> list[Any]:
    """The values a record carries: one, or several for a packed repeated field."""
    if field.type == _F.TYPE_MESSAGE:
        return [decode(record.payload, _message_type(field))]
    if record.wire_type == VARINT:
        return [_scalar(field, read_varint(record.payload, 0)[0])]
    if record.wire_type == LEN and field.type not in (_F.TYPE_STRING, _F.TYPE_BYTES):
        if field.type in _FIXED_FORMATS:
            size = struct.calcsize(_FIXED_FORMATS[field.type])
            chunks = [record.payload[i : i + size] for i in range(0, len(record.payload), size)]
            return [_scalar(field, chunk) for chunk in chunks]
        return [_scalar(field, value) for value in _varints(record.payload)]
    return [_scalar(field, record.payload)]


def decode(data: bytes, descriptor: Descriptor) -> Message:
    """Rebuild a message of `descriptor`'s type from bytes, with this module's reader only."""
    message = message_class(descriptor.name)()
    for record in read_fields(data):
        field = descriptor.fields_by_number.get(record.number)
        if field is None:
            continue  # an unknown field: protobuf keeps it, this explainer skips it
        for value in field_values(field, record):
            target = getattr(message, field.name)
            if field.type == _F.TYPE_MESSAGE:
                (target.add() if field.is_repeated else target).MergeFrom(value)
            elif field.is_repeated:
                target.append(value)
            else:
                setattr(message, field.name, value)
    return message


def message_class(name: str) -> type[Message]:
    """A message class of our protos (or Timestamp) by its short name."""
    if name == "Timestamp":
        return Timestamp
    for module in _MODULES:
        if name in module.DESCRIPTOR.message_types_by_name:
            found: type[Message] = getattr(module, name)
            return found
    known = sorted(n for m in _MODULES for n in m.DESCRIPTOR.message_types_by_name)
    raise KeyError(f"no message {name!r}; known: {', '.join(known)}")


def _parse_value(field: FieldDescriptor, text: str) -> Any:
    if field.type == _F.TYPE_STRING:
        return text
    if field.type == _F.TYPE_BYTES:
        return text.encode()
    if field.type == _F.TYPE_BOOL:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{field.name} must be true or false")
        return text.lower() in ("true", "1")
    if field.type in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return float(text)
    if field.type == _F.TYPE_ENUM:
        by_name = _enum_type(field).values_by_name.get(text)
        return by_name.number if by_name is not None else int(text, 0)
    if (
        field.type == _F.TYPE_MESSAGE
        and _message_type(field).full_name == Timestamp.DESCRIPTOR.full_name
    ):
        stamp = Timestamp()
        stamp.FromJsonString(text)
        return stamp
    if field.type in _INTEGER_TYPES:
        return int(text, 0)
    raise ValueError(f"{field.name}: only scalar fields and Timestamps can be set here")


def build_message(name: str, assignments: Sequence[str]) -> Message:
    """A message from `field=value` words; a repeated field takes comma-separated values."""
    message = message_class(name)()
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        field = descriptor.fields_by_name.get(key)
        if not sep or field is None:
            raise ValueError(f"{assignment!r} is not FIELD=VALUE with a field of {name}")
        if field.is_repeated:
            values = [_parse_value(field, part) for part in text.split(",") if part]
            target = getattr(message, key)
            for value in values:
                if field.type == _F.TYPE_MESSAGE:
                    target.add().CopyFrom(value)
                else:
                    target.append(value)
        elif field.type == _F.TYPE_MESSAGE:
            getattr(message, key).CopyFrom(_parse_value(field, text))
        else:
            setattr(message, key, _parse_value(field, text))
    return message


def _type_name(field: FieldDescriptor) -> str:
    if field.type == _F.TYPE_MESSAGE:
        return _message_type(field).name
    if field.type == _F.TYPE_ENUM:
        return _enum_type(field).name
    return _TYPE_NAMES[field.type]


def _describe(field: FieldDescriptor | None, record: WireField) -> str:
    if field is None:
        return f"{len(record.payload)} bytes of an unknown field"
    values = field_values(field, record)
    if field.type == _F.TYPE_MESSAGE:
        return f"a {_message_type(field).name} message, explained below"
    if field.type == _F.TYPE_ENUM:
        names = [_enum_type(field).values_by_number.get(v) for v in values]
        return ", ".join(
            f"{n.name} = {v}" if n else str(v) for n, v in zip(names, values, strict=True)
        )
    if field.type == _F.TYPE_STRING:
        return ", ".join(f'"{v}" (UTF-8)' for v in values)
    if record.wire_type == VARINT and len(record.payload) > 1:
        # Each byte carries 7 bits, lowest group first; the high bit says "more bytes follow".
        groups = " + ".join(
            f"0x{byte & 0x7F:02x} << {7 * i}" if i else f"0x{byte & 0x7F:02x}"
            for i, byte in enumerate(record.payload)
        )
        return f"{values[0]!r}  (varint: {groups})"
    return ", ".join(repr(v) for v in values)


def explain_lines(data: bytes, descriptor: Descriptor, indent: str = "") -> list[str]:
    """The annotated field records of `data`, nested messages explained in place."""
    lines: list[str] = []
    for record in read_fields(data):
        field = descriptor.fields_by_number.get(record.number)
        name = f"{field.name} ({_type_name(field)})" if field else "(unknown)"
        key = (record.number << 3) | record.wire_type
        wire = WIRE_TYPE_NAMES[record.wire_type]
        lines.append(f"{indent}field {record.number} {name}")
        lines.append(
            f"{indent}  tag      {record.tag.hex():<20} "
            f"({record.number} << 3) | {record.wire_type} = {key}  (wire type {wire})"
        )
        if record.wire_type == LEN:
            size = len(record.payload)
            lines.append(f"{indent}  length   {record.length.hex():<20} {size} (payload bytes)")
        lines.append(f"{indent}  payload  {record.payload.hex():<20} {_describe(field, record)}")
        if field is not None and field.type == _F.TYPE_MESSAGE:
            lines.extend(explain_lines(record.payload, _message_type(field), indent + "    "))
    return lines


def _parts(record: WireField) -> tuple[bytes, ...]:
    return tuple(part for part in (record.tag, record.length, record.payload) if part)


def explain(message: Message) -> str:
    """The whole explanation: a header, the hex of every byte, then each field record."""
    data = message.SerializeToString(deterministic=True)
    shown = text_format.MessageToString(message, as_one_line=True)
    records = read_fields(data)
    lines = [
        f"{message.DESCRIPTOR.name} {{ {shown} }}: {len(data)} bytes",
        data.hex(),
        "",
        "by field: " + "  ".join(" ".join(p.hex() for p in _parts(r)) for r in records),
        "",
    ]
    lines.extend(explain_lines(data, cast(Descriptor, message.DESCRIPTOR)))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m protos.explain",
        description="Print a protobuf message's wire bytes, field by field.",
    )
    parser.add_argument("message", help="message name, e.g. UpdateUserRequest")
    parser.add_argument("fields", nargs="*", metavar="FIELD=VALUE", help="e.g. sid=12113053")
    args = parser.parse_args(argv)
    try:
        message = build_message(args.message, args.fields)
    except (KeyError, ValueError) as exc:
        parser.error(str(exc.args[0]) if exc.args else str(exc))
    sys.stdout.write(explain(message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
