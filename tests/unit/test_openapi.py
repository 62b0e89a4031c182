"""openapi.yaml is valid OpenAPI 3.1, describes exactly the routes the gateway serves, and keeps
the error contract of DESIGN.md §4 on every operation. No services needed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.app import create_app
from gateway.errors import BY_DOMAIN_CODE, BY_STATUS, INTERNAL
from gateway.rest.docs import DOCS_CONTENT_SECURITY_POLICY, load_openapi
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
# DESIGN.md §7: the routes anyone may call; the API's own description is public too.
PUBLIC = {
    ("GET", "/api/v1"),
    ("POST", "/api/v1/users/create"),
    ("POST", "/api/v1/users/login"),
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/products/{id}"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
}
# Served from files, reaching no backend: no 5xx of theirs is documented.
STATIC = {("GET", "/api/v1"), ("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/docs")}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


OPERATIONS = list(operations())
IDS = [f"{method} {path}" for method, path, _ in OPERATIONS]


def _target(ref: str) -> dict[str, Any]:
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local $refs until a node without one."""
    while "$ref" in node:
        node = _target(node["$ref"])
    return node


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator whose #/components/... refs resolve inside the spec."""
    return Draft202012Validator(
        {**schema, "components": SPEC["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


@pytest.fixture(scope="module")
def app() -> Starlette:
    # Nothing listens at the backend addresses: serving the docs calls no backend, and with
    # shipping off the routes' log records go nowhere.
    return create_app(
        Settings(
            merch_env="development",
            db_service_addr="127.0.0.1:9",
            logging_service_addr="127.0.0.1:9",
            log_shipping=False,
        )
    )


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    # The ASGI transport runs no lifespan; the runtime (lazy channels) is all the routes need.
    runtime = app.state.runtime
    await runtime.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        await runtime.stop()


def test_the_document_is_valid_openapi_3_1() -> None:
    # given the committed description; when it is validated; then nothing is wrong with it
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1.")


def test_every_route_the_app_serves_is_described_and_nothing_else(app: Starlette) -> None:
    # given the routes the gateway serves under /api/v1 (HEAD comes free with GET)
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/v1")
        for method in route.methods or ()
        if method != "HEAD"
    }

    # when they are compared with the described operations
    described = {(method, path) for method, path, _ in OPERATIONS}

    # then they are the same set
    assert served - described == set(), "served but not in openapi.yaml"
    assert described - served == set(), "in openapi.yaml but not served"


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_security_is_bearer_exactly_on_protected_routes(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    # given DESIGN.md's list of public routes
    public = (method, path) in PUBLIC

    # then public operations need nothing, the others a bearer token and document its 401
    if public:
        assert operation["security"] == []
    else:
        assert operation["security"] == [{"bearerAuth": []}]
        unauthenticated = resolve(operation["responses"]["401"])
        assert "WWW-Authenticate" in unauthenticated["headers"]


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_failure_has_the_error_body(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    # given an operation's error responses
    failures = {s: resolve(r) for s, r in operation["responses"].items() if int(s) >= 400}

    # then each is JSON `{"error": {"code", "message"}}` with the codes of its status only,
    # and those that reach a backend document its failures
    for status, response in failures.items():
        validator = validator_for(response["content"]["application/json"]["schema"])
        for code in _codes_of(response):
            assert validator.is_valid({"error": {"code": code, "message": "m"}}), (status, code)
        assert not validator.is_valid({"error": {"code": "NOT_A_CODE", "message": "m"}})
        assert not validator.is_valid({"detail": "Not Found"})
    if (method, path) not in STATIC:
        assert {"500", "503", "504"} <= set(failures)


WITH_BODY = [(m, p, op) for m, p, op in OPERATIONS if "requestBody" in op]


@pytest.mark.parametrize(
    ("method", "path", "operation"), WITH_BODY, ids=[f"{m} {p}" for m, p, _ in WITH_BODY]
)
def test_json_bodies_refuse_unknown_fields_and_bad_media(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    schema = resolve(operation["requestBody"]["content"]["application/json"]["schema"])

    assert schema["additionalProperties"] is False
    assert {"400", "413", "415"} <= set(operation["responses"])


def _codes_of(response: dict[str, Any]) -> set[str]:
    """The error codes a failure response allows."""
    schema = resolve(response)["content"]["application/json"]["schema"]
    # Each error schema is Error ($ref) narrowed by its own `code` beside the $ref.
    while "properties" not in schema:
        schema = _target(schema["$ref"])
    code = schema["properties"]["error"]["properties"]["code"]
    return {code["const"]} if "const" in code else set(code["enum"])


def _error_codes(status: str) -> set[str]:
    """Every code the spec allows in a response with this status, across all operations."""
    codes: set[str] = set()
    for _, _, operation in OPERATIONS:
        if status in operation["responses"]:
            codes |= _codes_of(operation["responses"][status])
    return codes


GATEWAY_TABLE = sorted(
    {(m.http_status, m.code) for m in BY_STATUS.values()}
    | {(INTERNAL.http_status, INTERNAL.code)}
    | {(409, code) for code in BY_DOMAIN_CODE.values()}
    | {(413, "PAYLOAD_TOO_LARGE"), (415, "UNSUPPORTED_MEDIA_TYPE")}
)


@pytest.mark.parametrize(("status", "code"), GATEWAY_TABLE)
def test_each_status_and_code_of_the_gateway_table_is_documented(status: int, code: str) -> None:
    # given a (status, code) pair gateway/errors.py can answer; then the spec allows it
    assert code in _error_codes(str(status))


def test_rate_limited_answers_document_retry_after() -> None:
    for _, _, operation in OPERATIONS:
        if "429" in operation["responses"]:
            assert "Retry-After" in resolve(operation["responses"]["429"])["headers"]


def _examples() -> Iterator[tuple[str, dict[str, Any], Any]]:
    for method, path, operation in OPERATIONS:
        media = [(f"{method} {path} request", operation.get("requestBody", {}).get("content"))]
        for status, response in operation["responses"].items():
            media.append((f"{method} {path} {status}", resolve(response).get("content")))
        for where, content in media:
            for media_type in (content or {}).values():
                if "example" in media_type:
                    yield where, media_type["schema"], media_type["example"]
                for name, example in media_type.get("examples", {}).items():
                    yield f"{where} {name}", media_type["schema"], resolve(example)["value"]
    for name, parameter in SPEC["components"]["parameters"].items():
        if "example" in parameter:
            yield f"parameter {name}", parameter["schema"], parameter["example"]


EXAMPLES = list(_examples())


@pytest.mark.parametrize(("where", "schema", "example"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples_match_their_schemas(where: str, schema: dict[str, Any], example: Any) -> None:
    errors = [e.message for e in validator_for(schema).iter_errors(example)]
    assert errors == [], f"{where}: {errors}"


def test_every_request_body_and_success_has_an_example() -> None:
    missing = []
    for method, path, operation in OPERATIONS:
        if (method, path) in STATIC - {("GET", "/api/v1")}:
            continue
        contents = [operation.get("requestBody", {}).get("content", {})]
        contents += [r["content"] for s, r in operation["responses"].items() if s.startswith("2")]
        for content in contents:
            for media_type in content.values():
                if "example" not in media_type and "examples" not in media_type:
                    missing.append(f"{method} {path}")
    # A deactivation and a user's order list share the examples of their neighbours.
    assert set(missing) <= {"DELETE /api/v1/users/{sid}", "GET /api/v1/orders/user/{sid}"}


async def test_the_served_json_is_the_committed_yaml(http: httpx.AsyncClient) -> None:
    # when the description is fetched from the gateway
    response = await http.get("/api/v1/openapi.json")

    # then it is openapi.yaml, as JSON
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == SPEC == load_openapi()


async def test_swagger_ui_loads_only_assets_of_this_origin(http: httpx.AsyncClient) -> None:
    # given the docs page
    page = await http.get("/api/v1/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in DOCS_CONTENT_SECURITY_POLICY

    # when its scripts and stylesheets are collected
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)

    # then every one is a path on this server that answers, and none is a CDN's
    assert assets, "the page refers to no assets"
    for url in assets:
        if url.startswith("data:"):
            continue
        assert url.startswith("/api/v1/docs/assets/"), url
        assert (await http.get(url)).status_code == 200, url
    assert "/api/v1/openapi.json" in page.text
