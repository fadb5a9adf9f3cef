"""Helpers for testing Limner and code that uses it: in-process servers and scriptable
providers. Shipped with the package so client projects can reuse them."""

from limner.testing.providers import GatedImageGenerator, InstantImageGenerator
from limner.testing.server import RunningServer, fast_settings, running_server

__all__ = [
    "GatedImageGenerator",
    "InstantImageGenerator",
    "RunningServer",
    "fast_settings",
    "running_server",
]
