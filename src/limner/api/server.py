"""Builds the grpc.aio server: services, health (overall and per service), reflection,
interceptors, keepalive and message limits from settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from limner.api import reflection
from limner.api.health import DependencyHealth, HealthCheck
from limner.api.interceptors import AccessLogInterceptor, AuthInterceptor, ErrorMappingInterceptor
from limner.api.servicers import (
    DesignReferenceServicer,
    ImageServicer,
    JobServicer,
    ModelServicer,
    SceneServicer,
)
from limner.api.tls import ServerTls
from limner.observability.metrics import NO_METRICS, MetricsHooks
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

log = logging.getLogger("limner")

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
    def __init__(
        self,
        settings: Settings,
        servicers: Servicers,
        tls: ServerTls | None = None,
        metrics: MetricsHooks = NO_METRICS,
        health_checks: Mapping[str, HealthCheck] | None = None,
        interceptors: Sequence[Any] = (),
    ) -> None:
        self.settings = settings
        # None: plaintext. Health and reflection are on the same port, so they use TLS too.
        self.tls = tls
        # "" and each limner.v1 service, plus one named service per dependency.
        self.health = DependencyHealth(
            health_checks or {},
            interval_s=settings.health.interval_s,
            timeout_s=settings.health.timeout_s,
        )
        self.server = grpc.aio.server(
            interceptors=[
                # Outermost first: the tracing interceptor's span covers the access log line.
                *interceptors,
                AccessLogInterceptor(metrics),
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
            # grpc.reflection.v1 and v1alpha.
            reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME), self.server)
        self.port = 0

    async def start(self, address: str) -> int:
        if self.tls is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, self.tls.credentials)
            log.info("gRPC port %s uses %s", address, self.tls.description)
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.start()
        return self.port

    async def enter_graceful_shutdown(self) -> None:
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace_s: float | None) -> None:
        await self.health.stop()
        await self.server.stop(grace_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()
