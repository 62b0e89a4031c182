"""gateway.jsonbody.loads answers exactly as its reference, the standard library's parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.jsonbody import JSONRejected, _loads_reference, loads

MAX_DEPTH = 8


def _outcome(parse: Any, data: bytes | str, decimals: bool) -> tuple[str, Any]:
    """("value", the value with its exact types) or ("refused", the message)."""
    try:
        value = parse(data, max_depth=MAX_DEPTH, decimals=decimals)
    except JSONRejected as exc:
        return "refused", str(exc)
    return "value", _typed(value)


def _typed(value: Any) -> Any:
    """The value with every scalar's type beside it (1 and 1.0 and True compare equal)."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])  # key order too
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


def _assert_same(data: bytes | str) -> None:
    for decimals in (False, True):
        assert _outcome(loads, data, decimals) == _outcome(_loads_reference, data, decimals)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson makes those floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates too
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_documents_parse_as_the_reference_parses_them(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    _assert_same(text)
    _assert_same(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=40) | st.text(alphabet='{}[]":,0123456789.eE+-tnrufalse \\u', max_size=40)
)
def test_arbitrary_bytes_and_near_json_get_the_reference_s_answer(data: bytes | str) -> None:
    _assert_same(data)


@pytest.mark.parametrize(
    "data",
    [
        b"123456789012345678901234567890",  # beyond 64 bits: an int, not a float
        b"-9223372036854775809",
        b"18446744073709551616",
        b"1e400",  # infinity, as the reference's float() makes it
        b"NaN",
        b"[Infinity]",
        b'"\\ud800"',  # a lone surrogate
        b'"\xff"',  # not UTF-8
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1, "b": 2, "a": 3}',  # a repeated key: the last value, the first position
        b"[" * 9 + b"]" * 9,  # one level too deep
        b"[" * 2000 + b"]" * 2000,
        b'{"query": "{ product(id: 1) { id } }", "variables": {"id": 1.5}}',
        b"",
    ],
)
def test_edge_cases_get_the_reference_s_answer(data: bytes) -> None:
    _assert_same(data)
