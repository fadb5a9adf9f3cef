"""A fake Stability AI REST v2beta Stable Image API: multipart ``generate/{core,ultra,sd3}``
answering with JSON (``Accept: application/json``) or raw image bytes (``image/*``), the
``finish_reason: CONTENT_FILTERED`` 200 answer, and Stability's ``{id, name, errors}``
error bodies."""

from __future__ import annotations

import io
import json
import math
import uuid
from typing import Any

from aiohttp import web
from PIL import Image, ImageFilter

from limner.testing.fakes.base import FakeProvider, Fault

GENERATE = "/v2beta/stable-image/generate"
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
SD3_MODELS = (
    "sd3.5-large",
    "sd3.5-large-turbo",
    "sd3.5-medium",
    "sd3-large",
    "sd3-large-turbo",
    "sd3-medium",
)
MAX_SEED = 4_294_967_294


class StabilityFake(FakeProvider):
    """``api_key`` is the key the fake accepts as ``Authorization: Bearer``. With
    ``moderation_403`` set, an armed ``CONTENT_FILTERED`` answers 403 ``content_moderation``
    (the request-side filter) instead of a 200 with ``finish_reason: CONTENT_FILTERED``.
    Results are ``base_side`` pixels square at 1:1 and scale with the aspect ratio; an
    image-to-image result has its input's size."""

    name = "stability"

    def __init__(
        self, *, api_key: str = "sk-test", base_side: int = 64, latency_s: float = 0.0
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.api_key = api_key
        self.base_side = base_side
        self.moderation_403 = False

    def routes(self, app: web.Application) -> None:
        app.router.add_post(f"{GENERATE}/{{endpoint}}", self._generate)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        names = {
            400: "bad_request",
            401: "unauthorized",
            402: "payment_required",
            403: "content_moderation",
            404: "not_found",
            413: "payload_too_large",
            422: "invalid_request",
            429: "rate_limit_exceeded",
        }
        return web.json_response(
            {
                "id": uuid.uuid4().hex,
                "name": names.get(status, "internal_error"),
                "errors": [message],
            },
            status=status,
            headers=headers,
        )

    def fields(self, index: int = -1) -> dict[str, Any]:
        """The form of a recorded request as single values (file parts as dicts)."""
        form = self.requests[index].form
        return {name: values[0] if len(values) == 1 else values for name, values in form.items()}

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if request.headers.get("authorization", "") != f"Bearer {self.api_key}":
            return self.error(401, "authorization: invalid or missing API key")
        endpoint = request.match_info["endpoint"]
        if endpoint not in ("core", "ultra", "sd3"):
            return self.error(404, f"no such endpoint: generate/{endpoint}")
        armed = self.next_fault()
        await self.delay(armed)
        fault = armed.fault if armed else None
        if fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return self.error(400, "content-type: must be multipart/form-data")
        fields = {name: values[0] for name, values in recorded.form.items() if len(values) == 1}
        problem = _check(endpoint, fields, recorded.form)
        if problem:
            return self.error(400, problem)
        if fault is Fault.CONTENT_FILTERED and self.moderation_403:
            return self.error(
                403,
                "Your request was flagged by our content moderation system, as a result your "
                "request was denied and you were not charged.",
            )
        width, height = self._size(fields)
        seed = int(fields.get("seed") or 0) or 12345
        data = self.next_image(width, height)
        finish = "SUCCESS"
        if fault is Fault.CONTENT_FILTERED:
            finish = "CONTENT_FILTERED"
            data = _blurred(data)
        elif fault is Fault.OVERSIZED_IMAGE:
            data = self.oversized_image()
        accept = request.headers.get("accept", "image/*")
        if accept.startswith("application/json"):
            body: dict[str, Any] = {"image": self.b64(data), "finish_reason": finish, "seed": seed}
            if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
                body = {"finish_reason": finish, "seed": seed}
            return web.Response(
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json; type=image/png"},
            )
        return web.Response(
            body=data,
            content_type="image/png",
            headers={"finish-reason": finish, "seed": str(seed), "x-request-id": "fake"},
        )

    def _size(self, fields: dict[str, Any]) -> tuple[int, int]:
        image = fields.get("image")
        if isinstance(image, dict):
            with Image.open(io.BytesIO(image["data"])) as opened:
                return opened.size
        ratio_w, _, ratio_h = str(fields.get("aspect_ratio") or "1:1").partition(":")
        ratio = int(ratio_w) / int(ratio_h)
        width = round(self.base_side * math.sqrt(ratio) / 8) * 8
        height = round(self.base_side / math.sqrt(ratio) / 8) * 8
        return width, height


def _check(endpoint: str, fields: dict[str, Any], form: dict[str, list[Any]]) -> str:
    """The validation Stability documents, as ``field: problem`` (empty when fine)."""
    repeated = [name for name, values in form.items() if len(values) > 1]
    if repeated:
        return f"{repeated[0]}: must be given once"
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt: is required"
    if len(prompt) > 10_000:
        return "prompt: must be at most 10000 characters"
    image = fields.get("image")
    if image is not None and not isinstance(image, dict):
        return "image: must be a file"
    if isinstance(image, dict) and image["content_type"] not in (
        "image/png",
        "image/jpeg",
        "image/webp",
    ):
        return "image: must be jpeg, png or webp"
    mode = fields.get("mode", "text-to-image")
    if endpoint == "core" and image is not None:
        return "image: not accepted by generate/core"
    if endpoint == "sd3":
        if mode not in ("text-to-image", "image-to-image"):
            return "mode: must be text-to-image or image-to-image"
        if (mode == "image-to-image") != (image is not None):
            return "image: required with mode image-to-image and only then"
        model = fields.get("model", "sd3.5-large")
        if model not in SD3_MODELS:
            return f"model: must be one of {', '.join(SD3_MODELS)}"
        if "turbo" in model and "negative_prompt" in fields:
            return "negative_prompt: not supported by turbo models"
    elif "mode" in fields or "model" in fields or "cfg_scale" in fields:
        return f"mode/model/cfg_scale: not accepted by generate/{endpoint}"
    if image is not None:
        if "aspect_ratio" in fields:
            return "aspect_ratio: not accepted with an input image"
        try:
            strength = float(fields.get("strength", ""))
        except ValueError:
            return "strength: is required with image and must be a number"
        if not 0 <= strength <= 1:
            return "strength: must be from 0 to 1"
    elif "strength" in fields:
        return "strength: only with image"
    if "aspect_ratio" in fields and fields["aspect_ratio"] not in ASPECT_RATIOS:
        return f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}"
    if "seed" in fields:
        try:
            seed = int(fields["seed"])
        except ValueError:
            return "seed: must be an integer"
        if not 0 <= seed <= MAX_SEED:
            return f"seed: must be from 0 to {MAX_SEED}"
    if fields.get("output_format", "png") not in ("png", "jpeg", "webp"):
        return "output_format: must be png, jpeg or webp"
    return ""


def _blurred(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as opened:
        opened.filter(ImageFilter.GaussianBlur(8)).save(buffer, format="PNG")
    return buffer.getvalue()
