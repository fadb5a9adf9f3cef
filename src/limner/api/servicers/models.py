"""ModelService."""

from __future__ import annotations

from typing import Any

from limner.api import convert
from limner.api.context import current_workspace
from limner.api.pagination import page
from limner.domain.models import ModelOrigin, ModelSpec
from limner.errors import InvalidArgument
from limner.features.models import ModelAdmin
from limner.prompts import TemplateService, kind_from_name
from limner.v1 import model_pb2, model_service_pb2_grpc
from limner.v1 import model_service_pb2 as pb


def _mask(paths: list[str], default: set[str], prefix: str) -> set[str]:
    cleaned = {path.removeprefix(prefix) for path in paths}
    return cleaned or set(default)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, models: ModelAdmin, templates: TemplateService) -> None:
        self.models = models
        self.templates = templates

    async def ListProviders(
        self, request: pb.ListProvidersRequest, context: Any
    ) -> pb.ListProvidersResponse:
        providers, token = page(
            self.models.providers(),
            page_size=request.page_size,
            page_token=request.page_token,
            query={"list": "providers"},
        )
        return pb.ListProvidersResponse(
            providers=[convert.provider_pb(p) for p in providers], next_page_token=token
        )

    async def GetModel(self, request: pb.GetModelRequest, context: Any) -> pb.GetModelResponse:
        model = await self.models.get(current_workspace(), request.name)
        return pb.GetModelResponse(model=convert.model_pb(model))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Any
    ) -> pb.ListModelsResponse:
        output = (
            convert.enum_from_pb(
                convert.MODALITIES_FROM_PB, request.output_modality, "output_modality"
            )
            if request.output_modality
            else None
        )
        feature = (
            convert.enum_from_pb(convert.FEATURES_FROM_PB, request.feature, "feature")
            if request.feature
            else None
        )
        models = await self.models.list_models(
            current_workspace(), provider=request.provider, output_modality=output, feature=feature
        )
        chunk, token = page(
            models,
            page_size=request.page_size,
            page_token=request.page_token,
            query={
                "list": "models",
                "provider": request.provider,
                "output": int(request.output_modality),
                "feature": int(request.feature),
            },
        )
        return pb.ListModelsResponse(
            models=[convert.model_pb(m) for m in chunk], next_page_token=token
        )

    async def CreateModel(
        self, request: pb.CreateModelRequest, context: Any
    ) -> pb.CreateModelResponse:
        if not request.HasField("model"):
            raise InvalidArgument.field("model", "is required")
        model = _model_from_pb(request.model_id, request.model)
        created = await self.models.create(current_workspace(), model, request.request_id)
        return pb.CreateModelResponse(model=convert.model_pb(created))

    async def UpdateModel(
        self, request: pb.UpdateModelRequest, context: Any
    ) -> pb.UpdateModelResponse:
        name = request.model.name
        model = _model_from_pb(name.removeprefix("models/") or "x", request.model)
        changes = {
            "display_name": model.display_name,
            "provider_model_id": model.provider_model_id,
            "input_modalities": model.input_modalities,
            "output_modalities": model.output_modalities,
            "profile": model.profile,
        }
        paths = _mask(list(request.update_mask.paths), set(changes), "model.")
        updated = await self.models.update(current_workspace(), name, changes, paths)
        return pb.UpdateModelResponse(model=convert.model_pb(updated))

    async def DeleteModel(
        self, request: pb.DeleteModelRequest, context: Any
    ) -> pb.DeleteModelResponse:
        await self.models.delete(current_workspace(), request.name)
        return pb.DeleteModelResponse()

    async def DiscoverModels(
        self, request: pb.DiscoverModelsRequest, context: Any
    ) -> pb.DiscoverModelsResponse:
        models = await self.models.discover(
            current_workspace(), request.provider, image_output_only=request.image_output_only
        )
        return pb.DiscoverModelsResponse(models=[convert.model_pb(m) for m in models])

    async def CheckFeature(
        self, request: pb.CheckFeatureRequest, context: Any
    ) -> pb.CheckFeatureResponse:
        feature = convert.enum_from_pb(convert.FEATURES_FROM_PB, request.feature, "feature")
        check = await self.models.check(current_workspace(), feature, request.model)
        return pb.CheckFeatureResponse(check=convert.feature_check_pb(check))

    async def GetImageSettings(
        self, request: pb.GetImageSettingsRequest, context: Any
    ) -> pb.GetImageSettingsResponse:
        if request.name not in ("", "imageSettings"):
            raise InvalidArgument.field("name", "must be imageSettings (or empty)")
        settings = await self.models.image_settings(current_workspace())
        return pb.GetImageSettingsResponse(image_settings=convert.image_settings_pb(settings))

    async def UpdateImageSettings(
        self, request: pb.UpdateImageSettingsRequest, context: Any
    ) -> pb.UpdateImageSettingsResponse:
        given = request.image_settings
        changes: dict[str, Any] = {
            "image_model": given.image_model,
            "avatar_model": given.avatar_model,
            "scene_image_model": given.scene_image_model,
            "scene_writer_model": given.scene_writer_model,
            "context_window_size": given.context_window_size or 3,
        }
        changes["scene_mode"] = (
            convert.enum_from_pb(convert.SCENE_MODES_FROM_PB, given.scene_mode, "scene_mode")
            if given.scene_mode
            else convert.SCENE_MODES_FROM_PB[model_pb2.SCENE_MODE_ASK_FIRST]
        )
        paths = _mask(list(request.update_mask.paths), set(changes), "image_settings.")
        settings = await self.models.update_image_settings(current_workspace(), changes, paths)
        return pb.UpdateImageSettingsResponse(image_settings=convert.image_settings_pb(settings))

    async def ListPromptTemplates(
        self, request: pb.ListPromptTemplatesRequest, context: Any
    ) -> pb.ListPromptTemplatesResponse:
        templates = await self.templates.list_templates(current_workspace())
        return pb.ListPromptTemplatesResponse(
            prompt_templates=[convert.prompt_template_pb(t) for t in templates]
        )

    async def GetPromptTemplate(
        self, request: pb.GetPromptTemplateRequest, context: Any
    ) -> pb.GetPromptTemplateResponse:
        template = await self.templates.get(current_workspace(), kind_from_name(request.name))
        return pb.GetPromptTemplateResponse(prompt_template=convert.prompt_template_pb(template))

    async def UpdatePromptTemplate(
        self, request: pb.UpdatePromptTemplateRequest, context: Any
    ) -> pb.UpdatePromptTemplateResponse:
        if not request.HasField("prompt_template"):
            raise InvalidArgument.field("prompt_template", "is required")
        given = request.prompt_template
        kind = kind_from_name(given.name, "prompt_template.name")
        template = await self.templates.update(
            current_workspace(), kind, given.source, field="prompt_template.source"
        )
        return pb.UpdatePromptTemplateResponse(prompt_template=convert.prompt_template_pb(template))

    async def ResetPromptTemplate(
        self, request: pb.ResetPromptTemplateRequest, context: Any
    ) -> pb.ResetPromptTemplateResponse:
        template = await self.templates.reset(current_workspace(), kind_from_name(request.name))
        return pb.ResetPromptTemplateResponse(prompt_template=convert.prompt_template_pb(template))

    async def PreviewPromptTemplate(
        self, request: pb.PreviewPromptTemplateRequest, context: Any
    ) -> pb.PreviewPromptTemplateResponse:
        preview = await self.templates.preview(
            current_workspace(),
            kind_from_name(request.name),
            source=request.source,
            values=dict(request.values),
            source_field="source",
            values_field="values",
        )
        return pb.PreviewPromptTemplateResponse(
            rendered=preview.text, image_slots=list(preview.image_slots)
        )


def _model_from_pb(model_id: str, model: model_pb2.Model) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=model.provider.removeprefix("providers/"),
        provider_model_id=model.provider_model_id,
        display_name=model.display_name,
        input_modalities=convert.modalities_from_pb(
            model.input_modalities, "model.input_modalities"
        ),
        output_modalities=convert.modalities_from_pb(
            model.output_modalities, "model.output_modalities"
        ),
        profile=convert.profile_from_pb(model.profile),
        origin=ModelOrigin.API,
    )
