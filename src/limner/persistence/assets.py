"""Asset metadata rows (the bytes live in the blob store)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from limner import paging as pagination
from limner.domain.assets import Asset, AssetSource, Provenance
from limner.persistence.database import Database
from limner.persistence.keyset import newest_first
from limner.persistence.tables import AssetRow
from limner.persistence.timeutil import from_us, to_us

_ASSET = AssetRow.__table__  # type: ignore[attr-defined]


class SqlAssetRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def add(self, asset: Asset, workspace_id: str) -> tuple[Asset, bool]:
        """Stores the asset's row unless the workspace has it already (then returns that one
        and ``False``). Safe under concurrent adds of the same bytes."""
        values = _values(asset, workspace_id)

        def add(connection: Connection) -> Any:
            # Insert first: the common case (new bytes) costs one statement, and a
            # concurrent add of the same bytes cannot fail on the primary key.
            inserted = connection.execute(_insert_ignoring_duplicates(connection, values))
            if inserted.rowcount:
                return None
            return connection.execute(
                select(_ASSET).where(
                    _ASSET.c.workspace_id == workspace_id, _ASSET.c.sha256 == asset.sha256
                )
            ).one()

        existing = await self.db.run(add, write=True)
        if existing is not None:
            return _from_row(existing), False
        return asset, True

    async def get(self, workspace_id: str, sha256: str) -> Asset | None:
        statement = select(_ASSET).where(
            _ASSET.c.workspace_id == workspace_id, _ASSET.c.sha256 == sha256
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else _from_row(row)

    async def list_assets(
        self, workspace_id: str, *, source: AssetSource | None, page_size: int, page_token: str
    ) -> tuple[list[Asset], str]:
        size = pagination.page_size(page_size)
        query = {"list": "assets", "source": source.value if source else ""}
        position = pagination.decode(page_token, query, (int, str))
        statement = select(_ASSET).where(_ASSET.c.workspace_id == workspace_id)
        if source is not None:
            statement = statement.where(_ASSET.c.source == source.value)
        statement = newest_first(
            statement,
            created=_ASSET.c.create_time_us,
            key=_ASSET.c.sha256,
            position=position,
            size=size,
        )
        rows = await self.db.run(lambda c: c.execute(statement).all())
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = pagination.encode([last.create_time_us, last.sha256], query)
        return [_from_row(row) for row in rows[:size]], token

    async def delete(self, workspace_id: str, sha256: str) -> tuple[bool, int]:
        """Deletes the workspace's row; returns whether it existed and how many workspaces
        still reference the bytes."""

        def remove(connection: Connection) -> tuple[bool, int]:
            result = connection.execute(
                delete(_ASSET).where(
                    _ASSET.c.workspace_id == workspace_id, _ASSET.c.sha256 == sha256
                )
            )
            remaining = connection.execute(
                select(func.count()).select_from(_ASSET).where(_ASSET.c.sha256 == sha256)
            ).scalar_one()
            return bool(result.rowcount), int(remaining)

        return await self.db.run(remove, write=True)


def _insert_ignoring_duplicates(connection: Connection, values: dict[str, Any]) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql_insert(_ASSET).values(**values).on_conflict_do_nothing()
    return sqlite_insert(_ASSET).values(**values).on_conflict_do_nothing()


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


def _from_row(row: Any) -> Asset:
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
