"""OpenAI Images API: ``/v1/images/generations`` (JSON) and ``/v1/images/edits``
(multipart, repeated ``image[]`` parts plus ``mask``), for DALL·E and GPT image models.

Model family comes from the model id: ``dall-e-*`` is DALL·E, everything else (``gpt-image-*``,
``chatgpt-image*``, future ids) is treated as a GPT image model. Each family gets only the
fields it accepts: ``response_format`` for DALL·E only; ``stream``/``partial_images`` for GPT
image only; never ``seed``, ``negative_prompt``, ``style`` or ``quality`` (the profile check
warns about the first two before the call).

Previews: a GPT image request for one image streams (``stream: true``, ``partial_images``)
whenever the job wants a preview at call time (``progress.preview_wanted()``); each
``*.partial_image`` event becomes a step and, when the sink's throttle allows, a preview.

The wire format itself (JSON generations, multipart edits, the partial-image stream, the
``data[]`` answer and its errors) is ``ImagesEndpoint``, which the ``openai-compatible``
kind (``providers/openai_compatible.py``) shares; what differs is which fields each sends.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from limner.domain.images import GeneratedImage, ProviderImageRequest, SourceImage
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered, InvalidArgument, ProviderRejected, Unavailable
from limner.providers.base import DiscoveredModel, ProgressSink, Provider
from limner.providers.http import ProviderHttp, sse_json
from limner.providers.openai_chat import OpenAIChatWriter, stream_error
from limner.providers.results import decode_base64, image_from_reference, no_image

if TYPE_CHECKING:
    from limner.providers import ProviderContext

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PARTIAL_IMAGES = 2

# Sizes the fixed-size families render; other GPT image models (gpt-image-2 and later)
# take any ``WxH`` and get the requested size as is.
_FIXED_SIZES = {
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "gpt-image-1": ((1024, 1024), (1536, 1024), (1024, 1536)),
    "chatgpt-image": ((1024, 1024), (1536, 1024), (1024, 1536)),
}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def is_dalle(model: str) -> bool:
    return model.startswith("dall-e")


def fixed_sizes(model: str) -> tuple[tuple[int, int], ...]:
    for prefix, sizes in _FIXED_SIZES.items():
        if model.startswith(prefix):
            return sizes
    return ()


def nearest_size(width: int, height: int, sizes: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The size closest in aspect ratio, then in area."""
    return min(
        sizes,
        key=lambda s: (
            round(abs(math.log((s[0] / s[1]) / (width / height))), 3),
            abs(s[0] * s[1] - width * height),
        ),
    )


def image_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    tokens = [usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")]
    ins, outs, total = (t if isinstance(t, int) else 0 for t in tokens)
    return Usage(
        input_tokens=ins, output_tokens=outs, total_tokens=total or ins + outs, provider_calls=1
    )


def images_from_data(provider_id: str, data: Any) -> list[GeneratedImage]:
    """``data[i].b64_json`` or ``data[i].url`` (xAI and NanoGPT answer in this shape too)."""
    images = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("b64_json"), str) and item["b64_json"]:
            images.append(GeneratedImage(data=decode_base64(provider_id, item["b64_json"])))
        elif isinstance(item.get("url"), str) and item["url"]:
            images.append(image_from_reference(provider_id, item["url"]))
    return images


def response_text(body: Any) -> str:
    """Text the provider sent instead of an image (``revised_prompt``), for the error."""
    data = body.get("data") if isinstance(body, dict) else None
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("revised_prompt"), str):
            return str(item["revised_prompt"])
    return ""


class ImagesEndpoint:
    """The OpenAI Images API on the wire, for OpenAI and for servers that copy it:
    ``{prefix}/images/generations`` (JSON) without input images, ``{prefix}/images/edits``
    (multipart: one part per input image, named ``image_part``, then ``mask``) with them;
    a streamed answer's partial images become steps and previews; ``data[]`` (base64 or
    URLs) becomes images. What goes into ``fields`` is the caller's business."""

    def __init__(self, http: ProviderHttp, provider_id: str, *, prefix: str = "/v1") -> None:
        self.http = http
        self.provider_id = provider_id
        self.generations_path = f"{prefix}/images/generations"
        self.edits_path = f"{prefix}/images/edits"

    async def call(
        self,
        fields: dict[str, Any],
        progress: ProgressSink,
        *,
        inputs: list[SourceImage] | tuple[SourceImage, ...] = (),
        mask: SourceImage | None = None,
        image_part: str = "image[]",
        stream: bool = False,
    ) -> list[GeneratedImage]:
        """One request; ``stream`` adds ``stream: true`` and ``partial_images``. Raises
        ``NoImageReturned`` for an answer without an image and ``ContentFiltered`` for
        OpenAI's safety refusals."""
        if stream:
            fields = {**fields, "stream": True, "partial_images": PARTIAL_IMAGES}
        try:
            if inputs:
                path = self.edits_path
                kwargs = multipart(fields, inputs, mask, image_part)
            else:
                path, kwargs = self.generations_path, {"json": fields}
            if stream:
                return await self._stream(path, kwargs, progress)
            body = await self.http.json("POST", path, on_retry=progress.retrying, **kwargs)
        except ProviderRejected as error:
            raise _filtered(error) from None
        usage = image_usage(body.get("usage") if isinstance(body, dict) else None)
        if usage is not None:
            await progress.usage(usage)
        images = images_from_data(
            self.provider_id, body.get("data") if isinstance(body, dict) else None
        )
        if not images:
            raise no_image(self.provider_id, response_text(body))
        return images

    async def _stream(
        self, path: str, kwargs: dict[str, Any], progress: ProgressSink
    ) -> list[GeneratedImage]:
        total = PARTIAL_IMAGES + 1
        images: list[GeneratedImage] = []
        async for event in self.http.sse("POST", path, on_retry=progress.retrying, **kwargs):
            if not event.data.strip():
                continue
            payload = sse_json(self.provider_id, event)
            kind = str(payload.get("type") or event.event) if isinstance(payload, dict) else ""
            if kind.endswith(".partial_image"):
                index = payload.get("partial_image_index")
                step = index + 1 if isinstance(index, int) else 1
                await progress.step(step, total, message=f"partial image {step} of {total - 1}")
                if progress.preview_wanted() and isinstance(payload.get("b64_json"), str):
                    await progress.preview(
                        decode_base64(self.provider_id, payload["b64_json"]), step
                    )
            elif kind.endswith(".completed"):
                usage = image_usage(payload.get("usage"))
                if usage is not None:
                    await progress.usage(usage)
                if isinstance(payload.get("b64_json"), str):
                    images.append(
                        GeneratedImage(data=decode_base64(self.provider_id, payload["b64_json"]))
                    )
                await progress.step(total, total, message="final image")
            elif kind == "error" or (isinstance(payload, dict) and payload.get("error")):
                raise stream_error(self.provider_id, payload.get("error", payload))
        if not images:
            raise Unavailable(
                f"providers/{self.provider_id} ended the image stream without a final image",
                reason="PROVIDER_BAD_RESPONSE",
                metadata={"provider": self.provider_id},
            )
        return images


def multipart(
    fields: dict[str, Any],
    inputs: list[SourceImage] | tuple[SourceImage, ...],
    mask: SourceImage | None,
    image_part: str,
) -> dict[str, Any]:
    """httpx ``data``/``files`` for an edit: fields as strings (booleans as ``true`` /
    ``false``), one ``image_part`` file per input in order, then the mask."""
    data = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
    files = [
        (image_part, (f"image{i}.{_EXTENSIONS.get(s.mime_type, 'png')}", s.data, s.mime_type))
        for i, s in enumerate(inputs)
    ]
    if mask is not None:
        files.append(("mask", ("mask.png", mask.data, mask.mime_type)))
    return {"data": data, "files": files}


class OpenAIImages:
    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id
        self.endpoint = ImagesEndpoint(http, provider_id)

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        model = request.provider_model_id
        dalle = is_dalle(model)
        if model.startswith("dall-e-3") and request.image_count > 1:
            raise InvalidArgument.field(
                "options.image_count", f"{model} renders one image per request"
            )
        inputs = await self._inputs(request, progress)
        fields: dict[str, Any] = {
            "model": model,
            "prompt": request.prompt,
            "n": request.image_count,
            "size": await self._size(request, progress),
        }
        if dalle:
            # GPT image models always answer in base64 and reject this field.
            fields["response_format"] = "b64_json"
        return await self.endpoint.call(
            fields,
            progress,
            inputs=inputs,
            mask=request.mask,
            # GPT image models take several images as repeated ``image[]`` parts; DALL·E 2 one.
            image_part="image" if dalle else "image[]",
            stream=not dalle and request.image_count == 1 and progress.preview_wanted(),
        )

    async def _inputs(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[SourceImage]:
        """Source first, then references. DALL·E 3 has no edit endpoint; DALL·E 2 edits
        exactly one image: what cannot be sent is warned about, never dropped silently."""
        model = request.provider_model_id
        inputs = [i for i in (request.source, *request.references) if i is not None]
        if model.startswith("dall-e-3") and inputs:
            await progress.warn(
                "PARAMETER_IGNORED",
                f"{model} cannot take input images; rendering from the prompt alone",
                "source_asset" if request.source else "reference_assets",
            )
            return []
        if model.startswith("dall-e-2") and len(inputs) > 1:
            await progress.warn(
                "PARAMETER_IGNORED",
                f"{model} edits one image; {len(inputs) - 1} further image(s) not sent",
                "reference_assets",
            )
            return inputs[:1]
        if request.mask is not None and not inputs:
            await progress.warn("PARAMETER_IGNORED", "a mask needs a source image", "mask_asset")
        return inputs

    async def _size(self, request: ProviderImageRequest, progress: ProgressSink) -> str:
        sizes = fixed_sizes(request.provider_model_id)
        width, height = request.width, request.height
        if sizes and (width, height) not in sizes:
            width, height = nearest_size(width, height, sizes)
            await progress.warn(
                "SIZE_ADJUSTED",
                f"{request.provider_model_id} renders {', '.join(f'{w}x{h}' for w, h in sizes)};"
                f" {request.width}x{request.height} sent as {width}x{height}",
                "options.width",
            )
        return f"{width}x{height}"


def _filtered(error: ProviderRejected) -> ProviderRejected | ContentFiltered:
    """OpenAI refuses unsafe prompts with HTTP 400 (``code: content_policy_violation`` or
    ``moderation_blocked``) and a message naming its safety system."""
    if "safety system" in error.message.lower() or "content_policy" in error.message.lower():
        return ContentFiltered(error.message, metadata=error.metadata)
    return error


class OpenAIModels:
    """``GET /v1/models`` lists ids only; image models are picked out by family prefix."""

    def __init__(self, http: ProviderHttp, provider_id: str) -> None:
        self.http = http
        self.provider_id = provider_id

    async def list_models(self) -> list[DiscoveredModel]:
        body = await self.http.json("GET", "/v1/models")
        found = []
        for item in body.get("data", []) if isinstance(body, dict) else []:
            model = item.get("id") if isinstance(item, dict) else None
            if not isinstance(model, str) or not model.startswith(
                ("dall-e", "gpt-image", "chatgpt-image")
            ):
                continue
            inputs = {"text"} if model.startswith("dall-e-3") else {"text", "image"}
            found.append(
                DiscoveredModel(
                    provider_model_id=model,
                    display_name=model,
                    input_modalities=frozenset(inputs),
                    output_modalities=frozenset({"image"}),
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
        kind="openai",
        images=OpenAIImages(http, context.id),
        writer=OpenAIChatWriter(
            http, context.id, path="/v1/chat/completions", max_tokens_field="max_completion_tokens"
        ),
        lister=OpenAIModels(http, context.id),
    )
