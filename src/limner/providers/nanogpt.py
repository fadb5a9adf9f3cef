"""NanoGPT: ``POST /v1/images/generations`` (its OpenAI-compatible endpoint) for generate
and edit alike, with its own camelCase fields for input images: ``imageDataUrl`` (one),
``imageDataUrls`` (several), ``maskDataUrl``; plus ``strength``, ``guidance_scale``,
``num_inference_steps`` and ``seed`` (per its OpenAPI spec). Results are requested as
``b64_json``; ``url`` results are accepted too. Cost comes from the response's ``cost``.

Not used: the newer normalised ``/api/v1/images`` API (different field set, no advantage
here) and the multipart ``/v1/images/edits`` alias (the JSON fields above cover edits).
NanoGPT publishes no modality-bearing image model listing in its spec, so no discovery.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from limner.domain.images import GeneratedImage, ProviderImageRequest
from limner.domain.jobs import Usage
from limner.providers.base import ProgressSink, Provider
from limner.providers.http import ProviderHttp
from limner.providers.openai import images_from_data, response_text
from limner.providers.openai_chat import OpenAIChatWriter
from limner.providers.results import data_url, no_image

if TYPE_CHECKING:
    from limner.providers import ProviderContext

DEFAULT_BASE_URL = "https://nano-gpt.com"


class NanoGptImages:
    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id

    def body(self, request: ProviderImageRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.provider_model_id,
            "prompt": request.prompt,
            "n": request.image_count,
            "size": f"{request.width}x{request.height}",
            "response_format": "b64_json",
            # Limner always picks a seed (so a resumed job renders the same image);
            # NanoGPT passes it on where the model route supports one.
            "seed": request.seed,
        }
        inputs = [data_url(i.data, i.mime_type) for i in (request.source, *request.references) if i]
        if len(inputs) == 1:
            body["imageDataUrl"] = inputs[0]
        elif inputs:
            body["imageDataUrls"] = inputs
        if request.mask is not None and inputs:
            body["maskDataUrl"] = data_url(request.mask.data, request.mask.mime_type)
        if inputs and request.strength is not None:
            body["strength"] = request.strength
        if request.guidance_scale is not None:
            body["guidance_scale"] = request.guidance_scale
        if request.steps is not None:
            body["num_inference_steps"] = request.steps
        return body

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        if request.mask is not None and request.source is None and not request.references:
            await progress.warn("PARAMETER_IGNORED", "a mask needs a source image", "mask_asset")
        await progress.step(0, 1, message="waiting for NanoGPT")
        answer = await self.http.json(
            "POST", "/v1/images/generations", json=self.body(request), on_retry=progress.retrying
        )
        if not isinstance(answer, dict):
            answer = {}
        cost = answer.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            await progress.usage(Usage(cost_usd=float(cost), provider_calls=1))
        images = images_from_data(self.provider_id, answer.get("data"))
        if not images:
            raise no_image(self.provider_id, response_text(answer))
        await progress.step(1, 1, message="NanoGPT answered")
        # The seed was sent, so it is the image's seed where the model honours one (the
        # model profile's ``supports_seed`` decides whether Limner records it).
        return [replace(image, seed=request.seed) for image in images]


def create(context: ProviderContext) -> Provider:
    # Accepts https://nano-gpt.com, …/api, …/v1 and …/api/v1 alike.
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        known_suffixes=("/v1", "/api"),
        auth_headers={"Authorization": f"Bearer {context.api_key()}"},
    )
    return Provider(
        id=context.id,
        kind="nanogpt",
        images=NanoGptImages(http, context.id),
        writer=OpenAIChatWriter(http, context.id, path="/api/v1/chat/completions"),
    )
