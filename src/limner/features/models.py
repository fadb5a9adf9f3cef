"""Managing the model registry and the workspace's image settings."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, replace
from typing import Any

from limner.domain.models import (
    Feature,
    FeatureCheck,
    ImageSettings,
    Modality,
    ModelOrigin,
    ModelProfile,
    ModelSpec,
    ProviderInfo,
)
from limner.errors import FailedPrecondition, InvalidArgument, NotFound
from limner.features.uploads import RequestLedger
from limner.features.webhooks import Webhooks
from limner.providers import Provider
from limner.registry import ModelCatalog
from limner.registry.catalog import MODEL_ID, parse_model_name
from limner.registry.features import FEATURE_RULES

MODEL_MUTABLE_FIELDS = {
    "display_name",
    "provider_model_id",
    "input_modalities",
    "output_modalities",
    "profile",
}
SETTINGS_MUTABLE_FIELDS = {
    "image_model",
    "avatar_model",
    "scene_image_model",
    "scene_writer_model",
    "scene_mode",
    "context_window_size",
    "default_webhook",
}


class ModelAdmin:
    def __init__(
        self,
        catalog: ModelCatalog,
        ledger: RequestLedger,
        providers: dict[str, Provider],
        webhooks: Webhooks | None = None,
    ) -> None:
        self.catalog = catalog
        self.ledger = ledger
        self.adapters = providers
        self.webhooks = webhooks  # checks the default webhook's target

    def providers(self) -> list[ProviderInfo]:
        return [self.catalog.providers[key] for key in sorted(self.catalog.providers)]

    async def get(self, workspace_id: str, name: str) -> ModelSpec:
        return await self.catalog.get(workspace_id, parse_model_name(name, "name"))

    async def list_models(
        self,
        workspace_id: str,
        *,
        provider: str = "",
        output_modality: Modality | None = None,
        feature: Feature | None = None,
    ) -> list[ModelSpec]:
        models = await self.catalog.all_models(workspace_id)
        if provider:
            provider_id = provider.removeprefix("providers/")
            models = [m for m in models if m.provider == provider_id]
        if output_modality is not None:
            models = [m for m in models if output_modality in m.output_modalities]
        if feature is not None:
            rule = FEATURE_RULES[feature]
            models = [m for m in models if not rule.missing(m)]
        return models

    async def create(self, workspace_id: str, model: ModelSpec, request_id: str) -> ModelSpec:
        if not MODEL_ID.match(model.id):
            raise InvalidArgument.field(
                "model_id", "must match [a-z][a-z0-9-]* and be at most 63 characters"
            )
        _validate_model(model)
        request_hash = hashlib.sha256(
            json.dumps(asdict(model), sort_keys=True, default=str).encode()
        ).hexdigest()
        if request_id:
            earlier = await self.ledger.lookup(
                workspace_id, request_id, "CreateModel", request_hash
            )
            if earlier is not None:
                return await self.get(workspace_id, earlier)
        created = await self.catalog.create(workspace_id, model)
        if request_id:
            await self.ledger.remember(
                workspace_id, request_id, "CreateModel", request_hash, f"models/{created.id}"
            )
        return created

    async def update(
        self, workspace_id: str, name: str, changes: dict[str, Any], paths: set[str]
    ) -> ModelSpec:
        unknown = paths - MODEL_MUTABLE_FIELDS
        if unknown:
            raise InvalidArgument.field(
                "update_mask",
                f"cannot change {', '.join(sorted(unknown))}; changeable fields: "
                f"{', '.join(sorted(MODEL_MUTABLE_FIELDS))}",
            )
        current = await self.get(workspace_id, name)
        updated = replace(current, **{path: changes[path] for path in paths})
        _validate_model(updated)
        return await self.catalog.update(workspace_id, updated)

    async def delete(self, workspace_id: str, name: str) -> None:
        model_id = parse_model_name(name, "name")
        await self.catalog.get(workspace_id, model_id)
        await self.catalog.delete(workspace_id, model_id)

    async def discover(
        self, workspace_id: str, provider_name: str, *, image_output_only: bool
    ) -> list[ModelSpec]:
        """Imports the provider's model listing with the modalities it declares. Models
        imported earlier are refreshed; models created by hand are left alone."""
        provider_id = provider_name.removeprefix("providers/")
        if not provider_id or "/" in provider_id:
            raise InvalidArgument.field("provider", "is required: providers/{provider}")
        provider = self.adapters.get(provider_id)
        if provider is None:
            raise NotFound(
                f"providers/{provider_id} is not configured",
                reason="PROVIDER_NOT_FOUND",
                metadata={"provider": f"providers/{provider_id}"},
            )
        if provider.lister is None:
            raise FailedPrecondition(
                f"providers/{provider_id} ({provider.kind}) has no model listing; add its "
                "models with CreateModel or in the configuration file",
                reason="DISCOVERY_UNSUPPORTED",
                metadata={"provider": f"providers/{provider_id}", "kind": provider.kind},
            )
        found = await provider.lister.list_models()
        imported = []
        for item in found:
            outputs = frozenset(Modality(m) for m in item.output_modalities if m in _MODALITIES)
            inputs = frozenset(Modality(m) for m in item.input_modalities if m in _MODALITIES)
            if not outputs or not inputs:
                continue
            if image_output_only and Modality.IMAGE not in outputs:
                continue
            model = ModelSpec(
                id=discovered_id(provider_id, item.provider_model_id),
                provider=provider_id,
                provider_model_id=item.provider_model_id,
                display_name=item.display_name,
                input_modalities=inputs,
                output_modalities=outputs,
                profile=ModelProfile(max_reference_images=4 if Modality.IMAGE in inputs else 0),
                origin=ModelOrigin.DISCOVERED,
            )
            imported.append(await self.catalog.upsert_discovered(workspace_id, model))
        return imported

    async def check(self, workspace_id: str, feature: Feature, model: str) -> FeatureCheck:
        return await self.catalog.check(workspace_id, feature, model)

    async def image_settings(self, workspace_id: str) -> ImageSettings:
        return await self.catalog.image_settings(workspace_id)

    async def update_image_settings(
        self, workspace_id: str, changes: dict[str, Any], paths: set[str]
    ) -> ImageSettings:
        unknown = paths - SETTINGS_MUTABLE_FIELDS
        if unknown:
            raise InvalidArgument.field(
                "update_mask",
                f"cannot change {', '.join(sorted(unknown))}; changeable fields: "
                f"{', '.join(sorted(SETTINGS_MUTABLE_FIELDS))}",
            )
        webhook = changes.get("default_webhook") if "default_webhook" in paths else None
        if webhook is not None:
            if self.webhooks is None:
                raise InvalidArgument.field("default_webhook", "webhooks are not available")
            await self.webhooks.check(webhook, "default_webhook")
        current = await self.catalog.image_settings(workspace_id)
        updated = replace(current, **{path: changes[path] for path in paths})
        return await self.catalog.update_image_settings(workspace_id, updated, paths)


_MODALITIES = {m.value for m in Modality}


def discovered_id(provider_id: str, provider_model_id: str) -> str:
    """A stable model id for an imported model: ``<provider>-<slug>``, at most 63 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{provider_id}-{provider_model_id}".lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"m-{slug}"
    if len(slug) > 63:
        digest = hashlib.sha256(provider_model_id.encode()).hexdigest()[:8]
        slug = f"{slug[:54].rstrip('-')}-{digest}"
    return slug


def _validate_model(model: ModelSpec) -> None:
    if not model.provider_model_id:
        raise InvalidArgument.field("model.provider_model_id", "is required")
    if not model.input_modalities:
        raise InvalidArgument.field("model.input_modalities", "must list at least one modality")
    if not model.output_modalities:
        raise InvalidArgument.field("model.output_modalities", "must list at least one modality")
    try:
        model.profile.default_dimensions()
    except ValueError:
        raise InvalidArgument.field(
            "model.profile.default_size", "must look like WIDTHxHEIGHT, e.g. 1024x1024"
        ) from None
    if model.profile.max_reference_images < 0:
        raise InvalidArgument.field("model.profile.max_reference_images", "must not be negative")


def not_found(name: str) -> NotFound:
    return NotFound.resource("model", name)
