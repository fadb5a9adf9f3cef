"""fal (https://fal.ai) through its queue API, ``https://queue.fal.run``.

One image request is one queued fal request:

1. ``POST {base}/{model_id}`` with the model's input JSON (``Authorization: Key <key>``)
   answers ``{request_id, status_url, response_url, cancel_url}``.
2. ``GET {status_url}/stream?logs=1`` (server-sent events) reports ``IN_QUEUE`` with
   ``queue_position`` (0 = next; published as a QUEUED progress with position + 1, not
   logged), ``IN_PROGRESS`` with the runner's ``logs`` (progress messages; ``n/total``
   counters become steps) and ``COMPLETED``. When the stream cannot be opened, breaks or
   ends early, ``GET {status_url}?logs=1`` is polled every ``progress_poll_s`` instead.
3. ``GET {response_url}`` answers the model's output: ``images[].url`` (fal's public CDN,
   downloaded later through the download guard) or ``data:`` URIs, ``seed`` and
   ``has_nsfw_concepts``. An image fal's safety checker flagged is never stored: all
   flagged fails the job with ``CONTENT_FILTERED``, some flagged drops those with a
   ``CONTENT_FILTERED`` warning.

The URLs fal returns are used only when they are on the configured base URL's origin (the
key is sent with them); otherwise the documented ``{base}/{owner}/{app}/requests/{id}``
paths are built (fal drops an endpoint's sub-path there: ``fal-ai/flux/dev`` is polled as
``fal-ai/flux``).

Cancelling the job (``CancelJob``, the job timeout, a shutdown) sends ``PUT {cancel_url}``:
a queued request is removed (202 ``CANCELLATION_REQUESTED``). A request that is already
running can only be asked to stop, and one that finished (400 ``ALREADY_COMPLETED``) is
billed anyway: both are recorded as a ``PROVIDER_CANCEL_INCOMPLETE`` warning while the job
still ends cancelled. A job that fails while its request is unfinished cancels it quietly.

Failures: a status ``COMPLETED`` (or ``FAILED``) with ``error`` maps by ``error_type``:
content policy → ``CONTENT_FILTERED``, fal's infrastructure errors (timeouts, runner
failures) → ``UNAVAILABLE``, anything else → ``PROVIDER_REJECTED_REQUEST``; a 4xx/5xx
from any endpoint maps as for every provider (``providers/http.py``).

Input mapping (only what the request holds; the model's profile already dropped, with
warnings, what the model does not honour): ``prompt``, ``negative_prompt``, ``seed``,
``num_images``, ``num_inference_steps``, ``guidance_scale``, ``image_size`` (fal's preset
name when the size is one, else ``{width, height}``) or ``aspect_ratio`` when one was asked
for; one input image (the edit source, else the reference) as ``image_url``, several as
``image_urls`` (source first), the mask as ``mask_url`` and ``strength``, all as data URIs.
With a source image no ``image_size`` is sent: fal's image-to-image and edit endpoints
render at the input's size. fal has no sampler choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from httpx_sse import EventSource
from PIL import Image

from limner.domain.images import GeneratedImage, ProviderImageRequest, SourceImage
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered, LimnerError, ProviderRejected, Unavailable
from limner.providers import ProviderContext
from limner.providers.base import ProgressSink, Provider
from limner.providers.http import ProviderHttp, RetryPolicy, scrub, sse_json
from limner.providers.results import data_url, image_from_reference, no_image

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://queue.fal.run"
# fal's image_size presets (flux and most text-to-image models), by (width, height).
SIZE_PRESETS = {
    (1024, 1024): "square_hd",
    (512, 512): "square",
    (768, 1024): "portrait_4_3",
    (576, 1024): "portrait_16_9",
    (1024, 768): "landscape_4_3",
    (1024, 576): "landscape_16_9",
}
# Endpoint ids under these namespaces have one more leading segment (workflows/owner/app).
NAMESPACES = ("workflows", "comfy")
IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
# Statuses after which fal reports nothing more; only COMPLETED without ``error`` succeeded.
TERMINAL = {COMPLETED, "FAILED", "CANCELED", "CANCELLED"}
# fal's request error types that mean its infrastructure failed, not the request.
INFRASTRUCTURE_ERRORS = {
    "request_timeout",
    "startup_timeout",
    "internal_error",
    "generation_timeout",
    "downstream_service_error",
    "downstream_service_unavailable",
    "internal_server_error",
}
CONTENT_ERRORS = {"content_policy_violation"}
ACCEPTED_INPUT_TYPES = {"image/png", "image/jpeg", "image/webp"}
# A counter in a runner's log line ("14/28 [00:03<00:03]"), read as steps.
_STEP_COUNTER = re.compile(r"(?<![\d/])(\d{1,5})/(\d{1,5})(?![\d/])")
CANCEL_TIMEOUT_S = 10.0


def create(context: ProviderContext) -> Provider:
    key = context.api_key()
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        auth_headers={"Authorization": f"Key {key}"} if key else None,
    )
    return Provider(
        id=context.id,
        kind="fal",
        images=FalImages(
            http,
            stream=_variant(http, context.section.timeout_s),
            cancel=_variant(http, min(CANCEL_TIMEOUT_S, context.section.timeout_s)),
            poll_interval_s=context.section.progress_poll_s,
        ),
    )


def _variant(http: ProviderHttp, timeout_s: float) -> ProviderHttp:
    """The same endpoint without retries: for the status stream (a failure falls back to
    polling) and for cancelling (best effort; it must never hold a job up)."""
    return ProviderHttp(
        provider_id=http.provider_id,
        client=http.client,
        base_url=http.base_url,
        headers=http.headers,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=0),
        auth=http.auth,
        metrics=http.metrics,
    )


@dataclass
class QueuedRequest:
    """A submitted fal request and what has been seen of it."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    status: str = IN_QUEUE
    position: int | None = None
    seen_logs: set[tuple[str, str]] = field(default_factory=set)


class FalImages:
    def __init__(
        self,
        http: ProviderHttp,
        *,
        stream: ProviderHttp,
        cancel: ProviderHttp,
        poll_interval_s: float = 0.25,
    ) -> None:
        self.http = http
        self.stream_http = stream
        self.cancel_http = cancel
        self.poll_interval_s = poll_interval_s
        self.provider_id = http.provider_id

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        body = await fal_input(request, progress)
        model_id = request.provider_model_id.strip().strip("/")
        answer = await self.http.json(
            "POST", "/" + quote(model_id, safe="/"), json=body, on_retry=progress.retrying
        )
        queued = self._submitted(model_id, answer)
        try:
            await self._report(queued, answer, progress)
            final = await self._wait(queued, progress)
            # fal bills a request that ran, whatever it returned.
            await progress.usage(Usage(provider_calls=1))
            failure = self._failure(queued, final)
            if failure is not None:
                raise failure
            result = await self.http.json("GET", queued.response_url, on_retry=progress.retrying)
        except asyncio.CancelledError:
            # The job was cancelled (or timed out, or the server is stopping): take the
            # request off fal's queue, whatever happens to this task meanwhile.
            await asyncio.shield(self._cancel(queued, progress, quiet=False))
            raise
        except Exception:
            await asyncio.shield(self._cancel(queued, progress, quiet=True))
            raise
        images = await self._images(queued, result, request, progress)
        await progress.step(1, 1, message="fal answered")
        return images

    # -- submitting and following the queue ------------------------------------------------

    def _submitted(self, model_id: str, answer: Any) -> QueuedRequest:
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise self._bad_response("a queue submission answer without a request_id")
        base = f"{self.http.base_url}/{quote(app_id(model_id), safe='/')}/requests/"
        base += quote(request_id, safe="")

        def url(name: str, default: str) -> str:
            given = answer.get(name)
            if isinstance(given, str) and _same_origin(given, self.http.base_url):
                return given
            return default

        return QueuedRequest(
            request_id=request_id,
            status_url=url("status_url", base + "/status"),
            response_url=url("response_url", base),
            cancel_url=url("cancel_url", base + "/cancel"),
        )

    async def _wait(self, queued: QueuedRequest, progress: ProgressSink) -> dict[str, Any]:
        """The request's final status: from the status stream, else by polling."""
        final = await self._stream(queued, progress)
        if final is not None:
            return final
        while True:
            status = await self.http.json(
                "GET", queued.status_url, params={"logs": "1"}, on_retry=progress.retrying
            )
            if not isinstance(status, dict):
                raise self._bad_response("a status that is not a JSON object")
            if await self._report(queued, status, progress):
                return status
            await asyncio.sleep(self.poll_interval_s)

    async def _stream(self, queued: QueuedRequest, progress: ProgressSink) -> dict[str, Any] | None:
        """Follows ``/status/stream`` to the final status; ``None`` when the stream failed
        or ended before it (the caller then polls)."""
        try:
            async with self.stream_http.stream(
                "GET",
                queued.status_url + "/stream",
                params={"logs": "1"},
                headers={"Accept": "text/event-stream"},
            ) as response:
                async for event in EventSource(response).aiter_sse():
                    if not event.data.strip():
                        continue
                    status = sse_json(self.provider_id, event)
                    if not isinstance(status, dict):
                        raise self._bad_response("a streamed status that is not a JSON object")
                    if await self._report(queued, status, progress):
                        return status
        except (LimnerError, httpx.HTTPError) as error:
            log.warning(
                "providers/%s: status stream of fal request %s failed (%s); polling instead",
                self.provider_id,
                queued.request_id,
                error.message if isinstance(error, LimnerError) else type(error).__name__,
            )
            return None
        log.info(
            "providers/%s: status stream of fal request %s ended early; polling instead",
            self.provider_id,
            queued.request_id,
        )
        return None

    async def _report(self, queued: QueuedRequest, status: Any, progress: ProgressSink) -> bool:
        """Turns one status into progress; True when it is final."""
        state = status.get("status") if isinstance(status, dict) else None
        if not isinstance(state, str):
            if isinstance(status, dict) and "request_id" in status:
                return False  # a submission answer without a status
            raise self._bad_response("a status without a status field")
        if state == IN_QUEUE:
            queued.status = IN_QUEUE
            position = status.get("queue_position")
            if isinstance(position, int) and position >= 0 and position != queued.position:
                queued.position = position
                await progress.queued(
                    position + 1,
                    f"waiting in fal's queue, position {position + 1} "
                    f"(fal request {queued.request_id})",
                )
            return False
        if state in (IN_PROGRESS, COMPLETED) and queued.status == IN_QUEUE:
            queued.status = IN_PROGRESS
            await progress.step(0, 0, message=f"fal is running request {queued.request_id}")
        await self._logs(queued, status.get("logs"), progress)
        if state in TERMINAL:
            queued.status = state
            return True
        if state != IN_PROGRESS:
            log.info("providers/%s: unknown fal status %r", self.provider_id, state)
        return False

    async def _logs(self, queued: QueuedRequest, logs: Any, progress: ProgressSink) -> None:
        """The newest new line of the runner's logs as a progress message (one per status,
        so a chatty runner costs one event per status, not one per line)."""
        latest = ""
        for entry in logs if isinstance(logs, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
                continue
            key = (str(entry.get("timestamp", "")), entry["message"])
            if key in queued.seen_logs:
                continue
            queued.seen_logs.add(key)
            if entry["message"].strip():
                latest = entry["message"].strip()
        if not latest:
            return
        message = "fal: " + scrub(latest, 200)
        counters = _STEP_COUNTER.findall(latest)
        if counters:
            step, total = (int(n) for n in counters[-1])
            if 0 <= step <= total and total > 0:
                await progress.step(step, total, message=message)
                return
        await progress.step(0, 0, message=message)

    def _failure(self, queued: QueuedRequest, status: dict[str, Any]) -> LimnerError | None:
        state = status.get("status")
        error = status.get("error")
        if state == COMPLETED and not error:
            return None
        error_type = status.get("error_type")
        return request_error(
            self.provider_id,
            queued.request_id,
            str(error or f"the request ended {state}"),
            error_type if isinstance(error_type, str) else "",
        )

    # -- cancelling --------------------------------------------------------------------------

    async def _cancel(self, queued: QueuedRequest, progress: ProgressSink, *, quiet: bool) -> None:
        """``PUT cancel_url``, best effort. Unless ``quiet``, a request fal may still run
        (or has run) is recorded as a job warning: it may be billed."""
        if queued.status in TERMINAL:
            return  # finished; nothing left to stop
        request_id = queued.request_id
        was_running = queued.status == IN_PROGRESS
        outcome = ""
        problem = ""
        try:
            response = await self.cancel_http.request("PUT", queued.cancel_url)
            with contextlib.suppress(ValueError):
                answer = response.json()
                outcome = str(answer.get("status", "")) if isinstance(answer, dict) else ""
        except ProviderRejected as error:
            # 400 {"status": "ALREADY_COMPLETED"}, 404 {"status": "NOT_FOUND"}
            outcome = "ALREADY_COMPLETED" if "ALREADY_COMPLETED" in error.message else ""
            problem = "" if outcome else error.message
        except (LimnerError, httpx.HTTPError) as error:
            problem = error.message if isinstance(error, LimnerError) else type(error).__name__
        log.info(
            "providers/%s: cancelled fal request %s (%s): %s",
            self.provider_id,
            request_id,
            queued.status,
            outcome or problem or "no status",
        )
        if quiet:
            return
        message = ""
        if outcome == "ALREADY_COMPLETED":
            message = (
                f"fal had already finished request {request_id} when the job was cancelled; "
                "fal bills it, and its result was not stored"
            )
        elif problem:
            message = (
                f"fal request {request_id} could not be cancelled ({problem}); it may still "
                "run, and be billed"
            )
        elif was_running:
            message = (
                f"fal request {request_id} was already running when the job was cancelled; "
                "fal passes the cancellation on, but cannot guarantee the model stops, so it "
                "may still finish and be billed"
            )
        if message:
            with contextlib.suppress(Exception):
                await progress.warn("PROVIDER_CANCEL_INCOMPLETE", message)

    # -- the result ----------------------------------------------------------------------------

    async def _images(
        self,
        queued: QueuedRequest,
        result: Any,
        request: ProviderImageRequest,
        progress: ProgressSink,
    ) -> list[GeneratedImage]:
        if not isinstance(result, dict):
            raise self._bad_response("a result that is not a JSON object")
        items = result.get("images")
        if items is None and isinstance(result.get("image"), dict):
            items = [result["image"]]  # models with one output image
        flags = result.get("has_nsfw_concepts")
        flagged = [bool(f) for f in flags] if isinstance(flags, list) else []
        seed = result.get("seed")
        # A batch shares one seed; only a single image can be rendered again from it.
        image_seed = seed if isinstance(seed, int) and request.image_count == 1 else None
        images: list[GeneratedImage] = []
        filtered = 0
        for index, item in enumerate(items if isinstance(items, list) else []):
            url = item.get("url") if isinstance(item, dict) else item
            if not isinstance(url, str) or not url:
                continue
            if index < len(flagged) and flagged[index]:
                filtered += 1
                continue
            images.append(image_from_reference(self.provider_id, url, image_seed))
        metadata = {"provider": self.provider_id, "requestId": queued.request_id}
        if filtered and not images:
            raise ContentFiltered(
                f"providers/{self.provider_id}: fal's safety checker flagged the image(s) of "
                f"request {queued.request_id}; nothing was stored. Rephrase the prompt or "
                "change the input image",
                metadata={**metadata, "flagged": str(filtered)},
            )
        if filtered:
            await progress.warn(
                "CONTENT_FILTERED",
                f"fal's safety checker flagged {filtered} of {filtered + len(images)} image(s); "
                "they were not stored",
            )
        if not images:
            text = result.get("description") or result.get("text") or ""
            raise no_image(self.provider_id, text if isinstance(text, str) else "")
        return images

    def _bad_response(self, what: str) -> Unavailable:
        return Unavailable(
            f"providers/{self.provider_id} answered with {what}",
            reason="PROVIDER_BAD_RESPONSE",
            metadata={"provider": self.provider_id},
        )


def request_error(
    provider_id: str, request_id: str, message: str, error_type: str = ""
) -> LimnerError:
    """A failed fal request as Limner's error, by fal's ``error_type``."""
    text = f"providers/{provider_id}: fal request {request_id} failed: {scrub(message)}"
    if error_type:
        text += f" ({error_type})"
    metadata = {"provider": provider_id, "requestId": request_id}
    if error_type:
        metadata["errorType"] = error_type
    lowered = f"{message} {error_type}".lower()
    if error_type in CONTENT_ERRORS or any(
        word in lowered for word in ("content policy", "content_policy", "nsfw")
    ):
        return ContentFiltered(text, metadata=metadata)
    if error_type in INFRASTRUCTURE_ERRORS or error_type.startswith("runner_"):
        return Unavailable(text, metadata=metadata, retry_after_s=1.0)
    return ProviderRejected(text, metadata=metadata)


async def fal_input(request: ProviderImageRequest, progress: ProgressSink) -> dict[str, Any]:
    """The model's input JSON; what cannot be sent is reported as a warning."""
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "num_images": request.image_count,
        "seed": request.seed,
    }
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.steps is not None:
        body["num_inference_steps"] = request.steps
    if request.guidance_scale is not None:
        body["guidance_scale"] = request.guidance_scale
    if request.sampler:
        await progress.warn(
            "PARAMETER_IGNORED",
            "fal's hosted models choose their own sampler; options.sampler was not sent",
            "options.sampler",
        )
    inputs = [image for image in (request.source, *request.references) if image is not None]
    if request.aspect_ratio:
        body["aspect_ratio"] = request.aspect_ratio
    elif request.source is not None:
        source = request.source
        if (request.width, request.height) != (source.width, source.height):
            await progress.warn(
                "SIZE_ADJUSTED",
                f"fal's image-to-image and edit models render at the source image's size "
                f"({source.width}x{source.height}); {request.width}x{request.height} was "
                "not sent",
                "options.width",
            )
    else:
        body["image_size"] = SIZE_PRESETS.get(
            (request.width, request.height), {"width": request.width, "height": request.height}
        )
    urls = [await _data_uri(image) for image in inputs]
    if len(urls) == 1:
        body["image_url"] = urls[0]
    elif urls:
        body["image_urls"] = urls
    if request.mask is not None:
        body["mask_url"] = await _data_uri(request.mask)
    if request.strength is not None:
        if urls:
            body["strength"] = request.strength
        else:
            await progress.warn(
                "PARAMETER_IGNORED",
                "strength applies to an input image, and none was given; not sent",
                "strength",
            )
    return body


async def _data_uri(image: SourceImage) -> str:
    """A data URI fal reads: PNG, JPEG and WebP as they are, anything else (GIF) as PNG."""
    if image.mime_type in ACCEPTED_INPUT_TYPES:
        return data_url(image.data, image.mime_type)
    return data_url(await asyncio.to_thread(_png, image.data), "image/png")


def _png(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as opened:
        opened.convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def app_id(model_id: str) -> str:
    """The app an endpoint id belongs to, which fal's request paths use: ``owner/app``
    (``namespace/owner/app`` under ``workflows`` and ``comfy``), without a sub-path."""
    parts = [part for part in model_id.strip("/").split("/") if part]
    keep = 3 if parts and parts[0] in NAMESPACES else 2
    return "/".join(parts[:keep])


def _same_origin(url: str, base_url: str) -> bool:
    given, base = urlsplit(url), urlsplit(base_url)
    return (given.scheme, given.hostname, given.port) == (base.scheme, base.hostname, base.port)
