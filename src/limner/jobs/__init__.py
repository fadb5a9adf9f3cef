"""Running long work as durable jobs: the engine port (``engine``) and its in-process
implementation (``runner``: job lifecycle; ``log``: the event-log writer; ``leases``:
several processes on one database), plus watch with resume."""

from limner.jobs.engine import (
    AwaitApproval,
    HandlerTable,
    JobContext,
    JobEngine,
    JobHandler,
    NewJob,
)
from limner.jobs.log import JobChanges
from limner.jobs.runner import JobRunner, RunnerSettings
from limner.jobs.store import JobStore
from limner.jobs.watch import watch_job

__all__ = [
    "AwaitApproval",
    "HandlerTable",
    "JobChanges",
    "JobContext",
    "JobEngine",
    "JobHandler",
    "JobRunner",
    "JobStore",
    "NewJob",
    "RunnerSettings",
    "watch_job",
]
