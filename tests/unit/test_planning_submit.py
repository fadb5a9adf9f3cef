"""Image requests up to the engine (``ImageFeature.prepare`` / ``submit``) without a
server: validation before anything is looked up, the model that serves the feature and its
caveats, and the ``NewJob`` handed to the engine. What ``plan`` decides for a model:
``test_planning.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planning_world import (
    CHOSEN_SEED,
    PAINTER,
    SKETCH,
    WORKSPACE,
    ignored,
    migrated_template,
    planning_world,
)

from limner.domain.images import MAX_PROMPT_CHARS, ImageOptions
from limner.domain.jobs import JobKind, JobState
from limner.domain.models import Feature
from limner.domain.specs import ImageSpec
from limner.errors import CapabilityMissing, FieldViolation, InvalidArgument
from limner.features.avatars import AvatarRequest
from limner.features.images import ImageCommand


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("planning-submit"))


@pytest.fixture
async def world(tmp_path, template):
    async with planning_world(tmp_path, template) as world:
        yield world


@pytest.fixture
def fixed_seed(monkeypatch):
    """The seed planning picks when the request has none."""
    monkeypatch.setattr("limner.features.images.random.randrange", lambda _stop: CHOSEN_SEED)


# -- validation (prepare) ------------------------------------------------------------------

BAD_REQUESTS = [
    (ImageCommand(prompt="  "), [("prompt", "REQUIRED")]),
    (ImageCommand(prompt="x" * (MAX_PROMPT_CHARS + 1)), [("prompt", "")]),
    (
        ImageCommand(prompt="p", options=ImageOptions(width=32, height=5000)),
        [("options.width", ""), ("options.height", "")],
    ),
    (ImageCommand(prompt="p", options=ImageOptions(width=512)), [("options.width", "")]),
    (ImageCommand(prompt="p", options=ImageOptions(height=512)), [("options.width", "")]),
    (ImageCommand(prompt="p", options=ImageOptions(image_count=0)), [("options.image_count", "")]),
    (ImageCommand(prompt="p", options=ImageOptions(image_count=9)), [("options.image_count", "")]),
    (ImageCommand(prompt="p", options=ImageOptions(steps=501)), [("options.steps", "")]),
    (ImageCommand(prompt="p", strength=1.5), [("strength", "")]),
    (
        ImageCommand(prompt="p", reference_assets=("assets/" + "a" * 64, "assets/NOPE")),
        [("reference_assets[1]", "")],
    ),
    (ImageCommand(prompt="p", source_asset="cat.png"), [("source_asset", "")]),
    (
        ImageCommand(prompt="p", source_asset="assets/" + "a" * 64, mask_asset="assets/x"),
        [("mask_asset", "")],
    ),
    (
        ImageCommand(prompt="", options=ImageOptions(width=10, height=10), strength=-1),
        [("prompt", "REQUIRED"), ("options.width", ""), ("options.height", ""), ("strength", "")],
    ),
]


@pytest.mark.parametrize(("command", "violations"), BAD_REQUESTS)
async def test_bad_requests_are_refused_before_anything_is_looked_up(world, command, violations):
    with pytest.raises(InvalidArgument) as caught:
        await world.images.submit(WORKSPACE, replace(command, model="models/studio"))

    error = caught.value
    assert error.reason == "INVALID_FIELD"
    assert [(v.field, v.reason) for v in error.field_violations] == violations
    assert error.metadata == {"field": violations[0][0]}
    if len(violations) > 1:
        assert error.message.endswith(f"(and {len(violations) - 1} more)")
    assert world.engine.submitted == []


async def test_width_without_height_says_to_set_both(world):
    with pytest.raises(InvalidArgument) as caught:
        await world.images.submit(
            WORKSPACE, ImageCommand(prompt="p", options=ImageOptions(width=512))
        )

    assert caught.value.field_violations == (
        FieldViolation("options.width", "set width and height together, or neither"),
    )


# -- prepare: the model and its caveats ----------------------------------------------------


async def test_an_edit_model_that_cannot_see_the_source_says_so_first(world):
    source = await world.upload(80, 80)
    command = ImageCommand(prompt="p", model="models/sketch", source_asset=source)

    planned = await world.images.prepare(WORKSPACE, command, Feature.IMAGE_EDIT)

    assert planned.model.model == SKETCH
    assert [(w.code, w.field) for w in planned.warnings] == [
        ("MODEL_CANNOT_SEE_SOURCE", "model"),
        ("EDIT_UNSUPPORTED", "source_asset"),
    ]
    assert planned.warnings[0].message == (
        "models/sketch has no image input: it cannot see the source image, so image editing "
        "will redraw from the prompt alone"
    )


async def test_a_model_with_image_input_has_no_caveat(world):
    source = await world.upload(80, 80)
    command = ImageCommand(prompt="p", model="painter", source_asset=source)

    planned = await world.images.prepare(WORKSPACE, command, Feature.IMAGE_EDIT)

    assert planned.model.model == PAINTER
    assert planned.warnings == ()


async def test_without_a_model_the_first_compatible_one_serves(world):
    planned = await world.images.prepare(
        WORKSPACE, ImageCommand(prompt="p"), Feature.IMAGE_GENERATION
    )

    assert planned.model.model.id == "offline-image"
    assert (planned.spec.model_id, planned.spec.width, planned.spec.height) == (
        "offline-image",
        1024,
        1024,
    )


async def test_a_writer_cannot_render_images(world):
    with pytest.raises(CapabilityMissing) as caught:
        await world.images.prepare(
            WORKSPACE, ImageCommand(prompt="p", model="scribe"), Feature.IMAGE_GENERATION
        )

    assert caught.value.metadata["capability"] == "image output"


# -- submit --------------------------------------------------------------------------------


async def test_submit_hands_the_engine_the_planned_generation(world, fixed_seed):
    command = ImageCommand(
        prompt="a lighthouse",
        model="models/sketch",
        options=ImageOptions(seed=3),
        request_id="req-1",
    )

    job = await world.images.submit(WORKSPACE, command)

    new = world.engine.only
    assert new.workspace_id == WORKSPACE
    assert new.kind is JobKind.IMAGE_GENERATION
    assert (new.model_id, new.provider_id) == ("sketch", "offline")
    assert new.prompt == "a lighthouse"
    assert new.spec == ImageSpec(
        prompt="a lighthouse",
        model_id="sketch",
        width=320,
        height=256,
        seed=3,
        seed_supported=False,
    )
    assert new.target == ""
    assert new.request_id == "req-1"
    assert new.request_hash == command.fingerprint()
    assert new.warnings == (ignored("options.seed", "sketch", "seeds"),)
    assert (job.id, job.state, job.spec) == (
        next(iter(world.engine.jobs)),
        JobState.QUEUED,
        new.spec,
    )


async def test_submit_plans_an_edit_as_an_edit_job(world, fixed_seed):
    source = await world.upload(64, 64)
    command = ImageCommand(prompt="p", model="painter", source_asset=source)

    await world.images.submit(WORKSPACE, command)

    new = world.engine.only
    assert new.kind is JobKind.IMAGE_EDIT
    assert isinstance(new.spec, ImageSpec)
    assert (new.spec.source_asset, new.spec.width, new.spec.seed) == (source, 64, CHOSEN_SEED)
    assert new.warnings == ()


async def test_the_request_hash_covers_the_request_but_not_its_id(world):
    command = ImageCommand(prompt="p", model="studio", request_id="a")

    await world.images.submit(WORKSPACE, command)
    await world.images.submit(WORKSPACE, replace(command, request_id="b"))
    await world.images.submit(WORKSPACE, replace(command, prompt="q"))

    first, retried, changed = (new.request_hash for new in world.engine.submitted)
    assert first == retried
    assert first != changed


def test_a_retry_may_name_the_model_with_or_without_its_prefix() -> None:
    bare = ImageCommand(prompt="a fox", model="studio", request_id="r1")
    named = ImageCommand(prompt="a fox", model="models/studio", request_id="r1")
    assert bare.fingerprint() == named.fingerprint()
    assert bare.fingerprint() != ImageCommand(prompt="a fox", model="painter").fingerprint()
    avatar = AvatarRequest(subject="subjects/s", request="smiling", model="studio")
    prefixed = AvatarRequest(subject="subjects/s", request="smiling", model="models/studio")
    assert avatar.fingerprint("GenerateAvatar") == prefixed.fingerprint("GenerateAvatar")
