"""What the job engine needs from storage. ``limner.persistence`` implements it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from limner.domain.jobs import EventBody, Job, JobEvent, JobKind, JobState


@dataclass(frozen=True, kw_only=True)
class JobPage:
    jobs: list[Job]
    next_page_token: str


class LeaseLost(Exception):
    """A save for a job another process has claimed (this one stalled past its lease):
    nothing was written."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"jobs/{job_id} was claimed by another process")
        self.job_id = job_id


@dataclass(frozen=True)
class LeaseNews:
    """What renewing this process's leases found: cancellations asked for by other
    processes (job id -> reason), and jobs another process has claimed meanwhile."""

    cancel: dict[str, str] = field(default_factory=dict)
    lost: frozenset[str] = frozenset()


class JobReader(Protocol):
    """Reading a job and its log (the store, or the runner's view of jobs it runs)."""

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None: ...

    async def list_events(
        self, job_id: str, *, after_sequence: int, limit: int
    ) -> list[JobEvent]: ...


class JobStore(JobReader, Protocol):
    async def create_job(
        self, job: Job, first_event: EventBody, *, request_id: str, request_hash: str
    ) -> tuple[Job, bool]:
        """Stores a new job with its first event (sequence 1).

        With a ``request_id``, a job created earlier with the same id is returned instead
        (``False`` as the second value); a different ``request_hash`` raises
        ``RequestIdConflict``.
        """
        ...

    def save(self, job: Job, events: Sequence[JobEvent]) -> asyncio.Future[None]:
        """Queues ``events`` (already numbered) and the job row as ``job`` is now. Fails
        with :class:`LeaseLost`, writing nothing, if another process claimed the job.

        The runner owns a running job and has already folded the events into it, so the row
        is captured whole when this is called. Saves commit in the order they were queued
        (concurrent ones share one commit); the returned future is done once the save is
        durable. Cancelling it does not withdraw the save.
        """
        ...

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage: ...

    async def recent_run_times(
        self, model_id: str, kinds: Sequence[JobKind], limit: int
    ) -> list[float]:
        """Seconds from start to end of the model's latest succeeded jobs of these kinds,
        newest first (what ``limner.jobs.eta`` learns ETAs from)."""
        ...

    async def claim_jobs(self, limit: int = 100) -> list[tuple[Job, str]]:
        """Takes over unfinished jobs (not those waiting for approval) whose lease ran out:
        their process stopped or died. Each comes with the reason of a cancellation asked
        for meanwhile ("" if none). No two processes ever claim the same job."""
        ...

    async def renew_leases(self, job_ids: Sequence[str]) -> LeaseNews:
        """Extends this process's leases on the jobs it runs."""
        ...

    async def release(self, job_ids: Sequence[str]) -> None:
        """Gives up this process's leases (a graceful stop), so they can be claimed now."""
        ...

    async def take(self, job_id: str) -> bool:
        """Makes this process the job's owner if nobody else runs it (it waits for
        approval, its lease ran out, or it is ours already)."""
        ...

    async def take_approved(self, job_id: str) -> bool:
        """Takes a job waiting for approval and marks it queued, in one step: of two
        processes approving it at once, only one gets ``True``."""
        ...

    async def request_cancel(self, job_id: str, reason: str) -> bool:
        """Asks the process that holds a live lease on the job to cancel it; ``False`` if
        no other process does."""
        ...

    async def close(self) -> None:
        """Flushes pending saves and stops background writers."""
        ...
