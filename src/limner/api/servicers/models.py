"""ModelService."""

from __future__ import annotations

from typing import Any

from limner.api.context import current_workspace
from limner.api.convert import model as model_convert
from limner.api.convert.common import enum_from_pb, update_mask_from_pb
from limner.api.pagination import page
from limner.errors import InvalidArgument
from limner.features.models import ModelAdmin
from limner.prompts import TemplateService, kind_from_name
from limner.v1 import model_service_pb2 as pb
from limner.v1 import model_service_pb2_grpc


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
            providers=[model_convert.provider_to_pb(p) for p in providers], next_page_token=token
        )

    async def GetModel(self, request: pb.GetModelRequest, context: Any) -> pb.GetModelResponse:
        model = await self.models.get(current_workspace(), request.name)
        return pb.GetModelResponse(model=model_convert.model_to_pb(model))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Any
    ) -> pb.ListModelsResponse:
        output = (
            enum_from_pb(
                model_convert.MODALITIES_FROM_PB, request.output_modality, "output_modality"
            )
            if request.output_modality
            else None
        )
        feature = (
            enum_from_pb(model_convert.FEATURES_FROM_PB, request.feature, "feature")
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
            models=[model_convert.model_to_pb(m) for m in chunk], next_page_token=token
        )

    async def CreateModel(
        self, request: pb.CreateModelRequest, context: Any
    ) -> pb.CreateModelResponse:
        if not request.HasField("model"):
            raise InvalidArgument.field("model", "is required")
        model = model_convert.model_from_pb(request.model_id, request.model)
        created = await self.models.create(current_workspace(), model, request.request_id)
        return pb.CreateModelResponse(model=model_convert.model_to_pb(created))

    async def UpdateModel(
        self, request: pb.UpdateModelRequest, context: Any
    ) -> pb.UpdateModelResponse:
        changes = model_convert.model_update_from_pb(request.model)
        paths = update_mask_from_pb(request.update_mask, set(changes), "model.")
        updated = await self.models.update(current_workspace(), request.model.name, changes, paths)
        return pb.UpdateModelResponse(model=model_convert.model_to_pb(updated))

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
        return pb.DiscoverModelsResponse(models=[model_convert.model_to_pb(m) for m in models])

    async def CheckFeature(
        self, request: pb.CheckFeatureRequest, context: Any
    ) -> pb.CheckFeatureResponse:
        feature = enum_from_pb(model_convert.FEATURES_FROM_PB, request.feature, "feature")
        check = await self.models.check(current_workspace(), feature, request.model)
        return pb.CheckFeatureResponse(check=model_convert.feature_check_to_pb(check))

    async def GetImageSettings(
        self, request: pb.GetImageSettingsRequest, context: Any
    ) -> pb.GetImageSettingsResponse:
        if request.name not in ("", "imageSettings"):
            raise InvalidArgument.field("name", "must be imageSettings (or empty)")
        settings = await self.models.image_settings(current_workspace())
        return pb.GetImageSettingsResponse(
            image_settings=model_convert.image_settings_to_pb(settings)
        )

    async def UpdateImageSettings(
        self, request: pb.UpdateImageSettingsRequest, context: Any
    ) -> pb.UpdateImageSettingsResponse:
        changes = model_convert.image_settings_update_from_pb(request.image_settings)
        paths = update_mask_from_pb(request.update_mask, set(changes), "image_settings.")
        settings = await self.models.update_image_settings(current_workspace(), changes, paths)
        return pb.UpdateImageSettingsResponse(
            image_settings=model_convert.image_settings_to_pb(settings)
        )

    async def ListPromptTemplates(
        self, request: pb.ListPromptTemplatesRequest, context: Any
    ) -> pb.ListPromptTemplatesResponse:
        templates = await self.templates.list_templates(current_workspace())
        return pb.ListPromptTemplatesResponse(
            prompt_templates=[model_convert.prompt_template_to_pb(t) for t in templates]
        )

    async def GetPromptTemplate(
        self, request: pb.GetPromptTemplateRequest, context: Any
    ) -> pb.GetPromptTemplateResponse:
        template = await self.templates.get(current_workspace(), kind_from_name(request.name))
        return pb.GetPromptTemplateResponse(
            prompt_template=model_convert.prompt_template_to_pb(template)
        )

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
        return pb.UpdatePromptTemplateResponse(
            prompt_template=model_convert.prompt_template_to_pb(template)
        )

    async def ResetPromptTemplate(
        self, request: pb.ResetPromptTemplateRequest, context: Any
    ) -> pb.ResetPromptTemplateResponse:
        template = await self.templates.reset(current_workspace(), kind_from_name(request.name))
        return pb.ResetPromptTemplateResponse(
            prompt_template=model_convert.prompt_template_to_pb(template)
        )

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
