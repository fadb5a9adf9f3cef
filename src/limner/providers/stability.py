"""Stability AI REST v2beta Stable Image: ``generate/core``, ``generate/ultra`` and
``generate/sd3`` (multipart, ``Accept: application/json``). Wire format: provider-apis.md §5.1.

The model's ``provider_model_id`` picks the endpoint: ``core``, ``ultra``, or an SD3 model
id (``sd3.5-large``, ``sd3.5-large-turbo``, ...) sent as the ``model`` field of ``/sd3``.
One image per call, one input image per request; no model listing.
"""

from __future__ import annotations

import asyncio
import io
import math
from typing import Any

from PIL import Image

from limner.domain.images import GeneratedImage, ProviderImageRequest, SourceImage
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered, Unavailable
from limner.providers import ProviderContext
from limner.providers.base import ProgressSink, Provider
from limner.providers.http import ProviderHttp
from limner.providers.results import decode_base64, no_image

DEFAULT_BASE_URL = "https://api.stability.ai"
GENERATE = "/v2beta/stable-image/generate"
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
MAX_SEED = 4_294_967_294
# How far an image input may be changed when the request names no strength (a reference
# on a generate request): keeps its composition, redraws most details.
DEFAULT_STRENGTH = 0.6


def create(context: ProviderContext) -> Provider:
    headers = {"Accept": "application/json"}  # base64 JSON, with finish_reason and seed
    if context.api_key():
        headers["Authorization"] = f"Bearer {context.api_key()}"
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        known_suffixes=(GENERATE, "/v2beta/stable-image", "/v2beta", "/v1"),
        auth_headers=headers,
    )
    return Provider(id=context.id, kind="stability", images=StabilityImages(http))


class StabilityImages:
    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        fields, image = await self._fields(request, progress)
        endpoint = _endpoint(request.provider_model_id)
        # multipart/form-data even without a file: send a dummy part, as Stability's docs do.
        files: dict[str, Any] = {"none": ("none", b"")}
        if image is not None:
            files = {"image": await asyncio.to_thread(_accepted_image, image)}
        total = request.image_count
        images = []
        # No ``n``: a request for several images is several calls, seeds counting up.
        for index in range(total):
            await progress.step(index, total, message=f"requesting image {index + 1} of {total}")
            seed = _seed(request.seed + index)
            payload = await self.http.json(
                "POST",
                f"{GENERATE}/{endpoint}",
                data={**fields, "seed": str(seed)},
                files=files,
                on_retry=progress.retrying,
            )
            await progress.usage(Usage(provider_calls=1))
            images.append(self._image(payload))
        await progress.step(total, total, message="done")
        return images

    async def _fields(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> tuple[dict[str, str], SourceImage | None]:
        """The form fields this model family accepts, and the one input image (if any).
        Anything that cannot be sent is reported as a warning."""
        model_id = request.provider_model_id.strip()
        endpoint = _endpoint(model_id)
        fields = {"prompt": request.prompt, "output_format": "png"}
        if endpoint == "sd3" and model_id.lower() != "sd3":
            fields["model"] = model_id

        inputs = ([request.source] if request.source else []) + list(request.references)
        image = inputs[0] if inputs else None
        if len(inputs) > 1:
            sent = "the source" if request.source else "the first reference"
            await progress.warn(
                "PARAMETER_IGNORED",
                f"Stability takes one input image; only {sent} is sent, "
                f"{len(inputs) - 1} other image(s) ignored",
                "reference_assets",
            )
        if image is not None and endpoint == "core":
            await progress.warn(
                "PARAMETER_IGNORED",
                "Stable Image Core has no image input; the image is rendered from the prompt alone",
                "source_asset" if request.source else "reference_assets",
            )
            image = None
        if image is not None:
            strength = DEFAULT_STRENGTH if request.strength is None else request.strength
            fields["strength"] = f"{strength:g}"
            if endpoint == "sd3":
                fields["mode"] = "image-to-image"
            if request.aspect_ratio:
                await progress.warn(
                    "PARAMETER_IGNORED",
                    "with an input image Stability keeps that image's aspect ratio",
                    "options.aspect_ratio",
                )
        else:
            fields["aspect_ratio"] = await _aspect_ratio(request, progress)

        if request.negative_prompt:
            if "turbo" in model_id.lower():
                await progress.warn(
                    "PARAMETER_IGNORED",
                    f"{model_id} is a turbo model, which takes no negative prompt",
                    "options.negative_prompt",
                )
            else:
                fields["negative_prompt"] = request.negative_prompt
        if request.guidance_scale is not None:
            if endpoint == "sd3":
                fields["cfg_scale"] = f"{request.guidance_scale:g}"
            else:
                await _ignored(progress, "options.guidance_scale", f"Stable Image {endpoint}")
        if request.steps is not None:
            await _ignored(progress, "options.steps", "Stability's API")
        if request.sampler:
            await _ignored(progress, "options.sampler", "Stability's API")
        if request.mask is not None:
            await progress.warn(
                "PARAMETER_IGNORED",
                "masks need Stability's inpaint endpoint, which Limner does not call; the "
                "whole image is reworked",
                "mask_asset",
            )
        if not 0 <= request.seed <= MAX_SEED:
            await progress.warn(
                "SEED_ADJUSTED",
                f"Stability seeds are 0 to {MAX_SEED}; sending {_seed(request.seed)}",
                "options.seed",
            )
        return fields, image

    def _image(self, payload: Any) -> GeneratedImage:
        provider_id = self.http.provider_id
        if not isinstance(payload, dict):
            raise Unavailable(
                f"providers/{provider_id} answered with JSON that is not an object",
                reason="PROVIDER_BAD_RESPONSE",
                metadata={"provider": provider_id},
            )
        finish = str(payload.get("finish_reason") or "")
        if finish == "CONTENT_FILTERED":
            # Stability still answers 200, with a blurred image: never store that.
            raise ContentFiltered(
                f"providers/{provider_id} filtered the request (finish_reason "
                "CONTENT_FILTERED); rephrase the prompt or change the input image",
                metadata={"provider": provider_id, "finishReason": finish},
            )
        encoded = payload.get("image")
        if not isinstance(encoded, str) or not encoded:
            raise no_image(provider_id, f"finish_reason {finish}" if finish else "")
        seed = payload.get("seed")
        return GeneratedImage(
            data=decode_base64(provider_id, encoded),
            seed=seed if isinstance(seed, int) else None,
        )


def _endpoint(model_id: str) -> str:
    name = model_id.strip().lower()
    if name in ("core", "ultra"):
        return name
    return "sd3"  # SD3 model ids are open strings: sd3.5-large, sd3.5-medium, ...


async def _aspect_ratio(request: ProviderImageRequest, progress: ProgressSink) -> str:
    """The request's aspect ratio if Stability has it, else the nearest one it has (to the
    asked ratio, or to width x height), with a warning when that changes the shape."""
    if request.aspect_ratio in ASPECT_RATIOS:
        return request.aspect_ratio
    asked = _ratio(request.aspect_ratio)
    if asked is not None:
        chosen = _nearest(asked)
        await progress.warn(
            "SIZE_ADJUSTED",
            f"Stability has no {request.aspect_ratio} aspect ratio; using {chosen} "
            f"(supported: {', '.join(ASPECT_RATIOS)})",
            "options.aspect_ratio",
        )
        return chosen
    chosen = _nearest(request.width / request.height)
    chosen_ratio = _ratio(chosen)
    if chosen_ratio is None or not math.isclose(chosen_ratio, request.width / request.height):
        await progress.warn(
            "SIZE_ADJUSTED",
            f"Stability renders aspect ratios, not pixel sizes; {request.width}x"
            f"{request.height} is rendered as {chosen}, at the size the model chooses",
            "options.width",
        )
    return chosen


def _ratio(text: str) -> float | None:
    width, sep, height = text.partition(":")
    try:
        value = float(width) / float(height) if sep else None
    except (ValueError, ZeroDivisionError):
        return None
    return value if value is not None and value > 0 else None


def _nearest(ratio: float) -> str:
    def distance(name: str) -> float:
        candidate = _ratio(name)
        assert candidate is not None
        return abs(math.log(candidate / ratio))

    return min(ASPECT_RATIOS, key=distance)


def _seed(seed: int) -> int:
    return seed if 0 <= seed <= MAX_SEED else seed % (MAX_SEED + 1)


def _accepted_image(image: SourceImage) -> tuple[str, bytes, str]:
    """The file part: JPEG, PNG and WebP as they are; anything else (GIF) as PNG, since
    Stability takes only those three."""
    suffix = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(image.mime_type)
    if suffix is not None:
        return f"image.{suffix}", image.data, image.mime_type
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(image.data)) as opened:
        opened.convert("RGBA").save(buffer, format="PNG")
    return "image.png", buffer.getvalue(), "image/png"


async def _ignored(progress: ProgressSink, field: str, what: str) -> None:
    await progress.warn("PARAMETER_IGNORED", f"{what} does not take {field}; ignored", field)
