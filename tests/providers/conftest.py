"""Fixtures for provider adapter tests: OpenAPI request checks against ../shared/specs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from limner.testing.openapi import spec_available, spec_path, validate_request

SpecCheck = Callable[..., None]


@pytest.fixture
def spec_check() -> SpecCheck:
    """``spec_check("openai", "/images/generations", body)`` validates a request body
    against the vendor's spec; skips (saying why) when the spec file is absent."""

    def check(name: str, path: str, body: Any, **kwargs: Any) -> None:
        if not spec_available(name):
            pytest.skip(f"{spec_path(name)} not found: OpenAPI request checks need ../shared/specs")
        validate_request(name, path, body, **kwargs)

    return check
