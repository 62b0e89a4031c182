"""Generate the Postman collection for the REST API from openapi.yaml, so the two cannot drift.

    python -m scripts.postman           # rewrite postman/merch-store.postman_collection.json
    python -m scripts.postman --check   # exit 1 when the committed file is stale

The collection starts with "Register" and "Log in", whose test script stores the token in the
`token` collection variable; every protected request inherits bearer auth from it. Import the
file in Postman, set `baseUrl` if the gateway is not on 127.0.0.1:8081, and run it top to bottom.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from scripts.generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi.yaml"
COLLECTION = ROOT / "postman" / "merch-store.postman_collection.json"
SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
HTTP_METHODS = ("get", "post", "put", "delete", "patch")

# Collection variables: where the gateway is, who logs in, and ids remembered between requests.
VARIABLES = {
    "baseUrl": "http://127.0.0.1:8081",
    "sid": "12113053",
    "username": "sreyny",
    "email": "sreyny@example.com",
    "password": "correct horse battery",
    "adminUsername": "admin",
    "adminPassword": "",
    "token": "",
    "productId": "1",
    "orderId": "1",
}
# A path parameter → the variable that fills it (`{id}` means a product or an order by tag).
PATH_VARIABLES = {("users", "sid"): "sid", ("orders", "sid"): "sid"}
PATH_VARIABLES |= {("products", "id"): "productId", ("orders", "id"): "orderId"}
# Bodies written with variables, so a run registers, logs in and orders as the same user.
BODIES: dict[str, dict[str, Any]] = {
    "registerUser": {
        "sid": "{{sid}}",
        "username": "{{username}}",
        "email": "{{email}}",
        "password": "{{password}}",
    },
    "login": {"username": "{{username}}", "password": "{{password}}"},
}
# Postman test scripts: what a response teaches the following requests.
STORE_TOKEN = [
    'pm.test("logged in", function () { pm.response.to.have.status(200); });',
    "const body = pm.response.json();",
    'pm.collectionVariables.set("token", body.token);',
    'pm.collectionVariables.set("sid", body.user.sid);',
]
SCRIPTS = {
    "login": STORE_TOKEN,
    "loginAdmin": STORE_TOKEN,
    "placeOrder": [
        'pm.test("placed", function () { pm.response.to.have.status(201); });',
        'pm.collectionVariables.set("orderId", pm.response.json().id);',
    ],
    "createProduct": [
        'pm.test("created", function () { pm.response.to.have.status(201); });',
        'pm.collectionVariables.set("productId", pm.response.json().id);',
    ],
}
FIRST = ("registerUser", "login")


def load_openapi(path: Path = OPENAPI) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def _resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _example_body(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    content = operation["requestBody"]["content"]["application/json"]
    if "example" in content:
        return content["example"]
    (example,) = content["examples"].values()
    return _resolve(spec, example)["value"]


def _url(path: str, tag: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    segments = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{"):
            segment = "{{" + PATH_VARIABLES[(tag, segment.strip("{}"))] + "}}"
        segments.append(segment)
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}/" + "/".join(segments),
        "host": ["{{baseUrl}}"],
        "path": segments,
    }
    query = [p for p in parameters if p["in"] == "query"]
    if query:
        # Present but switched off: the defaults apply until someone ticks them.
        url["query"] = [
            {
                "key": p["name"],
                "value": str(p["schema"].get("default", "")),
                "description": p.get("description", ""),
                "disabled": True,
            }
            for p in query
        ]
    return url


def _request(spec: dict[str, Any], method: str, path: str, operation: dict[str, Any]) -> Any:
    tag = operation["tags"][0]
    parameters = [_resolve(spec, p) for p in operation.get("parameters", [])]
    parameters += [_resolve(spec, p) for p in spec["paths"][path].get("parameters", [])]
    headers = [
        {
            "key": p["name"],
            "value": str(p.get("example", "")),
            "description": " ".join(p.get("description", "").split()),
            "disabled": True,
        }
        for p in parameters
        if p["in"] == "header"
    ]
    request: dict[str, Any] = {
        "method": method.upper(),
        "header": headers,
        "url": _url(path, tag, parameters),
        "description": " ".join(
            part for part in (operation["summary"], operation.get("description", "")) if part
        ).strip(),
    }
    if operation["security"] == []:
        request["auth"] = {"type": "noauth"}
    if "requestBody" in operation:
        body = BODIES.get(operation["operationId"]) or _example_body(spec, operation)
        request["header"].insert(0, {"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(body, indent=2, ensure_ascii=False),
            "options": {"raw": {"language": "json"}},
        }
    return request


def _item(name: str, operation_id: str, request: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "request": request}
    script = SCRIPTS.get(operation_id)
    if script:
        item["event"] = [{"listen": "test", "script": {"type": "text/javascript", "exec": script}}]
    return item


def _admin_login(login: dict[str, Any]) -> dict[str, Any]:
    """Log in as the admin: the same request with the admin's credentials."""
    request = json.loads(json.dumps(login["request"]))
    request["body"]["raw"] = json.dumps(
        {"username": "{{adminUsername}}", "password": "{{adminPassword}}"}, indent=2
    )
    request["description"] = (
        "Log in as the administrator (ADMIN_USERNAME / ADMIN_PASSWORD of db_service); "
        "the token replaces the customer's until the next log in."
    )
    return _item("Log in as the admin", "loginAdmin", request)


def build_collection(spec: dict[str, Any]) -> dict[str, Any]:
    """The Postman v2.1 collection for every operation of `spec`, the login first."""
    items: dict[str, dict[str, Any]] = {}
    folders: dict[str, list[dict[str, Any]]] = {tag["name"]: [] for tag in spec["tags"]}
    for path, path_item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method not in path_item:
                continue
            operation = path_item[method]
            item = _item(
                operation["summary"],
                operation["operationId"],
                _request(spec, method, path, operation),
            )
            items[operation["operationId"]] = item
            if operation["operationId"] not in FIRST:
                folders[operation["tags"][0]].append(item)
    start = [items[operation_id] for operation_id in FIRST]
    start.append(_admin_login(items["login"]))
    info = spec["info"]
    return {
        "info": {
            # Stable, so regenerating yields the same file and Postman updates the same import.
            "_postman_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "merch-store/" + info["title"])),
            "name": info["title"],
            "description": (
                f"Generated from openapi.yaml (version {info['version']}) by "
                "`python -m scripts.postman`; do not edit by hand.\n\n"
                "Run `Start here` first: registering and logging in stores the bearer token in "
                "the `token` collection variable, which every protected request uses."
            ),
            "schema": SCHEMA_URL,
        },
        "auth": {
            "type": "bearer",
            "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}],
        },
        "variable": [{"key": key, "value": value} for key, value in VARIABLES.items()],
        "item": [
            {"name": "Start here: register and log in", "item": start},
            *(
                {"name": tag["name"], "description": tag.get("description", ""), "item": folder}
                for tag in spec["tags"]
                if (folder := folders[tag["name"]])
            ),
        ],
    }


def render(collection: dict[str, Any]) -> str:
    return json.dumps(collection, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.postman", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render(build_collection(load_openapi()))
    return write_or_check(COLLECTION, text, check=args.check, command="make postman")


if __name__ == "__main__":
    sys.exit(main())
