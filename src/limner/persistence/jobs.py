"""The job store: jobs and their append-only event logs."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

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
from limner.domain.jobs import EventBody, Job, JobEvent, JobKind, JobState
from limner.domain.spec_codec import spec_from_json, spec_to_json
from limner.domain.webhooks import WebhookSubscription
from limner.errors import ErrorPayload
from limner.jobs.store import JobPage, LeaseLost, LeaseNews
from limner.persistence.database import Database
from limner.persistence.keyset import keyset_page
from limner.persistence.notify import notify_job_events
from limner.persistence.requests import find_request, remember_request
from limner.persistence.tables import JOB_EVENTS, JOBS, WEBHOOK_DELIVERIES
from limner.persistence.timeutil import from_us, now_us, opt_from_us, opt_to_us, to_us
from limner.persistence.webhooks import WebhookOutbox

# Jobs a process runs (a job waiting for approval runs nowhere until it is approved).
CLAIMABLE = [JobState.QUEUED.value, JobState.RUNNING.value]


class SqlJobStore:
    """``limner.jobs.JobStore`` on SQLModel tables (SQLite or PostgreSQL)."""

    def __init__(
        self,
        database: Database,
        *,
        owner: str = "",
        lease_s: float = 30.0,
        webhooks: WebhookOutbox | None = None,
    ) -> None:
        self.db = database
        # Webhook deliveries are written with the events they post (one transaction).
        self.webhooks = webhooks or WebhookOutbox()
        # This process's name on the jobs it runs; every write it makes to a job's row
        # renews that job's lease for ``lease_s``.
        self.owner = owner or uuid.uuid4().hex
        self.lease_s = lease_s
        self._queue: asyncio.Queue[_PendingSave] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def _lease_until_us(self) -> int:
        return now_us(self.lease_s)

    async def create_job(
        self, job: Job, first_event: EventBody, *, request_id: str, request_hash: str
    ) -> tuple[Job, bool]:
        method = f"job:{job.kind.value}"
        kind, payload = event_to_json(first_event)
        created_us = to_us(job.create_time)
        values = {
            **_job_values(job, last_sequence=1),
            "owner": self.owner,
            "lease_until_us": self._lease_until_us(),
        }
        deliveries = self.webhooks.rows(job, [JobEvent(job.id, 1, job.create_time, first_event)])

        def create(connection: Connection) -> Job | None:
            if request_id:
                existing = find_request(
                    connection,
                    workspace_id=job.workspace_id,
                    request_id=request_id,
                    method=method,
                    request_hash=request_hash,
                )
                if existing is not None:
                    return _load(connection, job.workspace_id, existing.removeprefix("jobs/"))
            connection.execute(insert(JOBS).values(**values))
            connection.execute(
                insert(JOB_EVENTS).values(
                    job_id=job.id,
                    sequence=1,
                    workspace_id=job.workspace_id,
                    time_us=created_us,
                    kind=kind,
                    payload=payload,
                )
            )
            if deliveries:
                connection.execute(insert(WEBHOOK_DELIVERIES), deliveries)
            if request_id:
                remember_request(
                    connection,
                    workspace_id=job.workspace_id,
                    request_id=request_id,
                    method=method,
                    request_hash=request_hash,
                    resource_name=f"jobs/{job.id}",
                    now_us=created_us,
                )
            return None

        def earlier(connection: Connection) -> Job | None:
            existing = find_request(
                connection,
                workspace_id=job.workspace_id,
                request_id=request_id,
                method=method,
                request_hash=request_hash,
            )
            if existing is None:
                return None
            return _load(connection, job.workspace_id, existing.removeprefix("jobs/"))

        try:
            previous = await self.db.run(create, write=True)
        except IntegrityError:
            if not request_id:
                raise
            # Another request with the same id won the race: answer with its job.
            previous = await self.db.run(earlier)
            if previous is None:
                raise
        if previous is not None:
            return previous, False
        if deliveries:
            self.webhooks.on_queued()
        job.last_sequence = 1
        return job, True

    def save(self, job: Job, events: Sequence[JobEvent]) -> asyncio.Future[None]:
        job_values = {
            **_row_values(job),
            "b_owner": self.owner,
            "b_lease_until_us": self._lease_until_us(),
        }
        event_rows = [_event_row(job.workspace_id, event) for event in events]
        deliveries = self.webhooks.rows(job, events)
        if self.db.ordered_writes:
            # SQLite: its writer thread already commits whatever is queued together, in
            # order, so saves go straight to it (no second batching layer to wait on).
            written = self.db.queue_write(
                functools.partial(
                    _write_batch,
                    rows=event_rows,
                    latest={job.id: job_values},
                    owner=self.owner,
                    deliveries=deliveries,
                )
            )
            return self._queued(_failing_when_lost(written, job.id), deliveries)
        # PostgreSQL: transactions on different connections may commit in any order, so
        # one batch at a time, each with every save waiting when it starts.
        pending = _PendingSave(
            job_id=job.id,
            job_values=job_values,
            event_rows=event_rows,
            done=asyncio.get_running_loop().create_future(),
            context=contextvars.copy_context() if self.db.carry_context else None,
            deliveries=deliveries,
        )
        self._queue.put_nowait(pending)
        if self._writer is None or self._writer.done():
            # A context of its own, not the first saver's (whose trace it would join).
            self._writer = asyncio.create_task(
                self._write_batches(), name="job-store-writer", context=contextvars.Context()
            )
        return self._queued(pending.done, deliveries)

    def _queued(
        self, saved: asyncio.Future[None], deliveries: list[dict[str, Any]]
    ) -> asyncio.Future[None]:
        """Tells the webhook dispatcher once a save that queued deliveries is durable."""

        def tell(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                self.webhooks.on_queued()

        if deliveries:
            saved.add_done_callback(tell)
        return saved

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        await self._queue.join()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer

    async def _write_batches(self) -> None:
        """Group commit: every save waiting when a commit starts goes into it, so 32
        concurrent jobs cost one transaction per round instead of one per event."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                rows = [row for pending in batch for row in pending.event_rows]
                latest = {pending.job_id: pending.job_values for pending in batch}
                deliveries = [row for pending in batch for row in pending.deliveries]
                work = functools.partial(
                    _write_batch,
                    rows=rows,
                    latest=latest,
                    owner=self.owner,
                    deliveries=deliveries,
                )
                # A batch's statements are traced in the context of the save that opened it.
                opener = batch[0].context
                lost = await self.db.run(
                    work if opener is None else functools.partial(opener.run, work),
                    write=True,
                )
            except Exception as error:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(error)
            else:
                for pending in batch:
                    if pending.done.done():
                        continue
                    if pending.job_id in lost:
                        pending.done.set_exception(LeaseLost(pending.job_id))
                    else:
                        pending.done.set_result(None)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None:
        return await self.db.run(lambda c: _load(c, workspace_id, job_id))

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage:
        statement = select(JOBS).where(JOBS.c.workspace_id == workspace_id)
        if states:
            statement = statement.where(JOBS.c.state.in_([s.value for s in states]))
        if kinds:
            statement = statement.where(JOBS.c.kind.in_([k.value for k in kinds]))
        page = keyset_page(
            statement,
            order=(JOBS.c.create_time_us, JOBS.c.id),
            shape=(int, str),
            descending=True,
            query={
                "list": "jobs",
                "states": sorted(s.value for s in states),
                "kinds": sorted(k.value for k in kinds),
            },
            page_size=page_size,
            page_token=page_token,
        )
        rows, token = await self.db.run(page)
        return JobPage(jobs=[_job_from_row(row) for row in rows], next_page_token=token)

    async def list_events(self, job_id: str, *, after_sequence: int, limit: int) -> list[JobEvent]:
        statement = (
            select(
                JOB_EVENTS.c.sequence, JOB_EVENTS.c.time_us, JOB_EVENTS.c.kind, JOB_EVENTS.c.payload
            )
            .where(JOB_EVENTS.c.job_id == job_id, JOB_EVENTS.c.sequence > after_sequence)
            .order_by(JOB_EVENTS.c.sequence)
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(statement).all())
        return [
            JobEvent(
                job_id, row.sequence, from_us(row.time_us), event_from_json(row.kind, row.payload)
            )
            for row in rows
        ]

    async def recent_run_times(
        self, model_id: str, kinds: Sequence[JobKind], limit: int
    ) -> list[float]:
        statement = (
            select(JOBS.c.end_time_us - JOBS.c.start_time_us)
            .where(
                JOBS.c.model_id == model_id,
                JOBS.c.state == JobState.SUCCEEDED.value,
                JOBS.c.kind.in_([kind.value for kind in kinds]),
                JOBS.c.start_time_us.is_not(None),
                JOBS.c.end_time_us.is_not(None),
            )
            .order_by(JOBS.c.end_time_us.desc())
            .limit(limit)
        )
        rows = await self.db.run(lambda c: c.execute(statement).scalars().all())
        return [value / 1_000_000 for value in rows if value is not None and value > 0]

    async def claim_jobs(self, limit: int = 100) -> list[tuple[Job, str]]:
        now = now_us()
        until_us = self._lease_until_us()
        owner = self.owner

        # Processes look for jobs to claim every second or so: a read answers that (on
        # SQLite without taking the write lock other processes may be waiting for).
        claimable = (
            select(JOBS.c.id)
            .where(JOBS.c.state.in_(CLAIMABLE), JOBS.c.lease_until_us < now)
            .limit(1)
        )
        if await self.db.run(lambda c: c.execute(claimable).first()) is None:
            return []

        def claim(connection: Connection) -> list[tuple[Job, str]]:
            expired = (
                select(JOBS.c.id)
                .where(JOBS.c.state.in_(CLAIMABLE), JOBS.c.lease_until_us < now)
                .order_by(JOBS.c.create_time_us)
                .limit(limit)
                .scalar_subquery()
            )
            # The lease is checked again in the UPDATE itself: of two processes claiming
            # at once, the second finds the lease renewed and takes nothing.
            statement = (
                update(JOBS)
                .where(JOBS.c.id.in_(expired), JOBS.c.lease_until_us < now)
                .values(owner=owner, lease_until_us=until_us)
                .returning(*JOBS.c)
            )
            rows = connection.execute(statement).all()
            return [(_job_from_row(row), row.cancel_reason) for row in rows]

        claimed = await self.db.run(claim, write=True)
        claimed.sort(key=lambda pair: pair[0].create_time)
        return claimed

    async def renew_leases(self, job_ids: Sequence[str]) -> LeaseNews:
        if not job_ids:
            return LeaseNews()
        until_us = self._lease_until_us()
        owner = self.owner
        ids = list(job_ids)

        def renew(connection: Connection) -> LeaseNews:
            connection.execute(
                update(JOBS)
                .where(JOBS.c.id.in_(ids), JOBS.c.owner == owner)
                .values(lease_until_us=until_us)
            )
            rows = connection.execute(
                select(JOBS.c.id, JOBS.c.owner, JOBS.c.cancel_reason).where(JOBS.c.id.in_(ids))
            ).all()
            return LeaseNews(
                cancel={row.id: row.cancel_reason for row in rows if row.cancel_reason},
                lost=frozenset(row.id for row in rows if row.owner != owner),
            )

        return await self.db.run(renew, write=True)

    async def release(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        owner = self.owner
        ids = list(job_ids)
        await self.db.run(
            lambda c: c.execute(
                update(JOBS)
                .where(JOBS.c.id.in_(ids), JOBS.c.owner == owner)
                .values(lease_until_us=0)
            ),
            write=True,
        )

    async def take(self, job_id: str) -> bool:
        return await self._update_job(
            job_id,
            (JOBS.c.owner == self.owner)
            | (JOBS.c.state == JobState.AWAITING_APPROVAL.value)
            | (JOBS.c.lease_until_us < now_us()),
            owner=self.owner,
            lease_until_us=self._lease_until_us(),
        )

    async def take_approved(self, job_id: str) -> bool:
        return await self._update_job(
            job_id,
            JOBS.c.state == JobState.AWAITING_APPROVAL.value,
            owner=self.owner,
            lease_until_us=self._lease_until_us(),
            state=JobState.QUEUED.value,
        )

    async def request_cancel(self, job_id: str, reason: str) -> bool:
        return await self._update_job(
            job_id,
            JOBS.c.state.in_(CLAIMABLE),
            JOBS.c.owner != self.owner,
            JOBS.c.lease_until_us >= now_us(),
            cancel_reason=reason or "cancelled",
        )

    async def _update_job(self, job_id: str, *conditions: Any, **values: Any) -> bool:
        """One conditional UPDATE of a job's row; whether it matched."""
        statement = update(JOBS).where(JOBS.c.id == job_id, *conditions).values(**values)
        return await self.db.run(lambda c: bool(c.execute(statement).rowcount), write=True)


def _load(connection: Connection, workspace_id: str, job_id: str) -> Job | None:
    row = connection.execute(
        select(JOBS).where(JOBS.c.id == job_id, JOBS.c.workspace_id == workspace_id)
    ).one_or_none()
    return None if row is None else _job_from_row(row)


def _write_batch(
    connection: Connection,
    *,
    rows: list[dict[str, Any]],
    latest: dict[str, dict[str, Any]],
    owner: str,
    deliveries: Sequence[dict[str, Any]] = (),
) -> frozenset[str]:
    """Writes the saves of the jobs ``owner`` still holds, with the webhook deliveries of
    their events; returns the ids of those another process has claimed meanwhile (their
    saves are dropped: that process runs them now)."""
    lost: frozenset[str] = frozenset()
    if len(latest) == 1:
        # One job (every SQLite save): the owner-checked UPDATE itself says whether the job
        # is still ours, at no extra statement.
        ((job_id, values),) = latest.items()
        if connection.execute(_UPDATE_JOB, values).rowcount == 0:
            return frozenset({job_id})
        if rows:
            connection.execute(insert(JOB_EVENTS), rows)
        if deliveries:
            connection.execute(insert(WEBHOOK_DELIVERIES), list(deliveries))
    else:
        # A batch (PostgreSQL): executemany has no per-row count, so ask first.
        held = select(JOBS.c.id).where(JOBS.c.id.in_(list(latest)), JOBS.c.owner == owner)
        if connection.dialect.name == "postgresql":
            held = held.with_for_update()  # a concurrent claim waits for this commit
        owned = set(connection.execute(held).scalars())
        lost = frozenset(latest) - owned
        rows = [row for row in rows if row["job_id"] in owned]
        if owned:
            connection.execute(
                _UPDATE_JOB, [values for job_id, values in latest.items() if job_id in owned]
            )
        if rows:
            connection.execute(insert(JOB_EVENTS), rows)
        deliveries = [row for row in deliveries if row["job_id"] in owned]
        if deliveries:
            connection.execute(insert(WEBHOOK_DELIVERIES), deliveries)
    if rows and connection.dialect.name == "postgresql":
        # Delivered at commit to every process listening (limner.persistence.notify), so
        # a watcher connected to another process hears of these events at once.
        notify_job_events(connection, owner, sorted({row["job_id"] for row in rows}))
    return lost


def _failing_when_lost(
    written: asyncio.Future[frozenset[str]], job_id: str
) -> asyncio.Future[None]:
    """The save's future: done when ``written`` is, failing with LeaseLost if the job was
    claimed by another process."""
    done: asyncio.Future[None] = written.get_loop().create_future()

    def settle(source: asyncio.Future[frozenset[str]]) -> None:
        if done.done():
            return
        if source.cancelled():
            done.cancel()
        elif (error := source.exception()) is not None:
            done.set_exception(error)
        elif job_id in source.result():
            done.set_exception(LeaseLost(job_id))
        else:
            done.set_result(None)

    written.add_done_callback(settle)
    return done


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
        "spec": spec_to_json(job.spec),
        "progress": progress_to_json(job.progress),
        "result": result_to_json(job.result) if job.result is not None else None,
        "error": job.error.to_json() if job.error is not None else None,
        "warnings": [warning_to_json(w) for w in job.warnings],
        "usage": usage_to_json(job.usage),
        "last_sequence": last_sequence,
        "attempt": job.attempt,
        "create_time_us": to_us(job.create_time),
        "update_time_us": to_us(job.update_time),
        "start_time_us": opt_to_us(job.start_time),
        "end_time_us": opt_to_us(job.end_time),
        "trace_context": job.trace_context or None,
        "webhook": job.webhook.to_json() if job.webhook is not None else None,
    }


def _job_from_row(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        workspace_id=row.workspace_id,
        kind=JobKind(row.kind),
        state=JobState(row.state),
        progress=progress_from_json(row.progress),
        model_id=row.model_id,
        provider_id=row.provider_id,
        prompt=row.prompt,
        spec=spec_from_json(JobKind(row.kind), row.spec),
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
        trace_context=dict(row.trace_context or {}),
        webhook=WebhookSubscription.from_json(row.webhook) if row.webhook else None,
    )


@dataclass
class _PendingSave:
    job_id: str
    job_values: dict[str, Any]
    event_rows: list[dict[str, Any]]
    done: asyncio.Future[None]
    context: contextvars.Context | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)


_MAX_BATCH = 256
_ROW_COLUMNS = (
    "state",
    "spec",
    "progress",
    "result",
    "error",
    "warnings",
    "usage",
    "last_sequence",
    "attempt",
    "update_time_us",
    "start_time_us",
    "end_time_us",
)
# One executemany UPDATE for every job in a batch (bind names must differ from columns).
# Every save also renews the saving process's lease on the job.
_UPDATE_JOB = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("b_id"), JOBS.c.owner == bindparam("b_owner"))
    .values(
        {column: bindparam(f"b_{column}") for column in (*_ROW_COLUMNS, "owner", "lease_until_us")}
    )
)


def _row_values(job: Job) -> dict[str, Any]:
    values = _job_values(job, last_sequence=job.last_sequence)
    return {"b_id": job.id, **{f"b_{column}": values[column] for column in _ROW_COLUMNS}}


def _event_row(workspace_id: str, event: JobEvent) -> dict[str, Any]:
    kind, payload = event_to_json(event.body)
    return {
        "job_id": event.job_id,
        "sequence": event.sequence,
        "workspace_id": workspace_id,
        "time_us": to_us(event.time),
        "kind": kind,
        "payload": payload,
    }
