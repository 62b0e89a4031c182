"""GraphQLPosts: POST /graphql straight to the view, a bug there still a JSON 500."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.app import GraphQLPosts

Message = dict[str, Any]


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _call(app: GraphQLPosts, method: str, path: str) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    await app(scope, _receive, send)
    return sent


async def _mark(label: str, sent: list[str]) -> None:
    sent.append(label)


@pytest.mark.parametrize(
    ("method", "path", "taken_by"),
    [
        ("POST", "/graphql", "view"),
        ("GET", "/graphql", "stack"),
        ("POST", "/api/v1/orders", "stack"),
    ],
)
async def test_only_post_graphql_skips_the_stack(method: str, path: str, taken_by: str) -> None:
    taken: list[str] = []

    async def stack(scope: Any, receive: Any, send: Any) -> None:
        await _mark("stack", taken)

    async def view(scope: Any, receive: Any, send: Any) -> None:
        await _mark("view", taken)

    await _call(GraphQLPosts(stack, view=view), method, path)
    assert taken == [taken_by]


async def test_an_unexpected_error_in_the_view_is_a_json_500() -> None:
    async def stack(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not this way")

    async def view(scope: Any, receive: Any, send: Any) -> None:
        raise ZeroDivisionError("a bug")

    start, body = await _call(GraphQLPosts(stack, view=view), "POST", "/graphql")
    assert start["status"] == 500
    answer = orjson.loads(body["body"])
    assert answer == {
        "errors": [{"message": "internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]
    }
