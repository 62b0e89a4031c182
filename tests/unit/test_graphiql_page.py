"""The offline GraphiQL page: no external URL, and every asset it names is served locally."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.graphiql import (
    GRAPHIQL_CONTENT_SECURITY_POLICY,
    GRAPHIQL_STATIC_PATH,
    graphiql_response,
    graphiql_static_app,
    render_graphiql_page,
)

ASSET_URL = re.compile(rf'(?:src|href)="({re.escape(GRAPHIQL_STATIC_PATH)}/[^"]+)"')
CONFIG_BLOCK = re.compile(r'<script id="graphiql-config" type="application/json">(.*?)</script>')
CONTENT_TYPES = {".js": "javascript", ".css": "text/css"}


def referenced_assets() -> list[str]:
    return ASSET_URL.findall(render_graphiql_page())


def page_config(html: str) -> dict[str, object]:
    match = CONFIG_BLOCK.search(html)
    assert match is not None
    config: dict[str, object] = json.loads(match.group(1))
    return config


@pytest.fixture
async def static_client() -> AsyncIterator[httpx.AsyncClient]:
    # In-process ASGI, like Starlette's TestClient, without its deprecation warning.
    app = Starlette(routes=[Mount(GRAPHIQL_STATIC_PATH, graphiql_static_app())])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def test_page_references_no_external_url() -> None:
    html = render_graphiql_page()

    assert re.search(r"https?://", html, flags=re.IGNORECASE) is None
    # Protocol-relative URLs would reach the internet too.
    assert re.search(r'(?:src|href)="//', html) is None


def test_page_loads_react_graphiql_and_its_stylesheet() -> None:
    paths = {url.split("?")[0] for url in referenced_assets()}

    assert {
        f"{GRAPHIQL_STATIC_PATH}/react.production.min.js",
        f"{GRAPHIQL_STATIC_PATH}/react-dom.production.min.js",
        f"{GRAPHIQL_STATIC_PATH}/graphiql.min.js",
        f"{GRAPHIQL_STATIC_PATH}/graphiql.min.css",
    } <= paths


@pytest.mark.parametrize("url", referenced_assets())
async def test_every_referenced_asset_is_served(static_client: httpx.AsyncClient, url: str) -> None:
    response = await static_client.get(url)

    assert response.status_code == 200
    suffix = "." + url.split("?")[0].rsplit(".", 1)[-1]
    assert CONTENT_TYPES[suffix] in response.headers["content-type"]
    assert "immutable" in response.headers["cache-control"]


def test_page_posts_to_the_given_graphql_path() -> None:
    config = page_config(render_graphiql_page(graphql_path="/api/graphql"))

    assert config["graphqlPath"] == "/api/graphql"
    assert config["subscriptions"] is True
    assert config["defaultQuery"] == "{\n  welcome\n}\n"


def test_page_can_leave_subscriptions_off() -> None:
    config = page_config(render_graphiql_page(subscriptions=False))

    assert config["subscriptions"] is False


def test_page_settings_cannot_close_their_script_element() -> None:
    html = render_graphiql_page(graphql_path="/graphql</script><script>alert(1)//")

    assert "</script><script>alert(1)" not in html
    assert page_config(html)["graphqlPath"] == "/graphql</script><script>alert(1)//"


def test_page_title_names_the_store() -> None:
    assert "<title>Merch Store GraphiQL</title>" in render_graphiql_page()


def test_response_allows_only_this_origin() -> None:
    response = graphiql_response()

    assert response.media_type == "text/html"
    assert response.headers["content-security-policy"] == GRAPHIQL_CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in GRAPHIQL_CONTENT_SECURITY_POLICY
    assert "http" not in GRAPHIQL_CONTENT_SECURITY_POLICY
