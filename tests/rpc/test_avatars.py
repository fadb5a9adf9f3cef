"""Avatars through ImageService: template-rendered image jobs whose results are a subject's
avatar candidates, edits of a candidate or the current avatar, and accepting one."""

from __future__ import annotations

import grpc
import pytest

from limner.testing.fakes import fake_png
from limner.testing.providers import GatedImageGenerator, replacing_offline
from limner.testing.streams import collect, kinds, status_details
from limner.v1 import design_reference_pb2 as dpb
from limner.v1 import design_reference_service_pb2 as spb
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, model_pb2
from limner.v1 import job_service_pb2 as jpb
from limner.v1 import model_service_pb2 as mpb

SMALL = ipb.ImageOptions(width=96, height=96)
UNKNOWN_SUBJECT = "subjects/" + "0" * 32
UNKNOWN_ASSET = "assets/" + "0" * 64


async def create(server, name: str = "Mara Quill", kind=dpb.SUBJECT_KIND_CHARACTER, **fields):
    response = await server.design_references.CreateSubject(
        spb.CreateSubjectRequest(subject=dpb.Subject(kind=kind, display_name=name, **fields))
    )
    return response.subject


async def get(server, name: str) -> dpb.Subject:
    return (await server.design_references.GetSubject(spb.GetSubjectRequest(name=name))).subject


async def upload(server, seed: int = 0) -> str:
    content = fake_png(64, 64, seed)
    return (await server.images.UploadImage(ipb.UploadImageRequest(content=content))).asset.name


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert "Traceback" not in (caught.value.details() or "")
    return caught.value


def reason(error: grpc.aio.AioRpcError) -> str:
    info = status_details(error)["ErrorInfo"]
    assert info.domain == "limner.dev"
    return str(info.reason)


async def generate(server, subject: str, request: str = "smiling, winter coat", **fields):
    events = await collect(
        server.images.GenerateAvatar(
            ipb.GenerateAvatarRequest(
                subject=subject, request=request, options=fields.pop("options", SMALL), **fields
            )
        )
    )
    assert kinds(events)[-1] == "completed", events[-1]
    return events


async def edit(server, subject: str, edit_request: str = "add a red scarf", **fields):
    events = await collect(
        server.images.EditAvatar(
            ipb.EditAvatarRequest(subject=subject, edit_request=edit_request, **fields)
        )
    )
    assert kinds(events)[-1] == "completed", events[-1]
    return events


async def accept(server, subject: str, asset: str, **kwargs) -> str:
    response = await server.images.AcceptAvatar(
        ipb.AcceptAvatarRequest(subject=subject, asset=asset), **kwargs
    )
    return response.avatar_asset


async def job_of(server, events) -> job_pb2.Job:
    return (await server.jobs.GetJob(jpb.GetJobRequest(name=events[0].job))).job


async def job_count(server) -> int:
    return len((await server.jobs.ListJobs(jpb.ListJobsRequest())).jobs)


def produced(events) -> list[str]:
    return [image.asset for image in events[-1].completed.images]


async def test_generate_renders_the_template_and_makes_candidates(make_server, database_url):
    async with make_server(database_url) as server:
        subject = await create(server, description="A lighthouse keeper with an auburn braid.")
        events = await generate(server, subject.name, "smiling, winter coat")
        job = await job_of(server, events)
        assert job.kind == job_pb2.JOB_KIND_AVATAR_GENERATION
        assert job.target == subject.name
        # The image model's prompt is the rendered avatar template: it asks for the image
        # itself and carries the subject and the request.
        assert "Create the avatar image itself for Mara Quill" in job.prompt
        assert "A lighthouse keeper with an auburn braid." in job.prompt
        assert "smiling, winter coat" in job.prompt
        assert "Return only the image." in job.prompt
        (candidate,) = produced(events)
        asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=candidate))).asset
        assert asset.provenance.prompt == job.prompt
        assert asset.provenance.job == job.name
        # A candidate is not the avatar yet.
        assert (await get(server, subject.name)).avatar_asset == ""


async def test_the_full_avatar_loop(make_server, database_url):
    async with make_server(database_url) as server:
        subject = await create(server)
        first = produced(await generate(server, subject.name, "smiling"))[0]
        second = produced(await generate(server, subject.name, "serious", request_id="g2"))[0]
        assert first != second
        # Edit a named candidate: it is the source image of the edit.
        edited_events = await edit(server, subject.name, "add a red scarf", source_asset=second)
        job = await job_of(server, edited_events)
        assert job.kind == job_pb2.JOB_KIND_AVATAR_EDIT and job.target == subject.name
        assert "add a red scarf" in job.prompt
        (edited,) = produced(edited_events)
        provenance = (await server.images.GetAsset(ipb.GetAssetRequest(name=edited))).asset
        assert list(provenance.provenance.reference_assets) == [second]
        # Accept the edit.
        assert await accept(server, subject.name, edited) == edited
        assert (await get(server, subject.name)).avatar_asset == edited
        # Regenerating never loses the accepted avatar.
        produced(await generate(server, subject.name, "in the rain"))
        assert (await get(server, subject.name)).avatar_asset == edited
        # Editing without a source edits the current avatar.
        again = await edit(server, subject.name, "make it night")
        source = await server.images.GetAsset(ipb.GetAssetRequest(name=produced(again)[0]))
        assert list(source.asset.provenance.reference_assets) == [edited]
        # Accepting another keeps the earlier avatar as an asset, still editable.
        assert await accept(server, subject.name, first) == first
        await server.images.GetAsset(ipb.GetAssetRequest(name=edited))
        produced(await edit(server, subject.name, "warmer light", source_asset=edited))
        assert (await get(server, subject.name)).avatar_asset == first


async def test_accepting_is_idempotent_and_takes_uploaded_images(server):
    subject = await create(server)
    uploaded = await upload(server, 3)
    assert await accept(server, subject.name, uploaded) == uploaded
    stored = await get(server, subject.name)
    assert stored.avatar_asset == uploaded
    assert await accept(server, subject.name, uploaded) == uploaded
    assert (await get(server, subject.name)).update_time == stored.update_time
    # An accepted upload is one of the subject's avatar images from now on.
    produced(await edit(server, subject.name, "add a hat", source_asset=uploaded))


async def test_accept_errors_change_nothing(server):
    subject = await create(server)
    asset = await upload(server)
    error = await rpc_error(accept(server, subject.name, UNKNOWN_ASSET))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "ASSET_NOT_FOUND"
    error = await rpc_error(accept(server, UNKNOWN_SUBJECT, asset))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "SUBJECT_NOT_FOUND"
    error = await rpc_error(accept(server, subject.name, ""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await get(server, subject.name) == subject


async def test_edit_needs_an_avatar_or_a_candidate_of_the_subject(server):
    subject = await create(server)
    other = await create(server, "Tomas")
    theirs = produced(await generate(server, other.name))[0]
    uploaded = await upload(server, 9)
    jobs_before = await job_count(server)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.images.EditAvatar(ipb.EditAvatarRequest(subject=subject.name, edit_request="x"))
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "SUBJECT_HAS_NO_AVATAR"
    assert "AcceptAvatar" in (caught.value.details() or "")
    for source in (theirs, uploaded):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(
                server.images.EditAvatar(
                    ipb.EditAvatarRequest(
                        subject=subject.name, edit_request="x", source_asset=source
                    )
                )
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(caught.value) == "NOT_AN_AVATAR_CANDIDATE"
        violation = status_details(caught.value)["PreconditionFailure"].violations[0]
        assert violation.subject == source
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.images.EditAvatar(
                ipb.EditAvatarRequest(
                    subject=subject.name, edit_request="x", source_asset=UNKNOWN_ASSET
                )
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(server.images.EditAvatar(ipb.EditAvatarRequest(subject=subject.name)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(caught.value)["BadRequest"].field_violations[0].field == "edit_request"
    assert await job_count(server) == jobs_before, "no job was created"


async def test_unknown_subject_creates_no_job(server):
    for call in (
        server.images.GenerateAvatar(ipb.GenerateAvatarRequest(subject=UNKNOWN_SUBJECT)),
        server.images.EditAvatar(ipb.EditAvatarRequest(subject=UNKNOWN_SUBJECT, edit_request="x")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(call)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert reason(caught.value) == "SUBJECT_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(server.images.GenerateAvatar(ipb.GenerateAvatarRequest(subject="")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await job_count(server) == 0


async def test_generate_request_id_is_idempotent(server):
    subject = await create(server)
    first = await generate(server, subject.name, "smiling", request_id="avatar-1")
    again = await generate(server, subject.name, "smiling", request_id="avatar-1")
    assert again[0].job == first[0].job
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.images.GenerateAvatar(
                ipb.GenerateAvatarRequest(
                    subject=subject.name, request="frowning", request_id="avatar-1"
                )
            )
        )
    assert reason(caught.value) == "REQUEST_ID_CONFLICT"
    assert await job_count(server) == 1


async def test_the_avatar_model_comes_from_settings_and_is_checked(server):
    subject = await create(server)
    # A model that draws but cannot see: fine for generating, a warning for editing.
    await server.models.CreateModel(
        mpb.CreateModelRequest(
            model_id="blind-painter",
            model=model_pb2.Model(
                provider="providers/offline",
                provider_model_id="offline-image",
                input_modalities=[model_pb2.MODALITY_TEXT],
                output_modalities=[model_pb2.MODALITY_IMAGE],
            ),
        )
    )
    await server.models.UpdateImageSettings(
        mpb.UpdateImageSettingsRequest(
            image_settings=model_pb2.ImageSettings(avatar_model="models/blind-painter"),
            update_mask={"paths": ["avatar_model"]},
        )
    )
    events = await generate(server, subject.name)
    assert (await job_of(server, events)).model == "models/blind-painter"
    await accept(server, subject.name, produced(events)[0])
    edited = await edit(server, subject.name)
    warnings = [(e.warning.code, e.warning.field) for e in edited if e.HasField("warning")]
    assert ("MODEL_CANNOT_SEE_SOURCE", "model") in warnings
    # A writer cannot draw avatars.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(
            server.images.GenerateAvatar(
                ipb.GenerateAvatarRequest(subject=subject.name, model="models/offline-writer")
            )
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "MODEL_CAPABILITY_UNSUPPORTED"


async def test_an_avatar_job_resumes_after_a_restart(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=replacing_offline(gated)) as server:
        subject = await create(server)
        call = server.images.GenerateAvatar(
            ipb.GenerateAvatarRequest(subject=subject.name, request="smiling")
        )
        name = (await call.read()).event.job
        await gated.started.wait()
        call.cancel()
    async with make_server(database_url) as server:
        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
        assert kinds(events)[-1] == "completed"
        (candidate,) = [image.asset for image in events[-1].completed.images]
        # The resumed job recorded its result as a candidate of the subject.
        assert await accept(server, subject.name, candidate) == candidate
        produced(await edit(server, subject.name, source_asset=candidate))


async def test_subject_kinds_both_have_avatars(server):
    persona = await create(server, "Me", dpb.SUBJECT_KIND_PERSONA)
    produced(await generate(server, persona.name))
    listed = await server.design_references.ListSubjects(
        spb.ListSubjectsRequest(kind=dpb.SUBJECT_KIND_PERSONA)
    )
    assert [s.name for s in listed.subjects] == [persona.name]
