"""The REST API's own description: /api/v1/openapi.json (filled in by the contracts work)."""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []
