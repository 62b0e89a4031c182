"""A storm of mixed requests through the gateway, REST and GraphQL at once, each answer kept
with who sent it and when it started, so a test can check the rules on all of them after."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from tests.factories import Account
from tests.logtopic import read_all

PLACE = """mutation($p: Int!, $q: Int!, $k: String) {
  placeOrder(productId: $p, quantity: $q, idempotencyKey: $k) { id unitPrice totalPrice }
}"""
CANCEL = "mutation($id: Int!) { cancelOrder(id: $id) { id } }"
UPDATE_PRODUCT = """mutation($id: Int!, $input: UpdateProductInput!) {
  updateProduct(id: $id, input: $input) { price stock slogan }
}"""
DEACTIVATE = "mutation($sid: String!) { deactivateUser(sid: $sid) { isActive } }"
ORDER_EVENT = re.compile(r"^Order (\d+) (placed|cancelled): \d+ x product (\d+)")

# (method, path, JSON body, headers) of a REST call, and (document, variables) of its GraphQL twin.
Rest = tuple[str, str, dict[str, Any] | None, dict[str, str]]
GraphQL = tuple[str, dict[str, Any]]


@dataclass
class Answer:
    """One storm request: what it asked, who sent it, when it started, what came back."""

    op: str  # place, cancel, admin (a product change, a deactivation) or account
    sid: str  # the caller's
    api: str  # rest or graphql
    asked: dict[str, Any]
    started: float
    status: int
    code: str  # "ok" or the error code; "HTTP 5xx" for an answer with no error code
    value: dict[str, Any]  # the order or product answered, with REST's snake_case names


class Storm:
    """Sends requests through the gateway and keeps each answer. `halfway` is set once
    `halfway_at` answers have come, for what must happen mid-storm."""

    def __init__(self, client: httpx.AsyncClient, admin: Account) -> None:
        self.client = client
        self.admin = admin
        self.answers: list[Answer] = []
        self.halfway = asyncio.Event()
        self.halfway_at = 0
        self.revoked: dict[str, float] = {}  # sid -> when its revocation was answered

    async def send(
        self, op: str, who: Account, api: str, rest: Rest, graphql: GraphQL, asked: dict[str, Any]
    ) -> Answer:
        started = time.monotonic()
        if api == "rest":
            method, url, body, headers = rest
            r = await self.client.request(method, url, json=body, headers={**who.auth, **headers})
        else:
            query, variables = graphql
            r = await self.client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=who.auth
            )
        code, value = outcome(r, api)
        answer = Answer(op, who.sid, api, asked, started, r.status_code, code, value)
        self.answers.append(answer)
        if len(self.answers) == self.halfway_at:
            self.halfway.set()
        return answer

    async def place(
        self, who: Account, product: int, quantity: int, key: str | None, api: str
    ) -> Answer:
        rest: Rest = (
            "POST",
            "/api/v1/orders",
            {"product_id": product, "quantity": quantity},
            {"Idempotency-Key": key} if key is not None else {},
        )
        graphql = (PLACE, {"p": product, "q": quantity, "k": key})
        # The key as the service keeps it: spaces around it are no part of it.
        asked = {"product": product, "quantity": quantity, "key": key and key.strip()}
        return await self.send("place", who, api, rest, graphql, asked)

    async def cancel(self, who: Account, order_id: int, api: str) -> Answer:
        rest: Rest = ("DELETE", f"/api/v1/orders/{order_id}", None, {})
        graphql = (CANCEL, {"id": order_id})
        return await self.send("cancel", who, api, rest, graphql, {"id": order_id})

    async def change_product(self, product: int, changes: dict[str, Any], api: str) -> Answer:
        """An admin's change; each carries a slogan of its own, which names it in stock_audit."""
        changes = {**changes, "slogan": f"storm {uuid.uuid4().hex}"}
        rest: Rest = ("PUT", f"/api/v1/products/{product}", changes, {})
        graphql = (UPDATE_PRODUCT, {"id": product, "input": changes})
        return await self.send("admin", self.admin, api, rest, graphql, {"id": product})

    async def revoke(self, victim: Account, *, deactivate: bool) -> None:
        """Halfway through, deactivate `victim` (as the admin) or change its password (itself)."""
        await self.halfway.wait()
        if deactivate:
            rest: Rest = ("DELETE", f"/api/v1/users/{victim.sid}", None, {})
            graphql = (DEACTIVATE, {"sid": victim.sid})
            answer = await self.send("admin", self.admin, "graphql", rest, graphql, {})
        else:
            body = {"password": "a storm-proof password", "current_password": victim.password}
            rest = ("PUT", f"/api/v1/users/{victim.sid}", body, {})
            answer = await self.send("account", victim, "rest", rest, ("", {}), {})
        if answer.code == "ok":
            self.revoked[victim.sid] = time.monotonic()


def outcome(r: httpx.Response, api: str) -> tuple[str, dict[str, Any]]:
    """("ok", what was answered) or (the error code, {})."""
    if r.status_code >= 500:
        return f"HTTP {r.status_code}", {}
    body = r.json(parse_float=Decimal)
    if api == "rest":
        return ("ok", body) if r.status_code < 300 else (body["error"]["code"], {})
    if body.get("errors"):
        return body["errors"][0].get("extensions", {}).get("code", "no code"), {}
    answered = next(iter(body["data"].values()))
    return "ok", {re.sub("([A-Z])", r"_\1", k).lower(): v for k, v in answered.items()}


@contextlib.asynccontextmanager
async def stock_audit(database_url: str, product_ids: Sequence[int]) -> AsyncIterator[str]:
    """The name of a table that gets a row for each committed update of these products (old
    and new stock, new slogan, and whether the slogan changed: an admin's change), kept by a
    trigger while the block runs.

    An admin sets the stock rather than adding to it, so what a restock changed depends on the
    orders committed just before it, which only PostgreSQL knows: the trigger sees each change
    in the order they commit, with the stock it replaced.
    """
    name = f"storm_audit_{uuid.uuid4().hex[:12]}"
    ids = ", ".join(str(int(i)) for i in product_ids)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"CREATE TABLE {name} (product_id int, old_stock int, new_stock int,"  # noqa: S608 - our names
            " by_admin bool, slogan text);"
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" INSERT INTO {name} VALUES (NEW.id, OLD.stock, NEW.stock,"
            " NEW.slogan IS DISTINCT FROM OLD.slogan, NEW.slogan); RETURN NULL; END $$;"
            f"CREATE TRIGGER {name} AFTER UPDATE ON products FOR EACH ROW"
            f" WHEN (NEW.id IN ({ids})) EXECUTE FUNCTION {name}();"
        )
        yield name
    finally:
        await conn.execute(
            f"DROP TRIGGER IF EXISTS {name} ON products; DROP FUNCTION IF EXISTS {name}();"
            f" DROP TABLE IF EXISTS {name};"
        )
        await conn.close()


async def order_events(bootstrap: str, product_ids: Sequence[int]) -> Counter[tuple[int, str]]:
    """(order id, "placed" or "cancelled") -> how many outbox records log-channel has for it,
    each counted once however often it was re-sent (same event_id)."""
    seen: dict[str, tuple[int, str]] = {}
    for record in await read_all(bootstrap):
        message = record.get("message", "") if record["kind"] == "event" else ""
        if (match := ORDER_EVENT.match(message)) and int(match[3]) in product_ids:
            seen[record["event_id"]] = (int(match[1]), match[2])
    return Counter(seen.values())
