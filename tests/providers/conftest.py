"""Fixtures for provider adapter tests: OpenAPI request checks against the specs vendored in
tests/providers/specs, and an HTTP client for adapters called directly. The helpers the
test modules import are in provider_helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from provider_helpers import validate_request

SpecCheck = Callable[..., None]


@pytest.fixture
def spec_check() -> SpecCheck:
    """``spec_check("openai", "/images/generations", body)`` validates a request body
    against the vendor's spec (see ``provider_helpers.validate_request``); a missing spec
    file fails the test."""
    return validate_request


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http
