"""Planning image jobs (``ImageFeature.plan``) without a server: defaults from the model's
profile, warnings for what it cannot honour (and those fields left out of the spec), and
the reference and image-count limits. Validation, model resolution and submitting:
``test_planning_submit.py``; avatars and design notes: ``test_planning_subjects.py``;
scenes: ``test_planning_scenes.py``. The world they share: ``planning_world.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planning_world import (
    CHOSEN_SEED,
    PAINTER,
    SKETCH,
    STUDIO,
    WORKSPACE,
    ignored,
    migrated_template,
    planning_world,
)

from limner.domain.images import ImageOptions
from limner.domain.jobs import JobWarning
from limner.domain.specs import ImageSpec
from limner.errors import Code, FieldViolation, InvalidArgument, NotFound, ReferenceLimit
from limner.features.images import ImageCommand


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    return migrated_template(tmp_path_factory.mktemp("planning-images"))


@pytest.fixture
async def world(tmp_path, template):
    async with planning_world(tmp_path, template) as world:
        yield world


@pytest.fixture
def fixed_seed(monkeypatch):
    """The seed planning picks when the request has none."""
    monkeypatch.setattr("limner.features.images.random.randrange", lambda _stop: CHOSEN_SEED)


async def plan(world, command: ImageCommand, model=STUDIO):
    return await world.images.plan(WORKSPACE, command, model)


# -- defaults ------------------------------------------------------------------------------


async def test_a_bare_generation_takes_the_profile_defaults(world, fixed_seed):
    spec, warnings = await plan(world, ImageCommand(prompt="a lighthouse"), SKETCH)

    assert warnings == ()
    assert spec == ImageSpec(
        prompt="a lighthouse",
        model_id="sketch",
        width=320,
        height=256,
        seed=CHOSEN_SEED,
        seed_supported=False,
        image_count=1,
    )


async def test_an_edit_defaults_to_the_source_image_size(world, fixed_seed):
    source = await world.upload(96, 80)

    spec, warnings = await plan(
        world, ImageCommand(prompt="add a hat", source_asset=source, strength=0.4), PAINTER
    )

    assert warnings == ()
    assert (spec.width, spec.height) == (96, 80), "the source's size, not the 640x448 default"
    assert spec.source_asset == source
    assert spec.strength == 0.4
    assert spec.seed == CHOSEN_SEED and spec.seed_supported


async def test_a_seed_is_always_chosen_up_front(world):
    first, _ = await plan(world, ImageCommand(prompt="p"), SKETCH)
    second, _ = await plan(world, ImageCommand(prompt="p"), SKETCH)

    assert 0 <= first.seed < 2**31 and 0 <= second.seed < 2**31
    given, _ = await plan(world, ImageCommand(prompt="p", options=ImageOptions(seed=7)), STUDIO)
    assert given.seed == 7


# -- sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "size"),
    [
        (ImageOptions(), (512, 512)),
        (ImageOptions(width=768, height=512), (768, 512)),
        (ImageOptions(width=512, height=512), (512, 512)),
    ],
)
async def test_a_supported_size_is_kept(world, options, size):
    spec, warnings = await plan(world, ImageCommand(prompt="p", options=options))

    assert warnings == ()
    assert (spec.width, spec.height) == size


async def test_an_unsupported_size_falls_back_to_the_default_with_a_warning(world):
    spec, warnings = await plan(
        world, ImageCommand(prompt="p", options=ImageOptions(width=1024, height=640))
    )

    assert warnings == (
        JobWarning(
            "SIZE_ADJUSTED",
            "models/studio does not render 1024x640; using 512x512 (supported: 512x512, 768x512)",
            "options.width",
        ),
    )
    assert (spec.width, spec.height) == (512, 512)


async def test_an_edit_whose_source_size_is_unsupported_is_adjusted(world):
    source = await world.upload(96, 80)

    spec, warnings = await plan(world, ImageCommand(prompt="p", source_asset=source))

    assert [(w.code, w.field) for w in warnings] == [("SIZE_ADJUSTED", "options.width")]
    assert (spec.width, spec.height) == (512, 512)


async def test_a_model_without_a_size_list_renders_any_size(world):
    spec, warnings = await plan(
        world, ImageCommand(prompt="p", options=ImageOptions(width=1000, height=200)), PAINTER
    )

    assert warnings == ()
    assert (spec.width, spec.height) == (1000, 200)


# -- parameters the model ignores ----------------------------------------------------------

EVERY_OPTION = ImageOptions(
    seed=7,
    negative_prompt="blurry",
    aspect_ratio="16:9",
    steps=30,
    guidance_scale=7.5,
    sampler="euler",
)


async def test_unsupported_parameters_are_warned_about_and_left_out_of_the_spec(world):
    spec, warnings = await plan(world, ImageCommand(prompt="p", options=EVERY_OPTION), SKETCH)

    assert warnings == (
        ignored("options.seed", "sketch", "seeds"),
        ignored("options.negative_prompt", "sketch", "negative prompts"),
        ignored("options.aspect_ratio", "sketch", "aspect ratios"),
        ignored("options.steps", "sketch", "sampling parameters"),
        ignored("options.guidance_scale", "sketch", "sampling parameters"),
        ignored("options.sampler", "sketch", "sampling parameters"),
    )
    assert (spec.negative_prompt, spec.aspect_ratio, spec.sampler) == ("", "", "")
    assert (spec.steps, spec.guidance_scale) == (None, None)
    # The seed still fixes what a resumed job renders; results just do not report it.
    assert spec.seed == 7 and not spec.seed_supported


async def test_supported_parameters_are_passed_on_without_warnings(world):
    spec, warnings = await plan(world, ImageCommand(prompt="p", options=EVERY_OPTION), STUDIO)

    assert warnings == ()
    assert spec == ImageSpec(
        prompt="p",
        model_id="studio",
        width=512,
        height=512,
        seed=7,
        seed_supported=True,
        negative_prompt="blurry",
        aspect_ratio="16:9",
        steps=30,
        guidance_scale=7.5,
        sampler="euler",
    )


async def test_only_the_sampling_parameters_given_are_warned_about(world):
    _spec, warnings = await plan(
        world, ImageCommand(prompt="p", options=ImageOptions(guidance_scale=3.0)), PAINTER
    )

    assert warnings == (ignored("options.guidance_scale", "painter", "sampling parameters"),)


async def test_a_mask_the_model_cannot_use_is_dropped(world):
    source, mask = await world.upload(64, 64, seed=1), await world.upload(64, 64, seed=2)

    spec, warnings = await plan(
        world, ImageCommand(prompt="p", source_asset=source, mask_asset=mask), PAINTER
    )
    assert warnings == (ignored("mask_asset", "painter", "masks"),)
    assert spec.mask_asset == "" and spec.source_asset == source

    kept, warnings = await plan(
        world,
        ImageCommand(prompt="p", source_asset=source, mask_asset=mask),
        replace(STUDIO, profile=replace(STUDIO.profile, supported_sizes=())),
    )
    assert warnings == ()
    assert kept.mask_asset == mask


async def test_an_edit_on_a_model_without_edit_mode_redraws_with_a_warning(world):
    source = await world.upload(72, 72)

    spec, warnings = await plan(world, ImageCommand(prompt="p", source_asset=source), SKETCH)

    assert warnings == (
        JobWarning(
            "EDIT_UNSUPPORTED",
            "models/sketch has no edit mode; the source image is sent as a reference and the "
            "image is redrawn",
            "source_asset",
        ),
    )
    assert spec.source_asset == source
    assert (spec.width, spec.height) == (72, 72)


# -- references and image counts -----------------------------------------------------------


async def test_references_within_the_limit_are_kept_in_order(world):
    first, second = await world.upload(seed=1), await world.upload(seed=2)

    spec, warnings = await plan(world, ImageCommand(prompt="p", reference_assets=(second, first)))

    assert warnings == ()
    assert spec.reference_assets == (second, first)


async def test_too_many_references_are_refused(world):
    first, second = await world.upload(seed=1), await world.upload(seed=2)

    with pytest.raises(ReferenceLimit) as caught:
        await plan(world, ImageCommand(prompt="p", reference_assets=(first, second)), PAINTER)

    error = caught.value
    assert error.code is Code.INVALID_ARGUMENT
    assert error.reason == "REFERENCE_LIMIT_EXCEEDED"
    assert error.metadata == {"model": "models/painter", "limit": "1"}
    assert error.field_violations == (
        FieldViolation("reference_assets", "at most 1 for models/painter"),
    )


async def test_a_reference_that_does_not_exist_is_not_found(world):
    missing = "assets/" + "0" * 64

    with pytest.raises(NotFound) as caught:
        await plan(world, ImageCommand(prompt="p", reference_assets=(missing,)))

    assert caught.value.reason == "ASSET_NOT_FOUND"
    assert caught.value.metadata == {"asset": missing, "field": "reference_assets[0]"}


@pytest.mark.parametrize(("model", "count"), [(STUDIO, 5), (PAINTER, 2)])
async def test_more_images_than_the_model_makes_per_request_are_refused(world, model, count):
    with pytest.raises(InvalidArgument) as caught:
        await plan(world, ImageCommand(prompt="p", options=ImageOptions(image_count=count)), model)

    assert type(caught.value) is InvalidArgument
    assert [v.field for v in caught.value.field_violations] == ["options.image_count"]
    assert caught.value.metadata == {"field": "options.image_count"}


async def test_an_image_count_within_the_limit_is_planned(world):
    spec, _ = await plan(world, ImageCommand(prompt="p", options=ImageOptions(image_count=4)))

    assert spec.image_count == 4
