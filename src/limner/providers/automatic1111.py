"""AUTOMATIC1111 stable-diffusion-webui (``/sdapi/v1``): txt2img / img2img with real step
progress and previews polled from ``/sdapi/v1/progress``, ``/interrupt`` on cancel, and the
checkpoint listing from ``/sdapi/v1/sd-models``.

Auth is optional HTTP Basic (the server's ``--api-auth user:password``): the provider's
``api_key`` setting holds ``"user:password"``. Wire format: provider-apis.md §1.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from typing import Any

import httpx

from limner.domain.images import GeneratedImage, ProviderImageRequest
from limner.domain.jobs import Usage
from limner.errors import LimnerError, Unavailable
from limner.providers import ProviderContext
from limner.providers.base import DiscoveredModel, ProgressSink, Provider
from limner.providers.http import ProviderHttp, RetryPolicy
from limner.providers.results import decode_base64, no_image

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:7860"
API = "/sdapi/v1"
# Checkpoint ids that mean "whatever checkpoint the server has loaded".
LOADED_CHECKPOINT = {"", "default"}
# Latents are 1/8 of the image size, so A1111 renders multiples of 8 (floored).
SIZE_MULTIPLE = 8


def create(context: ProviderContext) -> Provider:
    http = context.http(
        default_base_url=DEFAULT_BASE_URL, known_suffixes=(API,), auth=basic_auth(context)
    )
    return Provider(
        id=context.id,
        kind="automatic1111",
        images=Automatic1111Images(http, poll_interval_s=context.section.progress_poll_s),
        lister=Automatic1111Models(http),
    )


def basic_auth(context: ProviderContext) -> httpx.BasicAuth | None:
    """``api_key = "user:password"`` (as given to ``--api-auth``); no key, no auth."""
    key = context.api_key()
    if not key:
        return None
    user, _, password = key.partition(":")
    return httpx.BasicAuth(user, password)


def _side_http(http: ProviderHttp, timeout_s: float) -> ProviderHttp:
    """The same endpoint without retries and with a short timeout: for progress polls and
    interrupts, which are best effort and must never hold a job up."""
    return ProviderHttp(
        provider_id=http.provider_id,
        client=http.client,
        base_url=http.base_url,
        headers=http.headers,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=0),
        auth=http.auth,
    )


class Automatic1111Images:
    def __init__(self, http: ProviderHttp, *, poll_interval_s: float = 0.25) -> None:
        self.http = http
        self.poll_interval_s = poll_interval_s
        self.side = _side_http(http, timeout_s=10.0)

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        body = await self._body(request, progress)
        path = f"{API}/img2img" if "init_images" in body else f"{API}/txt2img"
        poller = asyncio.create_task(self._poll(progress))
        try:
            payload = await self.http.json("POST", path, json=body, on_retry=progress.retrying)
        except asyncio.CancelledError:
            # A1111 keeps rendering after the client goes away; stop it, whatever happens
            # to this task meanwhile, then let the cancellation through.
            await asyncio.shield(self._interrupt())
            raise
        finally:
            poller.cancel()
            await asyncio.wait({poller})
            if not poller.cancelled() and poller.exception() is not None:
                log.warning("progress polling failed", exc_info=poller.exception())
        images = self._images(payload, request)
        await progress.usage(Usage(provider_calls=1))
        return images

    async def _body(self, request: ProviderImageRequest, progress: ProgressSink) -> dict[str, Any]:
        width, height = await _render_size(request, progress)
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "seed": request.seed,
            "width": width,
            "height": height,
            "batch_size": request.image_count,
            "n_iter": 1,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.steps is not None:
            body["steps"] = request.steps
        if request.guidance_scale is not None:
            body["cfg_scale"] = request.guidance_scale
        if request.sampler:
            body["sampler_name"] = request.sampler
        if request.provider_model_id.strip().lower() not in LOADED_CHECKPOINT:
            # Restored after the call by A1111 (override_settings_restore_afterwards).
            body["override_settings"] = {"sd_model_checkpoint": request.provider_model_id}
        inputs = ([request.source] if request.source else []) + list(request.references)
        if inputs:
            body["init_images"] = [_b64(image.data) for image in inputs]
            if request.strength is not None:
                body["denoising_strength"] = request.strength
            if request.mask is not None:
                body["mask"] = _b64(request.mask.data)
        return body

    def _images(self, payload: Any, request: ProviderImageRequest) -> list[GeneratedImage]:
        provider_id = self.http.provider_id
        encoded = payload.get("images") if isinstance(payload, dict) else None
        if not isinstance(encoded, list):
            raise Unavailable(
                f"providers/{provider_id} answered without an images list",
                reason="PROVIDER_BAD_RESPONSE",
                metadata={"provider": provider_id},
            )
        info = _info(payload.get("info"))
        # With "return grid" on, a batch starts with a grid image that is not a result.
        first = info.get("index_of_first_image", 0)
        first = first if isinstance(first, int) and 0 <= first < len(encoded) else 0
        encoded = [item for item in encoded[first:] if isinstance(item, str) and item]
        if not encoded:
            raise no_image(provider_id)
        seeds = info.get("all_seeds")
        seeds = seeds if isinstance(seeds, list) else []
        return [
            GeneratedImage(
                data=decode_base64(provider_id, item),
                seed=seeds[index] if index < len(seeds) else request.seed + index,
            )
            for index, item in enumerate(encoded)
        ]

    async def _poll(self, progress: ProgressSink) -> None:
        """Turns ``/progress`` into step events and previews until cancelled. Progress is
        global to the A1111 server (it runs one render at a time), so configure the
        provider with ``max_concurrent_jobs = 1`` to keep jobs from seeing each other's."""
        last_step = -1
        last_preview = ""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            want_preview = progress.preview_wanted()
            try:
                state = await self.side.json(
                    "GET",
                    f"{API}/progress",
                    params={"skip_current_image": "false" if want_preview else "true"},
                )
            except (LimnerError, httpx.HTTPError) as error:
                # Progress is best effort: a missed poll must not disturb the render.
                log.debug("progress poll failed: %s", type(error).__name__)
                continue
            if not isinstance(state, dict) or not isinstance(state.get("state"), dict):
                continue
            job = state["state"]
            step, total = job.get("sampling_step"), job.get("sampling_steps")
            if not (isinstance(step, int) and isinstance(total, int) and total > 0):
                continue  # idle, or a job that is not sampling
            if job.get("job_count", 0) == 0:
                continue
            if step != last_step:
                last_step = step
                eta = state.get("eta_relative")
                await progress.step(
                    step,
                    total,
                    eta_s=float(eta) if isinstance(eta, int | float) and eta >= 0 else None,
                    message=f"sampling step {step} of {total}",
                )
            image = state.get("current_image")
            if want_preview and isinstance(image, str) and image:
                digest = hashlib.sha256(image.encode()).hexdigest()
                if digest != last_preview:  # A1111 refreshes it only every few steps
                    last_preview = digest
                    try:
                        data = decode_base64(self.http.provider_id, image)
                    except LimnerError:
                        continue
                    await progress.preview(data, step)

    async def _interrupt(self) -> None:
        try:
            await self.side.request("POST", f"{API}/interrupt")
        except (LimnerError, httpx.HTTPError) as error:
            log.warning("could not interrupt providers/%s: %s", self.http.provider_id, error)


class Automatic1111Models:
    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def list_models(self) -> list[DiscoveredModel]:
        """Checkpoints by title (what ``sd_model_checkpoint`` accepts); all take text and
        an image (img2img) and make images."""
        payload = await self.http.json("GET", f"{API}/sd-models")
        models = []
        for item in payload if isinstance(payload, list) else []:
            if not isinstance(item, dict):
                continue
            title = item.get("title") or item.get("model_name")
            if not isinstance(title, str) or not title:
                continue
            name = item.get("model_name")
            models.append(
                DiscoveredModel(
                    provider_model_id=title,
                    display_name=name if isinstance(name, str) and name else title,
                    input_modalities=frozenset({"text", "image"}),
                    output_modalities=frozenset({"image"}),
                )
            )
        return models


async def _render_size(request: ProviderImageRequest, progress: ProgressSink) -> tuple[int, int]:
    width = max(64, round(request.width / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    height = max(64, round(request.height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    if (width, height) != (request.width, request.height):
        await progress.warn(
            "SIZE_ADJUSTED",
            f"AUTOMATIC1111 renders sizes in multiples of {SIZE_MULTIPLE}; "
            f"using {width}x{height} instead of {request.width}x{request.height}",
            "options.width",
        )
    return width, height


def _info(raw: Any) -> dict[str, Any]:
    """``info`` is a JSON document inside a string; a missing or odd one costs only seeds."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
