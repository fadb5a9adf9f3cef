"""The model catalogue: built-in, configured and API-created models, and the checks that
decide which model serves which feature before any provider is called."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from limner.domain.models import (
    Feature,
    FeatureCheck,
    ImageSettings,
    ModelOrigin,
    ModelSpec,
    ProviderInfo,
)
from limner.errors import (
    AlreadyExists,
    CapabilityMissing,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    ModelNotConfigured,
    NotFound,
    PreconditionViolation,
    ReadOnlyResource,
)
from limner.providers.base import ImageGenerator, Provider, TextWriter
from limner.registry.features import FEATURE_RULES, FeatureRule

CACHE_TTL_S = 2.0
MODEL_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class ModelRepository(Protocol):
    async def list_models(self, workspace_id: str) -> list[ModelSpec]: ...
    async def get(self, workspace_id: str, model_id: str) -> ModelSpec | None: ...
    async def create(self, workspace_id: str, model: ModelSpec) -> ModelSpec: ...
    async def update(self, workspace_id: str, model: ModelSpec) -> ModelSpec: ...
    async def delete(self, workspace_id: str, model_id: str) -> bool: ...


class SettingsRepository(Protocol):
    async def get(self, workspace_id: str) -> ImageSettings: ...
    async def put(self, workspace_id: str, settings: ImageSettings) -> ImageSettings: ...


@dataclass(frozen=True)
class ImageModel:
    """A model bound to the adapter that renders with it."""

    model: ModelSpec
    generator: ImageGenerator
    provider: Provider


@dataclass(frozen=True)
class WriterModel:
    """A model bound to the adapter that writes with it."""

    model: ModelSpec
    writer: TextWriter


def parse_model_name(name: str, field: str = "model") -> str:
    """``models/{id}`` -> ``id``; a bare id is accepted too (handy with grpcurl)."""
    model_id = name.removeprefix("models/")
    if not MODEL_ID.match(model_id):
        raise InvalidArgument.field(
            field, f"{name!r} is not a model name of the form models/[a-z][a-z0-9-]*"
        )
    return model_id


class ModelCatalog:
    def __init__(
        self,
        *,
        fixed_models: Iterable[ModelSpec],
        providers: Iterable[ProviderInfo],
        repository: ModelRepository,
        settings: SettingsRepository,
        adapters: Mapping[str, Provider],
    ) -> None:
        self._fixed = {model.id: model for model in fixed_models}
        self.providers = {provider.id: provider for provider in providers}
        self._adapters = adapters
        self._repository = repository
        self._settings = settings
        # Every image request resolves its model; reading the workspace's models and
        # settings from the database each time cost two queries per job. Local writes
        # clear the cache at once; other replicas' writes show within CACHE_TTL_S.
        self._models_cache: dict[str, tuple[float, dict[str, ModelSpec]]] = {}
        self._settings_cache: dict[str, tuple[float, ImageSettings]] = {}

    async def _api_models(self, workspace_id: str) -> dict[str, ModelSpec]:
        cached = self._models_cache.get(workspace_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_TTL_S:
            return cached[1]
        models = {m.id: m for m in await self._repository.list_models(workspace_id)}
        self._models_cache[workspace_id] = (time.monotonic(), models)
        return models

    async def _workspace_settings(self, workspace_id: str) -> ImageSettings:
        cached = self._settings_cache.get(workspace_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_TTL_S:
            return cached[1]
        settings = await self._settings.get(workspace_id)
        self._settings_cache[workspace_id] = (time.monotonic(), settings)
        return settings

    def _invalidate(self, workspace_id: str) -> None:
        self._models_cache.pop(workspace_id, None)
        self._settings_cache.pop(workspace_id, None)

    # -- reading -----------------------------------------------------------------------

    async def all_models(self, workspace_id: str) -> list[ModelSpec]:
        models = dict(self._fixed)
        for model in (await self._api_models(workspace_id)).values():
            models.setdefault(model.id, model)
        return [models[key] for key in sorted(models)]

    async def get(self, workspace_id: str, model_id: str) -> ModelSpec:
        model = self._fixed.get(model_id) or (await self._api_models(workspace_id)).get(model_id)
        if model is None:
            raise NotFound(
                f"models/{model_id} not found; ListModels shows the models you can use",
                reason="MODEL_NOT_FOUND",
                metadata={"model": f"models/{model_id}"},
            )
        return model

    async def image_settings(self, workspace_id: str) -> ImageSettings:
        return await self._workspace_settings(workspace_id)

    # -- writing -----------------------------------------------------------------------

    async def create(self, workspace_id: str, model: ModelSpec) -> ModelSpec:
        if model.id in self._fixed:
            raise AlreadyExists(
                f"models/{model.id} already exists ({self._fixed[model.id].origin.value}); "
                "pick another model_id",
                reason="MODEL_ALREADY_EXISTS",
                metadata={"model": f"models/{model.id}"},
            )
        self._check_provider(model.provider)
        try:
            return await self._repository.create(
                workspace_id, replace(model, origin=ModelOrigin.API)
            )
        finally:
            self._invalidate(workspace_id)

    async def upsert_discovered(self, workspace_id: str, model: ModelSpec) -> ModelSpec:
        """Stores or refreshes an imported model (never one made by hand or config)."""
        if model.id in self._fixed:
            return self._fixed[model.id]
        try:
            existing = await self._repository.get(workspace_id, model.id)
            if existing is None:
                return await self._repository.create(workspace_id, model)
            if existing.origin is not ModelOrigin.DISCOVERED:
                return existing
            return await self._repository.update(
                workspace_id, replace(model, create_time=existing.create_time)
            )
        finally:
            self._invalidate(workspace_id)

    async def update(self, workspace_id: str, model: ModelSpec) -> ModelSpec:
        self._refuse_fixed(model.id)
        self._check_provider(model.provider)
        try:
            return await self._repository.update(workspace_id, model)
        finally:
            self._invalidate(workspace_id)

    async def delete(self, workspace_id: str, model_id: str) -> None:
        self._refuse_fixed(model_id)
        try:
            deleted = await self._repository.delete(workspace_id, model_id)
        finally:
            self._invalidate(workspace_id)
        if not deleted:
            raise NotFound.resource("model", f"models/{model_id}")

    async def update_image_settings(
        self, workspace_id: str, settings: ImageSettings, changed: set[str]
    ) -> ImageSettings:
        """Checks each changed model against the feature it serves, then saves."""
        violations = []
        for rule in FEATURE_RULES.values():
            if rule.settings_field not in changed:
                continue
            chosen = rule.chosen(settings)
            if not chosen:
                continue
            model_id = parse_model_name(chosen, rule.settings_field)
            model = await self.get(workspace_id, model_id)
            missing = rule.missing(model)
            if missing:
                violations.append((rule, model, missing))
        if violations:
            rule, model, missing = violations[0]
            raise self._capability_error(
                workspace_id, rule, model, missing, await self.all_models(workspace_id)
            )
        if "context_window_size" in changed and not 1 <= settings.context_window_size <= 50:
            raise InvalidArgument.field("context_window_size", "must be between 1 and 50")
        normalised = replace(
            settings,
            image_model=settings.image_model.removeprefix("models/"),
            avatar_model=settings.avatar_model.removeprefix("models/"),
            scene_image_model=settings.scene_image_model.removeprefix("models/"),
            scene_writer_model=settings.scene_writer_model.removeprefix("models/"),
        )
        try:
            return await self._settings.put(workspace_id, normalised)
        finally:
            self._invalidate(workspace_id)

    # -- feature resolution ------------------------------------------------------------

    def usable(self, model: ModelSpec) -> bool:
        """Whether this server has a working adapter for the model's provider."""
        provider = self.providers.get(model.provider)
        return provider is not None and provider.available

    def _missing(self, rule: FeatureRule, model: ModelSpec) -> list[str]:
        missing = rule.missing(model)
        if not self.usable(model):
            missing.append("an available provider")
        return missing

    async def check(
        self, workspace_id: str, feature: Feature, model_name: str = ""
    ) -> FeatureCheck:
        """Which model would serve ``feature``, or why none can (never raises for that)."""
        rule = FEATURE_RULES[feature]
        models = await self.all_models(workspace_id)
        qualifying = tuple(f"models/{m.id}" for m in models if not self._missing(rule, m))
        chosen = model_name or rule.chosen(await self._workspace_settings(workspace_id))
        if chosen:
            model = await self.get(workspace_id, parse_model_name(chosen))
            missing = self._missing(rule, model)
            if missing:
                return FeatureCheck(
                    feature,
                    False,
                    f"models/{model.id}",
                    tuple(missing),
                    _lacks_message(rule, model, missing),
                    qualifying,
                )
            caveats = tuple(rule.caveats(model))
            return FeatureCheck(
                feature, True, f"models/{model.id}", (), "; ".join(caveats), qualifying, caveats
            )
        first = next((m for m in models if not self._missing(rule, m)), None)
        if first is None:
            return FeatureCheck(
                feature,
                False,
                "",
                tuple(rule.requirements()),
                _not_configured_message(rule),
                qualifying,
            )
        caveats = tuple(rule.caveats(first))
        return FeatureCheck(
            feature, True, f"models/{first.id}", (), "; ".join(caveats), qualifying, caveats
        )

    async def resolve(
        self, workspace_id: str, feature: Feature, model_name: str = "", field: str = "model"
    ) -> tuple[ModelSpec, list[str]]:
        """The model that serves ``feature`` and its caveats; raises FAILED_PRECONDITION
        naming the missing capability and the models that would qualify."""
        rule = FEATURE_RULES[feature]
        if model_name:
            model = await self.get(workspace_id, parse_model_name(model_name, field))
        else:
            settings = await self._workspace_settings(workspace_id)
            chosen = rule.chosen(settings)
            if chosen:
                model = await self.get(workspace_id, chosen)
            else:
                models = await self.all_models(workspace_id)
                found = next((m for m in models if not self._missing(rule, m)), None)
                if found is None:
                    raise ModelNotConfigured(
                        _not_configured_message(rule),
                        metadata={"feature": feature.name, "needs": rule.needs},
                        precondition_violations=(
                            PreconditionViolation(
                                "MODEL_CONFIGURATION",
                                f"imageSettings.{rule.settings_field}",
                                _not_configured_message(rule),
                            ),
                        ),
                    )
                return found, rule.caveats(found)
        missing = rule.missing(model)
        if missing:
            raise self._capability_error(
                workspace_id, rule, model, missing, await self.all_models(workspace_id)
            )
        if not self.usable(model):
            provider = self.providers.get(model.provider)
            kind = provider.kind if provider else "unknown"
            raise FailedPrecondition(
                f"models/{model.id} is served by providers/{model.provider}, which has no "
                f"adapter in this server (kind {kind!r}); configure a supported provider kind",
                reason="PROVIDER_UNAVAILABLE",
                metadata={
                    "model": f"models/{model.id}",
                    "provider": f"providers/{model.provider}",
                },
            )
        return model, rule.caveats(model)

    # -- models bound to their adapters (resolved once: at submit, and again by id at run)

    async def resolve_image(
        self, workspace_id: str, feature: Feature, model_name: str = "", field: str = "model"
    ) -> tuple[ImageModel, list[str]]:
        """``resolve``, bound to the model's image adapter."""
        model, caveats = await self.resolve(workspace_id, feature, model_name, field)
        return self._bind_image(model), caveats

    async def image_model(self, workspace_id: str, model_id: str) -> ImageModel:
        """A job's image model, by the id its spec stored."""
        return self._bind_image(await self.get(workspace_id, model_id))

    async def resolve_writer(
        self, workspace_id: str, feature: Feature, model_name: str = "", field: str = "model"
    ) -> tuple[WriterModel, list[str]]:
        """``resolve``, bound to the model's writer adapter."""
        model, caveats = await self.resolve(workspace_id, feature, model_name, field)
        return self._bind_writer(model), caveats

    async def writer_model(self, workspace_id: str, model_id: str) -> WriterModel:
        """A job's writer model, by the id its spec stored."""
        return self._bind_writer(await self.get(workspace_id, model_id))

    def _bind_image(self, model: ModelSpec) -> ImageModel:
        provider = self._adapters.get(model.provider)
        if provider is None or provider.images is None:
            raise _no_adapter(model, "image")
        return ImageModel(model, provider.images, provider)

    def _bind_writer(self, model: ModelSpec) -> WriterModel:
        provider = self._adapters.get(model.provider)
        if provider is None or provider.writer is None:
            raise _no_adapter(model, "writer")
        return WriterModel(model, provider.writer)

    def _capability_error(
        self,
        workspace_id: str,
        rule: FeatureRule,
        model: ModelSpec,
        missing: list[str],
        models: list[ModelSpec],
    ) -> CapabilityMissing:
        qualifying = [f"models/{m.id}" for m in models if not self._missing(rule, m)]
        return CapabilityMissing(
            _lacks_message(rule, model, missing),
            metadata={
                "model": f"models/{model.id}",
                "feature": rule.feature.name,
                "capability": ", ".join(missing),
                "qualifyingModels": ",".join(qualifying),
            },
            precondition_violations=tuple(
                PreconditionViolation(
                    "CAPABILITY", f"models/{model.id}", f"{rule.feature.value} needs {capability}"
                )
                for capability in missing
            ),
        )

    def _refuse_fixed(self, model_id: str) -> None:
        if model_id in self._fixed:
            origin = self._fixed[model_id].origin
            remedy = (
                "change the server's configuration file instead"
                if origin is ModelOrigin.CONFIG
                else "built-in models cannot be changed; create your own model instead"
            )
            raise ReadOnlyResource(
                f"models/{model_id} is {origin.value} and read-only; {remedy}",
                metadata={"model": f"models/{model_id}", "origin": origin.value},
            )

    def _check_provider(self, provider_id: str) -> None:
        if provider_id not in self.providers:
            known = ", ".join(f"providers/{p}" for p in sorted(self.providers))
            raise InvalidArgument.field(
                "model.provider",
                f"providers/{provider_id} is not configured; configured providers: {known}",
            )


def _no_adapter(model: ModelSpec, what: str) -> InternalError:
    return InternalError(
        f"models/{model.id} names providers/{model.provider}, which has no {what} adapter "
        "in this server; check the server configuration"
    )


def _lacks_message(rule: FeatureRule, model: ModelSpec, missing: list[str]) -> str:
    return (
        f"models/{model.id} cannot serve {rule.feature.value}: it lacks {' and '.join(missing)}; "
        f"choose {_article(rule.role)} {rule.role} with {rule.needs}"
    )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _not_configured_message(rule: FeatureRule) -> str:
    return f"no {rule.role}: add a model with {rule.needs}"
