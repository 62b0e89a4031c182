"""Opaque keyset page tokens, part of the wire contract.

A DBService list's `next_page_token` and a GraphQL edge's cursor are the same thing: the id of
the last row seen, so pages stay stable while rows are inserted.
"""

from __future__ import annotations

import base64


def encode_token(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_token(kind: str, token: str) -> int:
    """The last id a token points after (0 for the first page); ValueError when malformed."""
    if not token:
        return 0
    if len(token) > 64:
        raise ValueError("page token is not valid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, value = raw.partition(":")
        last_id = int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("page token is not valid") from None
    # Ids are serial (int4): a larger one was never handed out, and PostgreSQL would refuse it.
    if prefix != kind or not 0 <= last_id <= _ID_MAX:
        raise ValueError("page token is not valid")
    return last_id


_ID_MAX = 2**31 - 1
