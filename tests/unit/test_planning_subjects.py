"""Planning a subject's jobs without a server: avatar generation and editing
(``AvatarFeature``) and design notes (``DesignNotesFeature.draft``), over the real template
service, asserting on the ``NewJob`` each hands the engine."""

from __future__ import annotations

import pytest
from planning_world import WORKSPACE, migrated_template, planning_world

from limner.domain.images import ImageOptions
from limner.domain.jobs import JobKind, JobWarning
from limner.domain.specs import AvatarSpec, DesignNotesSpec, TemplateUse
from limner.domain.subjects import Subject
from limner.errors import CapabilityMissing, FailedPrecondition, PreconditionViolation
from limner.features import writing
from limner.features.avatars import AvatarRequest, subject_values
from limner.features.design_notes import DraftRequest
from limner.features.images import ImageCommand
from limner.features.subjects import SubjectDraft
from limner.prompts import TemplateKind, default_source, version_of


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("planning-subjects"))


@pytest.fixture
async def world(tmp_path, template):
    async with planning_world(tmp_path, template) as world:
        yield world


def name(subject: Subject) -> str:
    return f"subjects/{subject.id}"


def default_template(kind: TemplateKind) -> TemplateUse:
    return TemplateUse(kind=kind.value, version=version_of(default_source(kind)))


# -- avatar generation ---------------------------------------------------------------------


async def test_generate_plans_an_avatar_job_from_the_rendered_template(world):
    subject = await world.subject("Mira", description="A cartographer with ink-stained hands.")
    request = AvatarRequest(
        subject=name(subject), request="  smiling, windswept  ", model="painter", request_id="r1"
    )

    job = await world.avatars.generate(WORKSPACE, request)

    expected = await world.renderer.render(
        WORKSPACE,
        TemplateKind.AVATAR_GENERATION,
        {**subject_values(subject), "avatar_request": "smiling, windswept"},
    )
    new = world.engine.only
    assert new.kind is JobKind.AVATAR_GENERATION
    assert (new.model_id, new.provider_id) == ("painter", "offline")
    assert new.target == name(subject)
    assert new.request_id == "r1"
    assert isinstance(new.spec, AvatarSpec)
    assert new.spec.subject_id == subject.id
    assert new.spec.template == default_template(TemplateKind.AVATAR_GENERATION)
    assert new.spec.image.prompt == expected.text() == new.prompt
    assert "Mira" in new.prompt and "What the user wants: smiling, windswept" in new.prompt
    assert "A cartographer with ink-stained hands." in new.prompt
    assert (new.spec.image.model_id, new.spec.image.width, new.spec.image.height) == (
        "painter",
        640,
        448,
    )
    assert new.spec.image.source_asset == ""
    assert new.warnings == ()
    assert job.target == name(subject)


async def test_the_request_hash_is_the_avatar_requests_not_the_rendered_prompts(world):
    subject = await world.subject("Mira", description="before")
    request = AvatarRequest(subject=name(subject), request="smiling", model="painter")

    await world.avatars.generate(WORKSPACE, request)
    await world.subjects.update(
        WORKSPACE, name(subject), SubjectDraft(description="after"), ["description"]
    )
    await world.avatars.generate(WORKSPACE, request)

    first, second = world.engine.submitted
    assert first.prompt != second.prompt, "the description is part of the rendered prompt"
    assert first.request_hash == second.request_hash == request.fingerprint("GenerateAvatar")
    assert first.request_hash != ImageCommand(prompt=first.prompt, model="painter").fingerprint()
    assert first.request_hash != request.fingerprint("EditAvatar")


async def test_an_overridden_template_is_recorded_with_its_version(world):
    source = "Portrait of {{ subject_name }}: {{ avatar_request }}"
    await world.renderer.update(WORKSPACE, TemplateKind.AVATAR_GENERATION, source)
    subject = await world.subject("Mira")

    await world.avatars.generate(
        WORKSPACE, AvatarRequest(subject=name(subject), request="smiling", model="painter")
    )

    spec = world.engine.only.spec
    assert isinstance(spec, AvatarSpec)
    assert spec.template == TemplateUse(
        kind="avatar-generation", version=version_of(source), overridden=True
    )
    assert spec.image.prompt == "Portrait of Mira: smiling"


async def test_avatar_jobs_carry_the_image_planning_warnings(world):
    subject = await world.subject("Mira")
    request = AvatarRequest(
        subject=name(subject), model="sketch", options=ImageOptions(seed=9, negative_prompt="x")
    )

    await world.avatars.generate(WORKSPACE, request)

    new = world.engine.only
    assert [(w.code, w.field) for w in new.warnings] == [
        ("PARAMETER_IGNORED", "options.seed"),
        ("PARAMETER_IGNORED", "options.negative_prompt"),
    ]
    assert isinstance(new.spec, AvatarSpec)
    assert (new.spec.image.seed, new.spec.image.negative_prompt) == (9, "")


# -- avatar editing ------------------------------------------------------------------------


async def test_edit_refuses_a_subject_without_an_avatar(world):
    subject = await world.subject("Mira")

    with pytest.raises(FailedPrecondition) as caught:
        await world.avatars.edit(
            WORKSPACE, AvatarRequest(subject=name(subject), edit_request="add a scarf")
        )

    assert caught.value.reason == "SUBJECT_HAS_NO_AVATAR"
    assert caught.value.metadata == {"subject": name(subject)}
    assert [(v.type, v.subject) for v in caught.value.precondition_violations] == [
        ("AVATAR", name(subject))
    ]
    assert world.engine.submitted == []


async def test_edit_refuses_an_image_that_is_not_an_avatar_candidate(world):
    subject = await world.subject("Mira", avatar=await world.upload(seed=1))
    stranger = await world.upload(seed=2)

    with pytest.raises(FailedPrecondition) as caught:
        await world.avatars.edit(
            WORKSPACE,
            AvatarRequest(subject=name(subject), edit_request="add a scarf", source_asset=stranger),
        )

    assert caught.value.reason == "NOT_AN_AVATAR_CANDIDATE"
    assert caught.value.metadata == {
        "subject": name(subject),
        "asset": stranger,
        "field": "source_asset",
    }
    assert caught.value.precondition_violations == (
        PreconditionViolation(
            "AVATAR_CANDIDATE", stranger, f"not an avatar candidate of {name(subject)}"
        ),
    )
    assert world.engine.submitted == []


async def test_edit_of_a_candidate_renders_the_edit_template_with_its_prompt(world):
    subject = await world.subject("Mira")
    candidate = await world.upload(80, 96, seed=3)
    await world.subjects.repository.add_candidates(
        WORKSPACE,
        subject.id,
        [candidate.removeprefix("assets/")],
        job_id="j1",
        prompt="a portrait in oils",
    )
    request = AvatarRequest(
        subject=name(subject),
        edit_request="add a red scarf",
        source_asset=candidate,
        model="painter",
        request_id="e1",
    )

    await world.avatars.edit(WORKSPACE, request)

    new = world.engine.only
    assert new.kind is JobKind.AVATAR_EDIT
    assert new.target == name(subject)
    assert new.request_hash == request.fingerprint("EditAvatar")
    assert isinstance(new.spec, AvatarSpec)
    assert new.spec.template == default_template(TemplateKind.AVATAR_EDIT)
    assert new.spec.image.source_asset == candidate
    assert (new.spec.image.width, new.spec.image.height) == (80, 96), "the candidate's size"
    assert "Change to make: add a red scarf" in new.prompt
    assert "the image wins: a portrait in oils" in new.prompt
    assert new.warnings == ()


async def test_edit_without_a_source_edits_the_accepted_avatar(world):
    avatar = await world.upload(72, 72, seed=4)
    subject = await world.subject("Mira", avatar=avatar)

    await world.avatars.edit(
        WORKSPACE,
        AvatarRequest(subject=name(subject), edit_request="make it night", model="sketch"),
    )

    new = world.engine.only
    assert isinstance(new.spec, AvatarSpec)
    assert new.spec.image.source_asset == avatar
    # sketch reads no images: the caveat comes first, then the edit-mode warning.
    assert [(w.code, w.field) for w in new.warnings] == [
        ("MODEL_CANNOT_SEE_SOURCE", "model"),
        ("EDIT_UNSUPPORTED", "source_asset"),
    ]
    assert "avatar editing will redraw from the prompt alone" in new.warnings[0].message


# -- design notes --------------------------------------------------------------------------


async def test_draft_refuses_a_subject_without_images(world):
    subject = await world.subject("Mira")

    with pytest.raises(FailedPrecondition) as caught:
        await world.design_notes.draft(WORKSPACE, DraftRequest(subject=name(subject)))

    assert caught.value.reason == "SUBJECT_HAS_NO_IMAGES"
    assert caught.value.metadata == {"subject": name(subject)}
    assert [(v.type, v.subject) for v in caught.value.precondition_violations] == [
        ("SUBJECT_IMAGES", name(subject))
    ]
    assert world.engine.submitted == []


async def test_draft_with_only_an_avatar_falls_back_to_it_with_a_warning(world):
    avatar = await world.upload(seed=5)
    subject = await world.subject("Mira", description="A cartographer.", avatar=avatar)
    request = DraftRequest(
        subject=name(subject), model="models/scribe", save_on_completion=True, request_id="d1"
    )

    await world.design_notes.draft(WORKSPACE, request)

    new = world.engine.only
    assert new.kind is JobKind.DESIGN_NOTES
    assert (new.model_id, new.provider_id, new.target) == ("scribe", "offline", name(subject))
    assert (new.request_id, new.request_hash) == ("d1", request.fingerprint())
    assert new.warnings == (
        JobWarning(
            "AVATAR_FALLBACK",
            f"{name(subject)} has no reference images; the writer describes its avatar alone "
            "(add reference images for sturdier notes)",
        ),
    )
    spec = new.spec
    assert isinstance(spec, DesignNotesSpec)
    assert (spec.subject_id, spec.save_on_completion) == (subject.id, True)
    assert spec.template == default_template(TemplateKind.DESIGN_REFERENCE_WRITER)
    assert spec.writer.model_id == "scribe"
    assert dict(spec.writer.slots) == {"avatar": (avatar,), "references": ()}


async def test_draft_plans_the_writer_messages_with_their_image_slots(world):
    avatar, first, second = [await world.upload(seed=s) for s in (6, 7, 8)]
    subject = await world.subject(
        "Mira", description="A cartographer.", references=(first, second, avatar), avatar=avatar
    )

    await world.design_notes.draft(WORKSPACE, DraftRequest(subject=name(subject), model="scribe"))

    new = world.engine.only
    assert new.warnings == ()
    spec = new.spec
    assert isinstance(spec, DesignNotesSpec)
    # The avatar is sent once, in its own slot, not again among the references.
    assert dict(spec.writer.slots) == {"avatar": (avatar,), "references": (first, second)}
    rendered = await world.renderer.render(
        WORKSPACE,
        TemplateKind.DESIGN_REFERENCE_WRITER,
        {**subject_values(subject), "current_notes": ""},
    )
    assert spec.writer.messages == writing.planned_messages(rendered)
    assert new.prompt == rendered.text()
    system, user = spec.writer.messages
    assert (system.role, user.role) == ("system", "user")
    assert all(part.slot == "" for part in system.parts)
    assert [part.slot for part in user.parts if part.slot] == ["avatar", "references"]
    assert "Subject: Mira" in user.parts[0].text
    assert "Description: A cartographer." in user.parts[0].text


async def test_a_template_without_the_references_slot_sends_only_the_avatar(world):
    await world.renderer.update(
        WORKSPACE,
        TemplateKind.DESIGN_REFERENCE_WRITER,
        "Describe {{ subject_name }}. {{ image('avatar') }}",
    )
    avatar, reference = await world.upload(seed=9), await world.upload(seed=10)
    subject = await world.subject("Mira", references=(reference,), avatar=avatar)

    await world.design_notes.draft(WORKSPACE, DraftRequest(subject=name(subject), model="scribe"))

    new = world.engine.only
    assert [(w.code, w.field) for w in new.warnings] == [("IMAGE_SLOT_MISSING", "")]
    assert "references" in new.warnings[0].message
    assert isinstance(new.spec, DesignNotesSpec)
    assert dict(new.spec.writer.slots) == {"avatar": (avatar,)}
    assert new.spec.template.overridden


async def test_draft_needs_a_writer_that_reads_images(world):
    subject = await world.subject("Mira", avatar=await world.upload(seed=11))

    with pytest.raises(CapabilityMissing) as caught:
        await world.design_notes.draft(
            WORKSPACE, DraftRequest(subject=name(subject), model="sketch")
        )

    assert caught.value.metadata["capability"] == "image input, text output"
    assert world.engine.submitted == []
