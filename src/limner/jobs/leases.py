"""Several server processes on one database: each running job is leased by one process.

The process running a job renews its lease every third of ``lease_s``. A job whose lease
ran out (its process stopped or died) is claimed by the next process to look; a process
that stalled past its lease finds the job taken (``LeaseLost`` on its next save) and stops
its copy. A ``CancelJob`` that reaches a process not running the job is stored as a
request, which the owner sees when it renews.

This is the in-process engine's own scale-out protocol (ARCHITECTURE §7 plans to retire it
in favour of a durable-execution engine); the runner uses it through this one class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from limner.domain.jobs import Job
from limner.errors import Unavailable
from limner.jobs.store import JobStore
from limner.observability import tracing

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(
        self,
        store: JobStore,
        lease_s: float,
        *,
        running: Callable[[], Iterable[str]],
        on_lost: Callable[[str], None],
        on_cancel_requested: Callable[[str, str], None],
        on_claimed: Callable[[Job, str], Awaitable[None]],
        claim_interval_s: float | None = None,
    ) -> None:
        self.store = store
        self.lease_s = lease_s
        # How often to look for jobs to claim: those a stopping process released are
        # taken within this, those of a dead process within lease_s plus this. Leases are
        # renewed every third of lease_s whatever it is.
        self.claim_interval_s = min(claim_interval_s or lease_s / 3, lease_s / 3)
        self.problem = ""  # why the last round failed ("" when it worked)
        self.last_round = time.monotonic()
        self._running = running
        self._on_lost = on_lost
        self._on_cancel_requested = on_cancel_requested
        self._on_claimed = on_claimed
        self._task: asyncio.Task[None] | None = None
        self.claiming = True

    def start(self) -> None:
        if self._task is None:
            self.last_round = time.monotonic()
            self._task = asyncio.create_task(self._keep(), name="job-leases")

    def stop(self) -> None:
        self.claiming = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def claim(self) -> None:
        """Takes the jobs whose lease ran out (or that were released) and hands each to
        ``on_claimed`` with the cancellation reason asked for meanwhile, if any."""
        if not self.claiming:
            return
        running = set(self._running())
        with tracing.untraced():  # polled every round: no trace of its own each time
            claimed = await self.store.claim_jobs()
        for job, cancel_reason in claimed:
            if job.id in running:
                continue  # ours already (a lease renewed late)
            with tracing.continuing(job):  # joins the trace of the RPC that submitted it
                await self._on_claimed(job, cancel_reason)

    async def _keep(self) -> None:
        renew_every = self.lease_s / 3
        next_renewal = time.monotonic() + renew_every
        while True:
            await asyncio.sleep(self.claim_interval_s)
            try:
                if time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + renew_every
                    with tracing.untraced():
                        news = await self.store.renew_leases(list(self._running()))
                    for job_id in news.lost:
                        self._on_lost(job_id)
                    for job_id, reason in news.cancel.items():
                        self._on_cancel_requested(job_id, reason)
                await self.claim()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be away for a moment; try again
                if not self.problem:
                    log.warning("could not renew or claim job leases", exc_info=True)
                self.problem = f"could not renew or claim job leases: {error}"
            else:
                if self.problem:
                    log.info("job leases renewed and claimed again")
                self.problem = ""
            self.last_round = time.monotonic()

    def check(self) -> None:
        """Raises unless the lease rounds run and the last one worked (for health)."""
        if self._task is None or self._task.done():
            raise RuntimeError("the job lease keeper is not running")
        if self.problem:
            raise RuntimeError(self.problem)
        late = time.monotonic() - self.last_round
        if late > self.lease_s / 3 + 2 * self.claim_interval_s:
            raise RuntimeError(f"no lease round has finished for {late:.0f} s")

    async def await_end_elsewhere(self, workspace_id: str, job_id: str) -> None:
        """Waits for the process running a job to end it (after a cancellation request)."""
        deadline = time.monotonic() + 2 * self.lease_s
        while time.monotonic() < deadline:
            job = await self.store.get_job(workspace_id, job_id)
            if job is None or job.state.terminal:
                return
            await asyncio.sleep(min(0.2, self.lease_s / 10))
        raise Unavailable(
            f"jobs/{job_id} runs in another server process, which has not ended it yet; "
            "it will be cancelled when that process renews or loses its lease",
            reason="JOB_CANCEL_PENDING",
            metadata={"job": f"jobs/{job_id}"},
            retry_after_s=self.lease_s / 3,
        )

    async def release(self, job_ids: list[str]) -> None:
        """Lets another process (or the next start) claim these jobs at once."""
        try:
            with tracing.untraced():  # lease bookkeeping of several jobs: in no one's trace
                await self.store.release(job_ids)
        except Exception:  # their leases run out by themselves
            log.warning("could not release the leases of interrupted jobs", exc_info=True)
