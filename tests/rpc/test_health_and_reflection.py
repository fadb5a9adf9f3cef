"""Health per dependency (limner.database, limner.assets, limner.jobs and limner.ready in
the gRPC health service: checked periodically and on demand, NOT_SERVING while the
dependency fails) and server reflection v1 next to v1alpha."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from limner.api.reflection import V1_FILE, V1_SERVICE_NAME, register_v1_descriptor

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEPENDENCIES = ("limner.database", "limner.assets", "limner.jobs")

# Periodic checks far apart, so a Check answers from the check it runs itself.
ON_DEMAND = {"interval_s": 60.0, "timeout_s": 2.0}
# On-demand checks reuse a result younger than a second.
FRESH_S = 1.0


async def status(server, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(server.channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return response.status


async def fresh_status(server, service: str) -> int:
    await asyncio.sleep(FRESH_S + 0.1)
    return await status(server, service)


async def test_every_dependency_and_readiness_serve(make_server):
    async with make_server(health=ON_DEMAND) as server:
        for service in (*DEPENDENCIES, "limner.ready"):
            assert await status(server, service) == SERVING, service


async def test_the_database_file_gone_is_not_serving_until_it_is_back(make_server):
    async with make_server(health=ON_DEMAND) as server:
        database = Path(server.app.data_dir) / "limner.db"
        away = database.with_name("limner.db.away")
        os.replace(database, away)
        try:
            assert await fresh_status(server, "limner.database") == NOT_SERVING
            assert await status(server, "limner.ready") == NOT_SERVING
            assert "is not there" in server.app.server.health.problems["limner.database"]
            # The server's own status (liveness) stays SERVING: restarting would not help.
            assert await status(server, "") == SERVING
            assert await status(server, "limner.assets") == SERVING
        finally:
            os.replace(away, database)
        assert await fresh_status(server, "limner.database") == SERVING
        assert await status(server, "limner.ready") == SERVING


async def test_a_replaced_database_file_is_not_serving(make_server):
    async with make_server(health=ON_DEMAND) as server:
        database = Path(server.app.data_dir) / "limner.db"
        original = database.with_name("limner.db.original")
        os.replace(database, original)
        database.write_bytes(b"")  # an empty file where the database was
        try:
            assert await fresh_status(server, "limner.database") == NOT_SERVING
            assert "replaced" in server.app.server.health.problems["limner.database"]
        finally:
            os.replace(original, database)
        assert await fresh_status(server, "limner.database") == SERVING


async def test_the_asset_store_gone_is_not_serving_until_it_is_back(make_server):
    async with make_server(health=ON_DEMAND) as server:
        assets = Path(server.app.data_dir) / "assets"
        away = assets.with_name("assets.away")
        os.replace(assets, away)
        assets.write_bytes(b"not a directory")
        try:
            assert await fresh_status(server, "limner.assets") == NOT_SERVING
            assert await status(server, "limner.ready") == NOT_SERVING
            assert await status(server, "limner.database") == SERVING
        finally:
            assets.unlink()
            os.replace(away, assets)
        assert await fresh_status(server, "limner.assets") == SERVING
        assert await status(server, "limner.ready") == SERVING


async def test_job_engine_health_follows_its_lease_rounds_and_watch_sees_it(make_server):
    # Periodic checks and lease rounds every 0.2 s: a Watch stream sees each change.
    async with make_server(
        health={"interval_s": 0.2, "timeout_s": 2.0},
        jobs={"lease_s": 1.5, "claim_interval_s": 0.2, "heartbeat_interval_s": 0.5},
    ) as server:
        stub = health_pb2_grpc.HealthStub(server.channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service="limner.jobs"))
        seen = [(await anext(aiter(watch))).status]
        assert seen == [SERVING]

        store = server.app.runner.store
        claim = store.claim_jobs

        async def unreachable(*_args, **_kwargs):
            raise OSError("database unreachable")

        store.claim_jobs = unreachable  # what a lease round does first
        try:
            seen.append((await asyncio.wait_for(anext(aiter(watch)), 10)).status)
            problem = server.app.server.health.problems["limner.jobs"]
            assert "database unreachable" in problem
        finally:
            store.claim_jobs = claim
        seen.append((await asyncio.wait_for(anext(aiter(watch)), 10)).status)
        watch.cancel()
        assert seen == [SERVING, NOT_SERVING, SERVING]


async def test_a_check_that_hangs_times_out_as_not_serving(make_server):
    async with make_server(health={"interval_s": 60.0, "timeout_s": 0.3}) as server:
        health = server.app.server.health
        hang = asyncio.Event()

        async def hanging() -> None:
            await hang.wait()

        working = health.checks["limner.assets"]
        health.checks["limner.assets"] = hanging
        try:
            assert await fresh_status(server, "limner.assets") == NOT_SERVING
            assert "no answer within 0.3 s" in health.problems["limner.assets"]
        finally:
            health.checks["limner.assets"] = working
            hang.set()
        assert await fresh_status(server, "limner.assets") == SERVING


async def test_graceful_stop_turns_every_service_not_serving(make_server):
    async with make_server(health=ON_DEMAND) as server:
        await server.app.server.enter_graceful_shutdown()
        for service in ("", *DEPENDENCIES, "limner.ready"):
            assert await fresh_status(server, service) == NOT_SERVING, service


# -- reflection v1 ------------------------------------------------------------------------


def v1_types():
    """The v1 request and response classes, from the descriptors the server registered
    (not from grpcio-reflection's v1alpha module)."""
    register_v1_descriptor()  # what a server with reflection on does (idempotent)
    pool = descriptor_pool.Default()
    request = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
    response = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")
    return message_factory.GetMessageClass(request), message_factory.GetMessageClass(response)


async def reflect_v1(channel: grpc.aio.Channel, *requests) -> list:
    request_type, response_type = v1_types()
    call = channel.stream_stream(
        f"/{V1_SERVICE_NAME}/ServerReflectionInfo",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return [response async for response in call(iter(requests))]


async def test_reflection_v1_lists_the_services(server):
    request_type, _ = v1_types()
    (response,) = await reflect_v1(server.channel, request_type(list_services=""))
    names = {service.name for service in response.list_services_response.service}
    assert {
        "limner.v1.ImageService",
        "limner.v1.JobService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


async def test_reflection_v1_describes_the_api_and_itself(server):
    request_type, _ = v1_types()
    responses = await reflect_v1(
        server.channel,
        request_type(file_containing_symbol="limner.v1.JobService"),
        request_type(file_containing_symbol=V1_SERVICE_NAME),
    )
    files = {
        proto.name: proto
        for response in responses
        for proto in map(
            descriptor_pb2.FileDescriptorProto.FromString,
            response.file_descriptor_response.file_descriptor_proto,
        )
    }
    assert "limner/v1/job_service.proto" in files
    v1 = files[V1_FILE]
    assert v1.package == "grpc.reflection.v1"
    assert v1.options.java_package == "io.grpc.reflection.v1"
    (method,) = v1.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.client_streaming and method.server_streaming


async def test_reflection_v1_is_off_with_reflection(make_server):
    async with make_server(grpc={"reflection": False}) as server:
        request_type, _ = v1_types()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await reflect_v1(server.channel, request_type(list_services=""))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
