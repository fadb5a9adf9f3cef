"""Start a real Limner server on a free loopback port, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from limner.app import App
from limner.providers import Provider
from limner.settings import Settings
from limner.v1 import (
    design_reference_service_pb2_grpc,
    image_service_pb2_grpc,
    job_service_pb2_grpc,
    model_service_pb2_grpc,
    scene_service_pb2_grpc,
)


def fast_settings(data_dir: Path, database_url: str = "", **overrides: Any) -> Settings:
    """Fast settings: no render delay, no drain pause, short heartbeats."""
    values: dict[str, Any] = {
        "address": "127.0.0.1:0",
        "data_dir": data_dir,
        "database_url": database_url,
        "offline": {"step_delay_s": 0.0, "steps": 4},
        "shutdown": {"drain_s": 0.0, "grace_s": 2.0},
        "jobs": {"heartbeat_interval_s": 1.0, "preview_interval_s": 0.0},
    }
    values.update(overrides)
    return Settings.load(None, **values)


@dataclass
class RunningServer:
    app: App
    address: str
    channel: grpc.aio.Channel

    @property
    def images(self) -> image_service_pb2_grpc.ImageServiceStub:
        return image_service_pb2_grpc.ImageServiceStub(self.channel)

    @property
    def jobs(self) -> job_service_pb2_grpc.JobServiceStub:
        return job_service_pb2_grpc.JobServiceStub(self.channel)

    @property
    def models(self) -> model_service_pb2_grpc.ModelServiceStub:
        return model_service_pb2_grpc.ModelServiceStub(self.channel)

    @property
    def scenes(self) -> scene_service_pb2_grpc.SceneServiceStub:
        return scene_service_pb2_grpc.SceneServiceStub(self.channel)

    @property
    def design_references(self) -> design_reference_service_pb2_grpc.DesignReferenceServiceStub:
        return design_reference_service_pb2_grpc.DesignReferenceServiceStub(self.channel)

    def new_channel(self) -> grpc.aio.Channel:
        """A second, independent connection (for cancel-from-elsewhere tests)."""
        return grpc.aio.insecure_channel(self.address)


@asynccontextmanager
async def running_server(
    settings: Settings, *, providers: dict[str, Provider] | None = None
) -> AsyncIterator[RunningServer]:
    app = App(settings, providers=providers)
    try:
        port = await app.start()
    except BaseException:
        await app.stop(grace_s=0)
        raise
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(address)
    try:
        yield RunningServer(app=app, address=address, channel=channel)
    finally:
        await channel.close()
        await app.stop(grace_s=0.5)
