"""Unit-test options: ``--update-golden`` (or ``LIMNER_UPDATE_GOLDEN=1``) rewrites the golden
files under ``tests/golden`` instead of comparing against them.

Pytest registers options only from conftest files it loads at start-up, which for this one
means naming the directory: ``pytest tests/unit --update-golden``. The environment variable
works from anywhere (``LIMNER_UPDATE_GOLDEN=1 pytest``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.txt from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)``: compares ``text`` with ``tests/golden/<name>.txt`` (or
    rewrites the file when updating)."""
    updating = bool(request.config.getoption("--update-golden", default=False)) or (
        os.environ.get("LIMNER_UPDATE_GOLDEN", "") not in ("", "0")
    )

    def check(name: str, text: str) -> None:
        path = GOLDEN / f"{name}.txt"
        if updating:
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing: run pytest tests/unit --update-golden"
        expected = path.read_text(encoding="utf-8")
        assert text == expected, (
            f"{name} differs from {path}; if the change is intended, "
            "run pytest tests/unit --update-golden and review the diff"
        )

    return check
