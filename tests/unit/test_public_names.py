"""The public names of ``limner.client`` (its ``aio`` and ``sync`` flavours too) and
``limner.testing``: what client projects import.

Removing or renaming one, or turning a function into something callers must use
differently (a coroutine, an async generator, an async context manager), breaks them, so
it has to show up here first. Adding a name means adding it here too.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

PUBLIC = {
    "limner.client": {
        "DownloadError": "class",
        "ErrorDetails": "class",
        "KeepAliveConfig": "class",
        "TlsConfig": "class",
        "TlsConfigError": "class",
        "aio": "module",
        "error_details": "function",
        "find_detail": "function",
        "is_logged": "function",
        "is_terminal": "function",
        "new_request_id": "function",
        "rpc_status": "function",
        "sync": "module",
        # limner.client.aio's, under their original names
        "LimnerClient": "class",
        "connect": "function",
        "design_notes": "async generator",
        "download_asset": "async function",
        "edit_avatar": "async generator",
        "edit_image": "async generator",
        "generate_avatar": "async generator",
        "generate_image": "async generator",
        "generate_scene": "async generator",
        "upload_image": "async function",
        "watch_job": "async generator",
    },
    "limner.client.aio": {
        "LimnerClient": "class",
        "connect": "function",
        "design_notes": "async generator",
        "download_asset": "async function",
        "edit_avatar": "async generator",
        "edit_image": "async generator",
        "generate_avatar": "async generator",
        "generate_image": "async generator",
        "generate_scene": "async generator",
        "upload_image": "async function",
        "watch_job": "async generator",
    },
    "limner.client.sync": {
        "LimnerClient": "class",
        "StreamEndedError": "class",
        "connect": "function",
        "design_notes": "function",
        "download_asset": "function",
        "edit_avatar": "function",
        "edit_image": "function",
        "generate_avatar": "function",
        "generate_image": "function",
        "generate_scene": "function",
        "upload_image": "function",
        "watch_job": "function",
    },
    "limner.testing": {
        "GatedImageGenerator": "class",
        "InstantImageGenerator": "class",
        "RunningServer": "class",
        "fast_settings": "function",
        "running_server": "async context manager",
    },
}


def kind(value: Any) -> str:
    if inspect.isclass(value):
        return "class"
    if inspect.iscoroutinefunction(value):
        return "async function"
    if inspect.isasyncgenfunction(value):
        return "async generator"
    if inspect.isfunction(value):
        # @asynccontextmanager keeps the async generator it wraps as __wrapped__.
        if inspect.isasyncgenfunction(getattr(value, "__wrapped__", None)):
            return "async context manager"
        return "function"
    return type(value).__name__


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_lists_exactly_the_public_names(module_name):
    module = importlib.import_module(module_name)
    assert len(module.__all__) == len(set(module.__all__)), "no name listed twice"
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])


@pytest.mark.parametrize(
    ("module_name", "name", "expected"),
    [(m, n, k) for m, names in sorted(PUBLIC.items()) for n, k in sorted(names.items())],
)
def test_each_public_name_imports_as_the_expected_kind(module_name, name, expected):
    value = getattr(importlib.import_module(module_name), name)
    assert kind(value) == expected
