"""The built-in offline provider: deterministic placeholder images and text, no keys.

It exists so the service, its demo and its tests run on a fresh machine (ARCHITECTURE
§1.9). Every image it draws says "offline placeholder" on it and in its PNG metadata, and
every text it writes starts with "[offline]": it is never presented as AI output.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from limner.domain.images import MAX_SIDE, MIN_SIDE, GeneratedImage, ProviderImageRequest
from limner.providers.base import OnDelta, OnRetry, ProgressSink, WriterOutput, WriterRequest
from limner.providers.offline_render import edit_image, render_image


@dataclass(frozen=True, kw_only=True)
class OfflineSettings:
    steps: int = 8
    # A small pause per step makes progress visible in the demo; tests set it to 0.
    step_delay_s: float = 0.05


class OfflineImageGenerator:
    def __init__(self, settings: OfflineSettings) -> None:
        self.settings = settings

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        total = max(1, self.settings.steps)
        started = time.monotonic()
        for step in range(1, total + 1):
            if self.settings.step_delay_s:
                await asyncio.sleep(self.settings.step_delay_s)
            elapsed = time.monotonic() - started
            eta = elapsed / step * (total - step)
            await progress.step(step, total, eta_s=eta, message=f"offline render step {step}")
            if step < total and progress.preview_wanted():
                preview = await asyncio.to_thread(
                    render_image,
                    request.prompt,
                    seed=request.seed,
                    width=min(max(request.width, MIN_SIDE), MAX_SIDE),
                    height=min(max(request.height, MIN_SIDE), MAX_SIDE),
                    step=step,
                    total_steps=total,
                )
                await progress.preview(preview, step)
        images = []
        for index in range(request.image_count):
            seed = request.seed + index
            data = await asyncio.to_thread(self._draw, request, seed)
            images.append(GeneratedImage(data=data, seed=seed))
        return images

    def _draw(self, request: ProviderImageRequest, seed: int) -> bytes:
        # Edits keep the source's size, which may be outside what the renderer draws.
        width = min(max(request.width, MIN_SIDE), MAX_SIDE)
        height = min(max(request.height, MIN_SIDE), MAX_SIDE)
        if request.source is not None:
            return edit_image(
                request.source.data,
                request.prompt,
                seed=seed,
                strength=0.6 if request.strength is None else request.strength,
                width=width,
                height=height,
                mask=request.mask.data if request.mask is not None else None,
            )
        return render_image(request.prompt, seed=seed, width=width, height=height)


class OfflineWriter:
    """Writes deterministic text from the request, streamed word by word."""

    def __init__(self, settings: OfflineSettings) -> None:
        self.settings = settings

    async def write(
        self, request: WriterRequest, on_delta: OnDelta, *, on_retry: OnRetry | None = None
    ) -> WriterOutput:
        last = request.messages[-1] if request.messages else None
        # content() covers both message shapes: text + images, and interleaved parts.
        images = sum(
            1
            for message in request.messages
            for part in message.content()
            if not isinstance(part, str)
        )
        last_text = " ".join(p for p in last.content() if isinstance(p, str)) if last else ""
        body = " ".join(last_text.split())[:400]
        text = f"[offline] {body} ({images} reference image(s) attached)"
        words = text.split(" ")
        for index, word in enumerate(words):
            await on_delta(word if index == 0 else " " + word)
            if self.settings.step_delay_s:
                await asyncio.sleep(self.settings.step_delay_s / 4)
        return WriterOutput(text=text)
