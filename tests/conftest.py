"""Shared fixtures: a real server on 127.0.0.1:0 over a real database.

Tests marked with the ``backend`` fixture run twice: on SQLite and on PostgreSQL. The
PostgreSQL run needs ``LIMNER_TEST_POSTGRES_URL`` (``make test`` starts a server and sets
it); without it those cases skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from limner.providers import Provider
from limner.testing import RunningServer, fast_settings, running_server
from limner.testing.providers import GatedImageGenerator, replacing_offline

POSTGRES_URL = os.environ.get("LIMNER_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database per test: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'limner.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set LIMNER_TEST_POSTGRES_URL (make test does)")
    import asyncpg

    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"limner_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await _drop_database(admin_dsn, name)


async def _drop_database(admin_dsn: str, name: str) -> None:
    """Drop a test database, retrying briefly: a session that is still closing (or a
    background worker) can make the first forced drop fail."""
    import asyncio

    import asyncpg

    for attempt in range(5):
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.PostgresError:
            if attempt == 4:
                raise
        finally:
            await admin.close()
        await asyncio.sleep(0.2 * (attempt + 1))


ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def make_server(tmp_path: Path) -> ServerFactory:
    """Builds servers over one data directory (start, stop and start again to test
    restarts). Keyword arguments override settings; ``providers`` injects adapters."""

    def factory(
        database_url: str = "",
        providers: dict[str, Provider] | None = None,
        **overrides: Any,
    ) -> AbstractAsyncContextManager[RunningServer]:
        settings = fast_settings(tmp_path / "data", database_url, **overrides)
        return running_server(settings, providers=providers)

    return factory


@pytest.fixture
async def server(make_server: ServerFactory) -> AsyncIterator[RunningServer]:
    async with make_server() as running:
        yield running


@pytest.fixture
def gated() -> GatedImageGenerator:
    return GatedImageGenerator()


def gated_provider(generator: GatedImageGenerator) -> dict[str, Provider]:
    """Replaces the offline provider's image adapter with ``generator``."""
    return replacing_offline(generator)
