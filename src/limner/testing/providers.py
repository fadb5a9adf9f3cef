"""Scriptable image generators for tests and benchmarks."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from limner.domain.images import GeneratedImage, ProviderImageRequest
from limner.errors import LimnerError
from limner.providers.base import ProgressSink, Provider


def solid_png(
    width: int = 64, height: int = 64, colour: tuple[int, int, int] = (40, 90, 160)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class InstantImageGenerator:
    """Answers at once with the same image: measures Limner, not a model."""

    def __init__(self, image: bytes) -> None:
        self.image = image
        self.calls = 0

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        self.calls += 1
        return [GeneratedImage(data=self.image, seed=request.seed)]


class GatedImageGenerator:
    """Reports step 1, then waits until the test opens the gate (or raises ``fail_with``).
    Lets tests hold a job mid-flight to disconnect, cancel or restart around it."""

    def __init__(self, image: bytes | None = None) -> None:
        self.image = image or solid_png()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.fail_with: LimnerError | None = None
        self.empty_answers = 0
        self.calls = 0

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        self.calls += 1
        await progress.step(1, 2, message="gated step")
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if self.fail_with is not None:
            raise self.fail_with
        if self.empty_answers > 0:
            self.empty_answers -= 1
            return []
        await progress.step(2, 2, message="gated step")
        return [GeneratedImage(data=self.image, seed=request.seed)]


def replacing_offline(generator: object) -> dict[str, Provider]:
    """Providers for ``App(providers=...)`` that swap the offline image adapter for
    ``generator`` (the offline writer stays)."""
    return {"offline": Provider(id="offline", kind="offline", images=generator)}  # type: ignore[arg-type]
