"""Subjects, their ordered reference images and their avatar candidates.

Each public method is one transaction, so a request either changes a subject completely or
not at all (a create and its idempotency key are written together; a reference is only added
while the set has room, checked inside the same transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from limner.domain.subjects import Subject, SubjectKind
from limner.errors import FieldViolation, ReferenceLimit
from limner.persistence.database import Database
from limner.persistence.keyset import keyset_page
from limner.persistence.requests import find_request, remember_request
from limner.persistence.tables import AVATAR_CANDIDATES, SUBJECT_REFERENCES, SUBJECTS
from limner.persistence.timeutil import from_us, to_us

CREATE_METHOD = "CreateSubject"


class SqlSubjectRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    # -- subjects ----------------------------------------------------------------------

    async def create(
        self, subject: Subject, *, request_id: str, request_hash: str
    ) -> tuple[Subject | None, bool]:
        """Stores ``subject``, or returns the subject an earlier create with the same
        ``request_id`` made (``False``; ``None`` if it has been deleted since). The key and
        the row are written together."""
        workspace_id = subject.workspace_id

        def create(connection: Connection) -> tuple[Subject | None, bool]:
            if request_id:
                earlier = find_request(
                    connection,
                    workspace_id=workspace_id,
                    request_id=request_id,
                    method=CREATE_METHOD,
                    request_hash=request_hash,
                )
                if earlier is not None:
                    return _load(connection, workspace_id, earlier.removeprefix("subjects/")), False
            connection.execute(insert(SUBJECTS).values(**_subject_values(subject)))
            if request_id:
                remember_request(
                    connection,
                    workspace_id=workspace_id,
                    request_id=request_id,
                    method=CREATE_METHOD,
                    request_hash=request_hash,
                    resource_name=f"subjects/{subject.id}",
                    now_us=to_us(subject.create_time),
                )
            return subject, True

        try:
            stored, created = await self.db.run(create, write=True)
        except IntegrityError:
            if not request_id:
                raise
            # A concurrent create with the same key won; return what it made.
            stored, created = await self.db.run(create, write=True)
        return stored, created

    async def get(self, workspace_id: str, subject_id: str) -> Subject | None:
        return await self.db.run(lambda c: _load(c, workspace_id, subject_id))

    async def list_subjects(
        self, workspace_id: str, *, kind: SubjectKind | None, page_size: int, page_token: str
    ) -> tuple[list[Subject], str]:
        statement = select(SUBJECTS).where(SUBJECTS.c.workspace_id == workspace_id)
        if kind is not None:
            statement = statement.where(SUBJECTS.c.kind == kind.value)
        page = keyset_page(
            statement,
            order=(SUBJECTS.c.create_time_us, SUBJECTS.c.id),
            shape=(int, str),
            descending=True,
            query={"list": "subjects", "kind": kind.value if kind else ""},
            page_size=page_size,
            page_token=page_token,
        )

        def read(connection: Connection) -> tuple[list[Subject], str]:
            rows, token = page(connection)
            references = _references_of(connection, [row.id for row in rows])
            return [_from_row(row, references.get(row.id, [])) for row in rows], token

        return await self.db.run(read)

    async def update(
        self, workspace_id: str, subject_id: str, changes: dict[str, str]
    ) -> Subject | None:
        """Sets the given text fields (``display_name``, ``description``,
        ``design_notes``); ``None`` when the subject does not exist."""
        return await self._change(
            workspace_id,
            subject_id,
            lambda connection, _subject: _touch(connection, subject_id, **changes),
        )

    async def delete(self, workspace_id: str, subject_id: str) -> bool:
        def remove(connection: Connection) -> bool:
            if _row(connection, workspace_id, subject_id) is None:
                return False
            connection.execute(
                delete(SUBJECT_REFERENCES).where(SUBJECT_REFERENCES.c.subject_id == subject_id)
            )
            connection.execute(
                delete(AVATAR_CANDIDATES).where(AVATAR_CANDIDATES.c.subject_id == subject_id)
            )
            connection.execute(delete(SUBJECTS).where(SUBJECTS.c.id == subject_id))
            return True

        return await self.db.run(remove, write=True)

    # -- reference images --------------------------------------------------------------

    async def add_reference(
        self, workspace_id: str, subject_id: str, sha256: str, *, limit: int
    ) -> Subject | None:
        """Appends a reference image. Adding one the subject already has changes nothing;
        a full set raises ``ReferenceLimit``."""

        def add(connection: Connection, subject: Subject) -> None:
            asset = f"assets/{sha256}"
            if asset in subject.reference_assets:
                return
            if len(subject.reference_assets) >= limit:
                raise ReferenceLimit(
                    f"subjects/{subject_id} already has {len(subject.reference_assets)} "
                    f"reference images, the most a subject can have ({limit}); remove one "
                    "with RemoveReferenceImage first",
                    metadata={
                        "subject": f"subjects/{subject_id}",
                        "limit": str(limit),
                        "count": str(len(subject.reference_assets)),
                    },
                    field_violations=(
                        FieldViolation(
                            "asset",
                            f"subjects/{subject_id} already has the maximum of {limit} "
                            "reference images",
                            "REFERENCE_LIMIT_EXCEEDED",
                        ),
                    ),
                )
            position = connection.execute(
                select(func.coalesce(func.max(SUBJECT_REFERENCES.c.position), -1)).where(
                    SUBJECT_REFERENCES.c.subject_id == subject_id
                )
            ).scalar_one()
            now_us = to_us(datetime.now(UTC))
            connection.execute(
                insert(SUBJECT_REFERENCES).values(
                    subject_id=subject_id,
                    sha256=sha256,
                    workspace_id=workspace_id,
                    position=int(position) + 1,
                    create_time_us=now_us,
                )
            )
            _touch(connection, subject_id)

        return await self._change(workspace_id, subject_id, add)

    async def remove_reference(
        self, workspace_id: str, subject_id: str, sha256: str
    ) -> tuple[Subject | None, bool]:
        """Removes a reference image; the second value says whether the subject had it."""
        removed = False

        def remove(connection: Connection, _subject: Subject) -> None:
            nonlocal removed
            result = connection.execute(
                delete(SUBJECT_REFERENCES).where(
                    SUBJECT_REFERENCES.c.subject_id == subject_id,
                    SUBJECT_REFERENCES.c.sha256 == sha256,
                )
            )
            removed = bool(result.rowcount)
            if removed:
                _touch(connection, subject_id)

        subject = await self._change(workspace_id, subject_id, remove)
        return subject, removed

    # -- avatars -----------------------------------------------------------------------

    async def add_candidates(
        self, workspace_id: str, subject_id: str, sha256s: list[str], *, job_id: str, prompt: str
    ) -> bool:
        """Records images as the subject's avatar candidates (once each). ``False`` when
        the subject no longer exists (the images stay ordinary assets)."""

        def add(connection: Connection) -> bool:
            if _row(connection, workspace_id, subject_id, lock=True) is None:
                return False
            now_us = to_us(datetime.now(UTC))
            for sha256 in sha256s:
                connection.execute(
                    _insert_ignoring_duplicates(
                        connection,
                        {
                            "subject_id": subject_id,
                            "sha256": sha256,
                            "workspace_id": workspace_id,
                            "job_id": job_id,
                            "prompt": prompt,
                            "create_time_us": now_us,
                        },
                    )
                )
            return True

        return await self.db.run(add, write=True)

    async def candidate_prompt(self, workspace_id: str, subject_id: str, sha256: str) -> str | None:
        """The prompt a candidate was made with (``""`` if unknown), or ``None`` when the
        image is not one of the subject's avatar candidates."""
        statement = select(AVATAR_CANDIDATES.c.prompt).where(
            AVATAR_CANDIDATES.c.workspace_id == workspace_id,
            AVATAR_CANDIDATES.c.subject_id == subject_id,
            AVATAR_CANDIDATES.c.sha256 == sha256,
        )
        row = await self.db.run(lambda c: c.execute(statement).one_or_none())
        return None if row is None else str(row.prompt)

    async def candidates(self, workspace_id: str, subject_id: str) -> list[str]:
        """The subject's avatar candidates, oldest first, as asset names."""
        statement = (
            select(AVATAR_CANDIDATES.c.sha256)
            .where(
                AVATAR_CANDIDATES.c.workspace_id == workspace_id,
                AVATAR_CANDIDATES.c.subject_id == subject_id,
            )
            .order_by(AVATAR_CANDIDATES.c.create_time_us, AVATAR_CANDIDATES.c.sha256)
        )
        rows = await self.db.run(lambda c: c.execute(statement).all())
        return [f"assets/{row.sha256}" for row in rows]

    async def accept_avatar(
        self, workspace_id: str, subject_id: str, sha256: str, *, prompt: str, job_id: str
    ) -> Subject | None:
        """Makes the image the subject's avatar, recording it as a candidate if it was not
        one (so every avatar the subject ever had stays listed)."""

        def accept(connection: Connection, subject: Subject) -> None:
            connection.execute(
                _insert_ignoring_duplicates(
                    connection,
                    {
                        "subject_id": subject_id,
                        "sha256": sha256,
                        "workspace_id": workspace_id,
                        "job_id": job_id,
                        "prompt": prompt,
                        "create_time_us": to_us(datetime.now(UTC)),
                    },
                )
            )
            if subject.avatar_asset != f"assets/{sha256}":
                _touch(connection, subject_id, avatar_sha256=sha256)

        return await self._change(workspace_id, subject_id, accept)

    # -- helpers -----------------------------------------------------------------------

    async def _change(
        self,
        workspace_id: str,
        subject_id: str,
        work: Callable[[Connection, Subject], None],
    ) -> Subject | None:
        """Runs ``work`` on an existing subject in one transaction and returns the subject
        as it is afterwards (``None`` when it does not exist)."""

        def change(connection: Connection) -> Subject | None:
            subject = _load(connection, workspace_id, subject_id, lock=True)
            if subject is None:
                return None
            work(connection, subject)
            return _load(connection, workspace_id, subject_id)

        return await self.db.run(change, write=True)


def _touch(connection: Connection, subject_id: str, **values: Any) -> None:
    connection.execute(
        update(SUBJECTS)
        .where(SUBJECTS.c.id == subject_id)
        .values(update_time_us=to_us(datetime.now(UTC)), **values)
    )


def _row(
    connection: Connection, workspace_id: str, subject_id: str, *, lock: bool = False
) -> Row[Any] | None:
    """The subject's row; ``lock`` holds it until the transaction ends (PostgreSQL), so
    concurrent changes to one subject (say, two reference images added at once against
    the limit) run one after the other. SQLite has a single writer and needs no lock."""
    statement = select(SUBJECTS).where(
        SUBJECTS.c.workspace_id == workspace_id, SUBJECTS.c.id == subject_id
    )
    if lock:
        statement = statement.with_for_update()
    return connection.execute(statement).one_or_none()


def _load(
    connection: Connection, workspace_id: str, subject_id: str, *, lock: bool = False
) -> Subject | None:
    row = _row(connection, workspace_id, subject_id, lock=lock)
    if row is None:
        return None
    return _from_row(row, _references_of(connection, [subject_id]).get(subject_id, []))


def _references_of(connection: Connection, subject_ids: list[str]) -> dict[str, list[str]]:
    if not subject_ids:
        return {}
    rows = connection.execute(
        select(SUBJECT_REFERENCES.c.subject_id, SUBJECT_REFERENCES.c.sha256)
        .where(SUBJECT_REFERENCES.c.subject_id.in_(subject_ids))
        .order_by(SUBJECT_REFERENCES.c.subject_id, SUBJECT_REFERENCES.c.position)
    ).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.subject_id, []).append(f"assets/{row.sha256}")
    return found


def _insert_ignoring_duplicates(connection: Connection, values: dict[str, Any]) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql_insert(AVATAR_CANDIDATES).values(**values).on_conflict_do_nothing()
    return sqlite_insert(AVATAR_CANDIDATES).values(**values).on_conflict_do_nothing()


def _subject_values(subject: Subject) -> dict[str, Any]:
    return {
        "id": subject.id,
        "workspace_id": subject.workspace_id,
        "kind": subject.kind.value,
        "display_name": subject.display_name,
        "description": subject.description,
        "design_notes": subject.design_notes,
        "avatar_sha256": subject.avatar_asset.removeprefix("assets/"),
        "create_time_us": to_us(subject.create_time),
        "update_time_us": to_us(subject.update_time),
    }


def _from_row(row: Row[Any], references: list[str]) -> Subject:
    return Subject(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=SubjectKind(row.kind),
        display_name=row.display_name,
        description=row.description,
        design_notes=row.design_notes,
        avatar_asset=f"assets/{row.avatar_sha256}" if row.avatar_sha256 else "",
        reference_assets=references,
        create_time=from_us(row.create_time_us),
        update_time=from_us(row.update_time_us),
    )
