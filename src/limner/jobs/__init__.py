"""The job engine: runner-owned tasks, durable event logs, watch with resume."""

from limner.jobs.runner import (
    AwaitApproval,
    JobChanges,
    JobContext,
    JobHandler,
    JobRunner,
    NewJob,
)
from limner.jobs.store import JobStore
from limner.jobs.watch import watch_job

__all__ = [
    "AwaitApproval",
    "JobChanges",
    "JobContext",
    "JobHandler",
    "JobRunner",
    "JobStore",
    "NewJob",
    "watch_job",
]
