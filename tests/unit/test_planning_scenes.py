"""Planning scene jobs (``SceneFeature.generate`` and ``start_for_directive``) without a
server: the ``SceneSpec`` handed to the engine, the writer plan (or none when the prompt
was given), the render references with their map and what was trimmed, and the scene row
and placeholder written alongside."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from planning_world import WORKSPACE, World, migrated_template, planning_world

from limner.domain.chats import Attachment, Chat, Message, MessageRole, SceneState
from limner.domain.jobs import JobKind, JobWarning
from limner.domain.models import SceneMode
from limner.domain.specs import SceneSpec, WriterSpec
from limner.domain.subjects import Subject, SubjectKind
from limner.errors import FailedPrecondition
from limner.features import writing
from limner.features.chats import ChatDraft, MessageDraft
from limner.features.scene_prompts import writer_values
from limner.features.scenes import SceneRequest
from limner.prompts import TemplateKind, default_source, version_of


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("planning-scenes"))


@pytest.fixture
async def world(tmp_path, template):
    async with planning_world(tmp_path, template) as world:
        await world.choose_models(scene_image_model="studio", scene_writer_model="scribe")
        yield world


@dataclass
class Cast:
    """A chat whose character has two reference images, whose persona has only an avatar,
    with a background: four render references for models that take two (studio)."""

    character: Subject
    persona: Subject
    chat: Chat
    message: Message
    references: tuple[str, str]
    avatar: str
    background: str


async def say(world: World, chat: Chat, text: str, role=MessageRole.USER) -> Message:
    draft = MessageDraft(chat=chat.name, role=role, text=text)
    message, _created = await world.chats.store_message(WORKSPACE, chat, draft, text)
    return message


@pytest.fixture
async def cast(world) -> Cast:
    first, second, avatar, background = [await world.upload(seed=s) for s in (1, 2, 3, 4)]
    character = await world.subject(
        "Mira", description="A cartographer.", references=(first, second)
    )
    persona = await world.subject("Tom", kind=SubjectKind.PERSONA, avatar=avatar)
    chat = await world.chats.create_chat(
        WORKSPACE,
        ChatDraft(
            character=f"subjects/{character.id}",
            persona=f"subjects/{persona.id}",
            background_asset=background,
        ),
        request_id="",
    )
    await say(world, chat, "Where are we headed?", MessageRole.ASSISTANT)
    message = await say(world, chat, "We reach the harbour at dusk.")
    return Cast(character, persona, chat, message, (first, second), avatar, background)


def persona_fallback(cast: Cast) -> JobWarning:
    return JobWarning(
        "AVATAR_FALLBACK",
        f"subjects/{cast.persona.id} (Tom) has no reference images; its avatar stands in",
    )


async def test_a_given_prompt_is_rendered_at_once_without_a_writer(world, cast):
    request = SceneRequest(
        message=cast.message.name,
        prompt="  a quiet   harbour\nat dusk ",
        mode=SceneMode.ASK_FIRST,
        request_id="s1",
    )

    job = await world.scenes.generate(WORKSPACE, request)

    new = world.engine.only
    spec = new.spec
    assert isinstance(spec, SceneSpec)
    assert new.kind is JobKind.SCENE
    assert (new.model_id, new.provider_id) == ("studio", "offline")
    assert new.prompt == "a quiet harbour at dusk"
    assert new.target == f"scenes/{spec.scene_id}"
    assert (new.request_id, new.request_hash) == ("s1", request.fingerprint())
    assert spec.mode is SceneMode.AUTO, "a given prompt leaves nothing to approve"
    assert (spec.given_prompt, spec.directive, spec.approved_prompt) == (
        "a quiet harbour at dusk",
        "",
        "",
    )
    assert spec.writer is None
    assert spec.template_version == ""
    assert (spec.chat_id, spec.message_id) == (cast.chat.id, cast.message.id)
    assert spec.image.prompt == "a quiet harbour at dusk"
    assert spec.image.model_id == "studio"
    assert (spec.image.width, spec.image.height) == (512, 512)
    # Trimming drops the background first, then the longer list's last image.
    first, second = cast.references
    assert spec.image.reference_assets == (first, cast.avatar)
    assert spec.reference_map == (
        "Image 1: Mira (character), design reference\nImage 2: Tom (persona), avatar"
    )
    assert new.warnings == (
        persona_fallback(cast),
        JobWarning(
            "REFERENCES_TRIMMED",
            "models/studio accepts at most 2 reference image(s); "
            f"not sent: {second}, {cast.background}",
        ),
    )

    scene = await world.scenes.get(WORKSPACE, new.target)
    assert (scene.id, scene.job_id, scene.attachment_id) == (
        spec.scene_id,
        job.id,
        spec.attachment_id,
    )
    assert scene.state is SceneState.RENDERING
    assert (scene.writer_model, scene.image_model) == ("", "studio")
    assert scene.context_messages == ()
    assert scene.reference_assets == (first, cast.avatar)
    message = await world.chats.get_message(WORKSPACE, cast.message.name, "message")
    assert message.attachments == (
        Attachment(id=spec.attachment_id, job_id=job.id, scene_id=spec.scene_id, placeholder=True),
    )


async def test_without_a_prompt_the_writer_is_planned_from_the_context(world, cast):
    request = SceneRequest(message=cast.message.name, mode=SceneMode.MANUAL)

    await world.scenes.generate(WORKSPACE, request)

    new = world.engine.only
    spec = new.spec
    assert isinstance(spec, SceneSpec)
    assert spec.mode is SceneMode.ASK_FIRST, "an explicit request drafts even in MANUAL"
    assert (spec.given_prompt, spec.directive, new.prompt) == ("", "", "")
    window = await world.chats.repository.context_window(
        WORKSPACE, cast.chat.id, cast.message.id, 3
    )
    assert [m.text for m in window] == ["Where are we headed?", "We reach the harbour at dusk."]
    rendered = await world.renderer.render(
        WORKSPACE,
        TemplateKind.SCENE_WRITER,
        writer_values(cast.character, cast.persona, cast.chat, window, ""),
    )
    first, second = cast.references
    assert spec.writer == WriterSpec(
        model_id="scribe",
        messages=writing.planned_messages(rendered),
        slots={
            "character": (first, second),
            "persona": (cast.avatar,),
            "background": (cast.background,),
        },
    )
    version = version_of(default_source(TemplateKind.SCENE_WRITER))
    assert spec.template_version == rendered.version == version
    # The image prompt is a placeholder until the writer's draft replaces it.
    assert spec.image.prompt == "scene"
    assert [w.code for w in new.warnings] == ["AVATAR_FALLBACK", "REFERENCES_TRIMMED"]

    scene = await world.scenes.get(WORKSPACE, new.target)
    assert scene.state is SceneState.DRAFTING
    assert scene.writer_model == "scribe"
    assert scene.template_version == version
    assert scene.context_messages == tuple(m.name for m in window)
    message = await world.chats.get_message(WORKSPACE, cast.message.name, "message")
    assert message.attachments == (), "ask-first scenes show nothing until approved"


async def test_a_directive_is_the_writers_brief(world, cast):
    scene = await world.scenes.start_for_directive(
        WORKSPACE, cast.chat, cast.message, "Mira lights a lantern", SceneMode.AUTO
    )

    new = world.engine.only
    spec = new.spec
    assert isinstance(spec, SceneSpec)
    assert new.target == scene.name
    assert (spec.directive, spec.given_prompt, spec.mode) == (
        "Mira lights a lantern",
        "",
        SceneMode.AUTO,
    )
    assert new.prompt == "Mira lights a lantern"
    assert (new.request_id, new.request_hash) == ("", "")
    assert spec.writer is not None and spec.writer.model_id == "scribe"
    text = "".join(p.text for m in spec.writer.messages for p in m.parts)
    assert "The chat model asked for this picture: Mira lights a lantern" in text


async def test_a_model_with_room_gets_every_reference(world, cast):
    await world.choose_models(scene_image_model="offline-image")

    await world.scenes.generate(
        WORKSPACE, SceneRequest(message=cast.message.name, prompt="the harbour")
    )

    new = world.engine.only
    spec = new.spec
    assert isinstance(spec, SceneSpec)
    first, second = cast.references
    assert spec.image.reference_assets == (first, second, cast.avatar, cast.background)
    assert spec.reference_map.splitlines() == [
        "Image 1: Mira (character), design reference",
        "Image 2: Mira (character), design reference",
        "Image 3: Tom (persona), avatar",
        "Image 4: the background: setting, light and palette only; it is not an identity source",
    ]
    assert new.warnings == (persona_fallback(cast),)
    assert (new.model_id, spec.image.model_id) == ("offline-image", "offline-image")


async def test_a_subject_without_images_is_only_named(world):
    character = await world.subject("Ghost")
    chat = await world.chats.create_chat(
        WORKSPACE, ChatDraft(character=f"subjects/{character.id}"), request_id=""
    )
    message = await say(world, chat, "Boo.")

    await world.scenes.generate(WORKSPACE, SceneRequest(message=message.name, prompt="a ghost"))

    new = world.engine.only
    assert isinstance(new.spec, SceneSpec)
    assert new.warnings == (
        JobWarning(
            "SUBJECT_HAS_NO_IMAGES",
            f"subjects/{character.id} (Ghost) has no reference images and no avatar; the "
            "image model only reads its name",
        ),
    )
    assert (new.spec.image.reference_assets, new.spec.reference_map) == ((), "")


async def test_a_writer_needs_text_in_the_context(world, cast):
    silent = await say(world, cast.chat, "   ")
    chat = await world.chats.create_chat(
        WORKSPACE,
        ChatDraft(character=f"subjects/{cast.character.id}"),
        request_id="",
    )
    lonely = await say(world, chat, " \n ")

    with pytest.raises(FailedPrecondition) as caught:
        await world.scenes.generate(WORKSPACE, SceneRequest(message=lonely.name))

    assert caught.value.reason == "NO_CONVERSATION_CONTEXT"
    assert caught.value.metadata == {"message": lonely.name}
    assert world.engine.submitted == []
    # A blank message after text still has context: the window skips it.
    await world.scenes.generate(WORKSPACE, SceneRequest(message=silent.name))
    assert world.engine.only.kind is JobKind.SCENE
