"""Job specs survive storage: every kind round-trips, and the untyped specs of servers
before version 1 (no "version" key) read into today's types."""

from __future__ import annotations

import json

import pytest

from limner.domain.jobs import JobKind
from limner.domain.models import SceneMode
from limner.domain.spec_codec import (
    SPEC_VERSION,
    UnknownSpecVersion,
    spec_from_json,
    spec_to_json,
)
from limner.domain.specs import (
    Approval,
    AvatarSpec,
    DesignNotesSpec,
    ImageSpec,
    PromptMessage,
    PromptPart,
    SceneSpec,
    TemplateUse,
    WriterSpec,
)

IMAGE = ImageSpec(
    prompt="a lighthouse",
    model_id="offline-image",
    width=768,
    height=512,
    seed=7,
    seed_supported=True,
    image_count=2,
    negative_prompt="fog",
    steps=20,
    guidance_scale=6.5,
    sampler="euler",
    source_asset="assets/" + "a" * 64,
    strength=0.4,
    reference_assets=("assets/" + "b" * 64, "assets/" + "c" * 64),
)
WRITER = WriterSpec(
    model_id="offline-writer",
    messages=(
        PromptMessage("system", (PromptPart(text="Describe."),)),
        PromptMessage("user", (PromptPart(text="Look:"), PromptPart(slot="avatar"))),
    ),
    slots={"avatar": ("assets/" + "d" * 64,), "references": ()},
)
SPECS = {
    JobKind.IMAGE_GENERATION: IMAGE,
    JobKind.AVATAR_EDIT: AvatarSpec(
        image=IMAGE,
        subject_id="s1",
        template=TemplateUse(kind="avatar-edit", version="v3", overridden=True),
    ),
    JobKind.SCENE: SceneSpec(
        image=IMAGE,
        scene_id="sc1",
        chat_id="c1",
        message_id="m1",
        attachment_id="at1",
        mode=SceneMode.ASK_FIRST,
        directive="on the pier",
        writer=WRITER,
        reference_map="1: Mara",
        template_version="v2",
    ),
    JobKind.DESIGN_NOTES: DesignNotesSpec(
        subject_id="s1",
        writer=WRITER,
        template=TemplateUse(kind="design-reference-writer", version="v1"),
        save_on_completion=True,
    ),
}


@pytest.mark.parametrize("kind", list(SPECS))
def test_every_kind_round_trips_through_json(kind: JobKind) -> None:
    stored = json.loads(json.dumps(spec_to_json(SPECS[kind])))
    assert stored["version"] == SPEC_VERSION
    assert spec_from_json(kind, stored) == SPECS[kind]


def test_a_scene_without_writer_and_an_approved_one_round_trip() -> None:
    given = SceneSpec(
        image=IMAGE,
        scene_id="sc1",
        chat_id="c1",
        message_id="m1",
        attachment_id="at1",
        mode=SceneMode.AUTO,
        given_prompt="the pier at dawn",
    )
    drafted = SPECS[JobKind.SCENE]
    assert isinstance(drafted, SceneSpec)
    approved = drafted.approve(Approval("edited"))
    for spec in (given, approved):
        assert spec_from_json(JobKind.SCENE, spec_to_json(spec)) == spec
    assert approved.approved_prompt == "edited"
    assert drafted.approved_prompt == "", "approving makes a new spec"


# What the previous server stored: one flat dict per job, written by the use cases.
V0_IMAGE = {
    "prompt": "a lighthouse",
    "model_id": "offline-image",
    "width": 768,
    "height": 512,
    "seed": 7,
    "seed_supported": True,
    "image_count": 2,
    "aspect_ratio": "",
    "negative_prompt": "fog",
    "steps": 20,
    "guidance_scale": 6.5,
    "sampler": "euler",
    "source_asset": "assets/" + "a" * 64,
    "mask_asset": "",
    "strength": 0.4,
    "reference_assets": ["assets/" + "b" * 64, "assets/" + "c" * 64],
}
V0_MESSAGES = [
    {"role": "system", "parts": [{"text": "Describe."}]},
    {"role": "user", "parts": [{"text": "Look:"}, {"slot": "avatar"}]},
]


def test_version_0_image_and_avatar_specs() -> None:
    assert spec_from_json(JobKind.IMAGE_EDIT, V0_IMAGE) == IMAGE
    avatar = {
        **V0_IMAGE,
        "subject_id": "s1",
        "template": "avatar-edit",
        "template_version": "v3",
        "template_overridden": True,
    }
    assert spec_from_json(JobKind.AVATAR_EDIT, avatar) == SPECS[JobKind.AVATAR_EDIT]


def test_version_0_scene_specs_with_and_without_a_writer() -> None:
    scene = {
        **V0_IMAGE,
        "scene_id": "sc1",
        "chat_id": "c1",
        "message_id": "m1",
        "attachment_id": "at1",
        "mode": "ask_first",
        "given_prompt": "",
        "directive": "on the pier",
        "writer_model_id": "offline-writer",
        "writer_messages": V0_MESSAGES,
        "writer_slots": {"avatar": ["assets/" + "d" * 64], "references": []},
        "reference_map": "1: Mara",
        "template_version": "v2",
        # Written into the dict at render time by the old scene handler: ignored.
        "scene_prompt": "stale",
    }
    assert spec_from_json(JobKind.SCENE, scene) == SPECS[JobKind.SCENE]
    approved = spec_from_json(
        JobKind.SCENE,
        {**scene, "writer_model_id": "", "given_prompt": "", "approved_prompt": "edited"},
    )
    assert isinstance(approved, SceneSpec)
    assert approved.writer is None and approved.approved_prompt == "edited"


def test_version_0_design_notes_spec() -> None:
    notes = {
        "subject_id": "s1",
        "model_id": "offline-writer",
        "save_on_completion": True,
        "template_version": "v1",
        "template_overridden": False,
        "messages": V0_MESSAGES,
        "slots": {"avatar": ["assets/" + "d" * 64], "references": []},
    }
    assert spec_from_json(JobKind.DESIGN_NOTES, notes) == SPECS[JobKind.DESIGN_NOTES]


def test_a_spec_from_a_newer_server_is_refused_clearly() -> None:
    newer = {**spec_to_json(IMAGE), "version": SPEC_VERSION + 1}
    with pytest.raises(UnknownSpecVersion, match="newer server"):
        spec_from_json(JobKind.IMAGE_GENERATION, newer)
