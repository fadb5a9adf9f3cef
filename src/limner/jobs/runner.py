"""The runner: owns every job's task, its provider slot, its event log and its end.

A job never runs inside the RPC that created it (ARCHITECTURE §1.2): the runner starts a
task per job and keeps it until the job ends. A watcher that goes away changes nothing;
only ``cancel`` stops a job, and it does so by cancelling the task, which interrupts the
provider call in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from limner.domain.jobs import (
    CancelledEvent,
    CompletedEvent,
    EventBody,
    FailedEvent,
    Job,
    JobKind,
    JobResult,
    JobStage,
    JobState,
    JobWarning,
    PreviewEvent,
    Progress,
    ProgressEvent,
    TextDeltaEvent,
    Usage,
    UsageEvent,
    WarningEvent,
)
from limner.errors import (
    Aborted,
    Code,
    InternalError,
    JobNotCancellable,
    LimnerError,
    NotFound,
    Unavailable,
)
from limner.jobs.hub import EventHub
from limner.jobs.slots import ProviderSlots
from limner.jobs.store import JobChanges, JobStore

log = logging.getLogger(__name__)

JobHandler = Callable[["JobContext"], Awaitable[JobResult]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """Everything needed to create a job. ``spec`` must be JSON-serialisable: it is what a
    restarted server runs the job from."""

    workspace_id: str
    kind: JobKind
    model_id: str
    provider_id: str
    prompt: str
    spec: dict[str, Any]
    target: str = ""
    request_id: str = ""
    request_hash: str = ""
    warnings: tuple[JobWarning, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RunnerSettings:
    heartbeat_interval_s: float = 10.0
    job_timeout_s: float = 900.0
    max_attempts: int = 3
    default_concurrency: int = 4
    preview_interval_s: float = 0.5
    provider_concurrency: dict[str, int] = field(default_factory=dict)


class JobContext:
    """What a job handler sees: its job, and the ways to report on it."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self._runner = runner
        self.job = job
        self._last_preview = 0.0

    @property
    def spec(self) -> dict[str, Any]:
        return self.job.spec

    async def progress(
        self,
        stage: JobStage,
        *,
        fraction: float | None = None,
        step: int = 0,
        total_steps: int = 0,
        eta_s: float | None = None,
        message: str = "",
    ) -> None:
        progress = Progress(
            stage=stage,
            fraction=fraction,
            step=step,
            total_steps=total_steps,
            eta_s=eta_s,
            message=message,
        )
        await self._runner._append(self.job, [ProgressEvent(progress)])

    def preview_due(self) -> bool:
        """Whether a preview may be sent now (previews are throttled per job)."""
        return time.monotonic() - self._last_preview >= self._runner.settings.preview_interval_s

    async def preview(self, asset: str, step: int = 0) -> None:
        self._last_preview = time.monotonic()
        await self._runner._append(self.job, [PreviewEvent(asset, step)])

    async def text_delta(self, text: str) -> None:
        if text:
            await self._runner._append(self.job, [TextDeltaEvent(text)])

    async def warn(self, code: str, message: str, field: str = "") -> None:
        await self._runner._append(self.job, [WarningEvent(JobWarning(code, message, field))])

    async def usage(self, usage: Usage) -> None:
        """Records what one provider call used (summed into ``Job.usage``)."""
        await self._runner._append(self.job, [UsageEvent(usage)])


class JobRunner:
    def __init__(self, store: JobStore, hub: EventHub, settings: RunnerSettings) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self._handlers: dict[JobKind, JobHandler] = {}
        self._slots: dict[str, ProviderSlots] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._accepting = True
        self._stopping = False

    # -- set-up ------------------------------------------------------------------------

    def register(self, kind: JobKind, handler: JobHandler) -> None:
        self._handlers[kind] = handler

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

    # -- public operations -------------------------------------------------------------

    async def submit(self, new: NewJob) -> tuple[Job, bool]:
        """Creates and starts a job, or returns the job an earlier request with the same
        ``request_id`` created (second value ``False``)."""
        if not self._accepting:
            raise Unavailable(
                "the server is shutting down and accepts no new jobs; retry on another replica",
                reason="SERVER_SHUTTING_DOWN",
                retry_after_s=1.0,
            )
        if new.kind not in self._handlers:
            raise InternalError(f"no handler registered for {new.kind} jobs")
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
        )
        stored, created = await self.store.create_job(
            job,
            ProgressEvent(job.progress),
            request_id=new.request_id,
            request_hash=new.request_hash,
        )
        if not created:
            return stored, False
        if new.warnings:
            await self._append(stored, [WarningEvent(w) for w in new.warnings], record=False)
        self._start(stored)
        return stored, True

    async def cancel(self, workspace_id: str, job_id: str, reason: str) -> Job:
        job = await self.store.get_job(workspace_id, job_id)
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
            # Wait for the task to record the cancellation, whatever happens to our caller.
            await asyncio.shield(asyncio.wait({task}))
        else:
            # Not running here (waiting for approval, or left over): end it directly.
            await self._finish(job, CancelledEvent(reason), JobState.CANCELLED)
        refreshed = await self.store.get_job(workspace_id, job_id)
        assert refreshed is not None
        return refreshed

    async def recover(self) -> None:
        """Runs at start-up: jobs a previous process left queued or running are started
        again (they are rebuilt from their stored spec) or, past ``max_attempts``, failed."""
        for job in await self.store.unfinished_jobs():
            if job.state == JobState.AWAITING_APPROVAL:
                continue  # paused on purpose; nothing was running
            if job.kind in self._handlers and job.attempt < self.settings.max_attempts:
                await self._append(
                    job,
                    [
                        WarningEvent(
                            JobWarning(
                                "JOB_RESUMED",
                                "the server restarted while this job was in flight; "
                                f"running it again (attempt {job.attempt + 1})",
                            )
                        ),
                        ProgressEvent(Progress(stage=JobStage.QUEUED, message="requeued")),
                    ],
                    JobChanges(state=JobState.QUEUED),
                )
                self._start(job)
            else:
                error = Aborted(
                    f"the server restarted while this job was in flight and it was not "
                    f"resumed after {job.attempt} attempt(s); submit it again",
                    reason="SERVER_RESTARTED",
                    metadata={"attempts": str(job.attempt)},
                )
                await self._finish(job, FailedEvent(error.payload()), JobState.FAILED)

    async def shutdown(self, grace_s: float) -> None:
        """Stops accepting jobs, lets running ones finish within ``grace_s``, then interrupts
        the rest. Interrupted jobs stay queued/running in the store, with a warning, so the
        next start resumes or fails them (``recover``)."""
        self._accepting = False
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        self._stopping = True
        remaining = list(self._tasks.values())
        for task in remaining:
            task.cancel()
        if remaining:
            await asyncio.wait(remaining)

    # -- internals ---------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job.id, None))

    async def _run(self, job: Job) -> None:
        handler = self._handlers[job.kind]
        context = JobContext(self, job)

        async def on_queue_position(position: int) -> None:
            progress = Progress(
                stage=JobStage.QUEUED,
                queue_position=position,
                message=f"waiting for a {job.provider_id} slot, position {position}",
            )
            await self._append(job, [ProgressEvent(progress)])

        try:
            async with self.slots(job.provider_id).hold(on_queue_position):
                await self._append(
                    job,
                    [ProgressEvent(Progress(stage=JobStage.PREPARING, message="preparing"))],
                    JobChanges(
                        state=JobState.RUNNING, start_time=utcnow(), attempt=job.attempt + 1
                    ),
                )
                try:
                    async with asyncio.timeout(self.settings.job_timeout_s):
                        result = await handler(context)
                except TimeoutError as exc:
                    raise LimnerError(
                        f"the job did not finish within {self.settings.job_timeout_s:g} s",
                        reason="JOB_TIMEOUT",
                    ) from exc
            await self._finish(job, CompletedEvent(result), JobState.SUCCEEDED)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(job.id, None)
            if reason is None or self._stopping:
                await self._note_interrupted(job)
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._finish(job, CancelledEvent(reason), JobState.CANCELLED)
        except LimnerError as exc:
            await self._finish(job, FailedEvent(exc.payload()), JobState.FAILED)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.id)
            error = InternalError(f"the job failed unexpectedly: {type(exc).__name__}")
            await self._finish(job, FailedEvent(error.payload()), JobState.FAILED)

    async def _note_interrupted(self, job: Job) -> None:
        warning = JobWarning(
            "JOB_INTERRUPTED",
            "the server is shutting down; the job will be resumed or failed on restart",
        )
        try:
            await asyncio.shield(self._append(job, [WarningEvent(warning)]))
        except Exception:  # the store may already be closing; recovery still works
            log.warning("could not record the interruption of job %s", job.id, exc_info=True)

    async def _finish(self, job: Job, event: EventBody, state: JobState) -> None:
        code = event.error.code if isinstance(event, FailedEvent) else None
        if code is not None and code is Code.INTERNAL:
            log.error("job %s failed: %s", job.id, event)
        await self._append(job, [event], JobChanges(state=state, end_time=utcnow()))

    async def _append(
        self,
        job: Job,
        events: Sequence[EventBody],
        changes: JobChanges | None = None,
        *,
        record: bool = True,
    ) -> None:
        """Logs events for a job this runner owns and tells its watchers.

        Only the job's own task (or a caller that holds the job exclusively) appends, so the
        in-memory ``last_sequence`` is the next number to use. ``record`` is false for
        warnings already stored on the job row at creation.
        """
        changes = changes or JobChanges()
        logged = await self.store.append_events(
            job.id, job.last_sequence + 1, events, changes, record_warnings=record
        )
        job.last_sequence = logged[-1].sequence
        if changes.state is not None:
            job.state = changes.state
        if changes.attempt is not None:
            job.attempt = changes.attempt
        self.hub.publish(logged)
