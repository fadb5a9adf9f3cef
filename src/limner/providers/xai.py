"""xAI (Grok) image generation: ``/v1/images/generations`` and ``/v1/images/edits``, both
JSON. Edit inputs go as data URLs (one: ``image: {url}``, several: ``images: [{url}, ...]``).

xAI takes an aspect ratio and a resolution, not pixel sizes: the requested ``width x height``
is mapped to the nearest ratio xAI renders and the nearest resolution (1k / 1.5k / 2k), with
a ``SIZE_ADJUSTED`` warning when that is not exact. ``size``, ``quality`` and ``style`` are
never sent (xAI rejects them). Results are requested as ``b64_json``; hosted URLs are
accepted too, and a stray ``data:`` prefix inside ``b64_json`` is tolerated.
Usage: ``cost_in_usd_ticks`` (1 USD cent = 10^8 ticks, so 1 USD = 10^10 ticks).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from limner.domain.images import GeneratedImage, ProviderImageRequest
from limner.domain.jobs import Usage
from limner.providers.base import DiscoveredModel, ProgressSink, Provider
from limner.providers.http import ProviderHttp
from limner.providers.openai import images_from_data, response_text
from limner.providers.openai_chat import OpenAIChatWriter
from limner.providers.results import data_url, no_image

if TYPE_CHECKING:
    from limner.providers import ProviderContext

DEFAULT_BASE_URL = "https://api.x.ai/v1"
TICKS_PER_USD = 10**10
ASPECT_RATIOS = (
    "1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9",
    "1:2", "2:1", "21:9", "5:2",
)  # fmt: skip
RESOLUTIONS = {"1k": 1024, "1.5k": 1536, "2k": 2048}


def _ratio(name: str) -> float:
    width, _, height = name.partition(":")
    return float(width) / float(height)


def aspect_and_resolution(width: int, height: int, requested: str = "") -> tuple[str, str, bool]:
    """(aspect_ratio, resolution, exact) for a size; a caller-given ratio xAI knows wins."""
    if requested in ASPECT_RATIOS:
        ratio, exact = requested, True
    else:
        wanted = math.log(width / height)
        ratio = min(ASPECT_RATIOS, key=lambda r: abs(math.log(_ratio(r)) - wanted))
        exact = math.isclose(_ratio(ratio), width / height, rel_tol=1e-3)
    long_side = max(width, height)
    resolution = min(RESOLUTIONS, key=lambda r: abs(RESOLUTIONS[r] - long_side))
    return ratio, resolution, exact and RESOLUTIONS[resolution] == long_side


def xai_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    ticks = usage.get("cost_in_usd_ticks")
    tokens = [usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")]
    ins, outs, total = (t if isinstance(t, int) else 0 for t in tokens)
    return Usage(
        input_tokens=ins,
        output_tokens=outs,
        total_tokens=total or ins + outs,
        cost_usd=ticks / TICKS_PER_USD if isinstance(ticks, int | float) else 0.0,
        provider_calls=1,
    )


class XaiImages:
    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        body: dict[str, Any] = {
            "model": request.provider_model_id,
            "prompt": request.prompt,
            "n": request.image_count,
            "response_format": "b64_json",
        }
        await self._size(request, body, progress)
        inputs = [i for i in (request.source, *request.references) if i is not None]
        if request.mask is not None:
            # Only a third-party copy of xAI's docs mentions ``mask``; not sent.
            await progress.warn(
                "PARAMETER_IGNORED", "xAI image edits take no mask; it was not sent", "mask_asset"
            )
        refs = [{"url": data_url(i.data, i.mime_type)} for i in inputs]
        if len(refs) == 1:
            body["image"] = refs[0]
        elif refs:
            body["images"] = refs
        path = "/v1/images/edits" if refs else "/v1/images/generations"
        await progress.step(0, 1, message="waiting for xAI")
        answer = await self.http.json("POST", path, json=body, on_retry=progress.retrying)
        if not isinstance(answer, dict):
            answer = {}
        usage = xai_usage(answer.get("usage"))
        if usage is not None:
            await progress.usage(usage)
        images = images_from_data(self.provider_id, answer.get("data"))
        if not images:
            raise no_image(self.provider_id, response_text(answer))
        await progress.step(1, 1, message="xAI answered")
        return images

    async def _size(
        self, request: ProviderImageRequest, body: dict[str, Any], progress: ProgressSink
    ) -> None:
        if request.provider_model_id.startswith("grok-2"):
            # The legacy model renders one size and rejects ratio and resolution fields.
            if (request.width, request.height) != (1024, 1024) or request.aspect_ratio:
                await progress.warn(
                    "SIZE_ADJUSTED",
                    f"{request.provider_model_id} renders one size; "
                    f"{request.width}x{request.height} not sent",
                    "options.width",
                )
            return
        ratio, resolution, exact = aspect_and_resolution(
            request.width, request.height, request.aspect_ratio
        )
        body["aspect_ratio"], body["resolution"] = ratio, resolution
        if not exact:
            await progress.warn(
                "SIZE_ADJUSTED",
                f"xAI renders aspect ratios, not pixel sizes: {request.width}x{request.height} "
                f"sent as aspect_ratio {ratio} at resolution {resolution}",
                "options.width",
            )


class XaiModels:
    """``GET /v1/image-generation-models``: ids with declared modalities."""

    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def list_models(self) -> list[DiscoveredModel]:
        body = await self.http.json("GET", "/v1/image-generation-models")
        found = []
        for item in body.get("models", []) if isinstance(body, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            inputs = item.get("input_modalities") or ["text"]
            outputs = item.get("output_modalities") or ["image"]
            found.append(
                DiscoveredModel(
                    provider_model_id=item["id"],
                    display_name=item["id"],
                    input_modalities=frozenset(m for m in inputs if m in ("text", "image")),
                    output_modalities=frozenset(m for m in outputs if m in ("text", "image")),
                )
            )
        return found


def create(context: ProviderContext) -> Provider:
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        known_suffixes=("/v1",),
        auth_headers={"Authorization": f"Bearer {context.api_key()}"},
    )
    return Provider(
        id=context.id,
        kind="xai",
        images=XaiImages(http, context.id),
        writer=OpenAIChatWriter(http, context.id, path="/v1/chat/completions"),
        lister=XaiModels(http),
    )
