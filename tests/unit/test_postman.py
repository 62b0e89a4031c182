"""The Postman collection is generated from openapi.yaml and cannot drift from it: it is exactly
what the generator makes now, it has one request per described operation, logs in first and
stores the token, and its example bodies are valid requests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from scripts.postman import (
    COLLECTION,
    VARIABLES,
    build_collection,
    load_openapi,
    main,
    render,
)

SPEC = load_openapi()
COMMITTED: dict[str, Any] = json.loads(COLLECTION.read_text(encoding="utf-8"))


def requests(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every request item, depth first, in the order a collection run sends them."""
    found = []
    for item in node["item"]:
        found.extend(requests(item) if "item" in item else [item])
    return found


REQUESTS = requests(COMMITTED)


def template(item: dict[str, Any]) -> tuple[str, str]:
    """(method, path) with each {{variable}} segment back to an OpenAPI {parameter}."""
    request = item["request"]
    path = "/" + "/".join(request["url"]["path"])
    for variable, parameter in (("sid", "sid"), ("productId", "id"), ("orderId", "id")):
        path = path.replace("{{" + variable + "}}", "{" + parameter + "}")
    return request["method"], path


OPERATIONS = {
    (method.upper(), path): operation
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in ("get", "post", "put", "delete", "patch")
}


def test_the_committed_collection_is_what_the_generator_makes() -> None:
    # given openapi.yaml as it is now; when the collection is generated; then nothing changed
    expected = render(build_collection(SPEC))
    assert COLLECTION.read_text(encoding="utf-8") == expected, (
        "postman collection is stale: run `python -m scripts.postman`"
    )


def test_the_check_command_agrees() -> None:
    assert main(["--check"]) == 0


def test_every_operation_has_exactly_one_request() -> None:
    # the admin log-in is the one extra: the same operation with other credentials
    sent = [template(item) for item in REQUESTS]
    login = ("POST", "/api/v1/users/login")

    assert sorted(set(sent)) == sorted(OPERATIONS)
    assert sent.count(login) == 2
    assert len(sent) == len(OPERATIONS) + 1


def test_the_run_registers_and_logs_in_before_any_protected_request() -> None:
    # given the requests in run order
    sent = [template(item) for item in REQUESTS]

    # then registration and login come first, and login stores the token for the others
    assert sent[:2] == [("POST", "/api/v1/users/create"), ("POST", "/api/v1/users/login")]
    (event,) = REQUESTS[1]["event"]
    assert event["listen"] == "test"
    script = "\n".join(event["script"]["exec"])
    assert 'pm.collectionVariables.set("token", body.token)' in script


def test_protected_requests_send_the_stored_token_and_public_ones_none() -> None:
    # the collection's own auth is the bearer token from the login script
    assert COMMITTED["auth"] == {
        "type": "bearer",
        "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}],
    }
    for item in REQUESTS:
        operation = OPERATIONS[template(item)]
        public = operation["security"] == []
        assert ("auth" in item["request"]) == public, template(item)
        if public:
            assert item["request"]["auth"] == {"type": "noauth"}


def test_every_variable_used_is_defined() -> None:
    used = set(re.findall(r"\{\{(\w+)\}\}", COLLECTION.read_text(encoding="utf-8")))

    assert used <= set(VARIABLES)
    assert {v["key"] for v in COMMITTED["variable"]} == set(VARIABLES)


def test_no_secret_is_stored_in_the_collection() -> None:
    values = {v["key"]: v["value"] for v in COMMITTED["variable"]}

    assert values["token"] == ""
    assert values["adminPassword"] == ""


SAMPLE_VALUES = {key: value or "sample-value" for key, value in VARIABLES.items()}
BODIES = [item for item in REQUESTS if "body" in item["request"]]


@pytest.mark.parametrize("item", BODIES, ids=[item["name"] for item in BODIES])
def test_every_body_is_a_valid_request_for_its_operation(item: dict[str, Any]) -> None:
    # given the body with its {{variables}} filled in as a run would
    raw = re.sub(r"\{\{(\w+)\}\}", lambda m: SAMPLE_VALUES[m[1]], item["request"]["body"]["raw"])
    operation = OPERATIONS[template(item)]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]

    # then it satisfies the operation's request schema, and is sent as JSON
    validator = Draft202012Validator({**schema, "components": SPEC["components"]})
    assert list(validator.iter_errors(json.loads(raw))) == []
    assert {"key": "Content-Type", "value": "application/json"} in item["request"]["header"]
