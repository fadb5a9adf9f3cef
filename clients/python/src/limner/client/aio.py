"""The asyncio flavour of the Limner client, on ``grpc.aio``.

    async with connect("127.0.0.1:50051", api_key="...") as client:
        async for event in generate_image(client, GenerateImageRequest(prompt="a fox")):
            ...
        await download_asset(client, "assets/<sha256>", Path("fox.png"))

:mod:`limner.client.sync` has the same functions on grpc's blocking channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
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

OnRetry = Callable[[grpc.aio.AioRpcError, float], None]


def _with_defaults(details: Any, api_key: str, timeout: float | None) -> Any:
    """``details`` with ``authorization: <api_key>`` added (unless the call brings its own
    ``authorization`` or ``x-api-key``) and ``timeout`` when the call set none."""
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if api_key and "authorization" not in metadata and "x-api-key" not in metadata:
        metadata.add("authorization", api_key)
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout if details.timeout is not None else timeout,
        metadata,
        details.credentials,
        details.wait_for_ready,
    )


# grpc.aio files each interceptor under the first call shape it implements, so every shape
# needs its own object. grpc ships no type hints: the bases are Any to mypy.


class _UnaryUnaryDefaults(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, api_key: str, timeout: float | None) -> None:
        self.api_key, self.timeout = api_key, timeout

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_defaults(details, self.api_key, self.timeout), request)


class _UnaryStreamApiKey(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_defaults(details, self.api_key, None), request)


class _StreamUnaryApiKey(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_defaults(details, self.api_key, None), requests)


class _StreamStreamApiKey(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_defaults(details, self.api_key, None), requests)


@dataclass
class LimnerClient:
    """A ``grpc.aio`` channel and the service stubs on it. Close it (or use ``async with``)."""

    channel: grpc.aio.Channel
    images: image_service_pb2_grpc.ImageServiceStub
    jobs: job_service_pb2_grpc.JobServiceStub
    models: model_service_pb2_grpc.ModelServiceStub
    # The API key's metadata. The channel already adds it to every call; passing it to a
    # call yourself is harmless (it is not sent twice).
    metadata: tuple[tuple[str, str], ...] = ()
    scenes: scene_service_pb2_grpc.SceneServiceStub | None = None
    design_references: design_reference_service_pb2_grpc.DesignReferenceServiceStub | None = None

    def __post_init__(self) -> None:
        if self.scenes is None:
            self.scenes = scene_service_pb2_grpc.SceneServiceStub(self.channel)
        if self.design_references is None:
            self.design_references = design_reference_service_pb2_grpc.DesignReferenceServiceStub(
                self.channel
            )

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> LimnerClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def connect(
    address: str,
    *,
    api_key: str = "",
    tls: TlsConfig | None = None,
    keepalive: KeepAliveConfig | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    unary_timeout_s: float | None = DEFAULT_UNARY_TIMEOUT_S,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> LimnerClient:
    """A channel to ``address`` (``host:port``) with the service stubs. Plaintext unless
    ``tls`` is given. ``api_key`` is sent as ``authorization: Bearer <key>`` on every call
    made through the returned client's stubs or channel. Unary calls without a ``timeout``
    get ``unary_timeout_s`` (``None``: no deadline); streams have none. ``interceptors``
    run after the client's own. Does not wait for the connection: the first call does, and
    fails with UNAVAILABLE (e.g. a failed TLS handshake)."""
    options = channel_options(keepalive, max_message_bytes, tls)
    key = f"Bearer {api_key}" if api_key else ""
    chain: list[Any] = [_UnaryUnaryDefaults(key, unary_timeout_s)]
    if key:
        chain += [_UnaryStreamApiKey(key), _StreamUnaryApiKey(key), _StreamStreamApiKey(key)]
    chain += list(interceptors)
    if tls is None:
        channel = grpc.aio.insecure_channel(address, options=options, interceptors=chain)
    else:
        channel = grpc.aio.secure_channel(
            address, tls.credentials(), options=options, interceptors=chain
        )
    return LimnerClient(
        channel=channel,
        images=image_service_pb2_grpc.ImageServiceStub(channel),
        jobs=job_service_pb2_grpc.JobServiceStub(channel),
        models=model_service_pb2_grpc.ModelServiceStub(channel),
        metadata=api_key_metadata(api_key),
    )


JobStream = Any
"""A server-streaming call whose responses carry ``.event`` (a ``JobEvent``): WatchJob,
GenerateImage, EditImage, GenerateAvatar, ..."""


async def watch_job(
    client: LimnerClient,
    job: str,
    *,
    after_sequence: int = 0,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """Follows a job to its end, resuming from the last sequence seen after a dropped
    stream (UNAVAILABLE: the network, a server restarting or cutting an old connection;
    or a stream that ends before the job's terminal event), so no logged event is lost or
    repeated. Snapshots and heartbeats are passed through too.

    Retries wait ``backoff_s``, doubling (up to ``max_backoff_s`` when given) for each
    retry in a row; any event resets the count, and after ``max_retries`` in a row the
    error is raised. ``on_retry(error, delay_s)`` is told before each wait, and may raise
    to stop retrying (e.g. ``error`` itself)."""
    async for event in _follow(
        client,
        job,
        None,
        after_sequence=after_sequence,
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_retry=on_retry,
    ):
        yield event


async def _create_and_follow(
    client: LimnerClient,
    request: Any,
    start: Callable[[], JobStream],
    max_retries: int,
    backoff_s: float,
    max_backoff_s: float | None,
    on_retry: OnRetry | None,
) -> AsyncIterator[job_pb2.JobEvent]:
    if not request.request_id:
        request.request_id = new_request_id()
    async for event in _follow(
        client,
        "",
        start,
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_retry=on_retry,
    ):
        yield event


async def generate_image(
    client: LimnerClient,
    request: image_service_pb2.GenerateImageRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``GenerateImage``, robust to a dropped stream like :func:`watch_job`: until the
    job's name is known the request is sent again (a random ``request_id`` is set first if
    it has none, so the server answers with the same job), then the job is watched with
    ``WatchJob(after_sequence)``. Each event's ``job`` names the job."""
    async for event in _create_and_follow(
        client,
        request,
        lambda: client.images.GenerateImage(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    ):
        yield event


async def edit_image(
    client: LimnerClient,
    request: image_service_pb2.EditImageRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``EditImage``, robust to a dropped stream as :func:`generate_image` is."""
    async for event in _create_and_follow(
        client,
        request,
        lambda: client.images.EditImage(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    ):
        yield event


async def generate_avatar(
    client: LimnerClient,
    request: image_service_pb2.GenerateAvatarRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``GenerateAvatar``, robust to a dropped stream as :func:`generate_image` is."""
    async for event in _create_and_follow(
        client,
        request,
        lambda: client.images.GenerateAvatar(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    ):
        yield event


async def edit_avatar(
    client: LimnerClient,
    request: image_service_pb2.EditAvatarRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``EditAvatar``, robust to a dropped stream as :func:`generate_image` is."""
    async for event in _create_and_follow(
        client,
        request,
        lambda: client.images.EditAvatar(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    ):
        yield event


async def generate_scene(
    client: LimnerClient,
    request: scene_service_pb2.GenerateSceneRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``SceneService.GenerateScene``, robust to a dropped stream as :func:`generate_image`."""
    assert client.scenes is not None
    scenes = client.scenes
    async for event in _create_and_follow(
        client,
        request,
        lambda: scenes.GenerateScene(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    ):
        yield event


async def design_notes(
    client: LimnerClient,
    request: design_reference_service_pb2.DraftDesignNotesRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``DesignReferenceService.DraftDesignNotes``, robust to a dropped stream as
    :func:`generate_image` is."""
    assert client.design_references is not None
    references = client.design_references
    async for event in _create_and_follow(
        client,
        request,
        lambda: references.DraftDesignNotes(request),
        max_retries,
        backoff_s,
        max_backoff_s,
        on_retry,
    ):
        yield event


async def _follow(
    client: LimnerClient,
    job: str,
    start: Callable[[], JobStream] | None,
    *,
    after_sequence: int = 0,
    max_retries: int,
    backoff_s: float,
    max_backoff_s: float | None,
    on_retry: OnRetry | None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """The one follower behind watch_job and the job-creating helpers (the Go and
    TypeScript clients' follower, in Python): ``start`` creates the job and is sent again
    until the job's name is known; from then on the job is watched from the last logged
    event seen."""
    last = after_sequence
    retries = 0
    ended = False
    while True:
        call: JobStream = None
        try:
            if job or start is None:
                call = client.jobs.WatchJob(
                    job_service_pb2.WatchJobRequest(name=job, after_sequence=last)
                )
            else:
                call = start()
            async for response in call:
                event: job_pb2.JobEvent = response.event
                job = job or event.job
                if not event.transient:
                    if event.sequence <= last:
                        continue  # already yielded before the drop
                    last = event.sequence
                retries = 0
                yield event
                # After the terminal event the server ends the stream: read on to its
                # status, so the call ends OK rather than cancelled.
                ended = ended or is_terminal(event)
            if ended:
                return
            error = _ended_early()
        except grpc.aio.AioRpcError as rpc_error:
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
        await asyncio.sleep(delay)


def _ended_early() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="the job stream ended before the job's terminal event",
    )


async def upload_image(
    client: LimnerClient, path: Path, *, display_name: str = "", request_id: str = ""
) -> image_service_pb2.UploadImageResponse:
    """Uploads an image file (one message: the server's size limit applies); identical
    bytes give the same content-addressed asset."""
    content = await asyncio.to_thread(Path(path).read_bytes)
    response: image_service_pb2.UploadImageResponse = await client.images.UploadImage(
        image_service_pb2.UploadImageRequest(
            content=content,
            display_name=display_name or Path(path).name,
            request_id=request_id,
        ),
        timeout=60,
    )
    return response


async def download_asset(client: LimnerClient, asset: str, destination: Path) -> int:
    """Streams an asset's bytes into ``destination`` chunk by chunk (through
    ``<destination>.part``, renamed at the end), checking offsets, the size and the sha256
    its name gives; returns the byte count. Raises :class:`~limner.client.DownloadError`
    on a mismatch and the gRPC error on a failed call, leaving no partial file."""
    destination = Path(destination)
    partial = destination.with_name(destination.name + ".part")
    checker = ChunkChecker(asset)
    call = client.images.ReadAssetContent(image_service_pb2.ReadAssetContentRequest(name=asset))
    try:
        file = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in call:
                await asyncio.to_thread(file.write, checker.add(chunk))
        finally:
            await asyncio.to_thread(file.close)
        written = checker.finish()
        await asyncio.to_thread(partial.replace, destination)
    except BaseException:
        if not call.done():
            call.cancel()
        partial.unlink(missing_ok=True)
        raise
    return written
