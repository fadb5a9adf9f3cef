"""How a running job reports: the runner's ``JobContext``, and throttled queue positions."""

from __future__ import annotations

import asyncio
import time

from limner.domain.jobs import (
    Job,
    JobStage,
    JobWarning,
    PreviewEvent,
    Progress,
    ProgressEvent,
    TextDeltaEvent,
    Usage,
    UsageEvent,
    WarningEvent,
)
from limner.jobs.log import JobLog


class QueueReporter:
    """Queue positions change for every waiting job whenever a slot frees, so with n jobs
    waiting a naive report costs n^2 messages. Positions are state, not history: they are
    published (not logged) at most once per interval per job, the latest one last."""

    def __init__(self, log: JobLog, job: Job, interval_s: float) -> None:
        self.log = log
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
            self.log.publish_ephemeral(self.job, ProgressEvent(self.latest))
            self.latest = None

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.latest = None


class RunnerContext:
    """The runner's ``JobContext``: reports go straight into the job's log."""

    def __init__(self, log: JobLog, job: Job, preview_interval_s: float) -> None:
        self._log = log
        self._job = job
        self._preview_interval_s = preview_interval_s
        self._last_preview = 0.0

    @property
    def job(self) -> Job:
        return self._job

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
        await self._log.append(self._job, [ProgressEvent(progress)], durable=False)

    def estimate(self, progress: Progress) -> None:
        self._log.publish_ephemeral(self._job, ProgressEvent(progress))

    def preview_due(self) -> bool:
        return time.monotonic() - self._last_preview >= self._preview_interval_s

    async def preview(self, asset: str, step: int = 0) -> None:
        self._last_preview = time.monotonic()
        await self._log.append(self._job, [PreviewEvent(asset, step)], durable=False)

    async def text_delta(self, text: str) -> None:
        if text:
            await self._log.append(self._job, [TextDeltaEvent(text)], durable=False)

    async def warn(self, code: str, message: str, field: str = "") -> None:
        await self._log.append(
            self._job, [WarningEvent(JobWarning(code, message, field))], durable=False
        )

    async def usage(self, usage: Usage) -> None:
        self._log.metrics.usage(self._job, usage)
        await self._log.append(self._job, [UsageEvent(usage)], durable=False)
