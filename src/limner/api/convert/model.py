"""``limner/v1/model.proto``: providers, models, feature checks, image settings, templates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from limner.api.convert.common import enum_from_pb, timestamp_to_pb
from limner.api.convert.job import webhook_from_pb, webhook_to_pb
from limner.domain.models import (
    Feature,
    FeatureCheck,
    ImageSettings,
    Modality,
    ModelOrigin,
    ModelProfile,
    ModelSpec,
    ProviderInfo,
    SceneMode,
)
from limner.prompts import TemplateInfo, TemplateKind
from limner.v1 import model_pb2

MODALITIES = {Modality.TEXT: model_pb2.MODALITY_TEXT, Modality.IMAGE: model_pb2.MODALITY_IMAGE}
MODALITIES_FROM_PB = {value: key for key, value in MODALITIES.items()}
ORIGINS = {
    ModelOrigin.BUILTIN: model_pb2.MODEL_ORIGIN_BUILTIN,
    ModelOrigin.CONFIG: model_pb2.MODEL_ORIGIN_CONFIG,
    ModelOrigin.API: model_pb2.MODEL_ORIGIN_API,
    ModelOrigin.DISCOVERED: model_pb2.MODEL_ORIGIN_DISCOVERED,
}
FEATURES = {
    Feature.IMAGE_GENERATION: model_pb2.FEATURE_IMAGE_GENERATION,
    Feature.IMAGE_EDIT: model_pb2.FEATURE_IMAGE_EDIT,
    Feature.AVATAR_GENERATION: model_pb2.FEATURE_AVATAR_GENERATION,
    Feature.AVATAR_EDIT: model_pb2.FEATURE_AVATAR_EDIT,
    Feature.SCENE_IMAGE: model_pb2.FEATURE_SCENE_IMAGE,
    Feature.SCENE_WRITER: model_pb2.FEATURE_SCENE_WRITER,
    Feature.DESIGN_REFERENCE_WRITER: model_pb2.FEATURE_DESIGN_REFERENCE_WRITER,
}
FEATURES_FROM_PB = {value: key for key, value in FEATURES.items()}
SCENE_MODES = {
    SceneMode.AUTO: model_pb2.SCENE_MODE_AUTO,
    SceneMode.ASK_FIRST: model_pb2.SCENE_MODE_ASK_FIRST,
    SceneMode.MANUAL: model_pb2.SCENE_MODE_MANUAL,
}
SCENE_MODES_FROM_PB = {value: key for key, value in SCENE_MODES.items()}
TEMPLATE_KINDS = {
    TemplateKind.AVATAR_GENERATION: model_pb2.TEMPLATE_KIND_AVATAR_GENERATION,
    TemplateKind.AVATAR_EDIT: model_pb2.TEMPLATE_KIND_AVATAR_EDIT,
    TemplateKind.SCENE_WRITER: model_pb2.TEMPLATE_KIND_SCENE_WRITER,
    TemplateKind.SCENE_RENDER: model_pb2.TEMPLATE_KIND_SCENE_RENDER,
    TemplateKind.DESIGN_REFERENCE_WRITER: model_pb2.TEMPLATE_KIND_DESIGN_REFERENCE_WRITER,
}
TEMPLATE_KINDS_FROM_PB = {value: key for key, value in TEMPLATE_KINDS.items()}


# -- models --------------------------------------------------------------------------------


def profile_to_pb(profile: ModelProfile) -> model_pb2.ModelProfile:
    return model_pb2.ModelProfile(
        max_reference_images=profile.max_reference_images,
        supported_sizes=list(profile.supported_sizes),
        default_size=profile.default_size,
        supports_seed=profile.supports_seed,
        supports_negative_prompt=profile.supports_negative_prompt,
        supports_edit=profile.supports_edit,
        supports_mask=profile.supports_mask,
        supports_previews=profile.supports_previews,
        supports_sampling_parameters=profile.supports_sampling_parameters,
        supports_aspect_ratio=profile.supports_aspect_ratio,
        max_images_per_request=profile.max_images_per_request,
    )


def profile_from_pb(profile: model_pb2.ModelProfile) -> ModelProfile:
    return ModelProfile(
        max_reference_images=profile.max_reference_images,
        supported_sizes=tuple(profile.supported_sizes),
        default_size=profile.default_size or "1024x1024",
        supports_seed=profile.supports_seed,
        supports_negative_prompt=profile.supports_negative_prompt,
        supports_edit=profile.supports_edit,
        supports_mask=profile.supports_mask,
        supports_previews=profile.supports_previews,
        supports_sampling_parameters=profile.supports_sampling_parameters,
        supports_aspect_ratio=profile.supports_aspect_ratio,
        max_images_per_request=profile.max_images_per_request or 1,
    )


def modalities_from_pb(values: Iterable[int], field: str) -> frozenset[Modality]:
    return frozenset(enum_from_pb(MODALITIES_FROM_PB, value, field) for value in values)


def model_to_pb(model: ModelSpec) -> model_pb2.Model:
    return model_pb2.Model(
        name=f"models/{model.id}",
        display_name=model.display_name,
        provider=f"providers/{model.provider}",
        provider_model_id=model.provider_model_id,
        input_modalities=[MODALITIES[m] for m in sorted(model.input_modalities)],
        output_modalities=[MODALITIES[m] for m in sorted(model.output_modalities)],
        profile=profile_to_pb(model.profile),
        origin=ORIGINS[model.origin],
        create_time=timestamp_to_pb(model.create_time),
        update_time=timestamp_to_pb(model.update_time),
    )


def model_from_pb(model_id: str, model: model_pb2.Model) -> ModelSpec:
    """A client-defined model (origin API) with the id the client chose."""
    return ModelSpec(
        id=model_id,
        provider=model.provider.removeprefix("providers/"),
        provider_model_id=model.provider_model_id,
        display_name=model.display_name,
        input_modalities=modalities_from_pb(model.input_modalities, "model.input_modalities"),
        output_modalities=modalities_from_pb(model.output_modalities, "model.output_modalities"),
        profile=profile_from_pb(model.profile),
        origin=ModelOrigin.API,
    )


def model_update_from_pb(model: model_pb2.Model) -> dict[str, Any]:
    """The changeable fields of an UpdateModel request's model, by field name."""
    spec = model_from_pb(model.name.removeprefix("models/") or "x", model)
    return {
        "display_name": spec.display_name,
        "provider_model_id": spec.provider_model_id,
        "input_modalities": spec.input_modalities,
        "output_modalities": spec.output_modalities,
        "profile": spec.profile,
    }


# -- providers and feature checks ----------------------------------------------------------


def provider_to_pb(provider: ProviderInfo) -> model_pb2.Provider:
    return model_pb2.Provider(
        name=f"providers/{provider.id}",
        kind=provider.kind,
        base_url=provider.base_url,
        has_api_key=provider.has_api_key,
        max_concurrent_jobs=provider.max_concurrent_jobs,
        available=provider.available,
    )


def feature_check_to_pb(check: FeatureCheck) -> model_pb2.FeatureCheck:
    return model_pb2.FeatureCheck(
        feature=FEATURES[check.feature],
        ready=check.ready,
        model=check.model,
        missing_capabilities=list(check.missing_capabilities),
        message=check.message,
        qualifying_models=list(check.qualifying_models),
        warnings=list(check.warnings),
    )


# -- image settings ------------------------------------------------------------------------


def image_settings_to_pb(settings: ImageSettings) -> model_pb2.ImageSettings:
    def name(model_id: str) -> str:
        return f"models/{model_id}" if model_id else ""

    return model_pb2.ImageSettings(
        name="imageSettings",
        image_model=name(settings.image_model),
        avatar_model=name(settings.avatar_model),
        scene_image_model=name(settings.scene_image_model),
        scene_writer_model=name(settings.scene_writer_model),
        scene_mode=SCENE_MODES[settings.scene_mode],
        context_window_size=settings.context_window_size,
        update_time=timestamp_to_pb(settings.update_time),
        default_webhook=(
            webhook_to_pb(settings.default_webhook) if settings.default_webhook else None
        ),
    )


def image_settings_update_from_pb(settings: model_pb2.ImageSettings) -> dict[str, Any]:
    """The changeable fields of an UpdateImageSettings request, unset ones at their defaults."""
    changes: dict[str, Any] = {
        "image_model": settings.image_model,
        "avatar_model": settings.avatar_model,
        "scene_image_model": settings.scene_image_model,
        "scene_writer_model": settings.scene_writer_model,
        "context_window_size": settings.context_window_size or 3,
        # An empty message (or none) removes the default webhook.
        "default_webhook": webhook_from_pb(settings.default_webhook, "default_webhook"),
    }
    changes["scene_mode"] = (
        enum_from_pb(SCENE_MODES_FROM_PB, settings.scene_mode, "scene_mode")
        if settings.scene_mode
        else SCENE_MODES_FROM_PB[model_pb2.SCENE_MODE_ASK_FIRST]
    )
    return changes


# -- prompt templates ----------------------------------------------------------------------


def prompt_template_to_pb(template: TemplateInfo) -> model_pb2.PromptTemplate:
    return model_pb2.PromptTemplate(
        name=template.name,
        kind=TEMPLATE_KINDS[template.kind],
        source=template.source,
        required_variables=list(template.required_variables),
        image_slots=list(template.image_slots),
        overridden=template.overridden,
        version=template.version,
        update_time=timestamp_to_pb(template.update_time),
    )
