"""Idempotency keys shared by every creating request (AIP-155)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from limner.errors import RequestIdConflict
from limner.persistence.database import Database
from limner.persistence.tables import REQUEST_IDS
from limner.persistence.timeutil import to_us


def find_request(
    connection: Connection, *, workspace_id: str, request_id: str, method: str, request_hash: str
) -> str | None:
    """The resource an earlier request with this id created, or ``None``.

    Raises ``RequestIdConflict`` when the id was used for a different request.
    """
    row = connection.execute(
        select(REQUEST_IDS).where(
            REQUEST_IDS.c.workspace_id == workspace_id, REQUEST_IDS.c.request_id == request_id
        )
    ).one_or_none()
    if row is None:
        return None
    if row.method != method or row.request_hash != request_hash:
        raise RequestIdConflict(
            f"request_id {request_id!r} was already used for a different request "
            f"({row.method} creating {row.resource_name}); use a new request_id",
            metadata={"requestId": request_id, "resource": row.resource_name},
        )
    return str(row.resource_name)


def remember_request(
    connection: Connection,
    *,
    workspace_id: str,
    request_id: str,
    method: str,
    request_hash: str,
    resource_name: str,
    now_us: int,
) -> None:
    connection.execute(
        insert(REQUEST_IDS).values(
            workspace_id=workspace_id,
            request_id=request_id,
            method=method,
            request_hash=request_hash,
            resource_name=resource_name,
            create_time_us=now_us,
        )
    )


class SqlRequestLedger:
    """Idempotency for creating requests that do not start jobs (uploads, models, ...)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def lookup(
        self, workspace_id: str, request_id: str, method: str, request_hash: str
    ) -> str | None:
        return await self.db.run(
            lambda c: find_request(
                c,
                workspace_id=workspace_id,
                request_id=request_id,
                method=method,
                request_hash=request_hash,
            )
        )

    async def remember(
        self, workspace_id: str, request_id: str, method: str, request_hash: str, resource: str
    ) -> None:
        try:
            await self.db.run(
                lambda c: remember_request(
                    c,
                    workspace_id=workspace_id,
                    request_id=request_id,
                    method=method,
                    request_hash=request_hash,
                    resource_name=resource,
                    now_us=to_us(datetime.now(UTC)),
                ),
                write=True,
            )
        except IntegrityError:
            # A concurrent duplicate got there first; it must have been the same request.
            await self.lookup(workspace_id, request_id, method, request_hash)
