"""Bad input through the public API: every refusal carries the right code, ErrorInfo reason
and the field or precondition it is about, and never a traceback."""

from __future__ import annotations

import io
import uuid

import grpc
import pytest
from PIL import Image

from limner.testing.streams import collect, kinds, logged, status_details
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, job_service_pb2, model_pb2
from limner.v1 import model_service_pb2 as mpb

DOMAIN = "limner.dev"
UNKNOWN_ASSET = "assets/" + "0" * 64


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_clean(error: grpc.aio.AioRpcError) -> None:
    """The message is meant for humans: no traceback, no Python exception reprs."""
    message = error.details() or ""
    assert "Traceback" not in message
    assert 'File "' not in message
    assert message.strip(), "an error always says what is wrong"


def error_info(error: grpc.aio.AioRpcError):
    details = status_details(error)
    assert "ErrorInfo" in details, f"no ErrorInfo in {error.code()} {error.details()!r}"
    info = details["ErrorInfo"]
    assert info.domain == DOMAIN
    return info


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    details = status_details(error)
    assert "BadRequest" in details, f"no BadRequest in {error.code()} {error.details()!r}"
    return [v.field for v in details["BadRequest"].field_violations]


async def generate_error(server, request: ipb.GenerateImageRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(server.images.GenerateImage(request))
    assert_clean(caught.value)
    return caught.value


async def edit_error(server, request: ipb.EditImageRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(server.images.EditImage(request))
    assert_clean(caught.value)
    return caught.value


async def upload(server, data: bytes) -> str:
    return (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name


async def finished_job(server) -> list[job_pb2.JobEvent]:
    request = ipb.GenerateImageRequest(
        prompt="a lighthouse", options=ipb.ImageOptions(width=64, height=64, seed=3)
    )
    events = await collect(server.images.GenerateImage(request))
    assert kinds(events)[-1] == "completed"
    return events


# -- GenerateImage ---------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
async def test_empty_prompt_is_invalid_argument_on_prompt(server, prompt):
    error = await generate_error(server, ipb.GenerateImageRequest(prompt=prompt))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert info.reason == "INVALID_FIELD"
    assert info.metadata["field"] == "prompt"
    assert bad_fields(error) == ["prompt"]
    assert "prompt" in error.details() and "empty" in error.details()


@pytest.mark.parametrize("width", [0, 63, 4097, 100000])
async def test_width_out_of_range_names_options_width(server, width):
    request = ipb.GenerateImageRequest(
        prompt="a cat", options=ipb.ImageOptions(width=width, height=512)
    )
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_FIELD"
    assert bad_fields(error) == ["options.width"]
    violation = status_details(error)["BadRequest"].field_violations[0]
    assert str(width) in violation.description
    assert "64" in violation.description and "4096" in violation.description


async def test_height_out_of_range_names_options_height(server):
    request = ipb.GenerateImageRequest(
        prompt="a cat", options=ipb.ImageOptions(width=512, height=10)
    )
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["options.height"]


async def test_width_without_height_is_refused(server):
    request = ipb.GenerateImageRequest(prompt="a cat", options=ipb.ImageOptions(width=512))
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["options.width"]
    description = status_details(error)["BadRequest"].field_violations[0].description
    assert "together" in description


async def test_several_bad_fields_are_all_reported(server):
    request = ipb.GenerateImageRequest(
        prompt="", options=ipb.ImageOptions(width=1, height=1, image_count=0)
    )
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_fields(error)
    assert fields[0] == "prompt"
    assert {"prompt", "options.width", "options.height", "options.image_count"} <= set(fields)
    assert "more)" in error.details()


@pytest.mark.parametrize("count", [0, 9, -1])
async def test_image_count_out_of_range(server, count):
    request = ipb.GenerateImageRequest(prompt="a cat", options=ipb.ImageOptions(image_count=count))
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["options.image_count"]
    assert "1 to 8" in status_details(error)["BadRequest"].field_violations[0].description


async def test_image_count_above_the_models_limit_is_refused(server):
    # offline-image produces at most 4 images per request; 5 is within the API's 1..8.
    request = ipb.GenerateImageRequest(prompt="a cat", options=ipb.ImageOptions(image_count=5))
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["options.image_count"]
    assert "models/offline-image" in error.details()


async def test_unknown_model_is_not_found(server):
    error = await generate_error(
        server, ipb.GenerateImageRequest(prompt="a cat", model="models/nope")
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(error)
    assert info.reason == "MODEL_NOT_FOUND"
    assert info.metadata["model"] == "models/nope"
    assert "models/nope" in error.details()


@pytest.mark.parametrize("name", ["models/Not_Valid", "models/", "models/1abc", "models/a/b"])
async def test_malformed_model_name_is_invalid_argument_on_model(server, name):
    error = await generate_error(server, ipb.GenerateImageRequest(prompt="a cat", model=name))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_FIELD"
    assert bad_fields(error) == ["model"]


async def test_model_without_image_output_fails_precondition_before_any_job(server):
    error = await generate_error(
        server, ipb.GenerateImageRequest(prompt="a cat", model="models/offline-writer")
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(error)
    assert info.reason == "MODEL_CAPABILITY_UNSUPPORTED"
    assert info.metadata["model"] == "models/offline-writer"
    assert info.metadata["capability"] == "image output"
    assert "models/offline-image" in info.metadata["qualifyingModels"].split(",")
    assert "models/offline-writer" not in info.metadata["qualifyingModels"].split(",")
    violations = status_details(error)["PreconditionFailure"].violations
    assert len(violations) == 1
    assert violations[0].type == "CAPABILITY"
    assert violations[0].subject == "models/offline-writer"
    assert "image output" in violations[0].description
    assert "image output" in error.details()
    # Refused before a job existed.
    jobs = await server.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert list(jobs.jobs) == []


async def test_unknown_reference_asset_is_not_found(server):
    request = ipb.GenerateImageRequest(prompt="a cat", reference_assets=[UNKNOWN_ASSET])
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(error)
    assert info.reason == "ASSET_NOT_FOUND"
    assert info.metadata["field"] == "reference_assets[0]"


async def test_malformed_reference_asset_names_its_index(server):
    good = await upload(server, png((1, 2, 3)))
    request = ipb.GenerateImageRequest(prompt="a cat", reference_assets=[good, "assets/XYZ"])
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["reference_assets[1]"]


async def test_too_many_reference_images_for_the_model(server):
    created = await server.models.CreateModel(
        mpb.CreateModelRequest(
            model_id="one-ref",
            model=model_pb2.Model(
                provider="providers/offline",
                provider_model_id="offline-image",
                input_modalities=[model_pb2.MODALITY_TEXT, model_pb2.MODALITY_IMAGE],
                output_modalities=[model_pb2.MODALITY_IMAGE],
                profile=model_pb2.ModelProfile(max_reference_images=1),
            ),
        )
    )
    assert created.model.profile.max_reference_images == 1
    references = [await upload(server, png((10, 20, 30))), await upload(server, png((30, 20, 10)))]

    # One reference is fine.
    ok = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(
                prompt="a cat",
                model="models/one-ref",
                reference_assets=references[:1],
                options=ipb.ImageOptions(width=64, height=64),
            )
        )
    )
    assert kinds(ok)[-1] == "completed"

    error = await generate_error(
        server,
        ipb.GenerateImageRequest(
            prompt="a cat", model="models/one-ref", reference_assets=references
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert info.reason == "REFERENCE_LIMIT_EXCEEDED"
    assert info.metadata["model"] == "models/one-ref"
    assert info.metadata["limit"] == "1"
    assert bad_fields(error) == ["reference_assets"]
    assert "2" in error.details() and "at most 1" in error.details()


async def test_parameter_the_model_cannot_honour_is_a_job_warning(server):
    request = ipb.GenerateImageRequest(
        prompt="a cat",
        options=ipb.ImageOptions(width=64, height=64, negative_prompt="dogs"),
    )
    events = await collect(server.images.GenerateImage(request))

    assert kinds(events)[-1] == "completed", "an unsupported parameter is not an error"
    warnings = [e.warning for e in events if e.HasField("warning")]
    assert [(w.code, w.field) for w in warnings] == [
        ("PARAMETER_IGNORED", "options.negative_prompt")
    ]
    assert "negative prompt" in warnings[0].message
    assert "models/offline-image" in warnings[0].message
    # The warning is logged (it has a sequence) and recorded on the job.
    assert events.index(next(e for e in events if e.HasField("warning"))) > 0
    assert any(e.HasField("warning") for e in logged(events))
    job = (await server.jobs.GetJob(job_service_pb2.GetJobRequest(name=events[0].job))).job
    assert [(w.code, w.field) for w in job.warnings] == [
        ("PARAMETER_IGNORED", "options.negative_prompt")
    ]


async def test_every_ignored_sampling_parameter_gets_its_own_warning(server):
    request = ipb.GenerateImageRequest(
        prompt="a cat",
        options=ipb.ImageOptions(
            width=64, height=64, steps=20, guidance_scale=7.5, sampler="Euler a", aspect_ratio="1:1"
        ),
    )
    events = await collect(server.images.GenerateImage(request))

    assert kinds(events)[-1] == "completed"
    fields = {e.warning.field for e in events if e.HasField("warning")}
    assert fields == {
        "options.steps",
        "options.guidance_scale",
        "options.sampler",
        "options.aspect_ratio",
    }
    assert {e.warning.code for e in events if e.HasField("warning")} == {"PARAMETER_IGNORED"}


@pytest.mark.parametrize("steps", [0, 501])
async def test_steps_out_of_range(server, steps):
    request = ipb.GenerateImageRequest(prompt="a cat", options=ipb.ImageOptions(steps=steps))
    error = await generate_error(server, request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["options.steps"]


# -- EditImage -------------------------------------------------------------------------


async def test_edit_without_source_is_invalid_argument(server):
    error = await edit_error(server, ipb.EditImageRequest(prompt="make it night"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).metadata["field"] == "source_asset"
    assert bad_fields(error) == ["source_asset"]


@pytest.mark.parametrize(
    "source",
    ["assets/abc", "abc", "assets/" + "A" * 64, "assets/" + "0" * 63, UNKNOWN_ASSET + "/x"],
)
async def test_edit_with_malformed_source_is_invalid_argument(server, source):
    error = await edit_error(server, ipb.EditImageRequest(source_asset=source, prompt="night"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["source_asset"]
    assert "assets/<64 lowercase hex digits>" in error.details()


async def test_edit_with_unknown_source_is_not_found(server):
    error = await edit_error(
        server, ipb.EditImageRequest(source_asset=UNKNOWN_ASSET, prompt="night")
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(error)
    assert info.reason == "ASSET_NOT_FOUND"
    assert info.metadata["asset"] == UNKNOWN_ASSET
    assert info.metadata["field"] == "source_asset"
    assert "UploadImage" in error.details()


async def test_edit_with_unknown_mask_is_not_found_on_mask(server):
    source = await upload(server, png((5, 5, 5)))
    error = await edit_error(
        server, ipb.EditImageRequest(source_asset=source, mask_asset=UNKNOWN_ASSET, prompt="night")
    )

    assert error.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(error)
    assert info.reason == "ASSET_NOT_FOUND"
    assert info.metadata["field"] == "mask_asset"


async def test_edit_without_prompt_is_invalid_argument(server):
    source = await upload(server, png((5, 5, 5)))
    error = await edit_error(server, ipb.EditImageRequest(source_asset=source, prompt=""))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["prompt"]


@pytest.mark.parametrize("strength", [2.0, -0.1, 1.0001])
async def test_edit_strength_out_of_range(server, strength):
    source = await upload(server, png((5, 5, 5)))
    error = await edit_error(
        server, ipb.EditImageRequest(source_asset=source, prompt="night", strength=strength)
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_FIELD"
    assert bad_fields(error) == ["strength"]
    assert "0 to 1" in error.details()


@pytest.mark.parametrize("strength", [0.0, 1.0])
async def test_edit_strength_bounds_are_accepted(server, strength):
    source = await upload(server, png((5, 5, 5)))
    events = await collect(
        server.images.EditImage(
            ipb.EditImageRequest(source_asset=source, prompt="night", strength=strength)
        )
    )
    assert kinds(events)[-1] == "completed"


async def test_edit_with_a_model_without_image_output_fails_precondition(server):
    source = await upload(server, png((5, 5, 5)))
    error = await edit_error(
        server,
        ipb.EditImageRequest(source_asset=source, prompt="night", model="models/offline-writer"),
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(error)
    assert info.reason == "MODEL_CAPABILITY_UNSUPPORTED"
    assert info.metadata["feature"] == "IMAGE_EDIT"


# -- JobService --------------------------------------------------------------------------


MALFORMED_JOB_NAMES = ["", "job/abc", "abc", "jobs/", "jobs/a/b"]


@pytest.mark.parametrize("name", MALFORMED_JOB_NAMES)
async def test_get_job_with_malformed_name(server, name):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.jobs.GetJob(job_service_pb2.GetJobRequest(name=name))
    error = caught.value
    assert_clean(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["name"]


@pytest.mark.parametrize("name", MALFORMED_JOB_NAMES)
async def test_watch_job_with_malformed_name(server, name):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(server.jobs.WatchJob(job_service_pb2.WatchJobRequest(name=name)))
    error = caught.value
    assert_clean(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["name"]


@pytest.mark.parametrize("name", MALFORMED_JOB_NAMES)
async def test_cancel_job_with_malformed_name(server, name):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=name))
    error = caught.value
    assert_clean(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["name"]


async def test_unknown_job_is_not_found_everywhere(server):
    name = f"jobs/{uuid.uuid4().hex}"
    calls = {
        "GetJob": lambda: server.jobs.GetJob(job_service_pb2.GetJobRequest(name=name)),
        "CancelJob": lambda: server.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=name)),
        "WatchJob": lambda: collect(
            server.jobs.WatchJob(job_service_pb2.WatchJobRequest(name=name))
        ),
    }
    for method, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        error = caught.value
        assert_clean(error)
        assert error.code() == grpc.StatusCode.NOT_FOUND, method
        info = error_info(error)
        assert info.reason == "JOB_NOT_FOUND", method
        assert info.metadata["name"] == name, method


async def test_watch_with_negative_after_sequence(server):
    events = await finished_job(server)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.jobs.WatchJob(
                job_service_pb2.WatchJobRequest(name=events[0].job, after_sequence=-1)
            )
        )
    error = caught.value
    assert_clean(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["after_sequence"]
    assert "negative" in error.details()


async def test_watch_beyond_the_last_sequence(server):
    events = await finished_job(server)
    last = logged(events)[-1].sequence
    name = events[0].job

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.jobs.WatchJob(
                job_service_pb2.WatchJobRequest(name=name, after_sequence=last + 1)
            )
        )
    error = caught.value
    assert_clean(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(error) == ["after_sequence"]
    assert str(last) in error.details() and str(last + 1) in error.details()

    # Exactly the last sequence is allowed: the snapshot alone, nothing replayed.
    tail = await collect(
        server.jobs.WatchJob(job_service_pb2.WatchJobRequest(name=name, after_sequence=last))
    )
    assert kinds(tail) == ["snapshot"]
    assert tail[0].sequence == last
    assert tail[0].snapshot.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_cancelling_a_finished_job_fails_precondition(server):
    events = await finished_job(server)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=events[0].job))
    error = caught.value
    assert_clean(error)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(error)
    assert info.reason == "JOB_NOT_CANCELLABLE"
    assert info.metadata["job"] == events[0].job


# -- request ids -------------------------------------------------------------------------


async def test_request_id_reused_with_a_different_prompt_conflicts(server):
    request_id = str(uuid.uuid4())
    first = await collect(
        server.images.GenerateImage(ipb.GenerateImageRequest(prompt="a cat", request_id=request_id))
    )
    assert kinds(first)[-1] == "completed"

    error = await generate_error(
        server, ipb.GenerateImageRequest(prompt="a dog", request_id=request_id)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert info.reason == "REQUEST_ID_CONFLICT"
    assert info.metadata["requestId"] == request_id
    assert info.metadata["resource"] == first[0].job
    assert request_id in error.details()


async def test_request_id_reused_with_different_options_conflicts(server):
    request_id = str(uuid.uuid4())
    await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(
                prompt="a cat", request_id=request_id, options=ipb.ImageOptions(seed=1)
            )
        )
    )
    error = await generate_error(
        server,
        ipb.GenerateImageRequest(
            prompt="a cat", request_id=request_id, options=ipb.ImageOptions(seed=2)
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_CONFLICT"


async def test_request_id_reused_by_another_method_conflicts(server):
    request_id = str(uuid.uuid4())
    await server.images.UploadImage(
        ipb.UploadImageRequest(content=png((9, 9, 9)), request_id=request_id)
    )
    error = await generate_error(
        server, ipb.GenerateImageRequest(prompt="a cat", request_id=request_id)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "REQUEST_ID_CONFLICT"


async def test_request_id_reused_with_the_same_request_reattaches_to_the_job(server):
    request = ipb.GenerateImageRequest(
        prompt="a cat",
        request_id=str(uuid.uuid4()),
        options=ipb.ImageOptions(width=64, height=64),
    )
    first = await collect(server.images.GenerateImage(request))
    second = await collect(server.images.GenerateImage(request))

    assert kinds(first)[0] == kinds(second)[0] == "snapshot"
    assert first[0].snapshot.name == second[0].snapshot.name
    assert first[-1].completed == second[-1].completed
    listed = await server.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert [job.name for job in listed.jobs] == [first[0].snapshot.name], "no second job"

    # A new request id makes a new job.
    third = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(
                prompt=request.prompt, options=request.options, request_id=str(uuid.uuid4())
            )
        )
    )
    assert third[0].snapshot.name != first[0].snapshot.name
