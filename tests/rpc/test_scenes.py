"""Scenes through the gRPC API: each scene mode with a character and a persona that both
have reference images; GenerateScene with and without a prompt; approval and rejection;
the writer and image requests a real adapter sends (OpenAI fake); wrong model mixes."""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

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
from limner.v1 import scene_pb2 as cpb
from limner.v1 import scene_service_pb2 as pb

USER, ASSISTANT = cpb.MESSAGE_ROLE_USER, cpb.MESSAGE_ROLE_ASSISTANT


# -- helpers -------------------------------------------------------------------------------


async def upload(server, data: bytes) -> str:
    return (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name


async def read(server, asset: str) -> bytes:
    chunks = server.images.ReadAssetContent(ipb.ReadAssetContentRequest(name=asset))
    return b"".join([chunk.data async for chunk in chunks])


async def subject_with_references(server, name: str, kind, notes: str, seeds) -> dpb.Subject:
    created = await server.design_references.CreateSubject(
        spb.CreateSubjectRequest(
            subject=dpb.Subject(
                kind=kind, display_name=name, description=f"{name}, described.", design_notes=notes
            )
        )
    )
    subject = created.subject
    for seed in seeds:
        asset = await upload(server, fake_png(72, 72, seed))
        subject = (
            await server.design_references.AddReferenceImage(
                spb.AddReferenceImageRequest(subject=subject.name, asset=asset)
            )
        ).subject
    return subject


async def settings(server, **fields) -> None:
    await server.models.UpdateImageSettings(
        mpb.UpdateImageSettingsRequest(
            image_settings=model_pb2.ImageSettings(**fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
        )
    )


async def cast(server, *, background: bool = False):
    """A character and a persona with two reference images each, and a chat for them."""
    mara = await subject_with_references(
        server, "Mara Quill", dpb.SUBJECT_KIND_CHARACTER, "Auburn braid, green oilskin.", (1, 2)
    )
    tomas = await subject_with_references(
        server, "Tomas", dpb.SUBJECT_KIND_PERSONA, "Black curls, yellow rain jacket.", (3, 4)
    )
    chat = cpb.Chat(character=mara.name, persona=tomas.name, display_name="Lighthouse")
    if background:
        chat.background_asset = await upload(server, fake_png(90, 60, 5))
    created = (await server.scenes.CreateChat(pb.CreateChatRequest(chat=chat))).chat
    return mara, tomas, created


async def say(server, chat: str, text: str, role=USER) -> pb.CreateMessageResponse:
    return await server.scenes.CreateMessage(
        pb.CreateMessageRequest(parent=chat, message=cpb.Message(role=role, text=text))
    )


async def conversation(server, chat: str, last: str) -> list[pb.CreateMessageResponse]:
    return [
        await say(server, chat, "The lamp went dark an hour ago."),
        await say(server, chat, "Hand me the lantern.", ASSISTANT),
        await say(server, chat, "Here. The stairs are slick."),
        await say(server, chat, last, ASSISTANT),
    ]


async def get_scene(server, name: str) -> cpb.Scene:
    return (await server.scenes.GetScene(pb.GetSceneRequest(name=name))).scene


async def messages(server, chat: str) -> list[cpb.Message]:
    return list((await server.scenes.ListMessages(pb.ListMessagesRequest(parent=chat))).messages)


async def job_count(server) -> int:
    return len((await server.jobs.ListJobs(jpb.ListJobsRequest())).jobs)


async def until_approval(server, job: str) -> list[job_pb2.JobEvent]:
    """Watches a job until it asks for approval (a waiting job's stream does not end)."""
    seen = []
    call = server.jobs.WatchJob(jpb.WatchJobRequest(name=job))
    async for response in call:
        event = response.event
        seen.append(event)
        if event.HasField("approval_required"):
            call.cancel()
            return seen
        assert not event.HasField("completed") and not event.HasField("failed"), event
    raise AssertionError("the stream ended without approval_required")


def reason(error: grpc.aio.AioRpcError) -> str:
    return str(status_details(error)["ErrorInfo"].reason)


def stages(events) -> list[int]:
    return [e.progress.stage for e in events if e.HasField("progress")]


DIRECTIVE = "He takes the rope. <img>Mara and Tomas climbing the lighthouse stairs</img>"


# -- the three modes, offline -----------------------------------------------------------------


async def test_auto_mode_renders_the_directive_and_replaces_the_placeholder(
    make_server, database_url
):
    async with make_server(database_url) as server:
        await settings(server, scene_mode=model_pb2.SCENE_MODE_AUTO)
        mara, tomas, chat = await cast(server)
        sent = await conversation(server, chat.name, DIRECTIVE)
        response = sent[-1]
        assert response.message.text == "He takes the rope."
        assert response.scene.startswith("scenes/")
        scene = await get_scene(server, response.scene)
        assert scene.message == response.message.name and scene.job
        (attachment,) = response.message.attachments
        assert attachment.job == scene.job and attachment.scene == scene.name
        assert attachment.placeholder != bool(attachment.asset)

        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=scene.job)))
        order = [
            "writing"
            if e.HasField("text_delta")
            else "generating"
            if e.HasField("progress") and e.progress.stage == job_pb2.JOB_STAGE_GENERATING
            else kinds([e])[0]
            for e in logged(events)
        ]
        interesting = [k for k in order if k in ("writing", "generating", "completed")]
        first_generating = interesting.index("generating")
        assert interesting[0] == "writing" and first_generating > 0
        assert set(interesting[:first_generating]) == {"writing"}
        assert set(interesting[first_generating:-1]) == {"generating"}
        assert interesting[-1] == "completed"
        job = (await server.jobs.GetJob(jpb.GetJobRequest(name=scene.job))).job
        assert job.kind == job_pb2.JOB_KIND_SCENE and job.target == scene.name
        (image,) = events[-1].completed.images
        assert events[-1].completed.text, "the prompt that was rendered"

        # The placeholder became the final image.
        final = (await messages(server, chat.name))[-1]
        assert [(a.asset, a.placeholder, a.job, a.scene) for a in final.attachments] == [
            (image.asset, False, scene.job, scene.name)
        ]
        done = await get_scene(server, scene.name)
        assert done.state == cpb.SCENE_STATE_SUCCEEDED
        assert done.result_asset == image.asset
        assert list(done.context_messages) == [m.message.name for m in sent[1:]]
        assert done.writer_model == "models/offline-writer"
        assert done.image_model == "models/offline-image"
        assert done.drafted_prompt == events[-1].completed.text and not done.edited_prompt
        assert done.template_version and done.HasField("seed")
        assert list(done.reference_assets) == [*mara.reference_assets, *tomas.reference_assets]
        asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=image.asset))).asset
        assert list(asset.provenance.reference_assets) == list(done.reference_assets)
        prompt = asset.provenance.prompt
        assert done.drafted_prompt in prompt
        assert "Image 1: Mara Quill (character), design reference" in prompt
        assert "Image 3: Tomas (persona), design reference" in prompt


async def test_ask_first_waits_then_renders_the_edited_prompt(make_server, database_url):
    async with make_server(database_url) as server:
        await settings(server, scene_mode=model_pb2.SCENE_MODE_ASK_FIRST)
        _mara, _tomas, chat = await cast(server)
        response = (await conversation(server, chat.name, DIRECTIVE))[-1]
        assert response.message.text == "He takes the rope." and response.scene
        assert list(response.message.attachments) == [], "no placeholder before approval"
        scene = await get_scene(server, response.scene)
        seen = await until_approval(server, scene.job)
        assert any(e.HasField("text_delta") for e in seen)
        assert seen[-1].approval_required.scene == scene.name
        waiting = await get_scene(server, scene.name)
        assert waiting.state == cpb.SCENE_STATE_AWAITING_APPROVAL
        assert waiting.drafted_prompt == seen[-1].approval_required.prompt
        assert job_pb2.JOB_STAGE_GENERATING not in stages(seen)
        assert list((await messages(server, chat.name))[-1].attachments) == []

        edited = "Mara Quill and Tomas on the wet spiral stairs, lantern light, wide shot"
        events = await collect(
            server.scenes.ApproveScene(pb.ApproveSceneRequest(name=scene.name, prompt=edited))
        )
        assert kinds(events)[-1] == "completed"
        assert not any(e.HasField("text_delta") for e in logged(events)), "no second draft"
        assert job_pb2.JOB_STAGE_GENERATING in stages(events)
        (image,) = events[-1].completed.images
        done = await get_scene(server, scene.name)
        assert done.state == cpb.SCENE_STATE_SUCCEEDED
        assert (done.drafted_prompt, done.edited_prompt) == (waiting.drafted_prompt, edited)
        assert done.result_asset == image.asset
        asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=image.asset))).asset
        assert edited in asset.provenance.prompt
        assert waiting.drafted_prompt not in asset.provenance.prompt
        final = (await messages(server, chat.name))[-1]
        assert [(a.asset, a.placeholder) for a in final.attachments] == [(image.asset, False)]

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(server.scenes.ApproveScene(pb.ApproveSceneRequest(name=scene.name)))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(caught.value) == "SCENE_NOT_AWAITING_APPROVAL"


async def test_manual_mode_does_nothing(server):
    await settings(server, scene_mode=model_pb2.SCENE_MODE_MANUAL)
    _mara, _tomas, chat = await cast(server)
    response = (await conversation(server, chat.name, DIRECTIVE))[-1]
    assert response.message.text == "He takes the rope."
    assert response.scene == "" and list(response.message.attachments) == []
    assert await job_count(server) == 0


async def test_reject_ends_a_waiting_scene(server):
    await settings(server, scene_mode=model_pb2.SCENE_MODE_MANUAL)
    _mara, _tomas, chat = await cast(server)
    message = (await conversation(server, chat.name, "He takes the rope."))[-1].message
    # MANUAL as the workspace mode: an explicit request drafts and asks first.
    call = server.scenes.GenerateScene(pb.GenerateSceneRequest(message=message.name))
    first = await call.read()
    job_name = first.event.job
    call.cancel()
    await until_approval(server, job_name)
    (scene,) = (await server.scenes.ListScenes(pb.ListScenesRequest(chat=chat.name))).scenes
    assert scene.state == cpb.SCENE_STATE_AWAITING_APPROVAL and scene.job == job_name
    rejected = (await server.scenes.RejectScene(pb.RejectSceneRequest(name=scene.name))).scene
    assert rejected.state == cpb.SCENE_STATE_REJECTED
    events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=job_name)))
    assert kinds(events)[-1] == "cancelled" and events[-1].cancelled.reason == "rejected"
    for call in (
        server.scenes.RejectScene(pb.RejectSceneRequest(name=scene.name)),
        collect(server.scenes.ApproveScene(pb.ApproveSceneRequest(name=scene.name))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert reason(caught.value) == "SCENE_NOT_AWAITING_APPROVAL"
    assert list((await messages(server, chat.name))[-1].attachments) == []


async def test_a_given_prompt_skips_the_writer_and_regenerating_appends(server):
    await settings(server, scene_mode=model_pb2.SCENE_MODE_ASK_FIRST)
    _mara, _tomas, chat = await cast(server)
    message = (await conversation(server, chat.name, "He takes the rope."))[-1].message
    assets = []
    for attempt in range(2):
        events = await collect(
            server.scenes.GenerateScene(
                pb.GenerateSceneRequest(
                    message=message.name, prompt=f"Mara at the lamp, take {attempt}"
                )
            )
        )
        assert kinds(events)[-1] == "completed"
        assert not any(e.HasField("text_delta") for e in events)
        assert job_pb2.JOB_STAGE_WRITING not in stages(events)
        assets.append(events[-1].completed.images[0].asset)
    final = (await messages(server, chat.name))[-1]
    assert [a.asset for a in final.attachments] == assets
    scenes = (await server.scenes.ListScenes(pb.ListScenesRequest(chat=chat.name))).scenes
    assert len(scenes) == 2 and all(s.writer_model == "" for s in scenes)
    assert [s.result_asset for s in scenes] == assets[::-1], "newest first"

    # Idempotent: the same request_id is the same job and scene.
    request = pb.GenerateSceneRequest(message=message.name, prompt="again", request_id="s-1")
    one = await collect(server.scenes.GenerateScene(request))
    two = await collect(server.scenes.GenerateScene(request))
    assert one[0].job == two[0].job
    assert len((await server.scenes.ListScenes(pb.ListScenesRequest())).scenes) == 3


async def test_generate_scene_refusals(server):
    _mara, _tomas, chat = await cast(server)
    system = await say(server, chat.name, "", cpb.MESSAGE_ROLE_SYSTEM)
    for request, code, why in (
        (pb.GenerateSceneRequest(), "INVALID_ARGUMENT", "INVALID_FIELD"),
        (
            pb.GenerateSceneRequest(message=chat.name + "/messages/" + "0" * 32),
            "NOT_FOUND",
            "MESSAGE_NOT_FOUND",
        ),
        (
            pb.GenerateSceneRequest(message=system.message.name),
            "FAILED_PRECONDITION",
            "NO_CONVERSATION_CONTEXT",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(server.scenes.GenerateScene(request))
        assert caught.value.code().name == code and reason(caught.value) == why
    for call in (
        server.scenes.GetScene(pb.GetSceneRequest(name="scenes/" + "0" * 32)),
        server.scenes.RejectScene(pb.RejectSceneRequest(name="scenes/" + "0" * 32)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert reason(caught.value) == "SCENE_NOT_FOUND"
    assert await job_count(server) == 0


# -- against the OpenAI fake: what the writer and the image model receive -------------------


def openai_models(*, writer: bool = True, image: bool = True) -> list[dict[str, Any]]:
    models = []
    if image:
        models.append(
            {
                "id": "gpt-image",
                "provider": "oa",
                "provider_model_id": "gpt-image-1",
                "input_modalities": ["text", "image"],
                "output_modalities": ["image"],
                "profile": {"max_reference_images": 5, "supports_edit": True},
            }
        )
    if writer:
        models.append(
            {
                "id": "vision-writer",
                "provider": "oa",
                "provider_model_id": "gpt-4o-mini",
                "input_modalities": ["text", "image"],
                "output_modalities": ["text"],
            }
        )
    return models


@pytest.fixture
def openai_server(tmp_path):
    @asynccontextmanager
    async def start(fake: OpenAIFake, database_url: str = "", *, offline: bool = False, **kw):
        providers: dict[str, Any] = {
            "oa": {"kind": "openai", "base_url": fake.base_url, "api_key": "sk-test"}
        }
        if not offline:
            # No built-in fallback models.
            providers["offline"] = {"kind": "offline", "enabled": False}
        settings = fast_settings(
            tmp_path / "data", database_url, providers=providers, models=openai_models(**kw)
        )
        async with running_server(settings) as server:
            yield server

    return start


def sent(fake: OpenAIFake, path: str) -> list[Any]:
    return [r for r in fake.requests if r.path == path]


def chat_content(request: Any) -> list[tuple[str, Any]]:
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


async def test_the_writer_and_renderer_requests(openai_server, database_url):
    reply = 'Here is the prompt:\n```\n"Mara Quill and Tomas on the lighthouse stairs."\n```'
    async with OpenAIFake(chat_reply=reply) as fake, openai_server(fake, database_url) as server:
        await settings(server, scene_mode=model_pb2.SCENE_MODE_AUTO)
        mara, tomas, chat = await cast(server, background=True)
        sent_messages = await conversation(server, chat.name, DIRECTIVE)
        scene = await get_scene(server, sent_messages[-1].scene)
        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=scene.job)))
        assert kinds(events)[-1] == "completed", events[-1]
        assert events[-1].completed.text == "Mara Quill and Tomas on the lighthouse stairs."
        assert any(e.HasField("text_delta") for e in events)

        (chat_request,) = sent(fake, "/v1/chat/completions")
        assert chat_request.json["model"] == "gpt-4o-mini"
        (system_role, _system), (user_role, user) = chat_content(chat_request)
        assert (system_role, user_role) == ("system", "user")
        text = "\n".join(p for p in user if isinstance(p, str))
        # The window: the selected message and the two before it, not the first one.
        assert "The lamp went dark" not in text
        assert "Mara Quill: Hand me the lantern." in text
        assert "Tomas: Here. The stairs are slick." in text
        assert "Mara Quill: He takes the rope." in text
        assert "<img>" not in text
        assert "Mara and Tomas climbing the lighthouse stairs" in text, "the directive's idea"
        assert "Auburn braid, green oilskin." in text and "Black curls, yellow rain jacket." in text
        # Images where the template puts them: character, background, persona.
        images = [p for p in user if isinstance(p, bytes)]
        expected = [
            *mara.reference_assets,
            chat.background_asset,
            *tomas.reference_assets,
        ]
        assert images == [await read(server, name) for name in expected]

        # The render: references in the fixed order (background last), and the map.
        (render,) = sent(fake, "/v1/images/edits")
        prompt = render.form["prompt"][0]
        assert prompt.index("Mara Quill and Tomas on the lighthouse stairs.") < prompt.index(
            "Image 1: Mara Quill (character)"
        )
        assert "Image 3: Tomas (persona)" in prompt
        assert "Image 5: the background" in prompt and "not an identity source" in prompt
        parts = render.form["image[]"]
        order = [*mara.reference_assets, *tomas.reference_assets, chat.background_asset]
        assert [p["data"] for p in parts] == [await read(server, name) for name in order]
        done = await get_scene(server, scene.name)
        assert list(done.reference_assets) == order
        assert done.writer_model == "models/vision-writer"
        assert done.image_model == "models/gpt-image"


async def test_references_are_trimmed_to_what_the_model_takes(openai_server):
    async with OpenAIFake() as fake, openai_server(fake) as server:
        mara, tomas, chat = await cast(server, background=True)
        extra = [await upload(server, fake_png(72, 72, seed)) for seed in (6, 7)]
        for asset in extra:
            await server.design_references.AddReferenceImage(
                spb.AddReferenceImageRequest(subject=mara.name, asset=asset)
            )
        message = (await conversation(server, chat.name, "He takes the rope."))[-1].message
        events = await collect(
            server.scenes.GenerateScene(pb.GenerateSceneRequest(message=message.name, prompt="p"))
        )
        assert kinds(events)[-1] == "completed"
        warnings = [e.warning for e in events if e.HasField("warning")]
        (trimmed,) = [w for w in warnings if w.code == "REFERENCES_TRIMMED"]
        assert chat.background_asset in trimmed.message and extra[1] in trimmed.message
        scene = (await server.scenes.ListScenes(pb.ListScenesRequest())).scenes[0]
        # The background goes first, then the longer list's last image.
        assert list(scene.reference_assets) == [
            *mara.reference_assets,
            extra[0],
            *tomas.reference_assets,
        ]
        assert sent(fake, "/v1/chat/completions") == [], "a given prompt skips the writer"


# -- wrong model mixes: refused before any provider call and before any job ----------------


async def refused(server, fake, chat, message_name) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await collect(server.scenes.GenerateScene(pb.GenerateSceneRequest(message=message_name)))
    error = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await job_count(server) == 0
    assert fake.requests == []
    return error


async def test_no_writer_model(openai_server):
    async with OpenAIFake() as fake, openai_server(fake, writer=False) as server:
        _mara, _tomas, chat = await cast(server)
        message = (await say(server, chat.name, "Hello.")).message
        error = await refused(server, fake, chat, message.name)
        assert reason(error) == "MODEL_NOT_CONFIGURED"
        assert "no scene writer model: add a model with" in (error.details() or "")
        # A directive in auto mode is refused the same way, and nothing is stored.
        await settings(server, scene_mode=model_pb2.SCENE_MODE_AUTO)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await say(server, chat.name, DIRECTIVE, ASSISTANT)
        assert reason(caught.value) == "MODEL_NOT_CONFIGURED"
        assert len(await messages(server, chat.name)) == 1
        # With a prompt no writer is needed.
        events = await collect(
            server.scenes.GenerateScene(pb.GenerateSceneRequest(message=message.name, prompt="p"))
        )
        assert kinds(events)[-1] == "completed"


async def test_no_image_model(openai_server):
    async with OpenAIFake() as fake, openai_server(fake, image=False) as server:
        _mara, _tomas, chat = await cast(server)
        message = (await say(server, chat.name, "Hello.")).message
        error = await refused(server, fake, chat, message.name)
        assert reason(error) == "MODEL_NOT_CONFIGURED"
        assert "no scene image" in (error.details() or "") or "image output" in (
            error.details() or ""
        )


async def test_a_writer_without_image_input(openai_server):
    async with OpenAIFake() as fake, openai_server(fake) as server:
        # The model the workspace chose loses its image input afterwards.
        created = await server.models.CreateModel(
            mpb.CreateModelRequest(
                model=model_pb2.Model(
                    provider="providers/oa",
                    provider_model_id="gpt-4o-mini",
                    input_modalities=[model_pb2.MODALITY_TEXT, model_pb2.MODALITY_IMAGE],
                    output_modalities=[model_pb2.MODALITY_TEXT],
                ),
                model_id="my-writer",
            )
        )
        await settings(server, scene_writer_model=created.model.name)
        await server.models.UpdateModel(
            mpb.UpdateModelRequest(
                model=model_pb2.Model(
                    name=created.model.name, input_modalities=[model_pb2.MODALITY_TEXT]
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["input_modalities"]),
            )
        )
        _mara, _tomas, chat = await cast(server)
        message = (await say(server, chat.name, "Hello.")).message
        error = await refused(server, fake, chat, message.name)
        assert reason(error) == "MODEL_CAPABILITY_UNSUPPORTED"
        assert "image input" in (error.details() or "")
        info = status_details(error)["ErrorInfo"]
        assert info.metadata["model"] == "models/my-writer"
        assert "models/vision-writer" in info.metadata["qualifyingModels"]
