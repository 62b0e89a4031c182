"""The compiled executor answers exactly as the reference executor, and records the same.

Every GraphQL document written in the test suite, and documents generated from schema.graphql
(hypothesis-graphql), run through two pipelines over the same running db_service: one that
compiles (gateway.graphql.compiled) and one that runs graphql-core's executor for everything.
As a customer, an admin and anonymously, the answers must be equal (data, nulls, partial
results, errors with their codes, messages and paths, refusals) and so must the log records.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLError,
    GraphQLNamedType,
    GraphQLNonNull,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    parse,
    type_from_ast,
    validate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import queries

from gateway.backends import GRPC_CALLS
from gateway.graphql.limits import GraphQLLimits
from gateway.graphql.pipeline import GraphQLPipeline
from gateway.graphql.schema import build_schema
from gateway.runtime import Runtime
from gateway.settings import Settings
from tests.conftest import JWT_SECRET, ROOT, Stack
from tests.factories import admin_token, gql, make_product, make_user

SCHEMA = build_schema()
SDL = (ROOT / "schema.graphql").read_text()


class CapturingRuntime(Runtime):
    """The gateway's runtime, its log records kept here instead of shipped."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.records: list[tuple[str, ...]] = []

    def record(self, *, kind: str, operation: str, user: str, outcome: str, **rest: Any) -> None:
        self.records.append((kind, operation, user, outcome, str(rest.get("message", ""))))


@dataclass
class Executors:
    runtime: CapturingRuntime
    compiled: GraphQLPipeline
    reference: GraphQLPipeline
    identities: dict[str, dict[str, str]]
    values: dict[str, Any]


@pytest.fixture(scope="module")
async def executors(stack: Stack) -> AsyncIterator[Executors]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        admin = await admin_token(client)
        product = await make_product(client, admin, stock=50)
        customer = await make_user(client)
        for quantity in (1, 2):
            placed = await client.post(
                "/api/v1/orders",
                json={"product_id": product["id"], "quantity": quantity},
                headers=customer.auth,
            )
            assert placed.status_code == 201
        cancelled = await client.delete(
            f"/api/v1/orders/{placed.json()['id']}", headers=customer.auth
        )
        assert cancelled.status_code == 200
    runtime = CapturingRuntime(
        Settings(
            merch_env="development",
            db_service_addr=stack.db_addr,
            logging_service_addr=stack.logging_addr,
            jwt_secret=JWT_SECRET,
            log_shipping=False,
        )
    )
    await runtime.start()
    limits = GraphQLLimits()
    try:
        yield Executors(
            runtime=runtime,
            compiled=GraphQLPipeline(runtime, SCHEMA, limits, graphiql=False),
            reference=GraphQLPipeline(runtime, SCHEMA, limits, graphiql=False, compiled=False),
            identities={
                "anonymous": {},
                "customer": customer.auth,
                "admin": {"Authorization": f"Bearer {admin}"},
            },
            values={
                "Int": product["id"],
                "first": 3,
                "String": customer.sid,
                "Boolean": False,
            },
        )
    finally:
        await runtime.stop()


async def _answer(
    executors: Executors, app: GraphQLPipeline, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any], list[tuple[str, ...]]]:
    executors.runtime.records = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post("/graphql", json=body, headers=headers)
    answer: dict[str, Any] = response.json()
    # Concurrent resolvers may fail in either order; the set of errors is what must match.
    if "errors" in answer:
        answer["errors"] = sorted(answer["errors"], key=repr)
    return response.status_code, answer, _batches_merged(executors.runtime.records)


def _batches_merged(records: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The records, with a DataLoader's batches (one record each, "N loaded in one call")
    summed per field: how loads group into batches depends on when the backend's answers
    arrive, for either executor; which ids are loaded, and how it went, does not."""
    loaded: dict[tuple[str, ...], int] = {}
    others = []
    for record in records:
        message = record[4]
        if message.endswith(" loaded in one call"):
            key = record[:4]
            loaded[key] = loaded.get(key, 0) + int(message.split()[0])
        else:
            others.append(record)
    merged = [(*key, f"{n} loaded") for key, n in loaded.items()]
    return sorted(others + merged)


async def assert_same(executors: Executors, body: dict[str, Any]) -> None:
    for who, headers in executors.identities.items():
        reference = await _answer(executors, executors.reference, body, headers)
        compiled = await _answer(executors, executors.compiled, body, headers)
        if _nulled_by_a_race(reference) or _nulled_by_a_race(compiled):
            _assert_same_refusal(compiled, reference, who, body)
        else:
            assert compiled == reference, (who, body)


Answer = tuple[int, dict[str, Any], list[tuple[str, ...]]]


def _nulled_by_a_race(answer: Answer) -> bool:
    """A non-null field failed while resolving and took `data` with it. graphql-core then
    cancels the fields still running beside it, so which of them had finished (and recorded,
    and failed too) depends on the backend's timing, for either executor."""
    _, body, _ = answer
    return body.get("data") is None and any("path" in e for e in body.get("errors", ()))


def _assert_same_refusal(compiled: Answer, reference: Answer, who: str, body: Any) -> None:
    assert compiled[0] == reference[0], (who, body)
    assert compiled[1]["data"] is None, (who, body)
    assert reference[1]["data"] is None, (who, body)
    for _, answer, records in (compiled, reference):
        assert answer["errors"]
        assert all("code" in e["extensions"] for e in answer["errors"])
        failed = {(r[1], r[3]) for r in records if r[3] != "ok"}
        assert failed, (who, body, records)  # the failure that nulled `data` is recorded


def _documents_in_tests() -> Iterator[str]:
    """Every string literal in tests/ that is a valid query or mutation of the schema."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value
            if "{" not in text:
                continue
            try:
                document = parse(text)
            except GraphQLError:
                continue
            if validate(SCHEMA.graphql_schema, document):
                continue
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) == 1 and operations[0].operation is OperationType.QUERY:
                yield text


DOCUMENTS = sorted(set(_documents_in_tests()))
# Mutations change data, so a second run answers differently: these are refused every time.
REFUSED_MUTATIONS = [
    'mutation { createProduct(input: {name: "x", category: "y", price: "1", stock: -1}) { id } }',
    "mutation { updateProduct(id: 2000000000, input: {stock: 1}) { id stock } }",
    "mutation { cancelOrder(id: 2000000000) { id status } }",
    'mutation { deactivateUser(sid: "nobody-at-all") { sid } }',
    'mutation { updateUser(sid: "nobody-at-all", input: {username: "x"}) { sid } }',
]


def _variables(executors: Executors, text: str) -> dict[str, Any]:
    """A value for each variable of `text`: ids of the data the fixture made."""
    (operation,) = [d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode)]
    variables: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        type_ = type_from_ast(SCHEMA.graphql_schema, definition.type)
        named: GraphQLNamedType | None = get_named_type(type_) if type_ else None
        if name in ("first", "n"):
            variables[name] = executors.values["first"]
        elif named is not None and named.name in executors.values:
            variables[name] = executors.values[named.name]
        elif isinstance(type_, GraphQLNonNull):
            pytest.skip(f"no value for ${name}")
    return variables


def test_the_suite_has_documents_to_compare() -> None:
    assert len(DOCUMENTS) >= 20


@pytest.mark.parametrize(
    "text", DOCUMENTS, ids=[hashlib.sha256(d.encode()).hexdigest()[:10] for d in DOCUMENTS]
)
async def test_documents_of_the_suite_answer_the_same(executors: Executors, text: str) -> None:
    await assert_same(executors, {"query": text, "variables": _variables(executors, text)})


@pytest.mark.parametrize("text", REFUSED_MUTATIONS)
async def test_refused_mutations_answer_the_same(executors: Executors, text: str) -> None:
    await assert_same(executors, {"query": text})


async def test_most_documents_of_the_suite_compile(executors: Executors) -> None:
    compiled = 0
    for text in DOCUMENTS:
        body = {"query": text, "variables": _variables_or_none(executors, text)}
        await _answer(executors, executors.compiled, body, executors.identities["admin"])
        prepared = executors.compiled.documents.get(text)
        compiled += prepared is not None and any(p is not None for p in prepared.plans.values())
    assert compiled >= len(DOCUMENTS) * 3 // 4


def _variables_or_none(executors: Executors, text: str) -> dict[str, Any] | None:
    try:
        return _variables(executors, text)
    except pytest.skip.Exception:
        return None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries(SDL))
async def test_generated_queries_answer_the_same(executors: Executors, query: str) -> None:
    await assert_same(executors, {"query": query})


# Execution as the spec has it, on both executors: serial mutation fields, records of
# cancelled resolvers, @skip/@include in planned loads, fragment fields collected once.


async def test_serial_mutations_see_the_stock_each_one_left(client: httpx.AsyncClient) -> None:
    # given a product with 10 in stock, and a customer
    product = await make_product(client, await admin_token(client), stock=10)
    user = await make_user(client)

    # when one document places two orders, each asking for the product's stock after it
    body = await gql(
        client,
        "mutation($p: Int!) {"
        " a: placeOrder(productId: $p, quantity: 1) { product { stock } }"
        " b: placeOrder(productId: $p, quantity: 1) { product { stock } } }",
        {"p": product["id"]},
        token=user.token,
    )

    # then each sees what the one before it left (mutation fields run one after another),
    # not the row the first one's DataLoader cached
    assert "errors" not in body, body
    assert (body["data"]["a"]["product"]["stock"], body["data"]["b"]["product"]["stock"]) == (9, 8)


def _get_user_calls() -> float:
    return sum(
        sample.value
        for metric in GRPC_CALLS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["method"] == "GetUser"
    )


@pytest.mark.parametrize("path", ["compiled", "reference"])
async def test_a_root_field_cancelled_by_its_failing_sibling_is_recorded(
    executors: Executors, path: str
) -> None:
    # given a query whose non-null `orders` fails while `me` is still resolving
    body = {"query": "{ orders(first: 0) { pageInfo { hasNextPage } } me { sid } }"}
    app = executors.compiled if path == "compiled" else executors.reference
    before = _get_user_calls()

    # when it runs
    _, answer, records = await _answer(executors, app, body, executors.identities["customer"])

    # then `me`, which reached db_service, has its record too (DESIGN §8), as CANCELLED
    assert _get_user_calls() == before + 1
    assert answer["data"] is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]
    assert sorted((r[1], r[3]) for r in records) == [
        ("Query.me", "CANCELLED"),
        ("Query.orders", "BAD_USER_INPUT"),
    ]


@pytest.mark.parametrize("path", ["compiled", "reference"])
async def test_a_field_left_out_by_a_directive_is_neither_loaded_nor_recorded(
    executors: Executors, path: str
) -> None:
    # given a page of orders whose owner and product are left out by @include and @skip
    body: dict[str, Any] = {
        "query": "query($with: Boolean!) { orders { edges { node { id"
        " user @include(if: $with) { sid } product @skip(if: true) { id } } } } }",
        "variables": {"with": False},
    }
    app = executors.compiled if path == "compiled" else executors.reference

    # when it runs
    _, answer, records = await _answer(executors, app, body, executors.identities["customer"])

    # then no user or product was asked for with the page, nor recorded as loaded
    assert "errors" not in answer
    assert all(set(e["node"]) == {"id"} for e in answer["data"]["orders"]["edges"])
    assert [r[1] for r in records] == ["Query.orders"], records


async def test_a_fragment_under_two_nodes_of_one_field_is_collected_once(
    executors: Executors,
) -> None:
    # given a fragment spread under both nodes of a merged field, with a failing field in it
    body = {
        "query": "{ me { ...F } me { ...F } }"
        " fragment F on User { orders(first: 0) { pageInfo { hasNextPage } } }"
    }
    headers = executors.identities["customer"]

    # when both executors run it
    _, reference, _ = await _answer(executors, executors.reference, body, headers)
    _, compiled, _ = await _answer(executors, executors.compiled, body, headers)

    # then the error has the fragment field's location once, on both
    assert reference["errors"][0]["locations"] == [{"line": 1, "column": 50}]
    assert compiled == reference
