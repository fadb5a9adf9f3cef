"""Builds the grpc.aio server: services, health (overall and per service), reflection,
interceptors, keepalive and message limits from settings."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from limner.api.interceptors import AccessLogInterceptor, AuthInterceptor, ErrorMappingInterceptor
from limner.api.servicers import (
    DesignReferenceServicer,
    ImageServicer,
    JobServicer,
    ModelServicer,
    SceneServicer,
)
from limner.settings import Settings
from limner.v1 import (
    design_reference_service_pb2,
    design_reference_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
    model_service_pb2,
    model_service_pb2_grpc,
    scene_service_pb2,
    scene_service_pb2_grpc,
)

SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (image_service_pb2, "ImageService"),
        (scene_service_pb2, "SceneService"),
        (design_reference_service_pb2, "DesignReferenceService"),
        (model_service_pb2, "ModelService"),
        (job_service_pb2, "JobService"),
    )
)


@dataclass
class Servicers:
    images: ImageServicer
    scenes: SceneServicer
    design_references: DesignReferenceServicer
    models: ModelServicer
    jobs: JobServicer


def server_options(settings: Settings) -> list[tuple[str, int]]:
    grpc_settings = settings.grpc
    options = [
        ("grpc.max_receive_message_length", grpc_settings.max_receive_message_bytes),
        ("grpc.max_send_message_length", grpc_settings.max_send_message_bytes),
        ("grpc.keepalive_time_ms", grpc_settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", grpc_settings.keepalive_timeout_ms),
        (
            "grpc.http2.min_ping_interval_without_data_ms",
            grpc_settings.min_ping_interval_without_data_ms,
        ),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 0),
    ]
    if grpc_settings.max_connection_idle_ms:
        options.append(("grpc.max_connection_idle_ms", grpc_settings.max_connection_idle_ms))
    if grpc_settings.max_connection_age_ms:
        options.append(("grpc.max_connection_age_ms", grpc_settings.max_connection_age_ms))
    return options


class GrpcServer:
    def __init__(self, settings: Settings, servicers: Servicers) -> None:
        self.settings = settings
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[
                AccessLogInterceptor(),
                AuthInterceptor(settings.auth.api_keys),
                ErrorMappingInterceptor(),
            ],
            options=server_options(settings),
        )
        image_service_pb2_grpc.add_ImageServiceServicer_to_server(servicers.images, self.server)
        scene_service_pb2_grpc.add_SceneServiceServicer_to_server(servicers.scenes, self.server)
        design_reference_service_pb2_grpc.add_DesignReferenceServiceServicer_to_server(
            servicers.design_references, self.server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicers.models, self.server)
        job_service_pb2_grpc.add_JobServiceServicer_to_server(servicers.jobs, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if settings.grpc.reflection:
            reflection.enable_server_reflection(
                (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
            )
        self.port = 0

    async def start(self, address: str) -> int:
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def enter_graceful_shutdown(self) -> None:
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace_s: float | None) -> None:
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()
