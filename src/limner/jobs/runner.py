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
    ApprovalRequiredEvent,
    CancelledEvent,
    CompletedEvent,
    EventBody,
    FailedEvent,
    Job,
    JobEvent,
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
    FailedPrecondition,
    InternalError,
    JobNotCancellable,
    LimnerError,
    NotFound,
    Unavailable,
)
from limner.jobs.hub import EventHub
from limner.jobs.slots import ProviderSlots
from limner.jobs.store import JobStore, LeaseLost

log = logging.getLogger(__name__)

JobHandler = Callable[["JobContext"], Awaitable[JobResult]]


class AwaitApproval(Exception):
    """Raised by a handler to pause its job until ``JobRunner.resume`` (ask-first scenes).

    The runner logs ``approval_required``, leaves the job in AWAITING_APPROVAL without a
    terminal event and ends the task; nothing runs while the job waits.
    """

    def __init__(self, prompt: str, scene: str = "") -> None:
        super().__init__(prompt)
        self.prompt = prompt
        self.scene = scene


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
    queue_report_interval_s: float = 0.25
    # A job's process renews its lease every third of this; a job whose lease ran out is
    # claimed by another process (or this one at its next start).
    lease_s: float = 30.0
    provider_concurrency: dict[str, int] = field(default_factory=dict)


class _QueueReporter:
    """Queue positions change for every waiting job whenever a slot frees, so with n jobs
    waiting a naive report costs n^2 messages. Positions are state, not history: they are
    published (not logged) at most once per interval per job, the latest one last."""

    def __init__(self, runner: JobRunner, job: Job, interval_s: float) -> None:
        self.runner = runner
        self.job = job
        self.interval_s = interval_s
        self.sent_at = -float("inf")
        self.latest: Progress | None = None
        self.timer: asyncio.TimerHandle | None = None

    def report(self, progress: Progress) -> None:
        self.latest = progress
        self.job.progress = progress
        wait = self.sent_at + self.interval_s - time.monotonic()
        if wait <= 0:
            self._send()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(wait, self._send)

    def _send(self) -> None:
        self.timer = None
        if self.latest is not None:
            self.sent_at = time.monotonic()
            self.runner._publish_ephemeral(self.job, ProgressEvent(self.latest))
            self.latest = None

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.latest = None


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
        await self._runner._append(self.job, [ProgressEvent(progress)], durable=False)

    def estimate(self, progress: Progress) -> None:
        """Progress that is a guess, not history (a learnt ETA): shown to watchers and in
        snapshots, never logged."""
        self._runner._publish_ephemeral(self.job, ProgressEvent(progress))

    def preview_due(self) -> bool:
        """Whether a preview may be sent now (previews are throttled per job)."""
        return time.monotonic() - self._last_preview >= self._runner.settings.preview_interval_s

    async def preview(self, asset: str, step: int = 0) -> None:
        self._last_preview = time.monotonic()
        await self._runner._append(self.job, [PreviewEvent(asset, step)], durable=False)

    async def text_delta(self, text: str) -> None:
        if text:
            await self._runner._append(self.job, [TextDeltaEvent(text)], durable=False)

    async def warn(self, code: str, message: str, field: str = "") -> None:
        await self._runner._append(
            self.job, [WarningEvent(JobWarning(code, message, field))], durable=False
        )

    async def usage(self, usage: Usage) -> None:
        """Records what one provider call used (summed into ``Job.usage``)."""
        await self._runner._append(self.job, [UsageEvent(usage)], durable=False)


class JobRunner:
    def __init__(self, store: JobStore, hub: EventHub, settings: RunnerSettings) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self._handlers: dict[JobKind, JobHandler] = {}
        self._slots: dict[str, ProviderSlots] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._live: dict[str, _LiveJob] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._accepting = True
        self._stopping = False
        self._lost: set[str] = set()  # jobs another process claimed from this one
        self._lease_task: asyncio.Task[None] | None = None

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
        first = JobEvent(stored.id, 1, stored.create_time, ProgressEvent(stored.progress))
        self._live[stored.id] = _LiveJob(stored.copy(), [first])
        self._start(stored, new.warnings)
        return stored, True

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
        elif job_id not in self._live:
            if job.state is not JobState.AWAITING_APPROVAL and await self.store.request_cancel(
                job_id, reason
            ):
                # Another process runs it: it sees the request when it renews its lease.
                await self._await_end_elsewhere(workspace_id, job_id)
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

    async def _await_end_elsewhere(self, workspace_id: str, job_id: str) -> None:
        """Waits for the process running a job to end it (after a cancellation request)."""
        deadline = time.monotonic() + 2 * self.settings.lease_s
        while time.monotonic() < deadline:
            job = await self.store.get_job(workspace_id, job_id)
            if job is None or job.state.terminal:
                return
            await asyncio.sleep(min(0.2, self.settings.lease_s / 10))
        raise Unavailable(
            f"jobs/{job_id} runs in another server process, which has not ended it yet; "
            "it will be cancelled when that process renews or loses its lease",
            reason="JOB_CANCEL_PENDING",
            metadata={"job": f"jobs/{job_id}"},
            retry_after_s=self.settings.lease_s / 3,
        )

    async def recover(self) -> None:
        """Runs at start-up: claims the jobs whose process stopped or died (their lease ran
        out) and starts renewing this process's leases, claiming more as other processes
        go away (ARCHITECTURE §7)."""
        await self._claim()
        if self._lease_task is None:
            self._lease_task = asyncio.create_task(self._keep_leases(), name="job-leases")

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                news = await self.store.renew_leases(list(self._tasks))
                for job_id in news.lost:
                    self._lose(job_id)
                for job_id, reason in news.cancel.items():
                    task = self._tasks.get(job_id)
                    if task is not None and job_id not in self._cancel_reasons:
                        self._cancel_reasons[job_id] = reason
                        task.cancel()
                await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment; try again later
                log.warning("could not renew job leases", exc_info=True)

    def _lose(self, job_id: str) -> None:
        """Another process claimed a job this one still runs (this one stalled past its
        lease): stop it here without writing anything more."""
        task = self._tasks.get(job_id)
        if task is not None:
            log.warning("jobs/%s was claimed by another process; stopping it here", job_id)
            self._lost.add(job_id)
            task.cancel()

    async def _claim(self) -> None:
        if not self._accepting:
            return
        for job, cancel_reason in await self.store.claim_jobs():
            if job.id in self._tasks:
                continue  # ours already (a lease renewed late)
            await self._take_over(job, cancel_reason)

    async def _take_over(self, job: Job, cancel_reason: str) -> None:
        """A claimed job: ended if its cancellation was asked for, run again from its spec,
        or, past ``max_attempts``, failed."""
        if cancel_reason:
            await self._finish(job, CancelledEvent(cancel_reason), JobState.CANCELLED)
        elif job.kind in self._handlers and job.attempt < self.settings.max_attempts:
            self._live[job.id] = _LiveJob(job.copy(), [])
            await self._append(
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

    async def shutdown(self, grace_s: float) -> None:
        """Stops accepting jobs, lets running ones finish within ``grace_s``, then interrupts
        the rest. Interrupted jobs stay queued/running in the store, with a warning, so the
        next start resumes or fails them (``recover``)."""
        self._accepting = False
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        self._stopping = True
        if self._lease_task is not None:
            self._lease_task.cancel()
            self._lease_task = None
        interrupted = list(self._tasks)
        remaining = list(self._tasks.values())
        for task in remaining:
            task.cancel()
        if remaining:
            await asyncio.wait(remaining)
        # Stopped on purpose: let the next process (or another one) claim them at once.
        try:
            await self.store.release(interrupted)
        except Exception:  # their leases run out by themselves
            log.warning("could not release the leases of interrupted jobs", exc_info=True)

    # -- internals ---------------------------------------------------------------------

    def _start(self, job: Job, warnings: tuple[JobWarning, ...] = ()) -> None:
        task = asyncio.create_task(self._run(job, warnings), name=f"job-{job.id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _t: self._forget(job.id))

    def _forget(self, job_id: str) -> None:
        # The terminal event is durable by now: later reads come from the store.
        self._tasks.pop(job_id, None)
        self._live.pop(job_id, None)

    async def _run(self, job: Job, warnings: tuple[JobWarning, ...]) -> None:
        handler = self._handlers[job.kind]
        context = JobContext(self, job)

        reporter = _QueueReporter(self, job, self.settings.queue_report_interval_s)

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
                await self._append(
                    job, [WarningEvent(w) for w in warnings], record=False, durable=False
                )
            async with self.slots(job.provider_id).hold(on_queue_position):
                reporter.stop()
                await self._append(
                    job,
                    [ProgressEvent(Progress(stage=JobStage.PREPARING, message="preparing"))],
                    JobChanges(
                        state=JobState.RUNNING, start_time=utcnow(), attempt=job.attempt + 1
                    ),
                    durable=False,
                )
                try:
                    async with asyncio.timeout(self.settings.job_timeout_s):
                        result = await handler(context)
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
        await self._append(
            job,
            [
                ApprovalRequiredEvent(pause.prompt, pause.scene),
                ProgressEvent(
                    Progress(stage=JobStage.AWAITING_APPROVAL, message="waiting for approval")
                ),
            ],
            JobChanges(state=JobState.AWAITING_APPROVAL),
        )

    async def resume(self, workspace_id: str, job_id: str, spec_update: dict[str, Any]) -> Job:
        """Starts a job that waits for approval again, with ``spec_update`` merged into its
        spec (saved with its next event). The sequence continues; watchers keep following."""
        job = await self.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound.resource("job", f"jobs/{job_id}")
        if job.state is not JobState.AWAITING_APPROVAL or job_id in self._tasks:
            raise FailedPrecondition(
                f"jobs/{job_id} is {job.state.value}, not waiting for approval",
                reason="JOB_NOT_AWAITING_APPROVAL",
                metadata={"job": f"jobs/{job_id}", "state": job.state.value},
            )
        if not self._accepting:
            raise Unavailable(
                "the server is shutting down and accepts no new work; retry on another replica",
                reason="SERVER_SHUTTING_DOWN",
                retry_after_s=1.0,
            )
        if not await self.store.take_approved(job_id):
            raise FailedPrecondition(
                f"jobs/{job_id} was just approved through another server process",
                reason="JOB_NOT_AWAITING_APPROVAL",
                metadata={"job": f"jobs/{job_id}", "state": job.state.value},
            )
        job.spec = {**job.spec, **spec_update}
        job.state = JobState.QUEUED
        self._live[job.id] = _LiveJob(job.copy(), [])
        self._start(job)
        return job.copy()

    @staticmethod
    def _uncancel() -> None:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()

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
        durable: bool = True,
    ) -> None:
        """Logs events for a job this runner owns; its watchers are told once they are durable.

        Only the job's own task (or a caller that holds the job exclusively) appends, so the
        in-memory job is authoritative: events are folded into it and the row and the events
        are queued for saving together (batched with other jobs' saves). Watchers are told
        only when the save is durable, so nobody ever sees an event a restart could take
        back. ``durable`` says whether to wait for that: progress, usage, previews and text
        deltas do not (the job goes on while its log is written, and saves commit in order),
        the end of a job does. ``record`` is false for warnings already on the job.
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
            self._lose(snapshot.id)
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

    def _publish_ephemeral(self, job: Job, body: ProgressEvent) -> None:
        """Progress that is state, not history (queue positions): shown to watchers and
        in snapshots, never logged, so a long queue costs no writes."""
        job.progress = body.progress
        live = self._live.get(job.id)
        # The sequence watchers have seen: a save still in flight is not theirs yet.
        sequence = job.last_sequence
        if live is not None:
            live.snapshot.progress = body.progress
            sequence = live.snapshot.last_sequence
        self.hub.publish([JobEvent(job.id, sequence, utcnow(), body, ephemeral=True)])
