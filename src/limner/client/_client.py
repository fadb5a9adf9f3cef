from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from limner.v1 import (
    image_service_pb2,
    image_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    model_service_pb2_grpc,
)

TERMINAL_EVENTS = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class KeepAliveConfig:
    """Client keepalive pings. ``interval_ms`` must not be below the server's
    ``grpc.min_ping_interval_without_data_ms`` (10 s by default) or it answers GOAWAY."""

    interval_ms: int = 30_000
    timeout_ms: int = 10_000


class TlsConfigError(ValueError):
    """The TLS options are incomplete, or name a file that cannot be read or holds no PEM
    certificate or key. The message is one line naming the file."""


@dataclass(frozen=True)
class TlsConfig:
    """Connect over TLS.

    ``ca_cert``: a PEM file with the CA certificate(s) that signed the server's certificate;
    ``None`` trusts the system's CAs. ``client_cert`` and ``client_key``: this client's PEM
    certificate and unencrypted key, for a server that requires client certificates (mTLS);
    both or neither. ``server_name``: the name to check the server's certificate against
    when it is not the host in the address (e.g. connecting by IP to a certificate for
    ``limner.internal``).
    """

    ca_cert: Path | str | None = None
    client_cert: Path | str | None = None
    client_key: Path | str | None = None
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        """Reads the files; raises ``TlsConfigError`` when one is missing or not PEM."""
        if (self.client_cert is None) != (self.client_key is None):
            raise TlsConfigError(
                "TLS: a client certificate needs its key and a key needs its certificate: "
                "give both client_cert and client_key, or neither"
            )
        ca = _read_pem(self.ca_cert, "the CA certificate", "CERTIFICATE-----")
        cert = _read_pem(self.client_cert, "the client certificate", "CERTIFICATE-----")
        key = _read_pem(self.client_key, "the client key", "PRIVATE KEY-----")
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )


def _read_pem(path: Path | str | None, what: str, marker: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TlsConfigError(f"TLS: cannot read {what} {path}: {error.strerror or error}") from None
    if marker.encode() not in data:
        raise TlsConfigError(f"TLS: {what} {path} holds no PEM {marker.rstrip('-').lower()}")
    return data


def _with_api_key(details: Any, value: str) -> Any:
    """``details`` with ``authorization: <value>`` added, unless the call brings its own
    ``authorization`` or ``x-api-key``."""
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if "authorization" not in metadata and "x-api-key" not in metadata:
        metadata.add("authorization", value)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# grpc.aio files each interceptor under the first call shape it implements, so every shape
# needs its own object. grpc ships no type hints: the bases are Any to mypy.


class _UnaryUnaryApiKey(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, value: str) -> None:
        self.value = value

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_api_key(details, self.value), request)


class _UnaryStreamApiKey(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, value: str) -> None:
        self.value = value

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_api_key(details, self.value), request)


class _StreamUnaryApiKey(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, value: str) -> None:
        self.value = value

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_api_key(details, self.value), requests)


class _StreamStreamApiKey(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, value: str) -> None:
        self.value = value

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_api_key(details, self.value), requests)


def _api_key_interceptors(api_key: str) -> list[Any] | None:
    """Interceptors that send ``authorization: Bearer <api_key>`` with every call."""
    if not api_key:
        return None
    value = f"Bearer {api_key}"
    return [
        _UnaryUnaryApiKey(value),
        _UnaryStreamApiKey(value),
        _StreamUnaryApiKey(value),
        _StreamStreamApiKey(value),
    ]


@dataclass
class LimnerClient:
    channel: grpc.aio.Channel
    images: image_service_pb2_grpc.ImageServiceStub
    jobs: job_service_pb2_grpc.JobServiceStub
    models: model_service_pb2_grpc.ModelServiceStub
    # The API key's metadata. The channel already adds it to every call; passing it to a
    # call yourself is harmless (it is not sent twice).
    metadata: tuple[tuple[str, str], ...] = ()

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
    max_message_bytes: int = 32 * 1024 * 1024,
) -> LimnerClient:
    """A channel to ``address`` (``host:port``) with the service stubs. Plaintext unless
    ``tls`` is given. ``api_key`` is sent as ``authorization: Bearer <key>`` on every call
    made through the returned client's stubs or channel. Does not wait for the connection:
    the first call does, and fails with UNAVAILABLE (e.g. a failed TLS handshake)."""
    keepalive = keepalive or KeepAliveConfig()
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", keepalive.interval_ms),
        ("grpc.keepalive_timeout_ms", keepalive.timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Reconnect within a second of a server's return (a restart, a dropped connection)
        # instead of gRPC's default backoff of up to 120 s; calls made meanwhile fail fast
        # with UNAVAILABLE and the job followers retry them.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    interceptors = _api_key_interceptors(api_key)
    if tls is None:
        channel = grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    else:
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        channel = grpc.aio.secure_channel(
            address, tls.credentials(), options=options, interceptors=interceptors
        )
    metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
    return LimnerClient(
        channel=channel,
        images=image_service_pb2_grpc.ImageServiceStub(channel),
        jobs=job_service_pb2_grpc.JobServiceStub(channel),
        models=model_service_pb2_grpc.ModelServiceStub(channel),
        metadata=metadata,
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
    on_retry: Callable[[grpc.aio.AioRpcError, float], None] | None = None,
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


async def generate_image(
    client: LimnerClient,
    request: image_service_pb2.GenerateImageRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: Callable[[grpc.aio.AioRpcError, float], None] | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``GenerateImage``, robust to a dropped stream like :func:`watch_job`: until the
    job's name is known the request is sent again (a random ``request_id`` is set first if
    it has none, so the server answers with the same job), then the job is watched with
    ``WatchJob(after_sequence)``. Each event's ``job`` names the job."""
    if not request.request_id:
        request.request_id = str(uuid.uuid4())
    async for event in _follow(
        client,
        "",
        lambda: client.images.GenerateImage(request),
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_retry=on_retry,
    ):
        yield event


async def edit_image(
    client: LimnerClient,
    request: image_service_pb2.EditImageRequest,
    *,
    max_retries: int = 8,
    backoff_s: float = 0.2,
    max_backoff_s: float | None = None,
    on_retry: Callable[[grpc.aio.AioRpcError, float], None] | None = None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """``EditImage``, robust to a dropped stream as :func:`generate_image` is."""
    if not request.request_id:
        request.request_id = str(uuid.uuid4())
    async for event in _follow(
        client,
        "",
        lambda: client.images.EditImage(request),
        max_retries=max_retries,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
        on_retry=on_retry,
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
    on_retry: Callable[[grpc.aio.AioRpcError, float], None] | None,
) -> AsyncIterator[job_pb2.JobEvent]:
    """The one follower behind watch_job, generate_image and edit_image (the Go and
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
                ended = ended or event.WhichOneof("event") in TERMINAL_EVENTS
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
    content = await asyncio.to_thread(path.read_bytes)
    response: image_service_pb2.UploadImageResponse = await client.images.UploadImage(
        image_service_pb2.UploadImageRequest(
            content=content,
            display_name=display_name or path.name,
            request_id=request_id,
        ),
        timeout=60,
    )
    return response


async def download_asset(client: LimnerClient, asset: str, destination: Path) -> int:
    """Streams an asset's bytes into ``destination``; returns the byte count."""
    partial = destination.with_name(destination.name + ".part")
    chunks = [
        chunk.data
        async for chunk in client.images.ReadAssetContent(
            image_service_pb2.ReadAssetContentRequest(name=asset)
        )
    ]
    data = b"".join(chunks)
    await asyncio.to_thread(partial.write_bytes, data)
    await asyncio.to_thread(partial.replace, destination)
    written = len(data)
    return written
