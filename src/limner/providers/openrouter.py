"""OpenRouter: images through chat completions, writers, and model discovery.

Images: ``POST /api/v1/chat/completions`` with ``modalities`` and ``image_config``
(provider-apis.md §3.1). The request shape must follow the model's output modalities
(``["image","text"]`` to an image-only model is a 404), but an adapter only sees the
provider's model id, so it asks OpenRouter itself: ``GET /api/v1/models?output_modalities=image``
once per ``LISTING_TTL_S``, falling back to ``["image","text"]`` for models it does not list.
When OpenRouter still answers 404 "No endpoints found that support the requested output
modalities" to ``["image","text"]``, the call is repeated once with ``["image"]`` and that
answer is remembered for the model.

Not supported (on purpose): the 2026 ``POST /api/v1/images`` API (the issue names chat
completions; its partial-image stream would be the one gain), ``image_config.image_size``
(tiers differ per model and are not declared in the listing), and any fixed
``HTTP-Referer``/``X-OpenRouter-Title`` attribution (set them through ``extra_headers``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from limner.domain.images import GeneratedImage, ProviderImageRequest, SourceImage
from limner.errors import ContentFiltered, LimnerError, ProviderRejected, Unavailable
from limner.providers.base import DiscoveredModel, ProgressSink, Provider
from limner.providers.gemini import (
    FILTERED_FINISH_REASONS,
    choose_aspect_ratio,
    unsupported_fields,
)
from limner.providers.http import OnRetry, ProviderHttp, scrub
from limner.providers.openai_chat import OpenAIChatWriter, chat_images, chat_usage
from limner.providers.results import data_url, no_image

if TYPE_CHECKING:
    from limner.providers import ProviderContext

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
# Configured bases may end in any of these; the adapter always talks to ``{root}/api/v1``.
KNOWN_SUFFIXES = ("/chat/completions", "/api/v1", "/api", "/v1")
API_PATH = "/api/v1"
LISTING_TTL_S = 600.0
# After a failed listing, wait this long before asking again (jobs fall back meanwhile).
LISTING_FAILURE_TTL_S = 60.0
MAX_LISTING_PAGES = 20
NO_ENDPOINTS = "no endpoints found that support the requested output modalities"
DEFAULT_MODALITIES = ("image", "text")
# Image models behind OpenRouter, as of 2026 (docs table; Gemini models add 1:4, 4:1, ...).
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


class OpenRouterImages:
    def __init__(self, http: ProviderHttp, provider_id: str, lister: OpenRouterModels) -> None:
        self.http = http
        self.provider_id = provider_id
        self.models = lister

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        for what, name in unsupported_fields(request, strength=True):
            await progress.warn(
                "PARAMETER_IGNORED",
                f"providers/{self.provider_id} (OpenRouter chat completions) has no field for "
                f"{what}; ignored",
                name,
            )
        ratio, adjusted = choose_aspect_ratio(request, ASPECT_RATIOS)
        if adjusted:
            await progress.warn(
                "SIZE_ADJUSTED", f"providers/{self.provider_id} {adjusted}", "options.width"
            )
        modalities = await self.models.modalities_for(
            request.provider_model_id, on_retry=progress.retrying
        )
        body = self.body(request, ratio, modalities)
        images: list[GeneratedImage] = []
        # Chat completions answer with one image per call in practice; ask until we have
        # as many as requested (the profile caps ``image_count``).
        for call in range(request.image_count):
            body["seed"] = request.seed + call
            found = await self._call(request, body, progress)
            images.extend(GeneratedImage(data=i.data, url=i.url, seed=body["seed"]) for i in found)
            await progress.step(call + 1, request.image_count, message="image received")
            if len(images) >= request.image_count:
                break
        return images[: request.image_count]

    def body(
        self, request: ProviderImageRequest, ratio: str, modalities: tuple[str, ...]
    ) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
        # The text goes first, then the images (the source before the references).
        inputs: list[SourceImage] = [request.source] if request.source is not None else []
        for image in [*inputs, *request.references]:
            url = data_url(image.data, image.mime_type)
            content.append({"type": "image_url", "image_url": {"url": url}})
        image_config: dict[str, Any] = {"aspect_ratio": ratio}
        if request.source is not None and request.strength is not None:
            # A documented provider-specific ``image_config`` key for image-to-image models.
            image_config["strength"] = request.strength
        return {
            "model": request.provider_model_id,
            "messages": [{"role": "user", "content": content}],
            "modalities": list(modalities),
            "image_config": image_config,
            "seed": request.seed,
            "stream": False,
        }

    async def _call(
        self, request: ProviderImageRequest, body: dict[str, Any], progress: ProgressSink
    ) -> list[GeneratedImage]:
        try:
            answer = await self.http.json(
                "POST", "/chat/completions", json=body, on_retry=progress.retrying
            )
        except ProviderRejected as error:
            if not (_is_no_endpoints(error) and body["modalities"] != ["image"]):
                raise
            # The model outputs images only; remember that and ask the way it accepts.
            self.models.learn(request.provider_model_id, ("image",))
            body["modalities"] = ["image"]
            answer = await self.http.json(
                "POST", "/chat/completions", json=body, on_retry=progress.retrying
            )
        usage = chat_usage(answer.get("usage") if isinstance(answer, dict) else None)
        if usage is not None:
            await progress.usage(usage)
        return parse_completion(self.provider_id, answer)


def parse_completion(provider_id: str, answer: Any) -> list[GeneratedImage]:
    """Images of a whole (non-streamed) completion; a filtered answer raises
    ``ContentFiltered`` and a text-only one ``NoImageReturned``."""
    if not isinstance(answer, dict):
        raise _bad_response(provider_id, "a body that is not a JSON object")
    if answer.get("error"):
        raise _body_error(provider_id, answer["error"])
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _bad_response(provider_id, "no choices")
    images: list[GeneratedImage] = []
    texts: list[str] = []
    filtered = ""
    for choice in choices:
        if not isinstance(choice, dict):
            raise _bad_response(provider_id, "a choice that is not an object")
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _bad_response(provider_id, "a choice without a message")
        images.extend(chat_images(provider_id, message.get("images")))
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        # OpenRouter normalises to ``content_filter``; ``native_finish_reason`` keeps the
        # upstream's own (Gemini's IMAGE_SAFETY, ...); a refusal is the model declining.
        native = str(choice.get("native_finish_reason") or "").upper()
        if choice.get("finish_reason") == "content_filter" or native in FILTERED_FINISH_REASONS:
            filtered = native or "content_filter"
        elif message.get("refusal"):
            filtered = f"refusal: {scrub(str(message['refusal']), 120)}"
    if images:
        return images
    if filtered:
        raise ContentFiltered(
            f"providers/{provider_id} refused to draw this prompt ({filtered})",
            metadata={"provider": provider_id, "finishReason": filtered[:60]},
        )
    raise no_image(provider_id, " ".join(texts))


def _is_no_endpoints(error: ProviderRejected) -> bool:
    return error.metadata.get("providerStatus") == "404" and NO_ENDPOINTS in error.message.lower()


def _body_error(provider_id: str, error: Any) -> LimnerError:
    """An ``error`` object inside a 200 answer (an upstream failure OpenRouter relays)."""
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message") if isinstance(error, dict) else error)
    text = f"providers/{provider_id} reported an upstream error: {scrub(message)}"
    metadata = {"provider": provider_id, "providerStatus": str(code)}
    if code == 403 or "moderation" in message.lower():
        return ContentFiltered(text, metadata=metadata)
    return Unavailable(text, metadata=metadata, retry_after_s=1.0)


def _bad_response(provider_id: str, what: str) -> Unavailable:
    return Unavailable(
        f"providers/{provider_id} answered the chat completion with {what}",
        reason="PROVIDER_BAD_RESPONSE",
        metadata={"provider": provider_id},
    )


class OpenRouterModels:
    """Model discovery (``list_models``) and the cached output modalities image requests
    are shaped by."""

    def __init__(self, http: ProviderHttp, provider_id: str, ttl_s: float = LISTING_TTL_S):
        self.http = http
        self.provider_id = provider_id
        self.ttl_s = ttl_s
        self._outputs: dict[str, frozenset[str]] = {}
        self._learned: dict[str, tuple[str, ...]] = {}
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def list_models(self) -> list[DiscoveredModel]:
        """Every model (``output_modalities=all``; the default would list text models
        only) whose input and output include text or image; other modalities dropped."""
        found = []
        for model in await self._listing("all"):
            found.append(
                DiscoveredModel(
                    provider_model_id=model["id"],
                    display_name=str(model.get("name") or model["id"]),
                    input_modalities=model["inputs"],
                    output_modalities=model["outputs"],
                )
            )
        return [m for m in found if m.input_modalities and m.output_modalities]

    def learn(self, model_id: str, modalities: tuple[str, ...]) -> None:
        self._learned[model_id] = modalities

    async def modalities_for(self, model_id: str, *, on_retry: OnRetry | None) -> tuple[str, ...]:
        """``["image"]`` for image-only models, else ``["image","text"]``."""
        if model_id in self._learned:
            return self._learned[model_id]
        async with self._lock:
            if time.monotonic() >= self._expires:
                try:
                    listed = await self._listing("image", on_retry=on_retry)
                except LimnerError as error:
                    # The listing only shapes the request; the call itself may still work.
                    log.warning(
                        "providers/%s: model listing failed (%s); using %s",
                        self.provider_id,
                        error.message,
                        list(DEFAULT_MODALITIES),
                    )
                    self._expires = time.monotonic() + LISTING_FAILURE_TTL_S
                else:
                    self._outputs = {m["id"]: m["outputs"] for m in listed}
                    self._expires = time.monotonic() + self.ttl_s
        outputs = self._outputs.get(model_id)
        if outputs is not None and outputs == {"image"}:
            return ("image",)
        return DEFAULT_MODALITIES

    async def _listing(
        self, output_modalities: str, *, on_retry: OnRetry | None = None
    ) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = []
        path = "/models"
        params: dict[str, str] | None = {"output_modalities": output_modalities}
        for _ in range(MAX_LISTING_PAGES):
            page = await self.http.json("GET", path, params=params, on_retry=on_retry)
            if not isinstance(page, dict) or not isinstance(page.get("data"), list):
                raise _bad_response(self.provider_id, "a model listing without data[]")
            models.extend(m for m in map(_listed_model, page["data"]) if m is not None)
            links = page.get("links")
            following = links.get("next") if isinstance(links, dict) else None
            # Only relative links on our own API: an absolute one would carry the key away.
            if not isinstance(following, str) or not following.startswith(f"{API_PATH}/models"):
                break
            path, params = following.removeprefix(API_PATH), None
        return models


def _listed_model(model: Any) -> dict[str, Any] | None:
    if not isinstance(model, dict) or not isinstance(model.get("id"), str):
        return None
    architecture = model.get("architecture")
    if not isinstance(architecture, dict):
        return None
    return {
        "id": model["id"],
        "name": model.get("name"),
        "inputs": _modalities(architecture.get("input_modalities")),
        "outputs": _modalities(architecture.get("output_modalities")),
    }


def _modalities(values: Any) -> frozenset[str]:
    """Text and image, the two Limner knows; audio, video, embeddings, ... are dropped."""
    if not isinstance(values, list):
        return frozenset()
    return frozenset(v for v in values if v in ("text", "image"))


def create(context: ProviderContext) -> Provider:
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        known_suffixes=KNOWN_SUFFIXES,
        auth_headers={"Authorization": f"Bearer {context.api_key()}"},
    )
    http.base_url += API_PATH
    models = OpenRouterModels(http, context.id)
    return Provider(
        id=context.id,
        kind="openrouter",
        images=OpenRouterImages(http, context.id, models),
        # The spec marks ``max_tokens`` deprecated in favour of ``max_completion_tokens``.
        writer=OpenAIChatWriter(http, context.id, max_tokens_field="max_completion_tokens"),
        lister=models,
    )
