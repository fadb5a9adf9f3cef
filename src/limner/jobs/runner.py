"""The in-process job engine: owns every job's task, its provider slot and its end.

A job never runs inside the RPC that created it (ARCHITECTURE §1.2): the runner starts a
task per job and keeps it until the job ends. A watcher that goes away changes nothing;
only ``cancel`` stops a job, and it does so by cancelling the task, which interrupts the
provider call in flight. Its events go through ``JobLog``; sharing one database with other
processes goes through ``LeaseKeeper``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from limner.domain.jobs import (
    ApprovalRequiredEvent,
    CancelledEvent,
    CompletedEvent,
    EventBody,
    FailedEvent,
    Job,
    JobEvent,
    JobKind,
    JobStage,
    JobState,
    JobWarning,
    Progress,
    ProgressEvent,
    WarningEvent,
    WatchItem,
)
from limner.domain.specs import Approvable, Approval
from limner.errors import (
    Aborted,
    Code,
    FailedPrecondition,
    InternalError,
    JobNotCancellable,
    LimnerError,
    NotFound,
    Unavailable,
)
from limner.jobs.context import QueueReporter, RunnerContext
from limner.jobs.engine import AwaitApproval, HandlerTable, NewJob
from limner.jobs.hub import EventHub
from limner.jobs.leases import LeaseKeeper
from limner.jobs.log import JobChanges, JobLog, utcnow
from limner.jobs.slots import ProviderSlots
from limner.jobs.store import JobPage, JobStore, LeaseLost
from limner.jobs.watch import watch_job
from limner.observability import tracing
from limner.observability.metrics import NO_METRICS, MetricsHooks

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunnerSettings:
    heartbeat_interval_s: float = 10.0
    job_timeout_s: float = 900.0
    max_attempts: int = 3
    default_concurrency: int = 4
    preview_interval_s: float = 0.5
    queue_report_interval_s: float = 0.25
    # A job's process renews its lease every third of this; a job whose lease ran out is
    # claimed by another process (or this one at its next start).
    lease_s: float = 30.0
    # How often to look for jobs to claim (released by a stopping process, or whose lease
    # ran out); at most a third of lease_s.
    claim_interval_s: float = 1.0
    provider_concurrency: dict[str, int] = field(default_factory=dict)


class JobRunner:
    """The in-process ``JobEngine`` (``limner.jobs.engine``)."""

    def __init__(
        self,
        store: JobStore,
        hub: EventHub,
        settings: RunnerSettings,
        metrics: MetricsHooks = NO_METRICS,
    ) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self.metrics = metrics
        self.log = JobLog(store, hub, on_lost=self._lose, metrics=metrics)
        self.leases = LeaseKeeper(
            store,
            settings.lease_s,
            running=lambda: self._tasks,
            on_lost=self._lose,
            on_cancel_requested=self._cancel_requested,
            on_claimed=self._take_over,
            claim_interval_s=settings.claim_interval_s,
        )
        self._handlers: HandlerTable = {}
        self._slots: dict[str, ProviderSlots] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._accepting = False
        self._stopping = False
        self._lost: set[str] = set()  # jobs another process claimed from this one

    def slots(self, provider_id: str) -> ProviderSlots:
        slots = self._slots.get(provider_id)
        if slots is None:
            limit = self.settings.provider_concurrency.get(
                provider_id, self.settings.default_concurrency
            )
            slots = self._slots[provider_id] = ProviderSlots(limit)
        return slots

    @property
    def running_count(self) -> int:
        return len(self._tasks)

    # -- start and stop ----------------------------------------------------------------

    async def start(self, handlers: HandlerTable) -> None:
        """Starts with the composition root's handler table: claims the jobs whose process
        stopped or died (their lease ran out) and keeps this process's leases, claiming
        more as other processes go away (ARCHITECTURE §7)."""
        self._handlers = handlers
        self._accepting = True
        await self.leases.claim()
        self.leases.start()

    async def shutdown(self, grace_s: float, *, handover_s: float = 1.0) -> None:
        """Stops accepting jobs, lets running ones finish within ``grace_s``, then interrupts
        the rest and hands them over: each gets a ``JOB_INTERRUPTED`` warning and its lease
        is released, so another process sharing the database (or the next start) claims
        and resumes it at once. The hand-over takes at most ``handover_s`` more; if the
        database does not answer by then, the leases run out by themselves."""
        self._accepting = False
        self.leases.claiming = False
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        self._stopping = True
        self.leases.stop()
        interrupted = list(self._tasks)
        remaining = list(self._tasks.values())
        for task in remaining:
            task.cancel()
        if not remaining:
            return
        deadline = asyncio.get_running_loop().time() + handover_s
        await asyncio.wait(remaining, timeout=handover_s)
        try:
            async with asyncio.timeout_at(deadline):
                await self.leases.release(interrupted)
        except TimeoutError:
            log.warning(
                "could not release %d interrupted job(s) in time; they are claimed when "
                "their lease runs out",
                len(interrupted),
            )

    async def check(self) -> None:
        """Raises unless the engine takes jobs and its lease rounds work (for health)."""
        if not self._accepting:
            raise Unavailable("the job engine is not accepting jobs", reason="NOT_ACCEPTING")
        self.leases.check()

    # -- public operations -------------------------------------------------------------

    def _refuse_when_stopped(self) -> None:
        if not self._accepting:
            raise Unavailable(
                "the server is shutting down and accepts no new jobs; retry on another replica",
                reason="SERVER_SHUTTING_DOWN",
                retry_after_s=1.0,
            )

    async def submit(self, new: NewJob) -> tuple[Job, bool]:
        """Creates and starts a job, or returns the job an earlier request with the same
        ``request_id`` created (second value ``False``)."""
        self._refuse_when_stopped()
        handler = self._handlers.get(new.kind)
        if handler is None or not isinstance(new.spec, handler.spec_type):
            raise InternalError(f"no handler for {new.kind} jobs of {type(new.spec).__name__}")
        now = utcnow()
        job = Job(
            id=uuid.uuid4().hex,
            workspace_id=new.workspace_id,
            kind=new.kind,
            state=JobState.QUEUED,
            progress=Progress(stage=JobStage.QUEUED, message="queued"),
            model_id=new.model_id,
            provider_id=new.provider_id,
            prompt=new.prompt,
            spec=new.spec,
            create_time=now,
            update_time=now,
            target=new.target,
            warnings=list(new.warnings),
            attempt=0,
            trace_context=tracing.current_carrier(),
            webhook=new.webhook,
        )
        stored, created = await self.store.create_job(
            job,
            ProgressEvent(job.progress),
            request_id=new.request_id,
            request_hash=new.request_hash,
        )
        if not created:
            return stored, False
        self.metrics.job_submitted(stored)
        first = JobEvent(stored.id, 1, stored.create_time, ProgressEvent(stored.progress))
        self.log.open(stored, [first])
        self._start(stored, new.warnings)
        return stored, True

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None:
        return await self.log.get_job(workspace_id, job_id)

    async def list_events(self, job_id: str, *, after_sequence: int, limit: int) -> list[JobEvent]:
        return await self.log.list_events(job_id, after_sequence=after_sequence, limit=limit)

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage:
        return await self.store.list_jobs(
            workspace_id, states=states, kinds=kinds, page_size=page_size, page_token=page_token
        )

    def watch(
        self, workspace_id: str, job_id: str, *, after_sequence: int, heartbeat_interval_s: float
    ) -> AsyncIterator[WatchItem]:
        return watch_job(
            self.log,
            self.hub,
            workspace_id=workspace_id,
            job_id=job_id,
            after_sequence=after_sequence,
            heartbeat_interval_s=heartbeat_interval_s,
        )

    async def cancel(self, workspace_id: str, job_id: str, reason: str) -> Job:
        job = await self.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound.resource("job", f"jobs/{job_id}")
        if job.state.terminal:
            raise JobNotCancellable(
                f"jobs/{job_id} already ended ({job.state.value}); only queued, running or "
                "waiting jobs can be cancelled",
                metadata={"job": f"jobs/{job_id}", "state": job.state.value},
            )
        task = self._tasks.get(job_id)
        if task is not None:
            self._cancel_reasons[job_id] = reason
            task.cancel()
            # Wait for the task to record the outcome, whatever happens to our caller.
            await asyncio.shield(asyncio.wait({task}))
        elif not self.log.is_open(job_id):
            if job.state is not JobState.AWAITING_APPROVAL and await self.store.request_cancel(
                job_id, reason
            ):
                # Another process runs it: it sees the request when it renews its lease.
                await self.leases.await_end_elsewhere(workspace_id, job_id)
            elif await self.store.take(job_id):
                # Not running anywhere (waiting for approval, or left over): end it here.
                await self._finish(job, CancelledEvent(reason), JobState.CANCELLED)
            else:
                raise Unavailable(
                    f"jobs/{job_id} was just taken over by another server process; retry",
                    reason="JOB_CANCEL_PENDING",
                    metadata={"job": f"jobs/{job_id}"},
                    retry_after_s=1.0,
                )
        refreshed = await self.get_job(workspace_id, job_id)
        assert refreshed is not None
        if refreshed.state is not JobState.CANCELLED:
            # It finished on its own before the cancellation could take effect.
            raise JobNotCancellable(
                f"jobs/{job_id} already ended ({refreshed.state.value}) before it could be "
                "cancelled",
                metadata={"job": f"jobs/{job_id}", "state": refreshed.state.value},
            )
        return refreshed

    async def resume(self, workspace_id: str, job_id: str, approval: Approval) -> Job:
        """Starts a job that waits for approval again, its spec approved with ``approval``
        (saved with its next event). The sequence continues; watchers keep following."""
        job = await self.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound.resource("job", f"jobs/{job_id}")
        if job.state is not JobState.AWAITING_APPROVAL or job_id in self._tasks:
            raise FailedPrecondition(
                f"jobs/{job_id} is {job.state.value}, not waiting for approval",
                reason="JOB_NOT_AWAITING_APPROVAL",
                metadata={"job": f"jobs/{job_id}", "state": job.state.value},
            )
        if not isinstance(job.spec, Approvable):
            raise InternalError(f"jobs/{job_id} ({job.kind}) waits for approval it cannot take")
        self._refuse_when_stopped()
        if not await self.store.take_approved(job_id):
            raise FailedPrecondition(
                f"jobs/{job_id} was just approved through another server process",
                reason="JOB_NOT_AWAITING_APPROVAL",
                metadata={"job": f"jobs/{job_id}", "state": job.state.value},
            )
        approved = job.spec.approve(approval)
        assert isinstance(approved, type(job.spec))
        job.spec = approved
        job.state = JobState.QUEUED
        self.log.open(job)
        self._start(job)
        return job.copy()

    # -- other processes ---------------------------------------------------------------

    def _lose(self, job_id: str) -> None:
        """Another process claimed a job this one still runs (this one stalled past its
        lease): stop it here without writing anything more."""
        task = self._tasks.get(job_id)
        if task is not None:
            log.warning("jobs/%s was claimed by another process; stopping it here", job_id)
            self._lost.add(job_id)
            task.cancel()

    def _cancel_requested(self, job_id: str, reason: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and job_id not in self._cancel_reasons:
            self._cancel_reasons[job_id] = reason
            task.cancel()

    async def _take_over(self, job: Job, cancel_reason: str) -> None:
        """A claimed job: ended if its cancellation was asked for, run again from its spec,
        or, past ``max_attempts``, failed."""
        if cancel_reason:
            await self._finish(job, CancelledEvent(cancel_reason), JobState.CANCELLED)
        elif job.kind in self._handlers and job.attempt < self.settings.max_attempts:
            self.log.open(job)
            await self.log.append(
                job,
                [
                    WarningEvent(
                        JobWarning(
                            "JOB_RESUMED",
                            "the server restarted (or the process running this job stopped) "
                            f"while it was in flight; running it again (attempt {job.attempt + 1})",
                        )
                    ),
                    ProgressEvent(Progress(stage=JobStage.QUEUED, message="requeued")),
                ],
                JobChanges(state=JobState.QUEUED),
            )
            self._start(job)
        else:
            error = Aborted(
                "the server restarted (or the process running this job stopped) while it was "
                f"in flight and it was not resumed after {job.attempt} attempt(s); submit it again",
                reason="SERVER_RESTARTED",
                metadata={"attempts": str(job.attempt)},
            )
            await self._finish(job, FailedEvent(error.payload()), JobState.FAILED)

    # -- a job's task ------------------------------------------------------------------

    def _start(self, job: Job, warnings: tuple[JobWarning, ...] = ()) -> None:
        task = asyncio.create_task(
            tracing.traced_job(job, lambda: self._run(job, warnings)), name=f"job-{job.id}"
        )
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t: self._forget(job.id))

    def _forget(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self.log.close(job_id)

    async def _run(self, job: Job, warnings: tuple[JobWarning, ...]) -> None:
        handler = self._handlers[job.kind]
        context = RunnerContext(self.log, job, self.settings.preview_interval_s)
        reporter = QueueReporter(self.log, job, self.settings.queue_report_interval_s)
        queued_since = time.perf_counter()

        async def on_queue_position(position: int) -> None:
            reporter.report(
                Progress(
                    stage=JobStage.QUEUED,
                    queue_position=position,
                    message=f"waiting for a {job.provider_id} slot, position {position}",
                )
            )

        terminal: EventBody
        state: JobState
        paused: AwaitApproval | None = None
        try:
            if warnings:
                # Already on the job row (stored at creation); logged here so the task
                # stays the only writer of this job's events.
                await self.log.append(
                    job, [WarningEvent(w) for w in warnings], record=False, durable=False
                )
            async with self.slots(job.provider_id).hold(on_queue_position):
                reporter.stop()
                self.metrics.job_started(job, queued_since)
                tracing.event("provider slot acquired")
                await self.log.append(
                    job,
                    [ProgressEvent(Progress(stage=JobStage.PREPARING, message="preparing"))],
                    JobChanges(
                        state=JobState.RUNNING, start_time=utcnow(), attempt=job.attempt + 1
                    ),
                    durable=False,
                )
                if not isinstance(job.spec, handler.spec_type):
                    raise InternalError(
                        f"jobs/{job.id} has a {type(job.spec).__name__}, not the "
                        f"{handler.spec_type.__name__} its kind runs from"
                    )
                try:
                    async with asyncio.timeout(self.settings.job_timeout_s):
                        result = await handler.run(context, job.spec)
                except TimeoutError as exc:
                    raise LimnerError(
                        f"the job did not finish within {self.settings.job_timeout_s:g} s",
                        reason="JOB_TIMEOUT",
                    ) from exc
            terminal, state = CompletedEvent(result), JobState.SUCCEEDED
        except AwaitApproval as pause:
            paused = pause
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(job.id, None)
            if job.id in self._lost:
                self._lost.discard(job.id)
                raise  # another process runs it now; nothing more is written from here
            if reason is None or self._stopping:
                await self._note_interrupted(job)
                raise
            self._uncancel()
            terminal, state = CancelledEvent(reason), JobState.CANCELLED
        except LimnerError as exc:
            terminal, state = FailedEvent(exc.payload()), JobState.FAILED
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.id)
            error = InternalError(f"the job failed unexpectedly: {type(exc).__name__}")
            terminal, state = FailedEvent(error.payload()), JobState.FAILED
        reporter.stop()
        # Exactly one terminal event: once the outcome is decided, a late CancelJob can no
        # longer change it (cancel() then reports the job as already ended).
        if paused is not None:
            outcome = self._pause(job, paused)
        else:
            outcome = self._finish(job, terminal, state)
        writing = asyncio.ensure_future(outcome)
        while not writing.done():
            try:
                await asyncio.shield(writing)
            except asyncio.CancelledError:
                self._cancel_reasons.pop(job.id, None)
                self._uncancel()
            except LeaseLost:
                break  # another process runs the job now; its end is that process's to write
        if not writing.cancelled() and isinstance(writing.exception(), LeaseLost):
            log.warning("jobs/%s was claimed by another process before it ended here", job.id)
            return
        writing.result()

    async def _pause(self, job: Job, pause: AwaitApproval) -> None:
        await self.log.append(
            job,
            [
                ApprovalRequiredEvent(pause.prompt, pause.scene),
                ProgressEvent(
                    Progress(stage=JobStage.AWAITING_APPROVAL, message="waiting for approval")
                ),
            ],
            JobChanges(state=JobState.AWAITING_APPROVAL),
        )

    @staticmethod
    def _uncancel() -> None:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()

    async def _note_interrupted(self, job: Job) -> None:
        warning = JobWarning(
            "JOB_INTERRUPTED",
            "the server process running this job is shutting down; another process sharing "
            "its database, or its next start, resumes the job",
        )
        try:
            await asyncio.shield(self.log.append(job, [WarningEvent(warning)]))
        except Exception:  # the store may already be closing; recovery still works
            log.warning("could not record the interruption of job %s", job.id, exc_info=True)

    async def _finish(self, job: Job, event: EventBody, state: JobState) -> None:
        code = event.error.code if isinstance(event, FailedEvent) else None
        if code is not None and code is Code.INTERNAL:
            log.error("job %s failed: %s", job.id, event)
        await self.log.append(job, [event], JobChanges(state=state, end_time=utcnow()))
        self.metrics.job_finished(job, event, ran_here=job.id in self._tasks)
