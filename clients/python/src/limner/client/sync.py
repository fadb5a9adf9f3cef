"""The synchronous flavour of the Limner client, on grpc's blocking channel: the same
functions as :mod:`limner.client.aio`, returning values and plain iterators.

    with connect("127.0.0.1:50051", api_key="...") as client:
        for event in generate_image(client, GenerateImageRequest(prompt="a fox")):
            ...
        download_asset(client, "assets/<sha256>", Path("fox.png"))
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from limner.client._common import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_UNARY_TIMEOUT_S,
    ChunkChecker,
    KeepAliveConfig,
    TlsConfig,
    api_key_metadata,
    channel_options,
    is_terminal,
    new_request_id,
)
from limner.v1 import (
    design_reference_service_pb2,
    design_reference_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    model_service_pb2_grpc,
    scene_service_pb2,
    scene_service_pb2_grpc,
)

__all__ = [
    "LimnerClient",
    "StreamEndedError",
    "connect",
    "design_notes",
    "download_asset",
    "edit_avatar",
    "edit_image",
    "generate_avatar",
    "generate_image",
    "generate_scene",
    "upload_image",
    "watch_job",
]

OnRetry = Callable[[grpc.RpcError, float], None]


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    pass


class _Defaults(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds ``authorization`` to every call and a deadline to unary calls without one."""

    def __init__(self, api_key: str, unary_timeout: float | None) -> None:
        self.api_key, self.unary_timeout = api_key, unary_timeout

    def _details(self, details: Any, timeout: float | None) -> Any:
        metadata = list(details.metadata or ())
        keys = {key for key, _ in metadata}
        if self.api_key and "authorization" not in keys and "x-api-key" not in keys:
            metadata.append(("authorization", self.api_key))
        return _CallDetails(
            details.method,
            details.timeout if details.timeout is not None else timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details, self.unary_timeout), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details, None), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details, None), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details, None), requests)


@dataclass
class LimnerClient:
    """A blocking gRPC channel and the service stubs on it. Close it (or use ``with``)."""

    channel: grpc.Channel
    images: image_service_pb2_grpc.ImageServiceStub
    jobs: job_service_pb2_grpc.JobServiceStub
    models: model_service_pb2_grpc.ModelServiceStub
    scenes: scene_service_pb2_grpc.SceneServiceStub
    design_references: design_reference_service_pb2_grpc.DesignReferenceServiceStub
    # The API key's metadata (already sent on every call by the channel).
    metadata: tuple[tuple[str, str], ...] = field(default=())

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> LimnerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(
    address: str,
    *,
    api_key: str = "",
    tls: TlsConfig | None = None,
    keepalive: KeepAliveConfig | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    unary_timeout_s: float | None = DEFAULT_UNARY_TIMEOUT_S,
    interceptors: Sequence[Any] = (),
) -> LimnerClient:
    """A blocking channel to ``address`` (``host:port``) with the service stubs: as
    :func:`limner.client.aio.connect` (TLS, API key on every call, keepalive, a default
    deadline for unary calls, extra ``interceptors`` run after the client's own)."""
    options = channel_options(keepalive, max_message_bytes, tls)
    if tls is None:
        raw = grpc.insecure_channel(address, options=options)
    else:
        raw = grpc.secure_channel(address, tls.credentials(), options=options)
    key = f"Bearer {api_key}" if api_key else ""
    channel = grpc.intercept_channel(raw, _Defaults(key, unary_timeout_s), *interceptors)
    return LimnerClient(
        channel=channel,
        images=image_service_pb2_grpc.ImageServiceStub(channel),
        jobs=job_service_pb2_grpc.JobServiceStub(channel),
        models=model_service_pb2_grpc.ModelServiceStub(channel),
        scenes=scene_service_pb2_grpc.SceneServiceStub(channel),
        design_references=design_reference_service_pb2_grpc.DesignReferenceServiceStub(channel),
        metadata=api_key_metadata(api_key),
    )


class StreamEndedError(grpc.RpcError):  # type: ignore[misc]
    """A job stream that ended before the job's terminal event: retried like UNAVAILABLE,
    and raised after ``max_retries``."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "the job stream ended before the job's terminal event"

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def __str__(self) -> str:
        return self.details()


JobStream = Any


def watch_job(
    client: LimnerClient,
    job: str,
    *,
    after_sequence: int = 0,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """Follows a job to its end with resume: see :func:`limner.client.aio.watch_job`."""
    return _follow(
        client,
        job,
        None,
        after_sequence=after_sequence,
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_retry=on_retry,
    )


def _create_and_follow(
    client: LimnerClient,
    request: Any,
    start: Callable[[], JobStream],
    max_retries: int,
    backoff_s: float,
    max_backoff_s: float | None,
    on_retry: OnRetry | None,
) -> Iterator[job_pb2.JobEvent]:
    if not request.request_id:
        request.request_id = new_request_id()
    return _follow(
        client,
        "",
        start,
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_retry=on_retry,
    )


def generate_image(
    client: LimnerClient,
    request: image_service_pb2.GenerateImageRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """``GenerateImage`` with a fresh ``request_id`` (unless set), followed with resume:
    see :func:`limner.client.aio.generate_image`."""
    return _create_and_follow(
        client,
        request,
        lambda: client.images.GenerateImage(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    )


def edit_image(
    client: LimnerClient,
    request: image_service_pb2.EditImageRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """``EditImage``, as :func:`generate_image`."""
    return _create_and_follow(
        client,
        request,
        lambda: client.images.EditImage(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    )


def generate_avatar(
    client: LimnerClient,
    request: image_service_pb2.GenerateAvatarRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """``GenerateAvatar``, as :func:`generate_image`."""
    return _create_and_follow(
        client,
        request,
        lambda: client.images.GenerateAvatar(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    )


def edit_avatar(
    client: LimnerClient,
    request: image_service_pb2.EditAvatarRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """``EditAvatar``, as :func:`generate_image`."""
    return _create_and_follow(
        client,
        request,
        lambda: client.images.EditAvatar(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    )


def generate_scene(
    client: LimnerClient,
    request: scene_service_pb2.GenerateSceneRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """``SceneService.GenerateScene``, as :func:`generate_image`."""
    return _create_and_follow(
        client,
        request,
        lambda: client.scenes.GenerateScene(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    )


def design_notes(
    client: LimnerClient,
    request: design_reference_service_pb2.DraftDesignNotesRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> Iterator[job_pb2.JobEvent]:
    """``DesignReferenceService.DraftDesignNotes``, as :func:`generate_image`."""
    return _create_and_follow(
        client,
        request,
        lambda: client.design_references.DraftDesignNotes(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    )


def _follow(
    client: LimnerClient,
    job: str,
    start: Callable[[], JobStream] | None,
    *,
    after_sequence: int = 0,
    max_retries: int,
    backoff_s: float,
    max_backoff_s: float | None,
    on_retry: OnRetry | None,
) -> Iterator[job_pb2.JobEvent]:
    """The blocking twin of :func:`limner.client.aio._follow`."""
    last = after_sequence
    retries = 0
    ended = False
    while True:
        call: JobStream = None
        error: grpc.RpcError
        try:
            if job or start is None:
                call = client.jobs.WatchJob(
                    job_service_pb2.WatchJobRequest(name=job, after_sequence=last)
                )
            else:
                call = start()
            for response in call:
                event: job_pb2.JobEvent = response.event
                job = job or event.job
                if not event.transient:
                    if event.sequence <= last:
                        continue  # already yielded before the drop
                    last = event.sequence
                retries = 0
                yield event
                ended = ended or is_terminal(event)
            if ended:
                return
            error = StreamEndedError()
        except grpc.RpcError as rpc_error:
            if ended:
                return
            if rpc_error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            error = rpc_error
        finally:
            if call is not None and not call.done():
                call.cancel()  # the caller stopped early
        if retries >= max_retries:
            raise error
        delay = backoff_s * 2**retries
        if max_backoff_s is not None:
            delay = min(delay, max_backoff_s)
        retries += 1
        if on_retry is not None:
            on_retry(error, delay)
        time.sleep(delay)


def upload_image(
    client: LimnerClient, path: Path, *, display_name: str = "", request_id: str = ""
) -> image_service_pb2.UploadImageResponse:
    """Uploads an image file: see :func:`limner.client.aio.upload_image`."""
    path = Path(path)
    response: image_service_pb2.UploadImageResponse = client.images.UploadImage(
        image_service_pb2.UploadImageRequest(
            content=path.read_bytes(),
            display_name=display_name or path.name,
            request_id=request_id,
        ),
        timeout=60,
    )
    return response


def download_asset(client: LimnerClient, asset: str, destination: Path) -> int:
    """Streams an asset into ``destination`` chunk by chunk, checking size and sha256:
    see :func:`limner.client.aio.download_asset`."""
    destination = Path(destination)
    partial = destination.with_name(destination.name + ".part")
    checker = ChunkChecker(asset)
    call = client.images.ReadAssetContent(image_service_pb2.ReadAssetContentRequest(name=asset))
    try:
        with partial.open("wb") as file:
            for chunk in call:
                file.write(checker.add(chunk))
        written = checker.finish()
        partial.replace(destination)
    except BaseException:
        call.cancel()
        partial.unlink(missing_ok=True)
        raise
    return written
