"""What the job engine needs from storage. ``limner.persistence`` implements it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from limner.domain.jobs import EventBody, Job, JobEvent, JobKind, JobState


@dataclass(frozen=True, kw_only=True)
class JobPage:
    jobs: list[Job]
    next_page_token: str


@dataclass(frozen=True, kw_only=True)
class JobChanges:
    """Fields of a job row that change together with an appended event."""

    state: JobState | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    attempt: int | None = None


class JobStore(Protocol):
    async def create_job(
        self, job: Job, first_event: EventBody, *, request_id: str, request_hash: str
    ) -> tuple[Job, bool]:
        """Stores a new job with its first event (sequence 1).

        With a ``request_id``, a job created earlier with the same id is returned instead
        (``False`` as the second value); a different ``request_hash`` raises
        ``RequestIdConflict``.
        """
        ...

    async def append_events(
        self,
        job_id: str,
        first_sequence: int,
        events: Sequence[EventBody],
        changes: JobChanges,
        *,
        record_warnings: bool = True,
    ) -> list[JobEvent]:
        """Appends events numbered from ``first_sequence`` and folds them into the job row."""
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

    async def list_events(
        self, job_id: str, *, after_sequence: int, limit: int
    ) -> list[JobEvent]: ...

    async def unfinished_jobs(self) -> list[Job]:
        """Every job not in a terminal state, across workspaces (for restart recovery)."""
        ...
