from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class LimnerClient:
    channel: grpc.aio.Channel
    images: image_service_pb2_grpc.ImageServiceStub
    jobs: job_service_pb2_grpc.JobServiceStub
    models: model_service_pb2_grpc.ModelServiceStub
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
    keepalive: KeepAliveConfig | None = None,
    max_message_bytes: int = 32 * 1024 * 1024,
) -> LimnerClient:
    keepalive = keepalive or KeepAliveConfig()
    channel = grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.keepalive_time_ms", keepalive.interval_ms),
            ("grpc.keepalive_timeout_ms", keepalive.timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
    return LimnerClient(
        channel=channel,
        images=image_service_pb2_grpc.ImageServiceStub(channel),
        jobs=job_service_pb2_grpc.JobServiceStub(channel),
        models=model_service_pb2_grpc.ModelServiceStub(channel),
        metadata=metadata,
    )


async def watch_job(
    client: LimnerClient,
    job: str,
    *,
    after_sequence: int = 0,
    max_retries: int = 8,
    backoff_s: float = 0.2,
) -> AsyncIterator[job_pb2.JobEvent]:
    """Follows a job to its end, resuming from the last sequence seen after a dropped
    stream (UNAVAILABLE, or the server cutting an old connection), so no logged event is
    lost or repeated. Snapshots and heartbeats are passed through too."""
    last = after_sequence
    retries = 0
    while True:
        try:
            call = client.jobs.WatchJob(
                job_service_pb2.WatchJobRequest(name=job, after_sequence=last),
                metadata=client.metadata,
            )
            async for response in call:
                event = response.event
                kind = event.WhichOneof("event")
                if not event.transient:
                    if event.sequence <= last:
                        continue
                    last = event.sequence
                retries = 0
                yield event
                if kind in TERMINAL_EVENTS:
                    return
            return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or retries >= max_retries:
                raise
            retries += 1
            await asyncio.sleep(backoff_s * 2 ** (retries - 1))


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
        metadata=client.metadata,
        timeout=60,
    )
    return response


async def download_asset(client: LimnerClient, asset: str, destination: Path) -> int:
    """Streams an asset's bytes into ``destination``; returns the byte count."""
    partial = destination.with_name(destination.name + ".part")
    chunks = [
        chunk.data
        async for chunk in client.images.ReadAssetContent(
            image_service_pb2.ReadAssetContentRequest(name=asset), metadata=client.metadata
        )
    ]
    data = b"".join(chunks)
    await asyncio.to_thread(partial.write_bytes, data)
    await asyncio.to_thread(partial.replace, destination)
    written = len(data)
    return written
