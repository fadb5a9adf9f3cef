"""A scene's prompts as pure functions: reference order and trimming, the numbered map,
and cleaning a writer's answer to exactly one prompt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from limner.domain.chats import Chat
from limner.domain.models import Modality, ModelProfile, ModelSpec
from limner.domain.subjects import Subject, SubjectKind
from limner.features.scene_prompts import clean_scene_prompt, render_references

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def subject(name: str, kind: SubjectKind, refs: int = 0, avatar: bool = True) -> Subject:
    return Subject(
        id=name.lower(),
        workspace_id="w",
        kind=kind,
        display_name=name,
        avatar_asset=f"assets/{name.lower()}-avatar" if avatar else "",
        reference_assets=[f"assets/{name.lower()}-{i}" for i in range(refs)],
        create_time=NOW,
        update_time=NOW,
    )


def model(limit: int) -> ModelSpec:
    return ModelSpec(
        id="m",
        provider="p",
        provider_model_id="m",
        input_modalities=frozenset({Modality.TEXT, Modality.IMAGE}),
        output_modalities=frozenset({Modality.IMAGE}),
        profile=ModelProfile(max_reference_images=limit),
    )


CHAT = Chat(
    id="c", workspace_id="w", character_id="mara", background_asset="assets/bg", create_time=NOW
)
MARA = subject("Mara", SubjectKind.CHARACTER, refs=3)
JON = subject("Jon", SubjectKind.PERSONA)


def test_references_go_character_persona_background_with_a_numbered_map():
    order, mapping, trimmed = render_references(MARA, JON, CHAT, model(8))
    assert order == [*MARA.reference_assets, JON.avatar_asset, "assets/bg"]
    assert trimmed == []
    assert mapping.splitlines() == [
        "Image 1: Mara (character), design reference",
        "Image 2: Mara (character), design reference",
        "Image 3: Mara (character), design reference",
        "Image 4: Jon (persona), avatar",
        "Image 5: the background: setting, light and palette only; it is not an identity source",
    ]


def test_trimming_drops_the_background_then_the_longer_list_so_each_keeps_an_anchor():
    order, mapping, trimmed = render_references(MARA, JON, CHAT, model(2))
    assert order == [MARA.reference_assets[0], JON.avatar_asset]
    assert trimmed == [*MARA.reference_assets[1:], "assets/bg"]
    assert "Image 2: Jon (persona), avatar" in mapping and "background" not in mapping


def test_a_subject_with_no_image_is_named_as_missing():
    faceless = subject("Jon", SubjectKind.PERSONA, avatar=False)
    _, mapping, _ = render_references(
        MARA,
        faceless,
        Chat(id="c", workspace_id="w", character_id="mara", create_time=NOW),
        model(4),
    )
    assert mapping.splitlines()[-1] == (
        "No image shows Jon; do not invent them from the other references."
    )


def test_no_room_for_images_sends_none():
    assert render_references(MARA, JON, CHAT, model(0))[:2] == ([], "")


@pytest.mark.parametrize(
    ("answer", "prompt"),
    [
        ("A lighthouse at dusk.", "A lighthouse at dusk."),
        ('"A lighthouse at dusk."', "A lighthouse at dusk."),
        ("```\nA lighthouse\nat dusk.\n```", "A lighthouse at dusk."),
        ("Sure! Here is the final prompt: A lighthouse at dusk.", "A lighthouse at dusk."),
        ("Prompt - <img>A lighthouse at dusk.</img>", "A lighthouse at dusk."),
        (
            "A lighthouse at dusk.\n\nThis prompt keeps Mara's scar visible.",
            "A lighthouse at dusk.",
        ),
        ("   ", ""),
    ],
)
def test_cleaning_leaves_exactly_one_prompt(answer, prompt):
    assert clean_scene_prompt(answer) == prompt
