"""Scenes: one row per drafted or rendered scene of a chat message. Each public method is
one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row

from limner.domain.chats import Scene, SceneState
from limner.persistence.database import Database
from limner.persistence.keyset import keyset_page
from limner.persistence.tables import SCENES
from limner.persistence.timeutil import from_us, to_us

SCENE_FIELDS = frozenset(
    {
        "state",
        "job_id",
        "context_messages",
        "writer_model",
        "drafted_prompt",
        "edited_prompt",
        "image_model",
        "seed",
        "reference_assets",
        "template_version",
        "result_asset",
        "attachment_id",
    }
)


class SqlSceneRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def create_scene(self, scene: Scene) -> Scene:
        await self.db.run(
            lambda c: c.execute(insert(SCENES).values(**_scene_values(scene))), write=True
        )
        return scene

    async def get_scene(self, workspace_id: str, scene_id: str) -> Scene | None:
        statement = select(SCENES).where(
            SCENES.c.workspace_id == workspace_id, SCENES.c.id == scene_id
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else _scene_from_row(row)

    async def first_scene_of(self, workspace_id: str, message_id: str) -> Scene | None:
        statement = (
            select(SCENES)
            .where(SCENES.c.workspace_id == workspace_id, SCENES.c.message_id == message_id)
            .order_by(SCENES.c.create_time_us, SCENES.c.id)
            .limit(1)
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else _scene_from_row(row)

    async def list_scenes(
        self, workspace_id: str, *, chat_id: str, page_size: int, page_token: str
    ) -> tuple[list[Scene], str]:
        statement = select(SCENES).where(SCENES.c.workspace_id == workspace_id)
        if chat_id:
            statement = statement.where(SCENES.c.chat_id == chat_id)
        page = keyset_page(
            statement,
            order=(SCENES.c.create_time_us, SCENES.c.id),
            shape=(int, str),
            descending=True,
            query={"list": "scenes", "chat": chat_id},
            page_size=page_size,
            page_token=page_token,
        )
        rows, token = await self.db.run(page)
        return [_scene_from_row(row) for row in rows], token

    async def update_scene(
        self, workspace_id: str, scene_id: str, changes: dict[str, Any]
    ) -> Scene | None:
        """Sets scene fields (names of ``Scene``); ``None`` when the scene is gone."""
        unknown = set(changes) - SCENE_FIELDS
        if unknown:
            raise ValueError(f"not scene fields: {sorted(unknown)}")
        values = dict(changes)
        if "state" in values:
            values["state"] = SceneState(values["state"]).value
        if "result_asset" in values:
            values["result_sha256"] = values.pop("result_asset").removeprefix("assets/")
        for name in ("context_messages", "reference_assets"):
            if name in values:
                values[name] = list(values[name])
        values["update_time_us"] = to_us(datetime.now(UTC))

        def change(connection: Connection) -> Scene | None:
            result = connection.execute(
                update(SCENES)
                .where(SCENES.c.workspace_id == workspace_id, SCENES.c.id == scene_id)
                .values(**values)
            )
            if result.rowcount == 0:
                return None
            row = connection.execute(select(SCENES).where(SCENES.c.id == scene_id)).one()
            return _scene_from_row(row)

        return await self.db.run(change, write=True)

    async def delete_scene(self, workspace_id: str, scene_id: str) -> None:
        statement = delete(SCENES).where(
            SCENES.c.workspace_id == workspace_id, SCENES.c.id == scene_id
        )
        await self.db.run(lambda c: c.execute(statement), write=True)


def _scene_values(scene: Scene) -> dict[str, Any]:
    return {
        "id": scene.id,
        "workspace_id": scene.workspace_id,
        "chat_id": scene.chat_id,
        "message_id": scene.message_id,
        "state": scene.state.value,
        "job_id": scene.job_id,
        "context_messages": list(scene.context_messages),
        "writer_model": scene.writer_model,
        "drafted_prompt": scene.drafted_prompt,
        "edited_prompt": scene.edited_prompt,
        "image_model": scene.image_model,
        "seed": scene.seed,
        "reference_assets": list(scene.reference_assets),
        "template_version": scene.template_version,
        "result_sha256": scene.result_asset.removeprefix("assets/"),
        "attachment_id": scene.attachment_id,
        "create_time_us": to_us(scene.create_time),
        "update_time_us": to_us(scene.update_time),
    }


def _scene_from_row(row: Row[Any]) -> Scene:
    return Scene(
        id=row.id,
        workspace_id=row.workspace_id,
        chat_id=row.chat_id,
        message_id=row.message_id,
        state=SceneState(row.state),
        job_id=row.job_id,
        context_messages=tuple(row.context_messages or ()),
        writer_model=row.writer_model,
        drafted_prompt=row.drafted_prompt,
        edited_prompt=row.edited_prompt,
        image_model=row.image_model,
        seed=row.seed,
        reference_assets=tuple(row.reference_assets or ()),
        template_version=row.template_version,
        result_asset=f"assets/{row.result_sha256}" if row.result_sha256 else "",
        attachment_id=row.attachment_id,
        create_time=from_us(row.create_time_us),
        update_time=from_us(row.update_time_us),
    )
