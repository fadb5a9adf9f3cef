"""DraftDesignNotes and the whole consistency loop, through the gRPC API only: on the offline
provider, and against the OpenAI fake (gpt-image for avatars, a vision chat model as the
writer) where every provider request is recorded and checked."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from limner.providers import Provider
from limner.providers.base import OnDelta, OnRetry, WriterOutput, WriterRequest
from limner.providers.offline import OfflineImageGenerator, OfflineSettings
from limner.testing import fast_settings, running_server
from limner.testing.fakes import fake_png
from limner.testing.fakes.openai import OpenAIFake
from limner.testing.streams import collect, kinds, logged, status_details
from limner.v1 import design_reference_pb2 as dpb
from limner.v1 import design_reference_service_pb2 as spb
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, model_pb2
from limner.v1 import job_service_pb2 as jpb
from limner.v1 import model_service_pb2 as mpb

SMALL = ipb.ImageOptions(width=96, height=96)
UNKNOWN_SUBJECT = "subjects/" + "0" * 32


# -- helpers -------------------------------------------------------------------------------


async def create(server, name: str = "Mara Quill", **fields) -> dpb.Subject:
    subject = dpb.Subject(kind=dpb.SUBJECT_KIND_CHARACTER, display_name=name, **fields)
    response = await server.design_references.CreateSubject(
        spb.CreateSubjectRequest(subject=subject)
    )
    return response.subject


async def get(server, name: str) -> dpb.Subject:
    return (await server.design_references.GetSubject(spb.GetSubjectRequest(name=name))).subject


async def upload(server, data: bytes) -> str:
    return (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name


async def add_reference(server, subject: str, asset: str) -> dpb.Subject:
    request = spb.AddReferenceImageRequest(subject=subject, asset=asset)
    return (await server.design_references.AddReferenceImage(request)).subject


async def read(server, asset: str) -> bytes:
    chunks = server.images.ReadAssetContent(ipb.ReadAssetContentRequest(name=asset))
    return b"".join([chunk.data async for chunk in chunks])


async def completed(stream) -> list[job_pb2.JobEvent]:
    events = await collect(stream)
    assert kinds(events)[-1] == "completed", events[-1]
    return events


def images_of(events) -> list[str]:
    return [image.asset for image in events[-1].completed.images]


def deltas(events) -> str:
    return "".join(e.text_delta.text for e in events if e.HasField("text_delta"))


def warning_codes(events) -> list[str]:
    return [e.warning.code for e in events if e.HasField("warning")]


def draft(server, subject: str, **fields):
    return server.design_references.DraftDesignNotes(
        spb.DraftDesignNotesRequest(subject=subject, **fields)
    )


async def job_of(server, events) -> job_pb2.Job:
    return (await server.jobs.GetJob(jpb.GetJobRequest(name=events[0].job))).job


async def job_count(server) -> int:
    return len((await server.jobs.ListJobs(jpb.ListJobsRequest())).jobs)


def reason(error: grpc.aio.AioRpcError) -> str:
    info = status_details(error)["ErrorInfo"]
    assert info.domain == "limner.dev"
    return str(info.reason)


async def draft_error(server, subject: str, **fields) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(draft(server, subject, **fields))
    assert "Traceback" not in (caught.value.details() or "")
    return caught.value


async def build_character(server, model: str = "") -> tuple[dpb.Subject, str, list[str]]:
    """Create a character, generate two avatar candidates, edit one, accept the edit and
    add two uploaded reference images: every step of the loop before the notes."""
    subject = await create(server, description="A lighthouse keeper in her forties.")
    first = images_of(
        await completed(
            server.images.GenerateAvatar(
                ipb.GenerateAvatarRequest(
                    subject=subject.name, request="calm half-smile", model=model, options=SMALL
                )
            )
        )
    )
    second = images_of(
        await completed(
            server.images.GenerateAvatar(
                ipb.GenerateAvatarRequest(
                    subject=subject.name, request="storm light", model=model, options=SMALL
                )
            )
        )
    )
    assert len(first) == len(second) == 1
    edited = images_of(
        await completed(
            server.images.EditAvatar(
                ipb.EditAvatarRequest(
                    subject=subject.name,
                    edit_request="add a red wool scarf",
                    source_asset=second[0],
                    model=model,
                )
            )
        )
    )[0]
    accepted = await server.images.AcceptAvatar(
        ipb.AcceptAvatarRequest(subject=subject.name, asset=edited)
    )
    assert accepted.avatar_asset == edited
    references = [await upload(server, fake_png(80, 80, seed)) for seed in (1, 2)]
    for reference in references:
        subject = await add_reference(server, subject.name, reference)
    assert list(subject.reference_assets) == references
    return subject, edited, references


# -- the loop on the offline provider ------------------------------------------------------


async def test_the_consistency_loop_offline(make_server, database_url):
    async with make_server(database_url) as server:
        subject, avatar, references = await build_character(server)

        events = await completed(draft(server, subject.name))
        job = await job_of(server, events)
        assert job.kind == job_pb2.JOB_KIND_DESIGN_NOTES and job.target == subject.name
        assert job.model == "models/offline-writer"
        streamed = [e for e in events if e.HasField("text_delta")]
        assert len(streamed) > 1, "the draft arrives as deltas"
        notes = events[-1].completed.text
        assert notes and notes == deltas(events).strip()
        assert notes.startswith("[offline]"), "offline text is labelled as such"
        stages = [e.progress.stage for e in events if e.HasField("progress")]
        assert job_pb2.JOB_STAGE_WRITING in stages
        sequences = [e.sequence for e in logged(events)]
        assert sequences == list(range(1, len(sequences) + 1))
        # Not saved until the client saves it.
        assert (await get(server, subject.name)).design_notes == ""

        await server.design_references.UpdateSubject(
            spb.UpdateSubjectRequest(
                subject=dpb.Subject(name=subject.name, design_notes=notes),
                update_mask=field_mask_pb2.FieldMask(paths=["design_notes"]),
            )
        )
        final = await get(server, subject.name)
        assert final.display_name == "Mara Quill"
        assert final.avatar_asset == avatar
        assert list(final.reference_assets) == references
        assert final.design_notes == notes


async def test_save_on_completion_stores_the_notes(server):
    subject, _avatar, _references = await build_character(server)
    events = await completed(draft(server, subject.name, save_on_completion=True))
    assert (await get(server, subject.name)).design_notes == events[-1].completed.text


# -- against the OpenAI fake ---------------------------------------------------------------


def openai_models() -> list[dict[str, Any]]:
    return [
        {
            "id": "gpt-image",
            "provider": "oa",
            "provider_model_id": "gpt-image-1",
            "input_modalities": ["text", "image"],
            "output_modalities": ["image"],
            "profile": {"max_reference_images": 4, "supports_edit": True},
        },
        {
            "id": "vision-writer",
            "provider": "oa",
            "provider_model_id": "gpt-4o-mini",
            "input_modalities": ["text", "image"],
            "output_modalities": ["text"],
        },
        {
            "id": "text-writer",
            "provider": "oa",
            "provider_model_id": "gpt-4.1-nano",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
        },
    ]


@pytest.fixture
async def fake() -> AsyncIterator[OpenAIFake]:
    async with OpenAIFake(
        chat_reply='```\n"Lean, wind-worn build; auburn braid; green oilskin coat."\n```'
    ) as running:
        assert isinstance(running, OpenAIFake)
        yield running


@pytest.fixture
def openai_server(tmp_path):
    @asynccontextmanager
    async def start(fake: OpenAIFake, database_url: str = ""):
        provider = {"kind": "openai", "base_url": fake.base_url, "api_key": "sk-test"}
        settings = fast_settings(
            tmp_path / "data", database_url, providers={"oa": provider}, models=openai_models()
        )
        async with running_server(settings) as server:
            await server.models.UpdateImageSettings(
                mpb.UpdateImageSettingsRequest(
                    image_settings=model_pb2.ImageSettings(
                        avatar_model="models/gpt-image", scene_writer_model="models/vision-writer"
                    ),
                    update_mask=field_mask_pb2.FieldMask(
                        paths=["avatar_model", "scene_writer_model"]
                    ),
                )
            )
            yield server

    return start


def sent(fake: OpenAIFake, path: str) -> list[Any]:
    return [r for r in fake.requests if r.path == path]


def chat_content(request: Any) -> list[tuple[str, Any]]:
    """The chat request's messages as (role, content) with images decoded to bytes."""
    out = []
    for message in request.json["messages"]:
        content = message["content"]
        if isinstance(content, list):
            content = [
                part["text"]
                if part["type"] == "text"
                else base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
                for part in content
            ]
        out.append((message["role"], content))
    return out


async def test_the_consistency_loop_against_the_openai_fake(fake, openai_server, database_url):
    async with openai_server(fake, database_url) as server:
        subject, avatar, references = await build_character(server)

        # Avatars went to the image API with the rendered avatar prompts.
        generations = sent(fake, "/v1/images/generations")
        assert len(generations) == 2
        for request, asked in zip(generations, ("calm half-smile", "storm light"), strict=True):
            prompt = request.json["prompt"]
            assert request.json["model"] == "gpt-image-1"
            assert prompt.startswith("Create the avatar image itself for Mara Quill")
            assert "A lighthouse keeper in her forties." in prompt
            assert f"What the user wants: {asked}" in prompt
            assert prompt.rstrip().endswith("Return only the image.")
        (edit,) = sent(fake, "/v1/images/edits")
        assert "Change to make: add a red wool scarf" in edit.form["prompt"][0]
        assert len(edit.form["image[]"]) == 1, "the candidate is the edit's source image"

        events = await completed(
            draft(server, subject.name, save_on_completion=True, request_id="notes-1")
        )
        job = await job_of(server, events)
        assert job.model == "models/vision-writer", "the workspace's writer model"
        # Deltas streamed from the SSE stream; the final text is cleaned of fences and quotes.
        assert len([e for e in events if e.HasField("text_delta")]) > 1
        assert "```" in deltas(events)
        notes = "Lean, wind-worn build; auburn braid; green oilskin coat."
        assert events[-1].completed.text == notes
        assert job.usage.input_tokens == 42 and job.usage.provider_calls == 1
        assert "AVATAR_FALLBACK" not in warning_codes(events)

        # The writer saw the images exactly where the template put them.
        (chat,) = sent(fake, "/v1/chat/completions")
        assert chat.json["model"] == "gpt-4o-mini" and chat.json["stream"] is True
        (system_role, system), (user_role, user) = chat_content(chat)
        assert system_role == "system" and "Mara Quill" in system
        assert user_role == "user"
        assert [type(part).__name__ for part in user] == ["str", "bytes", "str", "bytes", "bytes"]
        assert user[0].startswith("Subject: Mara Quill") and user[0].endswith("Avatar:")
        assert user[1] == await read(server, avatar)
        assert user[2] == "Reference images:"
        assert user[3:] == [await read(server, name) for name in references]

        final = await get(server, subject.name)
        assert (final.avatar_asset, list(final.reference_assets)) == (avatar, references)
        assert final.design_notes == notes

        # A retry with the same request_id is the same job; no second writer call.
        again = await completed(
            draft(server, subject.name, save_on_completion=True, request_id="notes-1")
        )
        assert again[0].job == events[0].job
        assert len(sent(fake, "/v1/chat/completions")) == 1


async def test_identity_anchors_fall_back_to_the_avatar(fake, openai_server):
    async with openai_server(fake) as server:
        subject = await create(server)
        avatar = await upload(server, fake_png(70, 70, 7))
        await server.images.AcceptAvatar(
            ipb.AcceptAvatarRequest(subject=subject.name, asset=avatar)
        )
        # Avatar only: it is the one identity anchor, and the job says so.
        events = await completed(draft(server, subject.name))
        assert "AVATAR_FALLBACK" in warning_codes(events)
        images = [p for p in chat_content(fake.requests[-1])[1][1] if isinstance(p, bytes)]
        assert images == [await read(server, avatar)]

        # With reference images, they are sent (after the avatar, in their slot).
        reference = await upload(server, fake_png(70, 70, 8))
        await add_reference(server, subject.name, reference)
        events = await completed(draft(server, subject.name))
        assert "AVATAR_FALLBACK" not in warning_codes(events)
        images = [p for p in chat_content(fake.requests[-1])[1][1] if isinstance(p, bytes)]
        assert images == [await read(server, avatar), await read(server, reference)]

        # References without an avatar: the avatar slot stays empty.
        persona = await create(server, "Tomas")
        await add_reference(server, persona.name, reference)
        await completed(draft(server, persona.name))
        user = chat_content(fake.requests[-1])[1][1]
        assert [p for p in user if isinstance(p, bytes)] == [await read(server, reference)]


async def test_a_writer_without_image_input_is_refused_before_any_job(fake, openai_server):
    async with openai_server(fake) as server:
        subject = await create(server)
        await server.images.AcceptAvatar(
            ipb.AcceptAvatarRequest(
                subject=subject.name, asset=await upload(server, fake_png(70, 70))
            )
        )
        error = await draft_error(server, subject.name, model="models/text-writer")
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(error) == "MODEL_CAPABILITY_UNSUPPORTED"
        details = status_details(error)
        assert details["PreconditionFailure"].violations[0].description == (
            "design reference writer needs image input"
        )
        info = details["ErrorInfo"]
        assert info.metadata["model"] == "models/text-writer"
        qualifying = info.metadata["qualifyingModels"].split(",")
        assert "models/vision-writer" in qualifying and "models/text-writer" not in qualifying
        assert await job_count(server) == 0
        assert sent(fake, "/v1/chat/completions") == []


# -- refusals --------------------------------------------------------------------------------


async def test_a_subject_without_images_is_refused(server):
    subject = await create(server, design_notes="Keep these.")
    error = await draft_error(server, subject.name, save_on_completion=True)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "SUBJECT_HAS_NO_IMAGES"
    assert "AddReferenceImage" in (error.details() or "")
    violation = status_details(error)["PreconditionFailure"].violations[0]
    assert violation.subject == subject.name
    assert await job_count(server) == 0
    assert await get(server, subject.name) == subject


async def test_unknown_subject_and_bad_names(server):
    error = await draft_error(server, UNKNOWN_SUBJECT)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "SUBJECT_NOT_FOUND"
    error = await draft_error(server, "")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    subject = await create(server)
    error = await draft_error(server, subject.name, model="models/no-such-model")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await draft_error(server, subject.name, model="models/offline-image")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "MODEL_CAPABILITY_UNSUPPORTED"
    assert await job_count(server) == 0


async def test_a_reference_image_cannot_be_deleted_from_under_its_subject(server):
    subject = await create(server)
    reference = await upload(server, fake_png(70, 70, 4))
    await add_reference(server, subject.name, reference)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=reference))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "ASSET_IN_USE"
    # So the draft still has its image to look at.
    assert list((await get(server, subject.name)).reference_assets) == [reference]


# -- restarts --------------------------------------------------------------------------------


class GatedWriter:
    """Streams one delta, then waits for the gate (lets a test stop the server mid-draft)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def write(
        self, request: WriterRequest, on_delta: OnDelta, *, on_retry: OnRetry | None = None
    ) -> WriterOutput:
        await on_delta("Lean")
        self.started.set()
        await self.gate.wait()
        return WriterOutput(text="Lean build.")


async def test_a_draft_resumes_after_a_restart(make_server, database_url):
    writer = GatedWriter()
    offline = Provider(
        id="offline",
        kind="offline",
        images=OfflineImageGenerator(OfflineSettings(steps=1, step_delay_s=0.0)),
        writer=writer,
    )
    async with make_server(database_url, providers={"offline": offline}) as server:
        subject = await create(server)
        avatar = await upload(server, fake_png(70, 70, 3))
        await server.images.AcceptAvatar(
            ipb.AcceptAvatarRequest(subject=subject.name, asset=avatar)
        )
        call = draft(server, subject.name, save_on_completion=True)
        name = (await call.read()).event.job
        await writer.started.wait()
        call.cancel()
    # The next server runs it again from its stored spec, with the built-in offline writer.
    async with make_server(database_url) as server:
        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
        assert kinds(events)[-1] == "completed"
        assert "JOB_RESUMED" in warning_codes(events)
        text = events[-1].completed.text
        assert text.startswith("[offline]")
        assert (await get(server, subject.name)).design_notes == text
        job = (await server.jobs.GetJob(jpb.GetJobRequest(name=name))).job
        assert job.attempt == 2 and job.target == subject.name
