"""ModelService through the public API: the registry, feature checks and image settings."""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap

import grpc
import pytest
from google.protobuf import field_mask_pb2

from limner.testing.streams import collect, kinds, status_details
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import model_pb2 as m
from limner.v1 import model_service_pb2 as mpb

TEXT, IMAGE = m.MODALITY_TEXT, m.MODALITY_IMAGE


def model(
    inputs=(TEXT, IMAGE),
    outputs=(IMAGE,),
    *,
    provider: str = "providers/offline",
    provider_model_id: str = "offline-image",
    display_name: str = "",
    profile: m.ModelProfile | None = None,
) -> m.Model:
    return m.Model(
        provider=provider,
        provider_model_id=provider_model_id,
        display_name=display_name,
        input_modalities=list(inputs),
        output_modalities=list(outputs),
        profile=profile or m.ModelProfile(),
    )


async def create(
    server, model_id: str, spec: m.Model | None = None, request_id: str = ""
) -> m.Model:
    response = await server.models.CreateModel(
        mpb.CreateModelRequest(model_id=model_id, model=spec or model(), request_id=request_id)
    )
    return response.model


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert "Traceback" not in (error.details() or "")
    return error


def reason(error: grpc.aio.AioRpcError) -> str:
    info = status_details(error)["ErrorInfo"]
    assert info.domain == "limner.dev"
    return info.reason


def fields(error: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in status_details(error)["BadRequest"].field_violations]


async def list_all(server, **filters) -> list[m.Model]:
    return list((await server.models.ListModels(mpb.ListModelsRequest(**filters))).models)


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


# -- listing -----------------------------------------------------------------------------


async def test_list_models_shows_the_builtin_models(server):
    models = {x.name: x for x in await list_all(server)}

    assert set(models) == {"models/offline-image", "models/offline-writer"}
    image = models["models/offline-image"]
    assert image.origin == m.MODEL_ORIGIN_BUILTIN
    assert image.provider == "providers/offline"
    assert image.provider_model_id == "offline-image"
    assert sorted(image.input_modalities) == [TEXT, IMAGE]
    assert list(image.output_modalities) == [IMAGE]
    assert image.profile.max_reference_images == 4
    assert image.profile.max_images_per_request == 4
    assert image.profile.default_size == "1024x1024"
    assert image.profile.supports_seed and image.profile.supports_edit
    assert image.profile.supports_mask and image.profile.supports_previews
    assert not image.profile.supports_negative_prompt
    assert "offline" in image.display_name.lower()

    writer = models["models/offline-writer"]
    assert writer.origin == m.MODEL_ORIGIN_BUILTIN
    assert sorted(writer.input_modalities) == [TEXT, IMAGE]
    assert list(writer.output_modalities) == [TEXT]


async def test_list_models_filters(server):
    await create(server, "text-only", model((TEXT,), (TEXT,), provider_model_id="t"))

    by_output = await list_all(server, output_modality=IMAGE)
    assert [x.name for x in by_output] == ["models/offline-image"]
    by_text = await list_all(server, output_modality=TEXT)
    assert [x.name for x in by_text] == ["models/offline-writer", "models/text-only"]
    writers = await list_all(server, feature=m.FEATURE_SCENE_WRITER)
    assert [x.name for x in writers] == ["models/offline-writer"], "text-only lacks image input"
    by_provider = await list_all(server, provider="providers/offline")
    assert len(by_provider) == 3
    assert await list_all(server, provider="providers/elsewhere") == []


async def test_list_models_with_an_unknown_enum_is_invalid_argument(server):
    error = await rpc_error(server.models.ListModels(mpb.ListModelsRequest(feature=99)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["feature"]


async def test_list_models_pages(server):
    await create(server, "extra-model")
    everything = [x.name for x in await list_all(server)]
    assert everything == sorted(everything) and len(everything) == 3

    seen: list[str] = []
    token = ""
    for _ in range(10):
        response = await server.models.ListModels(
            mpb.ListModelsRequest(page_size=1, page_token=token)
        )
        assert len(response.models) == 1
        seen.append(response.models[0].name)
        token = response.next_page_token
        if not token:
            break
    assert seen == everything

    first = await server.models.ListModels(mpb.ListModelsRequest(page_size=1))
    error = await rpc_error(
        server.models.ListModels(
            mpb.ListModelsRequest(
                page_size=1, page_token=first.next_page_token, output_modality=IMAGE
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["page_token"]


async def test_forged_model_page_token_is_invalid_argument(server):
    query = {"list": "models", "provider": "", "output": 0, "feature": 0}
    fingerprint = hashlib.sha256(
        json.dumps(query, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    body = json.dumps({"v": 1, "p": ["x"], "q": fingerprint}, separators=(",", ":")).encode()
    token = base64.urlsafe_b64encode(body).decode().rstrip("=")
    error = await rpc_error(server.models.ListModels(mpb.ListModelsRequest(page_token=token)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_providers_shows_offline_without_secrets(server):
    response = await server.models.ListProviders(mpb.ListProvidersRequest())
    assert [p.name for p in response.providers] == ["providers/offline"]
    offline = response.providers[0]
    assert offline.kind == "offline"
    assert offline.has_api_key is False
    assert offline.available is True
    assert offline.base_url == ""
    assert offline.max_concurrent_jobs > 0
    assert response.next_page_token == ""


CONFIG = textwrap.dedent(
    """
    [providers.vendor]
    kind = "openai"
    enabled = false
    base_url = "https://images.example.test/v1"
    api_key = "sk-very-secret-key-123"
    max_concurrent_jobs = 2

    [[models]]
    id = "cfg-model"
    provider = "offline"
    provider_model_id = "x"
    input_modalities = ["text"]
    output_modalities = ["image"]

    [[models]]
    id = "vendor-model"
    provider = "vendor"
    provider_model_id = "v1"
    input_modalities = ["text", "image"]
    output_modalities = ["image"]
    """
)


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "limner.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("LIMNER_CONFIG_FILE", str(path))
    return path


async def test_list_providers_never_returns_a_key(make_server, config_file):
    async with make_server() as server:
        response = await server.models.ListProviders(mpb.ListProvidersRequest())
        providers = {p.name: p for p in response.providers}
        assert set(providers) == {"providers/offline", "providers/vendor"}
        vendor = providers["providers/vendor"]
        assert vendor.has_api_key is True
        assert vendor.kind == "openai"
        assert vendor.available is False
        assert vendor.base_url == "https://images.example.test/v1"
        assert vendor.max_concurrent_jobs == 2
        assert b"sk-very-secret" not in response.SerializeToString()

        paged = await server.models.ListProviders(mpb.ListProvidersRequest(page_size=1))
        assert len(paged.providers) == 1 and paged.next_page_token
        rest = await server.models.ListProviders(
            mpb.ListProvidersRequest(page_size=1, page_token=paged.next_page_token)
        )
        assert [p.name for p in (*paged.providers, *rest.providers)] == sorted(providers)


async def test_models_from_the_config_file_are_listed_and_read_only(make_server, config_file):
    async with make_server() as server:
        models = {x.name: x for x in await list_all(server)}
        configured = models["models/cfg-model"]
        assert configured.origin == m.MODEL_ORIGIN_CONFIG
        assert list(configured.input_modalities) == [TEXT]
        assert list(configured.output_modalities) == [IMAGE]
        assert models["models/vendor-model"].provider == "providers/vendor"

        error = await rpc_error(
            server.models.DeleteModel(mpb.DeleteModelRequest(name="models/cfg-model"))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(error) == "RESOURCE_READ_ONLY"
        assert status_details(error)["ErrorInfo"].metadata["origin"] == "config"
        assert (await server.models.GetModel(mpb.GetModelRequest(name="models/cfg-model"))).model


async def test_models_from_settings_overrides_have_origin_config(make_server):
    configured = {
        "id": "cfg-model",
        "provider": "offline",
        "provider_model_id": "x",
        "input_modalities": ["text"],
        "output_modalities": ["image"],
    }
    async with make_server(models=[configured]) as server:
        got = (await server.models.GetModel(mpb.GetModelRequest(name="models/cfg-model"))).model
        assert got.origin == m.MODEL_ORIGIN_CONFIG
        assert got.provider == "providers/offline"

        for call in (
            server.models.DeleteModel(mpb.DeleteModelRequest(name="models/cfg-model")),
            server.models.UpdateModel(
                mpb.UpdateModelRequest(
                    model=m.Model(name="models/cfg-model", display_name="x"),
                    update_mask=mask("display_name"),
                )
            ),
        ):
            error = await rpc_error(call)
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert reason(error) == "RESOURCE_READ_ONLY"

        # A configured model serves image generation (its input is text only, which is fine).
        events = await collect(
            server.images.GenerateImage(
                ipb.GenerateImageRequest(
                    prompt="a boat",
                    model="models/cfg-model",
                    options=ipb.ImageOptions(width=64, height=64),
                )
            )
        )
        assert kinds(events)[-1] == "completed"
        assert events[0].snapshot.model == "models/cfg-model"


async def test_feature_check_is_not_ready_when_the_provider_is_unavailable(
    make_server, config_file
):
    async with make_server() as server:
        check = (
            await server.models.CheckFeature(
                mpb.CheckFeatureRequest(
                    feature=m.FEATURE_IMAGE_GENERATION, model="models/vendor-model"
                )
            )
        ).check
        assert check.ready is False


async def test_model_whose_provider_has_no_adapter_fails_clearly(make_server, config_file):
    async with make_server() as server:
        error = await rpc_error(
            collect(
                server.images.GenerateImage(
                    ipb.GenerateImageRequest(prompt="a boat", model="models/vendor-model")
                )
            )
        )
        assert error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.FAILED_PRECONDITION)
        assert "providers/vendor" in error.details()
        assert "sk-very-secret" not in error.details()


# -- creating, updating, deleting --------------------------------------------------------


async def test_create_get_update_delete(server):
    spec = model(
        display_name="My model",
        provider_model_id="offline-image",
        profile=m.ModelProfile(max_reference_images=2, supports_seed=True, default_size="512x512"),
    )
    created = await create(server, "my-model", spec)

    assert created.name == "models/my-model"
    assert created.origin == m.MODEL_ORIGIN_API
    assert created.display_name == "My model"
    assert created.provider == "providers/offline"
    assert created.profile.max_reference_images == 2
    assert created.profile.default_size == "512x512"
    assert created.profile.max_images_per_request == 1, "unset means 1"
    assert created.HasField("create_time") and created.HasField("update_time")

    got = (await server.models.GetModel(mpb.GetModelRequest(name="models/my-model"))).model
    assert got == created
    assert "models/my-model" in [x.name for x in await list_all(server)]

    changed = m.Model(
        name="models/my-model",
        display_name="Renamed",
        provider_model_id="something-else",
        input_modalities=[TEXT],
        output_modalities=[TEXT],
        profile=m.ModelProfile(max_reference_images=0),
    )
    updated = (
        await server.models.UpdateModel(
            mpb.UpdateModelRequest(model=changed, update_mask=mask("display_name"))
        )
    ).model
    assert updated.display_name == "Renamed"
    expected = m.Model()
    expected.CopyFrom(created)
    expected.display_name = "Renamed"
    expected.update_time.CopyFrom(updated.update_time)
    assert updated == expected, "only display_name changed"
    assert updated.update_time.ToDatetime() >= created.update_time.ToDatetime()
    assert updated.create_time == created.create_time
    assert (
        await server.models.GetModel(mpb.GetModelRequest(name="models/my-model"))
    ).model == updated

    # The `model.` prefix is accepted in masks too.
    profiled = (
        await server.models.UpdateModel(
            mpb.UpdateModelRequest(
                model=m.Model(
                    name="models/my-model", profile=m.ModelProfile(max_reference_images=3)
                ),
                update_mask=mask("model.profile"),
            )
        )
    ).model
    assert profiled.profile.max_reference_images == 3
    assert profiled.display_name == "Renamed"

    await server.models.DeleteModel(mpb.DeleteModelRequest(name="models/my-model"))
    error = await rpc_error(server.models.GetModel(mpb.GetModelRequest(name="models/my-model")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "MODEL_NOT_FOUND"
    assert "models/my-model" not in [x.name for x in await list_all(server)]
    error = await rpc_error(
        server.models.DeleteModel(mpb.DeleteModelRequest(name="models/my-model"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_update_mask_with_an_immutable_field_is_refused(server):
    await create(server, "my-model")
    error = await rpc_error(
        server.models.UpdateModel(
            mpb.UpdateModelRequest(
                model=m.Model(name="models/my-model", provider="providers/other"),
                update_mask=mask("provider"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["update_mask"]
    assert "provider" in error.details()


async def test_update_unknown_model_is_not_found(server):
    error = await rpc_error(
        server.models.UpdateModel(
            mpb.UpdateModelRequest(
                model=m.Model(name="models/missing", display_name="x"),
                update_mask=mask("display_name"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "MODEL_NOT_FOUND"


async def test_create_duplicate_id_already_exists(server):
    await create(server, "dup-model")
    error = await rpc_error(
        server.models.CreateModel(mpb.CreateModelRequest(model_id="dup-model", model=model()))
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason(error) == "MODEL_ALREADY_EXISTS"
    assert status_details(error)["ErrorInfo"].metadata["model"] == "models/dup-model"


async def test_create_with_a_builtin_id_already_exists(server):
    error = await rpc_error(
        server.models.CreateModel(mpb.CreateModelRequest(model_id="offline-image", model=model()))
    )
    assert reason(error) == "MODEL_ALREADY_EXISTS"
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_create_with_a_builtin_id_is_refused_and_changes_nothing(server):
    error = await rpc_error(
        server.models.CreateModel(
            mpb.CreateModelRequest(model_id="offline-image", model=model((TEXT,), (TEXT,)))
        )
    )
    assert error.code() in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION)
    assert reason(error) == "MODEL_ALREADY_EXISTS"
    got = (await server.models.GetModel(mpb.GetModelRequest(name="models/offline-image"))).model
    assert list(got.output_modalities) == [IMAGE]


async def test_create_with_unknown_provider_is_invalid_argument(server):
    error = await rpc_error(
        server.models.CreateModel(
            mpb.CreateModelRequest(model_id="ghost", model=model(provider="providers/ghost"))
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "INVALID_FIELD"
    assert fields(error) == ["model.provider"]
    assert "providers/ghost" in error.details() and "providers/offline" in error.details()


@pytest.mark.parametrize("model_id", ["Bad_Id", "", "1abc", "a" * 64, "has space", "models/x"])
async def test_create_with_a_bad_id_is_invalid_argument(server, model_id):
    error = await rpc_error(
        server.models.CreateModel(mpb.CreateModelRequest(model_id=model_id, model=model()))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["model_id"]


async def test_longest_id_is_accepted(server):
    created = await create(server, "a" * 63)
    assert created.name == "models/" + "a" * 63


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (model(provider_model_id=""), "model.provider_model_id"),
        (model(inputs=()), "model.input_modalities"),
        (model(outputs=()), "model.output_modalities"),
        (model(outputs=(m.MODALITY_UNSPECIFIED,)), "model.output_modalities"),
        (model(inputs=(TEXT, 7)), "model.input_modalities"),
        (model(profile=m.ModelProfile(default_size="huge")), "model.profile.default_size"),
        (
            model(profile=m.ModelProfile(max_reference_images=-1)),
            "model.profile.max_reference_images",
        ),
    ],
    ids=["provider-model-id", "no-inputs", "no-outputs", "unspecified", "unknown", "size", "refs"],
)
async def test_create_with_an_invalid_model_names_the_field(server, spec, field):
    error = await rpc_error(
        server.models.CreateModel(mpb.CreateModelRequest(model_id="bad-model", model=spec))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == [field]


async def test_create_without_a_model_is_invalid_argument(server):
    error = await rpc_error(server.models.CreateModel(mpb.CreateModelRequest(model_id="x-model")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["model"]


@pytest.mark.parametrize("name", ["models/offline-image", "models/offline-writer"])
async def test_builtin_models_are_read_only(server, name):
    update = server.models.UpdateModel(
        mpb.UpdateModelRequest(
            model=m.Model(name=name, display_name="mine now"), update_mask=mask("display_name")
        )
    )
    for call in (update, server.models.DeleteModel(mpb.DeleteModelRequest(name=name))):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(error) == "RESOURCE_READ_ONLY"
        info = status_details(error)["ErrorInfo"]
        assert info.metadata["model"] == name
        assert info.metadata["origin"] == "builtin"
    got = (await server.models.GetModel(mpb.GetModelRequest(name=name))).model
    assert got.display_name != "mine now"


async def test_create_is_idempotent_with_a_request_id(server):
    request_id = "6b8f6a40-1111-4c3e-9d2a-0123456789ab"
    first = await create(server, "same-model", model(display_name="Same"), request_id)
    again = await create(server, "same-model", model(display_name="Same"), request_id)

    assert again == first
    assert [x.name for x in await list_all(server)].count("models/same-model") == 1

    error = await rpc_error(
        server.models.CreateModel(
            mpb.CreateModelRequest(
                model_id="same-model", model=model(display_name="Other"), request_id=request_id
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "REQUEST_ID_CONFLICT"

    # Without the key, creating it again is a duplicate.
    error = await rpc_error(
        server.models.CreateModel(
            mpb.CreateModelRequest(model_id="same-model", model=model(display_name="Same"))
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize("name", ["", "nope", "models/", "models/Nope"])
async def test_get_model_with_a_bad_name(server, name):
    error = await rpc_error(server.models.GetModel(mpb.GetModelRequest(name=name)))
    if name == "nope":
        assert error.code() == grpc.StatusCode.NOT_FOUND, "bare ids are accepted"
        assert reason(error) == "MODEL_NOT_FOUND"
    else:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert fields(error) == ["name"]


# -- feature checks ----------------------------------------------------------------------


async def check(server, feature: int, model_name: str = "") -> m.FeatureCheck:
    response = await server.models.CheckFeature(
        mpb.CheckFeatureRequest(feature=feature, model=model_name)
    )
    assert response.check.feature == feature
    return response.check


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        (m.FEATURE_IMAGE_GENERATION, "models/offline-image"),
        (m.FEATURE_IMAGE_EDIT, "models/offline-image"),
        (m.FEATURE_AVATAR_GENERATION, "models/offline-image"),
        (m.FEATURE_AVATAR_EDIT, "models/offline-image"),
        (m.FEATURE_SCENE_IMAGE, "models/offline-image"),
        (m.FEATURE_SCENE_WRITER, "models/offline-writer"),
        (m.FEATURE_DESIGN_REFERENCE_WRITER, "models/offline-writer"),
    ],
)
async def test_every_feature_is_ready_out_of_the_box(server, feature, expected):
    result = await check(server, feature)
    assert result.ready is True
    assert result.model == expected
    assert list(result.qualifying_models) == [expected]
    assert list(result.missing_capabilities) == []
    assert list(result.warnings) == []


async def test_check_with_a_model_lacking_image_output(server):
    result = await check(server, m.FEATURE_IMAGE_GENERATION, "models/offline-writer")

    assert result.ready is False
    assert result.model == "models/offline-writer"
    assert list(result.missing_capabilities) == ["image output"]
    assert "image output" in result.message
    assert "models/offline-writer" in result.message
    assert list(result.qualifying_models) == ["models/offline-image"]


async def test_check_writer_with_an_image_model(server):
    result = await check(server, m.FEATURE_SCENE_WRITER, "models/offline-image")
    assert result.ready is False
    assert list(result.missing_capabilities) == ["text output"]


async def test_edit_with_a_model_without_image_input_is_ready_with_a_warning(server):
    await create(server, "blind-image", model((TEXT,), (IMAGE,)))

    result = await check(server, m.FEATURE_IMAGE_EDIT, "models/blind-image")

    assert result.ready is True
    assert result.model == "models/blind-image"
    assert list(result.missing_capabilities) == []
    assert len(result.warnings) == 1
    assert "image input" in result.warnings[0]
    assert "models/blind-image" in result.warnings[0]
    assert result.message == result.warnings[0]
    assert set(result.qualifying_models) == {"models/offline-image", "models/blind-image"}

    # Plain generation does not need image input: no caveat.
    plain = await check(server, m.FEATURE_IMAGE_GENERATION, "models/blind-image")
    assert plain.ready is True and list(plain.warnings) == []


async def test_editing_with_a_blind_model_runs_with_a_warning(server):
    await create(server, "blind-image", model((TEXT,), (IMAGE,)))
    source = (
        (
            await collect(
                server.images.GenerateImage(
                    ipb.GenerateImageRequest(
                        prompt="a hill", options=ipb.ImageOptions(width=64, height=64)
                    )
                )
            )
        )[-1]
        .completed.images[0]
        .asset
    )

    events = await collect(
        server.images.EditImage(
            ipb.EditImageRequest(source_asset=source, prompt="snow", model="models/blind-image")
        )
    )
    assert kinds(events)[-1] == "completed"
    warnings = [(e.warning.code, e.warning.field) for e in events if e.HasField("warning")]
    assert ("MODEL_CANNOT_SEE_SOURCE", "model") in warnings


async def test_check_unspecified_feature_is_invalid_argument(server):
    error = await rpc_error(server.models.CheckFeature(mpb.CheckFeatureRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["feature"]


async def test_check_unknown_model_is_not_found(server):
    error = await rpc_error(
        server.models.CheckFeature(
            mpb.CheckFeatureRequest(feature=m.FEATURE_IMAGE_GENERATION, model="models/nope")
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "MODEL_NOT_FOUND"


# -- image settings ----------------------------------------------------------------------


async def settings(server) -> m.ImageSettings:
    return (await server.models.GetImageSettings(mpb.GetImageSettingsRequest())).image_settings


async def update_settings(server, paths: tuple[str, ...], **values) -> m.ImageSettings:
    response = await server.models.UpdateImageSettings(
        mpb.UpdateImageSettingsRequest(
            image_settings=m.ImageSettings(**values), update_mask=mask(*paths)
        )
    )
    return response.image_settings


async def test_image_settings_defaults(server):
    current = await settings(server)
    assert current.name == "imageSettings"
    assert current.scene_mode == m.SCENE_MODE_ASK_FIRST
    assert current.context_window_size == 3
    assert (current.image_model, current.avatar_model) == ("", "")
    assert (current.scene_image_model, current.scene_writer_model) == ("", "")
    named = await server.models.GetImageSettings(mpb.GetImageSettingsRequest(name="imageSettings"))
    assert named.image_settings == current


async def test_get_image_settings_with_a_wrong_name(server):
    error = await rpc_error(
        server.models.GetImageSettings(mpb.GetImageSettingsRequest(name="settings/x"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["name"]


async def test_image_model_without_image_output_is_refused(server):
    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(image_model="models/offline-writer"),
                update_mask=mask("image_model"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "MODEL_CAPABILITY_UNSUPPORTED"
    info = status_details(error)["ErrorInfo"]
    assert info.metadata["model"] == "models/offline-writer"
    assert info.metadata["capability"] == "image output"
    assert "models/offline-image" in info.metadata["qualifyingModels"].split(",")
    assert (await settings(server)).image_model == "", "nothing saved"


async def test_chosen_image_model_serves_generation(server):
    await create(server, "alt-image", model(display_name="Alternative"))

    updated = await update_settings(server, ("image_model",), image_model="models/alt-image")
    assert updated.image_model == "models/alt-image"
    assert updated.scene_mode == m.SCENE_MODE_ASK_FIRST, "other fields untouched"
    assert updated.context_window_size == 3
    assert updated.HasField("update_time")
    assert await settings(server) == updated

    assert (await check(server, m.FEATURE_IMAGE_GENERATION)).model == "models/alt-image"
    events = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt="a kite", options=ipb.ImageOptions(width=64, height=64))
        )
    )
    assert kinds(events)[-1] == "completed"
    assert events[0].snapshot.model == "models/alt-image"

    explicit = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(
                prompt="a kite",
                model="models/offline-image",
                options=ipb.ImageOptions(width=64, height=64),
            )
        )
    )
    assert explicit[0].snapshot.model == "models/offline-image", "the request's model wins"


async def test_scene_writer_without_image_input_is_refused(server):
    await create(server, "text-writer", model((TEXT,), (TEXT,), provider_model_id="t"))

    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(scene_writer_model="models/text-writer"),
                update_mask=mask("image_settings.scene_writer_model"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "MODEL_CAPABILITY_UNSUPPORTED"
    info = status_details(error)["ErrorInfo"]
    assert info.metadata["capability"] == "image input"
    assert info.metadata["model"] == "models/text-writer"
    violations = status_details(error)["PreconditionFailure"].violations
    assert [v.subject for v in violations] == ["models/text-writer"]
    assert "image input" in violations[0].description
    assert (await settings(server)).scene_writer_model == ""

    accepted = await update_settings(
        server, ("scene_writer_model",), scene_writer_model="models/offline-writer"
    )
    assert accepted.scene_writer_model == "models/offline-writer"


async def test_scene_writer_without_text_output_is_refused(server):
    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(scene_writer_model="models/offline-image"),
                update_mask=mask("scene_writer_model"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status_details(error)["ErrorInfo"].metadata["capability"] == "text output"


async def test_settings_scene_mode_and_context_window(server):
    updated = await update_settings(
        server,
        ("scene_mode", "context_window_size"),
        scene_mode=m.SCENE_MODE_AUTO,
        context_window_size=7,
    )
    assert updated.scene_mode == m.SCENE_MODE_AUTO
    assert updated.context_window_size == 7

    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(context_window_size=51),
                update_mask=mask("context_window_size"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["context_window_size"]


async def test_settings_with_an_unknown_mask_path_or_model(server):
    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(name="x"), update_mask=mask("name")
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["update_mask"]

    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(image_model="models/nope"),
                update_mask=mask("image_model"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "MODEL_NOT_FOUND"

    error = await rpc_error(
        server.models.UpdateImageSettings(
            mpb.UpdateImageSettingsRequest(
                image_settings=m.ImageSettings(avatar_model="models/Bad"),
                update_mask=mask("avatar_model"),
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["avatar_model"]


# -- discovery ---------------------------------------------------------------------------


async def test_discover_without_a_provider_is_invalid_argument(server):
    error = await rpc_error(server.models.DiscoverModels(mpb.DiscoverModelsRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error) == ["provider"]
