"""Loopback HTTP fakes that speak each provider's documented protocol.

Each fake is a real aiohttp server on ``127.0.0.1:0`` that records the requests it got and
can be switched into faults (latency, 429 with Retry-After, 500/503, malformed JSON, text
instead of an image, content filtered, a result URL that 404s, connection reset, an
oversized image). Tests drive Limner's adapters against them over real HTTP.
"""

from limner.testing.fakes.base import FakeProvider, Fault, RecordedRequest, fake_png

__all__ = ["FakeProvider", "Fault", "RecordedRequest", "fake_png"]
