"""The event-log writer: appends a running job's events, folds them into the job, and tells
watchers once they are durable.

Only the job's own task (or a caller that holds the job exclusively) appends, so the
in-memory job is authoritative while it runs here: watchers read it (and its recent
events) from memory instead of the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from limner.domain.jobs import EventBody, Job, JobEvent, JobState, ProgressEvent
from limner.errors import Unavailable
from limner.jobs.hub import EventHub
from limner.jobs.store import JobStore, LeaseLost
from limner.observability.metrics import NO_METRICS, MetricsHooks

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class JobChanges:
    """Fields of a job that change together with an appended event."""

    state: JobState | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    attempt: int | None = None


@dataclass
class _LiveJob:
    """A job this process runs: the state watchers see, and the events it has logged."""

    snapshot: Job
    events: list[JobEvent]
    # Set when a save the job's task did not wait for failed; its next append raises it.
    save_error: BaseException | None = None


class JobLog:
    def __init__(
        self,
        store: JobStore,
        hub: EventHub,
        on_lost: Callable[[str], None],
        metrics: MetricsHooks = NO_METRICS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.hub = hub
        self._on_lost = on_lost  # a save found the job claimed by another process
        self._live: dict[str, _LiveJob] = {}

    # -- jobs running here -------------------------------------------------------------

    def open(self, job: Job, events: Sequence[JobEvent] = ()) -> None:
        """Starts serving ``job`` from memory (it runs, or is about to run, here)."""
        self._live[job.id] = _LiveJob(job.copy(), list(events))

    def close(self, job_id: str) -> None:
        # The terminal event is durable by now: later reads come from the store.
        self._live.pop(job_id, None)

    def is_open(self, job_id: str) -> bool:
        return job_id in self._live

    # -- reading (the watch's view: jobs running here come from memory) -----------------

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None:
        live = self._live.get(job_id)
        if live is not None and live.snapshot.workspace_id == workspace_id:
            return live.snapshot.copy()
        return await self.store.get_job(workspace_id, job_id)

    async def list_events(self, job_id: str, *, after_sequence: int, limit: int) -> list[JobEvent]:
        live = self._live.get(job_id)
        if live is not None and live.events and live.events[0].sequence <= after_sequence + 1:
            return [e for e in live.events if e.sequence > after_sequence][:limit]
        return await self.store.list_events(job_id, after_sequence=after_sequence, limit=limit)

    # -- writing -------------------------------------------------------------------------

    async def append(
        self,
        job: Job,
        events: Sequence[EventBody],
        changes: JobChanges | None = None,
        *,
        record: bool = True,
        durable: bool = True,
    ) -> None:
        """Logs events for a job; its watchers are told once they are durable.

        The events are folded into ``job`` and the row and the events are queued for saving
        together (batched with other jobs' saves). Watchers are told only when the save is
        durable, so nobody ever sees an event a restart could take back. ``durable`` says
        whether to wait for that: progress, usage, previews and text deltas do not (the job
        goes on while its log is written, and saves commit in order), the end of a job
        does. ``record`` is false for warnings already on the job.
        """
        live = self._live.get(job.id)
        if live is not None and live.save_error is not None:
            # Raised once, into the job's task, which then ends the job (that append goes
            # through). The lost events leave a gap in the sequence; watchers skip gaps.
            error, live.save_error = live.save_error, None
            raise Unavailable(
                f"jobs/{job.id}: its progress could not be recorded, so it was stopped "
                f"({type(error).__name__})",
                reason="JOB_LOG_WRITE_FAILED",
                metadata={"job": f"jobs/{job.id}"},
            )
        now = utcnow()
        logged = []
        for offset, body in enumerate(events):
            logged.append(JobEvent(job.id, job.last_sequence + 1 + offset, now, body))
            job.record(body, keep_warning=record)
        if changes is not None:
            if changes.state is not None:
                job.state = changes.state
            if changes.start_time is not None:
                job.start_time = changes.start_time
            if changes.end_time is not None:
                job.end_time = changes.end_time
            if changes.attempt is not None:
                job.attempt = changes.attempt
        job.last_sequence = logged[-1].sequence
        job.update_time = now
        saved = self.store.save(job, logged)
        self.metrics.log_write(saved)
        snapshot = job.copy()
        saved.add_done_callback(
            lambda done: self._saved(done, logged, snapshot, waited_for=durable)
        )
        if durable:
            # Shielded: a cancelled caller must not cancel the save's future, or its
            # watchers would never hear of a write that happens anyway.
            await asyncio.shield(saved)

    def _saved(
        self,
        done: asyncio.Future[None],
        logged: list[JobEvent],
        snapshot: Job,
        *,
        waited_for: bool,
    ) -> None:
        """A save became durable (callbacks run in save order): tell the watchers."""
        live = self._live.get(snapshot.id)
        error = None if done.cancelled() else done.exception()
        if isinstance(error, LeaseLost):
            self._on_lost(snapshot.id)
            return
        if done.cancelled() or error is not None:
            if not waited_for:  # nobody else will hear of it
                log.error("could not save events of job %s", snapshot.id, exc_info=error)
                if live is not None:
                    live.save_error = error or asyncio.CancelledError()
            return
        if live is not None:
            live.events.extend(logged)
            live.snapshot = snapshot
        self.hub.publish(logged)

    def publish_ephemeral(self, job: Job, body: ProgressEvent) -> None:
        """Progress that is state, not history (queue positions, learnt ETAs): shown to
        watchers and in snapshots, never logged, so a long queue costs no writes."""
        job.progress = body.progress
        live = self._live.get(job.id)
        # The sequence watchers have seen: a save still in flight is not theirs yet.
        sequence = job.last_sequence
        if live is not None:
            live.snapshot.progress = body.progress
            sequence = live.snapshot.last_sequence
        self.hub.publish([JobEvent(job.id, sequence, utcnow(), body, ephemeral=True)])
