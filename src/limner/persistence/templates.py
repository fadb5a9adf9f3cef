"""Workspace overrides of the shipped prompt templates (``limner.prompts.TemplateOverrides``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from limner.persistence.database import Database
from limner.persistence.tables import PROMPT_TEMPLATES
from limner.persistence.timeutil import from_us, to_us
from limner.prompts.api import StoredTemplate, TemplateKind


class SqlTemplateOverrides:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def get(self, workspace_id: str, kind: TemplateKind) -> StoredTemplate | None:
        statement = select(PROMPT_TEMPLATES.c.source, PROMPT_TEMPLATES.c.update_time_us).where(
            PROMPT_TEMPLATES.c.workspace_id == workspace_id, PROMPT_TEMPLATES.c.kind == kind.value
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else StoredTemplate(row.source, from_us(row.update_time_us))

    async def list(self, workspace_id: str) -> dict[TemplateKind, StoredTemplate]:
        statement = select(PROMPT_TEMPLATES).where(PROMPT_TEMPLATES.c.workspace_id == workspace_id)
        rows = await self.db.run(lambda c: c.execute(statement).all())
        known = {kind.value: kind for kind in TemplateKind}
        return {
            known[row.kind]: StoredTemplate(row.source, from_us(row.update_time_us))
            for row in rows
            if row.kind in known  # a kind retired by a later release stays stored, unused
        }

    async def put(self, workspace_id: str, kind: TemplateKind, source: str) -> StoredTemplate:
        now = datetime.now(UTC)
        values = {"source": source, "update_time_us": to_us(now)}

        def put(connection: Connection) -> None:
            result = connection.execute(
                update(PROMPT_TEMPLATES)
                .where(
                    PROMPT_TEMPLATES.c.workspace_id == workspace_id,
                    PROMPT_TEMPLATES.c.kind == kind.value,
                )
                .values(**values)
            )
            if not result.rowcount:
                connection.execute(
                    insert(PROMPT_TEMPLATES).values(
                        workspace_id=workspace_id, kind=kind.value, **values
                    )
                )

        await self.db.run(put, write=True)
        return StoredTemplate(source, from_us(to_us(now)))

    async def delete(self, workspace_id: str, kind: TemplateKind) -> bool:
        statement = delete(PROMPT_TEMPLATES).where(
            PROMPT_TEMPLATES.c.workspace_id == workspace_id, PROMPT_TEMPLATES.c.kind == kind.value
        )
        result = await self.db.run(lambda c: c.execute(statement), write=True)
        return bool(result.rowcount)
