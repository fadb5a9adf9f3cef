"""The job store: jobs and their append-only event logs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from limner import paging as pagination
from limner.domain.codec import (
    event_from_json,
    event_to_json,
    progress_from_json,
    progress_to_json,
    result_from_json,
    result_to_json,
    usage_from_json,
    usage_to_json,
    warning_from_json,
    warning_to_json,
)
from limner.domain.jobs import (
    CompletedEvent,
    EventBody,
    FailedEvent,
    Job,
    JobEvent,
    JobKind,
    JobState,
    ProgressEvent,
    UsageEvent,
    WarningEvent,
)
from limner.errors import ErrorPayload
from limner.jobs.store import JobChanges, JobPage
from limner.persistence.database import Database
from limner.persistence.requests import find_request, remember_request
from limner.persistence.tables import JobEventRow, JobRow
from limner.persistence.timeutil import from_us, opt_from_us, opt_to_us, to_us

_JOB = JobRow.__table__  # type: ignore[attr-defined]
_EVENT = JobEventRow.__table__  # type: ignore[attr-defined]
NON_TERMINAL = [JobState.QUEUED.value, JobState.RUNNING.value, JobState.AWAITING_APPROVAL.value]


class SqlJobStore:
    """``limner.jobs.JobStore`` on SQLModel tables (SQLite or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def create_job(
        self, job: Job, first_event: EventBody, *, request_id: str, request_hash: str
    ) -> tuple[Job, bool]:
        method = f"job:{job.kind.value}"
        kind, payload = event_to_json(first_event)
        now_us = to_us(job.create_time)
        try:
            async with self.db.write() as session:
                if request_id:
                    existing = await find_request(
                        session,
                        workspace_id=job.workspace_id,
                        request_id=request_id,
                        method=method,
                        request_hash=request_hash,
                    )
                    if existing is not None:
                        previous = await self._load(session, job.workspace_id, existing[5:])
                        if previous is not None:
                            return previous, False
                await session.execute(insert(_JOB).values(**_job_values(job, last_sequence=1)))
                await session.execute(
                    insert(_EVENT).values(
                        job_id=job.id,
                        sequence=1,
                        workspace_id=job.workspace_id,
                        time_us=now_us,
                        kind=kind,
                        payload=payload,
                    )
                )
                if request_id:
                    remember_request(
                        session,
                        workspace_id=job.workspace_id,
                        request_id=request_id,
                        method=method,
                        request_hash=request_hash,
                        resource_name=f"jobs/{job.id}",
                        now_us=now_us,
                    )
        except IntegrityError:
            if not request_id:
                raise
            # Another request with the same id won the race: answer with its job.
            async with self.db.session() as session:
                existing = await find_request(
                    session,
                    workspace_id=job.workspace_id,
                    request_id=request_id,
                    method=method,
                    request_hash=request_hash,
                )
                previous = (
                    await self._load(session, job.workspace_id, existing[5:]) if existing else None
                )
            if previous is None:
                raise
            return previous, False
        job.last_sequence = 1
        return job, True

    async def append_events(
        self,
        job_id: str,
        first_sequence: int,
        events: Sequence[EventBody],
        changes: JobChanges,
        *,
        record_warnings: bool = True,
    ) -> list[JobEvent]:
        logged: list[JobEvent] = []
        rows: list[dict[str, Any]] = []
        values: dict[str, Any] = {}
        new_warnings: list[dict[str, Any]] = []
        added_usage = None
        time = None
        for offset, body in enumerate(events):
            time = datetime.now(UTC)
            sequence = first_sequence + offset
            kind, payload = event_to_json(body)
            logged.append(JobEvent(job_id, sequence, time, body))
            match body:
                case ProgressEvent(progress):
                    values["progress"] = progress_to_json(progress)
                case CompletedEvent(result):
                    values["result"] = result_to_json(result)
                case FailedEvent(error):
                    values["error"] = error.to_json()
                case WarningEvent(warning) if record_warnings:
                    new_warnings.append(warning_to_json(warning))
                case UsageEvent(usage):
                    added_usage = usage if added_usage is None else added_usage + usage
            rows.append(
                {"sequence": sequence, "time_us": to_us(time), "kind": kind, "payload": payload}
            )
        assert time is not None, "append_events needs at least one event"
        values["last_sequence"] = logged[-1].sequence
        values["update_time_us"] = to_us(time)
        if changes.state is not None:
            values["state"] = changes.state.value
        if changes.start_time is not None:
            values["start_time_us"] = to_us(changes.start_time)
        if changes.end_time is not None:
            values["end_time_us"] = to_us(changes.end_time)
        if changes.attempt is not None:
            values["attempt"] = changes.attempt
        async with self.db.write() as session:
            workspace_id = None
            if new_warnings or added_usage is not None:
                current = (
                    await session.execute(
                        select(_JOB.c.warnings, _JOB.c.usage, _JOB.c.workspace_id).where(
                            _JOB.c.id == job_id
                        )
                    )
                ).one()
                if new_warnings:
                    values["warnings"] = [*current.warnings, *new_warnings]
                if added_usage is not None:
                    values["usage"] = usage_to_json(usage_from_json(current.usage) + added_usage)
                workspace_id = current.workspace_id
            if workspace_id is None:
                workspace_id = (
                    await session.execute(select(_JOB.c.workspace_id).where(_JOB.c.id == job_id))
                ).scalar_one()
            await session.execute(
                insert(_EVENT),
                [{"job_id": job_id, "workspace_id": workspace_id, **row} for row in rows],
            )
            await session.execute(update(_JOB).where(_JOB.c.id == job_id).values(**values))
        return logged

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None:
        async with self.db.session() as session:
            return await self._load(session, workspace_id, job_id)

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage:
        size = pagination.page_size(page_size)
        query = {
            "list": "jobs",
            "states": sorted(s.value for s in states),
            "kinds": sorted(k.value for k in kinds),
        }
        position = pagination.decode(page_token, query, (int, str))
        statement = select(_JOB).where(_JOB.c.workspace_id == workspace_id)
        if states:
            statement = statement.where(_JOB.c.state.in_([s.value for s in states]))
        if kinds:
            statement = statement.where(_JOB.c.kind.in_([k.value for k in kinds]))
        if position is not None:
            created, job_id = position
            statement = statement.where(
                or_(
                    _JOB.c.create_time_us < created,
                    and_(_JOB.c.create_time_us == created, _JOB.c.id < job_id),
                )
            )
        statement = statement.order_by(_JOB.c.create_time_us.desc(), _JOB.c.id.desc()).limit(
            size + 1
        )
        async with self.db.session() as session:
            rows = (await session.execute(statement)).all()
        jobs = [_job_from_row(row) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = pagination.encode([last.create_time_us, last.id], query)
        return JobPage(jobs=jobs, next_page_token=token)

    async def list_events(self, job_id: str, *, after_sequence: int, limit: int) -> list[JobEvent]:
        statement = (
            select(_EVENT.c.sequence, _EVENT.c.time_us, _EVENT.c.kind, _EVENT.c.payload)
            .where(_EVENT.c.job_id == job_id, _EVENT.c.sequence > after_sequence)
            .order_by(_EVENT.c.sequence)
            .limit(limit)
        )
        async with self.db.session() as session:
            rows = (await session.execute(statement)).all()
        return [
            JobEvent(
                job_id, row.sequence, from_us(row.time_us), event_from_json(row.kind, row.payload)
            )
            for row in rows
        ]

    async def unfinished_jobs(self) -> list[Job]:
        statement = (
            select(_JOB).where(_JOB.c.state.in_(NON_TERMINAL)).order_by(_JOB.c.create_time_us)
        )
        async with self.db.session() as session:
            rows = (await session.execute(statement)).all()
        return [_job_from_row(row) for row in rows]

    async def _load(self, session: Any, workspace_id: str, job_id: str) -> Job | None:
        row = (
            await session.execute(
                select(_JOB).where(_JOB.c.id == job_id, _JOB.c.workspace_id == workspace_id)
            )
        ).one_or_none()
        return None if row is None else _job_from_row(row)


def _job_values(job: Job, *, last_sequence: int) -> dict[str, Any]:
    return {
        "id": job.id,
        "workspace_id": job.workspace_id,
        "kind": job.kind.value,
        "state": job.state.value,
        "model_id": job.model_id,
        "provider_id": job.provider_id,
        "prompt": job.prompt,
        "target": job.target,
        "spec": job.spec,
        "progress": progress_to_json(job.progress),
        "result": None,
        "error": None,
        "warnings": [warning_to_json(w) for w in job.warnings],
        "usage": None,
        "last_sequence": last_sequence,
        "attempt": job.attempt,
        "create_time_us": to_us(job.create_time),
        "update_time_us": to_us(job.update_time),
        "start_time_us": opt_to_us(job.start_time),
        "end_time_us": opt_to_us(job.end_time),
    }


def _job_from_row(row: Any) -> Job:
    return Job(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=JobKind(row.kind),
        state=JobState(row.state),
        progress=progress_from_json(row.progress),
        model_id=row.model_id,
        provider_id=row.provider_id,
        prompt=row.prompt,
        spec=row.spec,
        create_time=from_us(row.create_time_us),
        update_time=from_us(row.update_time_us),
        start_time=opt_from_us(row.start_time_us),
        end_time=opt_from_us(row.end_time_us),
        result=result_from_json(row.result) if row.result else None,
        error=ErrorPayload.from_json(row.error) if row.error else None,
        warnings=[warning_from_json(w) for w in row.warnings],
        last_sequence=row.last_sequence,
        attempt=row.attempt,
        target=row.target,
        usage=usage_from_json(row.usage),
    )
