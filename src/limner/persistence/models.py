"""API-created models and per-workspace image settings."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from limner.domain.models import (
    ImageSettings,
    Modality,
    ModelOrigin,
    ModelProfile,
    ModelSpec,
    SceneMode,
)
from limner.domain.webhooks import WebhookSubscription
from limner.errors import AlreadyExists
from limner.persistence.database import Database
from limner.persistence.tables import IMAGE_SETTINGS, MODELS
from limner.persistence.timeutil import from_us, to_us


class SqlModelRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def list_models(self, workspace_id: str) -> list[ModelSpec]:
        statement = (
            select(MODELS).where(MODELS.c.workspace_id == workspace_id).order_by(MODELS.c.model_id)
        )
        rows = await self.db.run(lambda c: c.execute(statement).all())
        return [_model_from_row(row) for row in rows]

    async def get(self, workspace_id: str, model_id: str) -> ModelSpec | None:
        statement = select(MODELS).where(
            MODELS.c.workspace_id == workspace_id, MODELS.c.model_id == model_id
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else _model_from_row(row)

    async def create(self, workspace_id: str, model: ModelSpec) -> ModelSpec:
        now = datetime.now(UTC)
        model = model.with_changes(create_time=model.create_time or now, update_time=now)
        statement = insert(MODELS).values(**_model_values(workspace_id, model))
        try:
            await self.db.run(lambda c: c.execute(statement), write=True)
        except IntegrityError as exc:
            raise AlreadyExists(
                f"models/{model.id} already exists; pick another model_id or update it",
                reason="MODEL_ALREADY_EXISTS",
                metadata={"model": f"models/{model.id}"},
            ) from exc
        return model

    async def update(self, workspace_id: str, model: ModelSpec) -> ModelSpec:
        model = model.with_changes(update_time=datetime.now(UTC))
        values = _model_values(workspace_id, model)
        del values["create_time_us"]
        statement = (
            update(MODELS)
            .where(MODELS.c.workspace_id == workspace_id, MODELS.c.model_id == model.id)
            .values(**values)
        )
        await self.db.run(lambda c: c.execute(statement), write=True)
        return model

    async def delete(self, workspace_id: str, model_id: str) -> bool:
        statement = delete(MODELS).where(
            MODELS.c.workspace_id == workspace_id, MODELS.c.model_id == model_id
        )
        result = await self.db.run(lambda c: c.execute(statement), write=True)
        return bool(result.rowcount)


class SqlImageSettingsRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def get(self, workspace_id: str) -> ImageSettings:
        statement = select(IMAGE_SETTINGS).where(IMAGE_SETTINGS.c.workspace_id == workspace_id)
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        if row is None:
            return ImageSettings()
        return ImageSettings(
            image_model=row.image_model,
            avatar_model=row.avatar_model,
            scene_image_model=row.scene_image_model,
            scene_writer_model=row.scene_writer_model,
            scene_mode=SceneMode(row.scene_mode),
            context_window_size=row.context_window_size,
            update_time=from_us(row.update_time_us),
            default_webhook=(
                WebhookSubscription.from_json(row.default_webhook) if row.default_webhook else None
            ),
        )

    async def put(self, workspace_id: str, settings: ImageSettings) -> ImageSettings:
        now = datetime.now(UTC)
        values = {
            "image_model": settings.image_model,
            "avatar_model": settings.avatar_model,
            "scene_image_model": settings.scene_image_model,
            "scene_writer_model": settings.scene_writer_model,
            "scene_mode": settings.scene_mode.value,
            "context_window_size": settings.context_window_size,
            "update_time_us": to_us(now),
            "default_webhook": (
                settings.default_webhook.to_json() if settings.default_webhook else None
            ),
        }

        def put(connection: Connection) -> None:
            result = connection.execute(
                update(IMAGE_SETTINGS)
                .where(IMAGE_SETTINGS.c.workspace_id == workspace_id)
                .values(**values)
            )
            if not result.rowcount:
                connection.execute(
                    insert(IMAGE_SETTINGS).values(workspace_id=workspace_id, **values)
                )

        await self.db.run(put, write=True)
        return replace(settings, update_time=now)


def _model_values(workspace_id: str, model: ModelSpec) -> dict[str, Any]:
    assert model.create_time is not None and model.update_time is not None
    return {
        "workspace_id": workspace_id,
        "model_id": model.id,
        "provider": model.provider,
        "provider_model_id": model.provider_model_id,
        "display_name": model.display_name,
        "input_modalities": sorted(m.value for m in model.input_modalities),
        "output_modalities": sorted(m.value for m in model.output_modalities),
        "profile": {
            **asdict(model.profile),
            "supported_sizes": list(model.profile.supported_sizes),
        },
        "origin": model.origin.value,
        "create_time_us": to_us(model.create_time),
        "update_time_us": to_us(model.update_time),
    }


def _model_from_row(row: Row[Any]) -> ModelSpec:
    profile = dict(row.profile)
    profile["supported_sizes"] = tuple(profile.get("supported_sizes", ()))
    return ModelSpec(
        id=row.model_id,
        provider=row.provider,
        provider_model_id=row.provider_model_id,
        display_name=row.display_name,
        input_modalities=frozenset(Modality(m) for m in row.input_modalities),
        output_modalities=frozenset(Modality(m) for m in row.output_modalities),
        profile=ModelProfile(**profile),
        origin=ModelOrigin(row.origin),
        create_time=from_us(row.create_time_us),
        update_time=from_us(row.update_time_us),
    )
