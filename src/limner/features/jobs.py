"""Reading, following and cancelling jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from limner.domain.jobs import Job, JobKind, JobState, WatchItem
from limner.errors import NotFound
from limner.jobs import JobEngine
from limner.jobs.store import JobPage


class JobQueries:
    def __init__(self, engine: JobEngine, heartbeat_interval_s: float) -> None:
        self.engine = engine
        self.heartbeat_interval_s = heartbeat_interval_s

    async def get(self, workspace_id: str, job_id: str) -> Job:
        job = await self.engine.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound.resource("job", f"jobs/{job_id}")
        return job

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage:
        return await self.engine.list_jobs(
            workspace_id, states=states, kinds=kinds, page_size=page_size, page_token=page_token
        )

    def watch(
        self, workspace_id: str, job_id: str, after_sequence: int
    ) -> AsyncIterator[WatchItem]:
        return self.engine.watch(
            workspace_id,
            job_id,
            after_sequence=after_sequence,
            heartbeat_interval_s=self.heartbeat_interval_s,
        )

    async def cancel(self, workspace_id: str, job_id: str) -> Job:
        return await self.engine.cancel(workspace_id, job_id, "cancelled by client")
