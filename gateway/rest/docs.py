"""The REST API's own description: `openapi.yaml` as JSON, and Swagger UI that works offline.

    GET /api/v1/openapi.json   the committed openapi.yaml, converted once when this module loads
    GET /api/v1/docs           Swagger UI, its assets served from the `swagger-ui-bundle-v2` wheel

The YAML file at the repository root is the contract (tests check it against the routes and the
running API); the gateway serves it rather than generating one, so the two cannot disagree.
"""

from __future__ import annotations

import importlib.resources
import json
import pathlib
from string import Template
from typing import Any, Final

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from gateway.pages import installed_directory, same_origin_policy
from gateway.rest.common import route
from gateway.scope import RequestScope

OPENAPI_FILE: Final = pathlib.Path(__file__).resolve().parents[2] / "openapi.yaml"
OPENAPI_JSON_PATH: Final = "/api/v1/openapi.json"
DOCS_PATH: Final = "/api/v1/docs"
DOCS_ASSETS_PATH: Final = "/api/v1/docs/assets"

_BUNDLE_PACKAGE: Final = "swagger_ui_bundle"


def load_openapi(path: pathlib.Path = OPENAPI_FILE) -> dict[str, Any]:
    """The OpenAPI document as plain JSON-compatible data."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuntimeError(
            f"{path} is missing: the gateway serves it at {OPENAPI_JSON_PATH}; "
            "run the gateway from the repository (or the image built from it)"
        ) from None
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise RuntimeError(f"{path} is not an OpenAPI document")
    return document


# Read once: requests get the same bytes, with no YAML parsing on the request path.
_OPENAPI_JSON: Final = orjson.dumps(load_openapi())


async def openapi_json(request: Request, scope: RequestScope) -> Response:
    return Response(_OPENAPI_JSON, media_type="application/json")


# Plain ES5 with its settings in a non-executed JSON block, so this text never varies and its
# hash can be pinned in the Content-Security-Policy. validatorUrl: null stops Swagger UI from
# fetching a badge from validator.swagger.io.
_BOOT_SCRIPT: Final = """
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("swagger-config").textContent);
  window.ui = SwaggerUIBundle({
    url: config.url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
"""

_PAGE: Final = Template("""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Merch Store REST API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="$assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui">Loading…</div>
  <noscript>Swagger UI needs JavaScript; the description is at $url.</noscript>
  <script id="swagger-config" type="application/json">$config</script>
  <script src="$assets/swagger-ui-bundle.js"></script>
  <script>$boot_script</script>
</body>
</html>
""")


# The browser enforces what the page promises: nothing is loaded from another origin.
DOCS_CONTENT_SECURITY_POLICY: Final = same_origin_policy(_BOOT_SCRIPT)


def render_docs_page() -> str:
    """The Swagger UI page for this API, referring only to assets under DOCS_ASSETS_PATH."""
    return _PAGE.substitute(
        assets=DOCS_ASSETS_PATH,
        url=OPENAPI_JSON_PATH,
        # "<" escaped so no value can close the <script> element early.
        config=json.dumps({"url": OPENAPI_JSON_PATH}).replace("<", "\\u003c"),
        boot_script=_BOOT_SCRIPT,
    )


_DOCS_PAGE: Final = render_docs_page()


async def docs_page(request: Request, scope: RequestScope) -> Response:
    return HTMLResponse(
        _DOCS_PAGE, headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}
    )


def swagger_ui_directory() -> pathlib.Path:
    """The folder of Swagger UI's static build inside the installed wheel."""
    vendor = installed_directory(
        importlib.resources.files(_BUNDLE_PACKAGE) / "vendor", "swagger-ui-bundle-v2"
    )
    builds = sorted(vendor.glob("swagger-ui-*"))
    if len(builds) != 1:
        raise RuntimeError(f"expected one Swagger UI build in {vendor}, found {len(builds)}")
    return builds[0]


# The two routes openapi.yaml lists go through `route`, so they are recorded like every other;
# the page's static assets are not API calls and are not.
ROUTES: list[BaseRoute] = [
    route("GET", OPENAPI_JSON_PATH, openapi_json, protected=False),
    route("GET", DOCS_PATH, docs_page, protected=False),
    Mount(DOCS_ASSETS_PATH, StaticFiles(directory=swagger_ui_directory())),
]
