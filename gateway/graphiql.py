"""GraphiQL that works offline: our page, and the assets of `graphene-django-graphiql-static`.

Strawberry's built-in page loads React and GraphiQL from unpkg.com, so without internet access it
never gets past "Loading…". The `graphene-django-graphiql-static` wheel ships the same bundles
(GraphiQL 2 with graphql-ws built in, React 17, the explorer plugin); we serve its static folder
ourselves, without Django, and render a page that refers to nothing but that folder.

Wiring, in the gateway app::

    routes.append(Mount(GRAPHIQL_STATIC_PATH, graphiql_static_app()))

    class GraphQLView(GraphQL[Context, None]):
        async def render_graphql_ide(self, request: Request) -> HTMLResponse:
            return graphiql_response(graphql_path="/graphql")
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import json
import os
import pathlib
from string import Template
from typing import Final
from urllib.parse import quote

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.pages import installed_directory, same_origin_policy

GRAPHIQL_STATIC_PATH: Final = "/graphiql-static"
DEFAULT_QUERY: Final = "{\n  welcome\n}\n"

_ASSET_PACKAGE: Final = "graphene_django_graphiql_static"
_ASSET_DISTRIBUTION: Final = "graphene-django-graphiql-static"
# Order matters: each script expects the globals of the ones before it
# (React → ReactDOM → GraphiQL → GraphiQLPluginExplorer).
_STYLESHEETS: Final = ("graphiql.min.css", "style.css")
_SCRIPTS: Final = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql-plugin-explorer.umd.js",
)
# Asset URLs carry the package version, so a browser may keep them for a year: upgrading the wheel
# changes every URL instead of leaving a mix of old and new bundles in caches.
_ASSET_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"

# Plain ES5 on purpose: no build step, and no `${...}` that would collide with Template.
# The settings arrive as JSON in a non-executed <script> block, so this text never varies and
# its hash can be pinned in the Content-Security-Policy.
_BOOT_SCRIPT: Final = """
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  var options = { url: config.graphqlPath };
  if (config.subscriptions) {
    // graphql-ws (bundled inside graphiql.min.js) speaks graphql-transport-ws on the same path.
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    options.subscriptionUrl = scheme + "//" + window.location.host + config.graphqlPath;
  }
  var fetcher = GraphiQL.createFetcher(options);

  function MerchStoreGraphiQL() {
    // The explorer edits the same query as the editor, so the query lives in shared state.
    var state = React.useState(undefined);
    var query = state[0];
    var setQuery = state[1];
    var explorer = GraphiQLPluginExplorer.useExplorerPlugin({ query: query, onEdit: setQuery });
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      query: query,
      onEditQuery: setQuery,
      isHeadersEditorEnabled: true,
      // Headers hold bearer tokens; keep them out of localStorage.
      shouldPersistHeaders: false,
      plugins: [explorer]
    });
  }

  ReactDOM.render(
    React.createElement(MerchStoreGraphiQL),
    document.getElementById("graphiql")
  );
})();
"""

_PAGE: Final = Template("""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Merch Store GraphiQL</title>
  <!-- An empty icon stops the browser from asking for /favicon.ico. -->
  <link rel="icon" href="data:,">
$stylesheets
  <style>
    html, body, #graphiql { height: 100%; margin: 0; overflow: hidden; }
  </style>
</head>
<body>
  <div id="graphiql">Loading…</div>
  <noscript>GraphiQL needs JavaScript.</noscript>
  <script id="graphiql-config" type="application/json">$config</script>
$scripts
  <script>$boot_script</script>
</body>
</html>
""")


# Enforces in the browser what the page promises: everything comes from this origin.
GRAPHIQL_CONTENT_SECURITY_POLICY: Final = same_origin_policy(_BOOT_SCRIPT)


def _static_directory() -> pathlib.Path:
    folder = importlib.resources.files(_ASSET_PACKAGE) / "static" / _ASSET_PACKAGE
    return installed_directory(folder, _ASSET_DISTRIBUTION)


@functools.cache
def _asset_version() -> str:
    return quote(importlib.metadata.version(_ASSET_DISTRIBUTION), safe="")


def _asset_url(filename: str) -> str:
    return f"{GRAPHIQL_STATIC_PATH}/{quote(filename)}?v={_asset_version()}"


class _LongLivedStaticFiles(StaticFiles):
    """Static files that browsers may cache for a year (their URLs are versioned)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = _ASSET_CACHE_CONTROL
        return response


def graphiql_static_app() -> StaticFiles:
    """The ASGI app to mount at `GRAPHIQL_STATIC_PATH`: GraphiQL, React and plugin bundles."""
    return _LongLivedStaticFiles(directory=_static_directory())


def render_graphiql_page(*, graphql_path: str = "/graphql", subscriptions: bool = True) -> str:
    """The GraphiQL HTML page, loading only assets under `GRAPHIQL_STATIC_PATH`.

    Queries and mutations are POSTed as JSON to `graphql_path`; with `subscriptions`,
    subscription operations use graphql-transport-ws on the same path (ws:// or wss://).
    """
    config = {
        "graphqlPath": graphql_path,
        "subscriptions": subscriptions,
        "defaultQuery": DEFAULT_QUERY,
    }
    return _PAGE.substitute(
        stylesheets="\n".join(
            f'  <link rel="stylesheet" href="{_asset_url(name)}">' for name in _STYLESHEETS
        ),
        scripts="\n".join(f'  <script src="{_asset_url(name)}"></script>' for name in _SCRIPTS),
        # "<" escaped so no value can close the <script> element early.
        config=json.dumps(config).replace("<", "\\u003c"),
        boot_script=_BOOT_SCRIPT,
    )


def graphiql_response(
    *, graphql_path: str = "/graphql", subscriptions: bool = True
) -> HTMLResponse:
    """The GraphiQL page, with a Content-Security-Policy that admits only this origin."""
    return HTMLResponse(
        render_graphiql_page(graphql_path=graphql_path, subscriptions=subscriptions),
        headers={"Content-Security-Policy": GRAPHIQL_CONTENT_SECURITY_POLICY},
    )
