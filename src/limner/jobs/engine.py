"""The job engine port: what use cases need to run long work as durable jobs.

Use cases plan a job (a typed spec, checked before the job exists) and submit it; the
engine runs the handler of the job's kind with that spec, logs its events, and ends it
exactly once. Today the in-process ``JobRunner`` implements this; a durable-execution
engine can implement it too, since a handler is a plain async function of (context, spec).

The kind -> (spec type, handler) table is written once, at the composition root, and handed
to the engine when it starts (``JobEngine.start``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from limner.domain.jobs import (
    Job,
    JobKind,
    JobResult,
    JobStage,
    JobState,
    JobWarning,
    Progress,
    Usage,
    WatchItem,
)
from limner.domain.specs import Approval, JobSpec
from limner.domain.webhooks import WebhookSubscription
from limner.jobs.store import JobPage

SpecT = TypeVar("SpecT", bound=JobSpec)


class JobContext(Protocol):
    """What a running handler sees: its job, and the ways to report on it."""

    @property
    def job(self) -> Job: ...

    async def progress(
        self,
        stage: JobStage,
        *,
        fraction: float | None = None,
        step: int = 0,
        total_steps: int = 0,
        eta_s: float | None = None,
        message: str = "",
    ) -> None: ...

    def estimate(self, progress: Progress) -> None:
        """Progress that is a guess, not history (a learnt ETA): shown, never logged."""
        ...

    def preview_due(self) -> bool:
        """Whether a preview may be sent now (previews are throttled per job)."""
        ...

    async def preview(self, asset: str, step: int = 0) -> None: ...

    async def text_delta(self, text: str) -> None: ...

    async def warn(self, code: str, message: str, field: str = "") -> None: ...

    async def usage(self, usage: Usage) -> None:
        """Records what one provider call used (summed into ``Job.usage``)."""
        ...


@dataclass(frozen=True)
class JobHandler(Generic[SpecT]):
    """How jobs of one kind run: the spec type they are planned with, and the function that
    runs one from its spec (again after a restart, so it must not rely on anything else)."""

    spec_type: type[SpecT]
    run: Callable[[JobContext, SpecT], Awaitable[JobResult]]


HandlerTable = Mapping[JobKind, JobHandler[Any]]


class AwaitApproval(Exception):
    """Raised by a handler to pause its job until ``JobEngine.resume`` (ask-first scenes).

    The engine logs ``approval_required``, leaves the job in AWAITING_APPROVAL without a
    terminal event and ends the run; nothing runs while the job waits. Only jobs whose spec
    is ``Approvable`` may pause.
    """

    def __init__(self, prompt: str, scene: str = "") -> None:
        super().__init__(prompt)
        self.prompt = prompt
        self.scene = scene


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """Everything needed to create a job: ``spec`` is what it runs from, now or after a
    restart."""

    workspace_id: str
    kind: JobKind
    model_id: str
    provider_id: str
    prompt: str
    spec: JobSpec
    target: str = ""
    request_id: str = ""
    request_hash: str = ""
    warnings: tuple[JobWarning, ...] = ()
    # Where to post the job's events (the request's webhook); None: the workspace default.
    webhook: WebhookSubscription | None = None


class JobEngine(Protocol):
    async def start(self, handlers: HandlerTable) -> None:
        """Starts running jobs with ``handlers``: those left unfinished by a stopped or dead
        process first, then every job submitted from now on."""
        ...

    async def shutdown(self, grace_s: float) -> None:
        """Stops accepting jobs; running ones get ``grace_s``, then are left to resume."""
        ...

    async def submit(self, new: NewJob) -> tuple[Job, bool]:
        """Creates and starts a job, or returns the job an earlier request with the same
        ``request_id`` created (second value ``False``)."""
        ...

    async def cancel(self, workspace_id: str, job_id: str, reason: str) -> Job: ...

    async def resume(self, workspace_id: str, job_id: str, approval: Approval) -> Job:
        """Runs a job that waits for approval again, its spec approved with ``approval``."""
        ...

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None: ...

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage: ...

    def watch(
        self, workspace_id: str, job_id: str, *, after_sequence: int, heartbeat_interval_s: float
    ) -> AsyncIterator[WatchItem]:
        """A snapshot, the logged events after ``after_sequence``, then live events (with
        heartbeats) until the terminal one."""
        ...
