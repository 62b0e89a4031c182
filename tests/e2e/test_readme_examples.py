"""The README's example sessions work exactly as printed, against the running stack."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Stack

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str, section: str) -> list[str]:
    start = README.index(section)
    # The next level-2 or level-3 heading ends the section ("# " lines are shell comments).
    following = re.search(r"\n#{2,3} ", README[start + 1 :])
    part = README[start : start + 1 + following.start() if following else None]
    return re.findall(rf"```{language}\n(.*?)```", part, flags=re.S)


def test_rest_session_with_curl(stack: Stack) -> None:
    (script,) = _blocks("sh", "### The same session — REST (curl)")

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"BASE": stack.gateway_url, "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert '"username":"peter"' in result.stdout
    assert '"status":"placed"' in result.stdout
    assert result.stdout.rstrip().endswith("}")
    assert '"status":"cancelled"' in result.stdout.splitlines()[-1]
    assert "error" not in result.stdout


async def test_graphql_sessions(client: httpx.AsyncClient) -> None:
    register, login = _blocks("graphql", "### Register and log in — GraphQL")
    browse, order, mine, cancel = _blocks("graphql", "### An example session — GraphQL")

    async def run(document: str, token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await client.post("/graphql", json={"query": document}, headers=headers)
        body: dict[str, Any] = response.json()
        assert response.status_code == 200
        assert "errors" not in body, body
        return body["data"]

    registered = await run(register)
    token = (await run(login))["login"]["token"]
    products = await run(browse, token)
    placed = (await run(order, token))["placeOrder"]
    listed = await run(mine, token)
    # "Use the order id that placeOrder returned."
    cancelled = (await run(re.sub(r"id: \d+", f"id: {placed['id']}", cancel), token))["cancelOrder"]

    assert registered["register"]["role"] == "CUSTOMER"
    assert len(products["products"]["edges"]) == 3
    assert placed["totalPrice"] == "39.98"
    assert [e["node"]["id"] for e in listed["me"]["orders"]["edges"]] == [placed["id"]]
    assert cancelled["status"] == "CANCELLED"


@pytest.mark.parametrize(
    "section", ["### Register and log in — GraphQL", "### An example session — GraphQL"]
)
def test_readme_has_the_graphql_examples(section: str) -> None:
    assert _blocks("graphql", section)
