"""The repositories against a real PostgreSQL, migrated, with no gRPC and no service process."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from db_service.migrate import apply_migrations
from scripts.infra import EmbeddedPostgres

_numbers = itertools.count(10_000_000)


@pytest.fixture(scope="session")
async def pool(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    url = postgres.ensure_database("merch_repositories")
    created = await asyncpg.create_pool(url, min_size=1, max_size=4, timeout=10)
    assert created is not None
    await apply_migrations(created)
    yield created
    await created.close()


@pytest.fixture
def unique() -> str:
    """A fresh 8-digit sid for each test: the tests share one database."""
    return str(next(_numbers))
