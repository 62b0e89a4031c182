"""Persisted queries, Apollo style: the client sends a hash; the gateway knows the text.

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}, "variables": {...}}

A gateway that has never seen the hash answers PERSISTED_QUERY_NOT_FOUND; the client then sends
the text with the same extension once, and the hash alone from then on. `register` walks that
dance once before timing and says why not, when the gateway cannot do it yet.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from bench.probes import Probe

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"


def sha256_hex(query: str) -> str:
    """The hash that names `query`."""
    return hashlib.sha256(query.encode()).hexdigest()


def payload(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The body of a hash-only request."""
    extension = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
    return {"extensions": extension, "variables": variables}


def register(client: httpx.Client, url: str, query: str, probe: Probe) -> str | None:
    """Make the gateway know `query` by its hash; None when it now answers `probe` right,
    else why the persisted scenario has to be skipped."""
    first = _send(client, url, probe.request.body or "")
    if first is None:
        return "the gateway did not answer the hash-only request"
    status, body = first
    if probe.expect(status, body) is None:
        return None  # known already, e.g. from a persisted-operations manifest
    if NOT_FOUND not in json.dumps(body):
        return f"the gateway does not support persisted queries yet ({_summary(status, body)})"
    with_text = json.loads(probe.request.body or "{}")
    with_text["query"] = query
    registered = _send(client, url, json.dumps(with_text))
    if registered is None or probe.expect(*registered) is not None:
        answer = _summary(*registered) if registered else "no answer"
        return f"registering the query with its text failed ({answer})"
    again = _send(client, url, probe.request.body or "")
    if again is None or probe.expect(*again) is not None:
        answer = _summary(*again) if again else "no answer"
        return f"the gateway forgot the registered hash ({answer})"
    return None


def _send(client: httpx.Client, url: str, body: str) -> tuple[int, Any] | None:
    try:
        response = client.post(
            f"{url}/graphql", content=body, headers={"Content-Type": "application/json"}
        )
    except httpx.HTTPError:
        return None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _summary(status: int, body: Any) -> str:
    if isinstance(body, dict) and body.get("errors"):
        first = body["errors"][0]
        code = (first.get("extensions") or {}).get("code")
        message = str(first.get("message", ""))[:120]
        return f"HTTP {status}, {code + ': ' if code else ''}{message}"
    return f"HTTP {status}, {str(body)[:120]}"
