"""Asset metadata rows (the bytes live in the blob store)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row

from limner.domain.assets import Asset, AssetDeletion, AssetSource, AssetUse, Provenance
from limner.persistence.database import Database
from limner.persistence.keyset import keyset_page
from limner.persistence.tables import (
    ASSETS,
    ATTACHMENTS,
    AVATAR_CANDIDATES,
    CHATS,
    MESSAGES,
    SUBJECT_REFERENCES,
    SUBJECTS,
)
from limner.persistence.timeutil import from_us, to_us


class SqlAssetRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def add(self, asset: Asset, workspace_id: str) -> tuple[Asset, bool]:
        """Stores the asset's row unless the workspace has it already (then returns that one
        and ``False``). Safe under concurrent adds of the same bytes."""
        values = _values(asset, workspace_id)

        def add(connection: Connection) -> Row[Any] | None:
            # Insert first: the common case (new bytes) costs one statement, and a
            # concurrent add of the same bytes cannot fail on the primary key.
            inserted = connection.execute(_insert_ignoring_duplicates(connection, values))
            if inserted.rowcount:
                return None
            return connection.execute(
                select(ASSETS).where(
                    ASSETS.c.workspace_id == workspace_id, ASSETS.c.sha256 == asset.sha256
                )
            ).one()

        existing = await self.db.run(add, write=True)
        if existing is not None:
            return _from_row(existing), False
        return asset, True

    async def get(self, workspace_id: str, sha256: str) -> Asset | None:
        statement = select(ASSETS).where(
            ASSETS.c.workspace_id == workspace_id, ASSETS.c.sha256 == sha256
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else _from_row(row)

    async def list_assets(
        self, workspace_id: str, *, source: AssetSource | None, page_size: int, page_token: str
    ) -> tuple[list[Asset], str]:
        statement = select(ASSETS).where(ASSETS.c.workspace_id == workspace_id)
        if source is not None:
            statement = statement.where(ASSETS.c.source == source.value)
        page = keyset_page(
            statement,
            order=(ASSETS.c.create_time_us, ASSETS.c.sha256),
            shape=(int, str),
            descending=True,
            query={"list": "assets", "source": source.value if source else ""},
            page_size=page_size,
            page_token=page_token,
        )
        rows, token = await self.db.run(page)
        return [_from_row(row) for row in rows], token

    async def delete(self, workspace_id: str, sha256: str) -> AssetDeletion:
        """Deletes the workspace's row unless something in the workspace still shows the
        image (then nothing changes and the uses are returned). Avatar candidates are only
        suggestions: they go with the asset."""

        def remove(connection: Connection) -> AssetDeletion:
            exists = connection.execute(
                select(ASSETS.c.sha256).where(
                    ASSETS.c.workspace_id == workspace_id, ASSETS.c.sha256 == sha256
                )
            ).first()
            if exists is None:
                return AssetDeletion(existed=False)
            in_use = _uses(connection, workspace_id, sha256)
            if in_use:
                return AssetDeletion(existed=True, in_use=in_use)
            connection.execute(
                delete(AVATAR_CANDIDATES).where(
                    AVATAR_CANDIDATES.c.workspace_id == workspace_id,
                    AVATAR_CANDIDATES.c.sha256 == sha256,
                )
            )
            connection.execute(
                delete(ASSETS).where(
                    ASSETS.c.workspace_id == workspace_id, ASSETS.c.sha256 == sha256
                )
            )
            remaining = connection.execute(
                select(func.count()).select_from(ASSETS).where(ASSETS.c.sha256 == sha256)
            ).scalar_one()
            return AssetDeletion(existed=True, remaining=int(remaining))

        return await self.db.run(remove, write=True)

    async def count(self, sha256: str) -> int:
        """How many workspaces hold these bytes."""
        statement = select(func.count()).select_from(ASSETS).where(ASSETS.c.sha256 == sha256)
        return int(await self.db.run(lambda c: c.execute(statement).scalar_one()))


_MAX_USES_REPORTED = 20


def _uses(connection: Connection, workspace_id: str, sha256: str) -> tuple[AssetUse, ...]:
    """Where the workspace shows the image: avatars, reference images, chat backgrounds
    and message attachments (at most ``_MAX_USES_REPORTED``)."""
    queries: list[tuple[Any, str, str]] = [
        (
            select(SUBJECTS.c.id).where(
                SUBJECTS.c.workspace_id == workspace_id, SUBJECTS.c.avatar_sha256 == sha256
            ),
            "subjects/{}",
            "avatar",
        ),
        (
            select(SUBJECT_REFERENCES.c.subject_id).where(
                SUBJECT_REFERENCES.c.workspace_id == workspace_id,
                SUBJECT_REFERENCES.c.sha256 == sha256,
            ),
            "subjects/{}",
            "reference image",
        ),
        (
            select(CHATS.c.id).where(
                CHATS.c.workspace_id == workspace_id, CHATS.c.background_sha256 == sha256
            ),
            "chats/{}",
            "background",
        ),
    ]
    uses: list[AssetUse] = []
    for statement, pattern, role in queries:
        for row in connection.execute(statement.limit(_MAX_USES_REPORTED)):
            uses.append(AssetUse(pattern.format(row[0]), role))
    attachments = (
        select(MESSAGES.c.chat_id, MESSAGES.c.id)
        .join(ATTACHMENTS, ATTACHMENTS.c.message_id == MESSAGES.c.id)
        .where(ATTACHMENTS.c.workspace_id == workspace_id, ATTACHMENTS.c.sha256 == sha256)
        .limit(_MAX_USES_REPORTED)
    )
    for chat_id, message_id in connection.execute(attachments):
        uses.append(AssetUse(f"chats/{chat_id}/messages/{message_id}", "attachment"))
    return tuple(uses[:_MAX_USES_REPORTED])


def _insert_ignoring_duplicates(connection: Connection, values: dict[str, Any]) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql_insert(ASSETS).values(**values).on_conflict_do_nothing()
    return sqlite_insert(ASSETS).values(**values).on_conflict_do_nothing()


def _values(asset: Asset, workspace_id: str) -> dict[str, Any]:
    provenance = asset.provenance
    return {
        "workspace_id": workspace_id,
        "sha256": asset.sha256,
        "mime_type": asset.mime_type,
        "width": asset.width,
        "height": asset.height,
        "size_bytes": asset.size_bytes,
        "source": provenance.source.value,
        "provenance": {
            "job_id": provenance.job_id,
            "model_id": provenance.model_id,
            "prompt": provenance.prompt,
            "seed": provenance.seed,
            "reference_assets": list(provenance.reference_assets),
        },
        "display_name": asset.display_name,
        "create_time_us": to_us(asset.create_time),
    }


def _from_row(row: Row[Any]) -> Asset:
    data = row.provenance
    return Asset(
        sha256=row.sha256,
        mime_type=row.mime_type,
        width=row.width,
        height=row.height,
        size_bytes=row.size_bytes,
        provenance=Provenance(
            source=AssetSource(row.source),
            job_id=data.get("job_id", ""),
            model_id=data.get("model_id", ""),
            prompt=data.get("prompt", ""),
            seed=data.get("seed"),
            reference_assets=tuple(data.get("reference_assets", ())),
        ),
        create_time=from_us(row.create_time_us),
        display_name=row.display_name,
        workspace_id=row.workspace_id,
    )
