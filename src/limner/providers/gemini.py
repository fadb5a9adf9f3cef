"""Google Gemini API (generativelanguage): images, writers and model discovery.

Images: ``POST {root}/v1beta/models/{model}:generateContent`` with the prompt and inline
images as ``parts``, ``responseModalities: ["TEXT","IMAGE"]`` and ``imageConfig.aspectRatio``
(provider-apis.md §4). Writers: ``:streamGenerateContent?alt=sse``, text parts forwarded as
they arrive. The key goes in the ``x-goog-api-key`` header, never in ``?key=`` (URLs end up
in access logs). A configured base of the bare host, ``…/v1`` or ``…/v1beta`` all resolve
to ``…/v1beta`` (the reference app built ``/v1/v1beta``).

Not supported (on purpose): ``imageConfig.imageSize`` (2K/4K exist only for some models and
the listing does not say which), ``candidateCount`` > 1 (unconfirmed for image models; one
call per image instead), the Files API (inline data covers Limner's asset sizes), and the
Vertex-only ``imageConfig`` keys.
"""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from limner.domain.images import GeneratedImage, ProviderImageRequest
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered, ProviderAuthFailed, ProviderRejected, Unavailable
from limner.providers.base import (
    DiscoveredModel,
    OnDelta,
    OnRetry,
    ProgressSink,
    Provider,
    WriterOutput,
    WriterRequest,
)
from limner.providers.http import ProviderHttp, scrub, sse_json
from limner.providers.results import decode_base64, no_image

if TYPE_CHECKING:
    from limner.providers import ProviderContext

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
KNOWN_SUFFIXES = ("/v1beta", "/v1")
API_PATH = "/v1beta"
MAX_LISTING_PAGES = 20

# Finish reasons (per candidate) and block reasons (per prompt) that mean "refused".
FILTERED_FINISH_REASONS = frozenset(
    {
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
    }
)

# The pixel size each aspect ratio renders at the default 1K tier (Gemini image models;
# OpenRouter documents the same table for its ``image_config.aspect_ratio``).
ASPECT_SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
ASPECT_RATIOS = tuple(ASPECT_SIZES)


def _ratio_value(ratio: str) -> float | None:
    width, sep, height = ratio.partition(":")
    try:
        value = float(width) / float(height) if sep else None
    except (ValueError, ZeroDivisionError):
        return None
    return value if value and value > 0 else None


def _nearest(value: float, ratios: tuple[str, ...]) -> str:
    # Distance on a log scale, so 2:1 and 1:2 are equally far from 1:1.
    return min(ratios, key=lambda r: abs(math.log(value / (_ratio_value(r) or 1.0))))


def choose_aspect_ratio(request: ProviderImageRequest, ratios: tuple[str, ...]) -> tuple[str, str]:
    """The aspect ratio to ask for and, when the request cannot be honoured exactly, what
    changed (for a ``SIZE_ADJUSTED`` warning; empty otherwise). An explicit
    ``aspect_ratio`` wins; else it is the ratio nearest to ``width`` x ``height``."""
    if request.aspect_ratio:
        if request.aspect_ratio in ratios:
            return request.aspect_ratio, ""
        value = _ratio_value(request.aspect_ratio)
        if value is not None:
            chosen = _nearest(value, ratios)
            return chosen, (
                f"aspect ratio {request.aspect_ratio} is not offered; using {chosen} "
                f"(offered: {', '.join(ratios)})"
            )
    chosen = _nearest(request.width / request.height, ratios)
    size = ASPECT_SIZES.get(chosen)
    if size == (request.width, request.height):
        return chosen, ""
    about = f" (about {size[0]}x{size[1]})" if size else ""
    return chosen, (
        f"renders aspect ratios, not pixel sizes: {request.width}x{request.height} "
        f"becomes {chosen}{about}"
    )


def unsupported_fields(
    request: ProviderImageRequest, *, strength: bool = False
) -> list[tuple[str, str]]:
    """(what, request field) for everything set that a prompt-plus-images API has no field
    for, so the adapter can warn instead of dropping it silently."""
    fields = [
        ("negative prompts", "options.negative_prompt", bool(request.negative_prompt)),
        ("steps", "options.steps", request.steps is not None),
        ("guidance scale", "options.guidance_scale", request.guidance_scale is not None),
        ("samplers", "options.sampler", bool(request.sampler)),
        ("masks", "mask_asset", request.mask is not None),
        ("edit strength", "strength", not strength and request.strength is not None),
    ]
    return [(what, name) for what, name, present in fields if present]


class GeminiImages:
    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        for what, name in unsupported_fields(request):
            await progress.warn(
                "PARAMETER_IGNORED",
                f"providers/{self.provider_id} (Gemini) has no field for {what}; ignored",
                name,
            )
        ratio, adjusted = choose_aspect_ratio(request, ASPECT_RATIOS)
        if adjusted:
            await progress.warn(
                "SIZE_ADJUSTED", f"providers/{self.provider_id} {adjusted}", "options.width"
            )
        images: list[GeneratedImage] = []
        # One image per call (whether image models honour candidateCount is unconfirmed).
        for call in range(request.image_count):
            seed = request.seed + call
            body = self.body(request, ratio, seed)
            answer = await _call(
                self.http, self.provider_id, request.provider_model_id, body, progress.retrying
            )
            usage = gemini_usage(answer.get("usageMetadata") if isinstance(answer, dict) else None)
            if usage is not None:
                await progress.usage(usage)
            found, text = parse_response(self.provider_id, answer)
            if not found:
                raise no_image(self.provider_id, text)
            images.extend(GeneratedImage(data=i.data, seed=seed) for i in found)
            await progress.step(call + 1, request.image_count, message="image received")
            if len(images) >= request.image_count:
                break
        return images[: request.image_count]

    def body(self, request: ProviderImageRequest, ratio: str, seed: int) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": request.prompt}]
        sources = [request.source] if request.source is not None else []
        for image in [*sources, *request.references]:
            parts.append(_inline(image.data, image.mime_type))
        return {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {
                "responseModalities": ["TEXT", "IMAGE"],
                "imageConfig": {"aspectRatio": ratio},
                "seed": seed,
            },
        }


def _inline(data: bytes, mime_type: str) -> dict[str, Any]:
    return {"inline_data": {"mime_type": mime_type, "data": base64.b64encode(data).decode()}}


def _model_path(model: str, method: str) -> str:
    name = model.removeprefix("models/")
    return f"/models/{quote(name, safe='-._~')}:{method}"


async def _call(
    http: ProviderHttp, provider_id: str, model: str, body: dict[str, Any], on_retry: OnRetry
) -> Any:
    try:
        return await http.json(
            "POST", _model_path(model, "generateContent"), json=body, on_retry=on_retry
        )
    except ProviderRejected as error:
        raise _auth_error(provider_id, error) from None


def _auth_error(provider_id: str, error: ProviderRejected) -> ProviderRejected | ProviderAuthFailed:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT "API key not valid"."""
    if "api key" in error.message.lower():
        return ProviderAuthFailed(
            f"{error.message} (check the API key configured for providers/{provider_id})",
            metadata=error.metadata,
        )
    return error


def parse_response(provider_id: str, answer: Any) -> tuple[list[GeneratedImage], str]:
    """Images and text of one ``GenerateContentResponse`` (or stream chunk). A blocked
    prompt or a safety finish reason raises ``ContentFiltered``; thought parts are skipped."""
    if not isinstance(answer, dict):
        raise _bad_response(provider_id, "a body that is not a JSON object")
    feedback = answer.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise _filtered(provider_id, "blockReason", str(feedback["blockReason"]))
    candidates = answer.get("candidates") or []
    if not isinstance(candidates, list):
        raise _bad_response(provider_id, "candidates that are not a list")
    images: list[GeneratedImage] = []
    texts: list[str] = []
    filtered = ""
    for candidate in candidates:
        if not isinstance(candidate, dict):
            raise _bad_response(provider_id, "a candidate that is not an object")
        reason = str(candidate.get("finishReason") or "")
        if reason in FILTERED_FINISH_REASONS:
            filtered = reason
        content = candidate.get("content") or {}
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            inline = part.get("inlineData") or part.get("inline_data")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                images.append(GeneratedImage(data=decode_base64(provider_id, inline["data"])))
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    if filtered and not images:
        raise _filtered(provider_id, "finishReason", filtered)
    return images, "".join(texts)


def gemini_usage(metadata: Any) -> Usage | None:
    if not isinstance(metadata, dict):
        return None
    prompt = _int(metadata.get("promptTokenCount"))
    # Thinking tokens are billed as output.
    output = _int(metadata.get("candidatesTokenCount")) + _int(metadata.get("thoughtsTokenCount"))
    total = _int(metadata.get("totalTokenCount")) or prompt + output
    return Usage(input_tokens=prompt, output_tokens=output, total_tokens=total, provider_calls=1)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _filtered(provider_id: str, field: str, reason: str) -> ContentFiltered:
    return ContentFiltered(
        f"providers/{provider_id} refused this request ({field} {scrub(reason, 60)})",
        metadata={"provider": provider_id, field: scrub(reason, 60)},
    )


def _bad_response(provider_id: str, what: str) -> Unavailable:
    return Unavailable(
        f"providers/{provider_id} answered generateContent with {what}",
        reason="PROVIDER_BAD_RESPONSE",
        metadata={"provider": provider_id},
    )


class GeminiWriter:
    """``streamGenerateContent?alt=sse``: text deltas as chunks arrive, inline images
    collected, usage from the last chunk that carries ``usageMetadata``."""

    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id

    def body(self, request: WriterRequest) -> dict[str, Any]:
        contents: list[dict[str, Any]] = []
        system: list[dict[str, Any]] = []
        for message in request.messages:
            parts: list[dict[str, Any]] = [
                {"text": part} if isinstance(part, str) else _inline(part.data, part.mime_type)
                for part in message.content()
            ]
            if message.role == "system":
                system.extend(parts)
            elif parts:
                role = "model" if message.role == "assistant" else "user"
                contents.append({"role": role, "parts": parts})
        config: dict[str, Any] = {"maxOutputTokens": request.max_output_tokens}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        body: dict[str, Any] = {"contents": contents, "generationConfig": config}
        if system:
            body["systemInstruction"] = {"parts": system}
        return body

    async def write(
        self, request: WriterRequest, on_delta: OnDelta, *, on_retry: OnRetry | None = None
    ) -> WriterOutput:
        texts: list[str] = []
        images: list[GeneratedImage] = []
        usage: Usage | None = None
        path = _model_path(request.provider_model_id, "streamGenerateContent")
        try:
            async for event in self.http.sse(
                "POST", path, params={"alt": "sse"}, json=self.body(request), on_retry=on_retry
            ):
                if not event.data.strip():
                    continue
                chunk = sse_json(self.provider_id, event)
                if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
                    message = str(chunk["error"].get("message") or "error")
                    raise Unavailable(
                        f"providers/{self.provider_id} failed mid-stream: {scrub(message)}",
                        metadata={"provider": self.provider_id},
                        retry_after_s=1.0,
                    )
                found, text = parse_response(self.provider_id, chunk)
                images.extend(found)
                if text:
                    texts.append(text)
                    await on_delta(text)
                usage = gemini_usage(chunk.get("usageMetadata")) or usage
        except ProviderRejected as error:
            raise _auth_error(self.provider_id, error) from None
        return WriterOutput(text="".join(texts), usage=usage, images=tuple(images))


class GeminiModels:
    """``GET /v1beta/models``. The listing has no modality fields, so modalities come from
    the name: models with "image" in it (gemini-2.5-flash-image, ...) take text+image and
    give image+text, all others take text+image and give text. Only models that support
    ``generateContent`` are listed (Imagen's ``predict`` and embeddings are left out)."""

    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id

    async def list_models(self) -> list[DiscoveredModel]:
        found: list[DiscoveredModel] = []
        params = {"pageSize": "1000"}
        for _ in range(MAX_LISTING_PAGES):
            try:
                page = await self.http.json("GET", "/models", params=params)
            except ProviderRejected as error:
                raise _auth_error(self.provider_id, error) from None
            if not isinstance(page, dict):
                raise _bad_response(self.provider_id, "a model listing that is not an object")
            for model in page.get("models") or []:
                discovered = _discovered(model)
                if discovered is not None:
                    found.append(discovered)
            token = page.get("nextPageToken")
            if not isinstance(token, str) or not token:
                break
            params = {"pageSize": "1000", "pageToken": token}
        return found


def _discovered(model: Any) -> DiscoveredModel | None:
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return None
    methods = model.get("supportedGenerationMethods") or []
    if "generateContent" not in methods:
        return None
    model_id = model["name"].removeprefix("models/")
    outputs = {"image", "text"} if "image" in model_id.lower() else {"text"}
    return DiscoveredModel(
        provider_model_id=model_id,
        display_name=str(model.get("displayName") or model_id),
        input_modalities=frozenset({"text", "image"}),
        output_modalities=frozenset(outputs),
    )


def create(context: ProviderContext) -> Provider:
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        known_suffixes=KNOWN_SUFFIXES,
        auth_headers={"x-goog-api-key": context.api_key()},
    )
    http.base_url += API_PATH
    return Provider(
        id=context.id,
        kind="gemini",
        images=GeminiImages(http, context.id),
        writer=GeminiWriter(http, context.id),
        lister=GeminiModels(http, context.id),
    )
