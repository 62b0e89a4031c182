"""What the gateway's lifespan does once at startup."""

from __future__ import annotations

import gc

from gateway.app import create_app
from gateway.settings import Settings


async def test_startup_freezes_the_heap_it_built() -> None:
    gc.unfreeze()
    # Nothing listens on these ports: the channels connect lazily, and no request is made.
    settings = Settings(
        merch_env="development", db_service_addr="127.0.0.1:9", logging_service_addr="127.0.0.1:9"
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000  # the schema, modules, channels…
    finally:
        gc.unfreeze()


async def test_the_app_runs_with_the_configured_young_threshold_and_gives_it_back() -> None:
    before = gc.get_threshold()
    settings = Settings(
        merch_env="development",
        db_service_addr="127.0.0.1:9",
        logging_service_addr="127.0.0.1:9",
        gc_young_threshold=4321,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == (4321, *before[1:])
    finally:
        gc.unfreeze()
    assert gc.get_threshold() == before
