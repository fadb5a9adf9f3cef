"""The server's outer surface: health, reflection, RPCs not built yet, request ids, and how
unexpected and provider errors reach clients."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from limner.errors import ContentFiltered, ResourceExhausted
from limner.providers import Provider
from limner.testing.providers import GatedImageGenerator
from limner.testing.streams import collect, kinds, logged, status_details, unpack
from limner.v1 import (
    design_reference_service_pb2,
    image_service_pb2,
    job_pb2,
    job_service_pb2,
    model_service_pb2,
    scene_service_pb2,
)
from limner.v1 import image_service_pb2 as ipb

SERVICES = {
    "limner.v1.ImageService": (image_service_pb2, "ImageService", "images"),
    "limner.v1.SceneService": (scene_service_pb2, "SceneService", "scenes"),
    "limner.v1.DesignReferenceService": (
        design_reference_service_pb2,
        "DesignReferenceService",
        "design_references",
    ),
    "limner.v1.ModelService": (model_service_pb2, "ModelService", "models"),
    "limner.v1.JobService": (job_service_pb2, "JobService", "jobs"),
}


def method_descriptor(service: str, method: str):
    module, short, _ = SERVICES[service]
    return module.DESCRIPTOR.services_by_name[short].methods_by_name[method]


def all_methods(service: str) -> list[str]:
    module, short, _ = SERVICES[service]
    return [method.name for method in module.DESCRIPTOR.services_by_name[short].methods]


async def invoke(server, service: str, method: str, request=None, **kwargs) -> list:
    """Calls any RPC with an empty (or given) request; returns the responses."""
    descriptor = method_descriptor(service, method)
    if request is None:
        request = message_factory.GetMessageClass(descriptor.input_type)()
    stub = getattr(server, SERVICES[service][2])
    call = getattr(stub, method)(request, **kwargs)
    if descriptor.server_streaming:
        return [response async for response in call]
    return [await call]


def provider_with(images) -> dict[str, Provider]:
    return {"offline": Provider(id="offline", kind="offline", images=images)}


# -- health and reflection ---------------------------------------------------------------


@pytest.mark.parametrize("service", ["", *SERVICES])
async def test_health_reports_serving(server, service):
    health = health_pb2_grpc.HealthStub(server.channel)
    response = await health.Check(health_pb2.HealthCheckRequest(service=service))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_of_an_unknown_service_is_not_found(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health.Check(health_pb2.HealthCheckRequest(service="limner.v1.NoSuchService"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def reflect(server, *requests: reflection_pb2.ServerReflectionRequest) -> list:
    stub = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    return [response async for response in stub.ServerReflectionInfo(iter(requests))]


async def test_reflection_lists_every_service(server):
    (response,) = await reflect(server, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in response.list_services_response.service}
    assert names == {
        *SERVICES,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_reflection_serves_the_api_descriptors(server):
    (response,) = await reflect(
        server,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="limner.v1.ImageService"),
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    by_name = {f.name: f for f in files}
    assert "limner/v1/image_service.proto" in by_name
    service = by_name["limner/v1/image_service.proto"].service[0]
    assert service.name == "ImageService"
    assert {method.name for method in service.method} >= {"GenerateImage", "UploadImage"}


async def test_reflection_can_be_turned_off(make_server):
    async with make_server(grpc={"reflection": False}) as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await reflect(server, reflection_pb2.ServerReflectionRequest(list_services=""))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# Every RPC of the v1 surface is implemented.
BUILT = [(service, method) for service in SERVICES for method in all_methods(service)]


@pytest.mark.parametrize(
    ("service", "method"), BUILT, ids=[f"{s.split('.')[-1]}.{m}" for s, m in BUILT]
)
async def test_every_other_rpc_is_wired(server, service, method):
    """Called with an empty request, a built RPC answers (or refuses the request), but never
    UNIMPLEMENTED, and never INTERNAL."""
    try:
        await invoke(server, service, method)
    except grpc.aio.AioRpcError as error:
        assert error.code() not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL), (
            f"{error.code()}: {error.details()}"
        )
        assert status_details(error)["ErrorInfo"].reason


def test_built_rpcs_are_the_expected_ones():
    assert sorted(f"{s.split('.')[-1]}.{m}" for s, m in BUILT) == sorted(
        [
            *(
                f"ImageService.{m}"
                for m in (
                    "GenerateImage",
                    "EditImage",
                    "UploadImage",
                    "GetAsset",
                    "ListAssets",
                    "ReadAssetContent",
                    "DeleteAsset",
                    "GenerateAvatar",
                    "EditAvatar",
                    "AcceptAvatar",
                )
            ),
            *(
                f"DesignReferenceService.{m}"
                for m in all_methods("limner.v1.DesignReferenceService")
            ),
            *(
                f"ModelService.{m}"
                for m in (
                    "ListProviders",
                    "GetModel",
                    "ListModels",
                    "CreateModel",
                    "UpdateModel",
                    "DeleteModel",
                    "DiscoverModels",
                    "CheckFeature",
                    "GetImageSettings",
                    "UpdateImageSettings",
                    "ListPromptTemplates",
                    "GetPromptTemplate",
                    "UpdatePromptTemplate",
                    "ResetPromptTemplate",
                    "PreviewPromptTemplate",
                )
            ),
            *(
                f"JobService.{m}"
                for m in ("GetJob", "ListJobs", "WatchJob", "CancelJob", "ListWebhookDeliveries")
            ),
            *(
                f"SceneService.{m}"
                for m in (
                    "CreateChat",
                    "GetChat",
                    "ListChats",
                    "DeleteChat",
                    "CreateMessage",
                    "ListMessages",
                    "GenerateScene",
                    "GetScene",
                    "ListScenes",
                    "ApproveScene",
                    "RejectScene",
                )
            ),
        ]
    )


# -- request ids -------------------------------------------------------------------------


async def test_unary_responses_carry_a_request_id(server):
    first = server.models.ListModels(model_service_pb2.ListModelsRequest())
    await first
    second = server.models.ListModels(model_service_pb2.ListModelsRequest())
    await second

    ids = [(await call.trailing_metadata()).get("x-request-id") for call in (first, second)]
    assert all(ids) and len(ids[0]) >= 16
    assert ids[0] != ids[1], "each call gets its own id"


async def test_client_request_id_is_echoed(server):
    call = server.models.ListModels(
        model_service_pb2.ListModelsRequest(), metadata=(("x-request-id", "trace-me-42"),)
    )
    await call
    assert (await call.trailing_metadata()).get("x-request-id") == "trace-me-42"


async def test_streaming_responses_carry_the_request_id(server):
    call = server.images.GenerateImage(
        ipb.GenerateImageRequest(prompt="a cup", options=ipb.ImageOptions(width=64, height=64)),
        metadata=(("x-request-id", "stream-7"),),
    )
    events = [response.event async for response in call]
    assert kinds(events)[-1] == "completed"
    assert (await call.trailing_metadata()).get("x-request-id") == "stream-7"


async def test_error_responses_carry_the_request_id(server):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.GetAsset(
            ipb.GetAssetRequest(name="assets/" + "0" * 64),
            metadata=(("x-request-id", "failing-1"),),
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.trailing_metadata().get("x-request-id") == "failing-1"
    assert status_details(caught.value)["ErrorInfo"].reason == "ASSET_NOT_FOUND", "details kept"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.jobs.WatchJob(
                job_service_pb2.WatchJobRequest(name="jobs/missing"),
                metadata=(("x-request-id", "failing-2"),),
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.trailing_metadata().get("x-request-id") == "failing-2"
    assert status_details(caught.value)["ErrorInfo"].reason == "JOB_NOT_FOUND"


async def test_unauthenticated_responses_carry_the_request_id(make_server):
    async with make_server(auth={"api_keys": [{"key": "k1", "workspace": "a"}]}) as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.models.ListModels(
                model_service_pb2.ListModelsRequest(), metadata=(("x-request-id", "anon-1"),)
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert caught.value.trailing_metadata().get("x-request-id") == "anon-1"


# -- unexpected errors -------------------------------------------------------------------


class ExplodingProvider:
    """A provider whose image adapter blows up when the API layer looks it up."""

    id = "offline"
    kind = "offline"
    writer = None

    @property
    def images(self):
        raise RuntimeError("secret-detail: db password is hunter2")

    async def aclose(self) -> None:
        return None


async def test_unexpected_exception_in_a_handler_is_a_plain_internal(make_server):
    async with make_server(providers={"offline": ExplodingProvider()}) as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(
                server.images.GenerateImage(
                    ipb.GenerateImageRequest(prompt="a cup"),
                    metadata=(("x-request-id", "boom-1"),),
                )
            )
        error = caught.value
        assert error.code() == grpc.StatusCode.INTERNAL
        message = error.details()
        assert "secret-detail" not in message and "hunter2" not in message
        assert "RuntimeError" not in message and "Traceback" not in message
        assert "boom-1" in message, "the message names the request id to look up in the log"
        assert error.trailing_metadata().get("x-request-id") == "boom-1"
        info = status_details(error)["ErrorInfo"]
        assert info.reason == "INTERNAL"
        assert "secret-detail" not in str(status_details(error))

        # The server keeps serving.
        listed = await server.models.ListModels(model_service_pb2.ListModelsRequest())
        assert listed.models


class RaisingGenerator:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    async def generate(self, request, progress):
        self.calls += 1
        await progress.step(1, 2, message="about to fail")
        raise self.error


async def run_failing_job(server) -> tuple[list[job_pb2.JobEvent], job_pb2.Job]:
    events = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt="a cup", options=ipb.ImageOptions(width=64, height=64))
        )
    )
    assert kinds(events)[-1] == "failed"
    job = (await server.jobs.GetJob(job_service_pb2.GetJobRequest(name=events[0].job))).job
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error == events[-1].failed, "the job keeps the error the stream reported"
    assert job.HasField("end_time")
    return events, job


async def test_unexpected_provider_exception_fails_the_job_as_internal(make_server):
    generator = RaisingGenerator(RuntimeError("secret-detail"))
    async with make_server(providers=provider_with(generator)) as server:
        events, job = await run_failing_job(server)

        failed = events[-1].failed
        assert failed.code == code_pb2.INTERNAL
        assert "secret-detail" not in failed.message
        assert "Traceback" not in failed.message
        assert unpack(failed)["ErrorInfo"].reason == "INTERNAL"
        assert unpack(failed)["ErrorInfo"].domain == "limner.dev"
        assert "secret-detail" not in job.SerializeToString().decode("utf-8", "replace")
        assert generator.calls == 1


async def test_content_filtered_fails_precondition_without_retry(make_server):
    gated = GatedImageGenerator()
    gated.fail_with = ContentFiltered("blocked")
    gated.gate.set()
    async with make_server(providers=provider_with(gated)) as server:
        events, _ = await run_failing_job(server)

        failed = events[-1].failed
        assert failed.code == code_pb2.FAILED_PRECONDITION
        assert failed.message == "blocked"
        details = unpack(failed)
        assert details["ErrorInfo"].reason == "CONTENT_FILTERED"
        assert details["ErrorInfo"].domain == "limner.dev"
        assert "RetryInfo" not in details
        assert gated.calls == 1, "content filtering is never retried"


async def test_rate_limited_provider_reports_retry_info(make_server):
    generator = RaisingGenerator(ResourceExhausted("slow down", retry_after_s=2))
    async with make_server(providers=provider_with(generator)) as server:
        events, job = await run_failing_job(server)

        failed = events[-1].failed
        assert failed.code == code_pb2.RESOURCE_EXHAUSTED
        assert failed.message == "slow down"
        details = unpack(failed)
        assert details["ErrorInfo"].reason == "PROVIDER_RATE_LIMITED"
        assert details["RetryInfo"].retry_delay.ToTimedelta().total_seconds() == 2
        assert unpack(job.error)["RetryInfo"].retry_delay.seconds == 2


async def test_empty_answers_are_retried_with_warnings(make_server):
    gated = GatedImageGenerator()
    gated.empty_answers = 2
    async with make_server(providers=provider_with(gated)) as server:
        stream = asyncio.ensure_future(
            collect(
                server.images.GenerateImage(
                    ipb.GenerateImageRequest(
                        prompt="a cup", options=ipb.ImageOptions(width=64, height=64)
                    )
                )
            )
        )
        await asyncio.wait_for(gated.started.wait(), 10)
        gated.gate.set()
        events = await asyncio.wait_for(stream, 30)

        assert kinds(events)[-1] == "completed"
        warnings = [e.warning for e in events if e.HasField("warning")]
        assert [w.code for w in warnings] == ["NO_IMAGE_RETRY", "NO_IMAGE_RETRY"]
        assert "retry 1 of 2" in warnings[0].message and "retry 2 of 2" in warnings[1].message
        assert gated.calls == 3
        assert len(events[-1].completed.images) == 1
        sequences = [e.sequence for e in logged(events)]
        assert sequences == list(range(1, len(sequences) + 1))
        job = (await server.jobs.GetJob(job_service_pb2.GetJobRequest(name=events[0].job))).job
        assert [w.code for w in job.warnings] == ["NO_IMAGE_RETRY", "NO_IMAGE_RETRY"]


async def test_three_empty_answers_fail_the_job(make_server):
    gated = GatedImageGenerator()
    gated.empty_answers = 3
    gated.gate.set()
    async with make_server(providers=provider_with(gated)) as server:
        events, _ = await run_failing_job(server)

        assert [e.warning.code for e in events if e.HasField("warning")] == [
            "NO_IMAGE_RETRY",
            "NO_IMAGE_RETRY",
        ]
        failed = events[-1].failed
        assert failed.code == code_pb2.UNKNOWN
        assert unpack(failed)["ErrorInfo"].reason == "NO_IMAGE_RETURNED"
        assert gated.calls == 3
