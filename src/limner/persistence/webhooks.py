"""The webhook outbox: deliveries queued with the events they post, and their attempts.

``WebhookOutbox`` turns a job's logged events into delivery rows; the job store writes them
in the transaction that writes the events (``limner.persistence.jobs``), so an event is
durable exactly when its deliveries are: a crash can lose neither one without the other,
and nothing has to be reconciled at start. ``SqlWebhookStore`` is what the dispatcher
(``limner.webhooks``) and ``ListWebhookDeliveries`` read and update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from limner.domain.jobs import TERMINAL_EVENTS, ApprovalRequiredEvent, Job, JobEvent
from limner.domain.webhook_payload import webhook_body, webhook_event
from limner.domain.webhooks import (
    DeliveryState,
    WebhookDelivery,
    WebhookEvent,
    delivery_id,
)
from limner.persistence.database import Database
from limner.persistence.keyset import keyset_page
from limner.persistence.tables import WEBHOOK_DELIVERIES
from limner.persistence.timeutil import from_us, now_us, opt_from_us, to_us
from limner.webhooks.store import AttemptOutcome, DueDelivery

PENDING = DeliveryState.PENDING.value


class WebhookOutbox:
    """Decides which logged events become deliveries, and builds their rows.

    Progress is throttled per job: a progress event is posted only if the job's last
    posted one is at least ``progress_interval_s`` older (by event time). That memory is
    this process's: a job resumed by another process may post one progress event sooner.
    """

    def __init__(
        self, *, progress_interval_s: float = 5.0, on_queued: Callable[[], None] | None = None
    ) -> None:
        self.progress_interval_s = progress_interval_s
        # Told once queued deliveries are committed (the dispatcher's wake-up).
        self.on_queued = on_queued or (lambda: None)
        self._last_progress: dict[str, float] = {}

    def rows(self, job: Job, events: Sequence[JobEvent]) -> list[dict[str, Any]]:
        """The delivery rows for ``events`` of ``job`` (as it is once they are folded in),
        to insert with the events."""
        subscription = job.webhook
        rows: list[dict[str, Any]] = []
        for event in events:
            if isinstance(event.body, (*TERMINAL_EVENTS, ApprovalRequiredEvent)):
                # This run of the job ends here: forget its throttle.
                self._last_progress.pop(job.id, None)
            if subscription is None:
                continue
            kind = webhook_event(event.body)
            if kind is None or not subscription.wants(kind):
                continue
            if kind is WebhookEvent.PROGRESS and not self._progress_due(job.id, event):
                continue
            time_us = to_us(event.time)
            rows.append(
                {
                    "id": delivery_id(job.id, event.sequence),
                    "workspace_id": job.workspace_id,
                    "job_id": job.id,
                    "sequence": event.sequence,
                    "event_type": kind.value,
                    "url": subscription.url,
                    "payload": webhook_body(job, event, kind),
                    "state": PENDING,
                    "attempts": 0,
                    "next_attempt_us": time_us,
                    "last_attempt_us": None,
                    "last_status": 0,
                    "last_error": "",
                    "create_time_us": time_us,
                }
            )
        return rows

    def _progress_due(self, job_id: str, event: JobEvent) -> bool:
        at = event.time.timestamp()
        last = self._last_progress.get(job_id)
        if last is not None and at - last < self.progress_interval_s:
            return False
        self._last_progress[job_id] = at
        return True


class SqlWebhookStore:
    """``limner.webhooks.store.DeliveryStore`` and the per-job delivery listing."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def claim_due(self, limit: int, hold_s: float) -> list[DueDelivery]:
        now = now_us()
        until = now_us(hold_s)
        table = WEBHOOK_DELIVERIES
        is_due = (table.c.state == PENDING) & (table.c.next_attempt_us <= now)
        # Looked for every few seconds: a read answers that (on SQLite without taking the
        # write lock).
        probe = select(table.c.id).where(is_due).limit(1)
        if await self.db.run(lambda c: c.execute(probe).first()) is None:
            return []

        def claim(connection: Connection) -> list[DueDelivery]:
            due = (
                select(table.c.id)
                .where(is_due)
                .order_by(table.c.next_attempt_us)
                .limit(limit)
                .scalar_subquery()
            )
            # Due is checked again in the UPDATE itself: of two processes taking at once,
            # the second finds the delivery held and takes nothing.
            statement = (
                update(table)
                .where(table.c.id.in_(due), is_due)
                .values(next_attempt_us=until)
                .returning(
                    table.c.id,
                    table.c.job_id,
                    table.c.url,
                    table.c.payload,
                    table.c.attempts,
                    table.c.create_time_us,
                )
            )
            return [
                DueDelivery(
                    id=row.id,
                    job_id=row.job_id,
                    url=row.url,
                    body=row.payload,
                    attempts=row.attempts,
                    create_time=from_us(row.create_time_us),
                )
                for row in connection.execute(statement).all()
            ]

        return await self.db.run(claim, write=True)

    async def record(self, delivery_id: str, outcome: AttemptOutcome) -> None:
        values: dict[str, Any] = {
            "state": outcome.state.value,
            "attempts": outcome.attempts,
            "last_attempt_us": to_us(outcome.attempt_time),
            "last_status": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.next_attempt is not None:
            values["next_attempt_us"] = to_us(outcome.next_attempt)
        statement = (
            update(WEBHOOK_DELIVERIES)
            .where(WEBHOOK_DELIVERIES.c.id == delivery_id, WEBHOOK_DELIVERIES.c.state == PENDING)
            .values(**values)
        )
        await self.db.run(lambda c: c.execute(statement), write=True)

    async def release(self, delivery_ids: Sequence[str]) -> None:
        if not delivery_ids:
            return
        statement = (
            update(WEBHOOK_DELIVERIES)
            .where(
                WEBHOOK_DELIVERIES.c.id.in_(list(delivery_ids)),
                WEBHOOK_DELIVERIES.c.state == PENDING,
            )
            .values(next_attempt_us=now_us())
        )
        await self.db.run(lambda c: c.execute(statement), write=True)

    async def list_for_job(
        self, workspace_id: str, job_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[WebhookDelivery], str]:
        table = WEBHOOK_DELIVERIES
        statement = select(table).where(
            table.c.workspace_id == workspace_id, table.c.job_id == job_id
        )
        page = keyset_page(
            statement,
            order=(table.c.sequence, table.c.id),
            shape=(int, str),
            descending=False,
            query={"list": "webhookDeliveries", "job": job_id},
            page_size=page_size,
            page_token=page_token,
        )
        rows, token = await self.db.run(page)
        return [_delivery_from_row(row) for row in rows], token


def _delivery_from_row(row: Row[Any]) -> WebhookDelivery:
    state = DeliveryState(row.state)
    return WebhookDelivery(
        id=row.id,
        workspace_id=row.workspace_id,
        job_id=row.job_id,
        sequence=row.sequence,
        event=WebhookEvent(row.event_type),
        url=row.url,
        body=row.payload,
        state=state,
        attempts=row.attempts,
        create_time=from_us(row.create_time_us),
        last_attempt_time=opt_from_us(row.last_attempt_us),
        next_attempt_time=from_us(row.next_attempt_us) if state is DeliveryState.PENDING else None,
        last_status_code=row.last_status,
        last_error=row.last_error,
    )
