"""The job log: progress is written behind the job, but nobody sees an event before it is
durable, events keep their order, and a failed write stops the job. Runner and a real
SQLite store, no RPC layer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from limner.domain.jobs import (
    FailedEvent,
    Job,
    JobEvent,
    JobKind,
    JobResult,
    JobStage,
    JobState,
)
from limner.domain.specs import ImageSpec
from limner.jobs import JobContext, JobHandler, JobRunner, NewJob
from limner.jobs.hub import EventHub
from limner.jobs.runner import RunnerSettings
from limner.persistence import Database
from limner.persistence.jobs import SqlJobStore

PROGRESS_EVENTS = 40


class RecordingStore(SqlJobStore):
    """Notes which sequences are durable, and fails the save numbered ``fail_save``."""

    def __init__(self, database: Database, fail_save: int = 0) -> None:
        super().__init__(database)
        self.durable: set[tuple[str, int]] = set()
        self.saves = 0
        self.fail_save = fail_save

    def save(self, job: Job, events: Sequence[JobEvent]) -> asyncio.Future[None]:
        self.saves += 1
        if self.saves == self.fail_save:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(OSError("disk full"))
            return failed
        future = super().save(job, events)
        keys = [(event.job_id, event.sequence) for event in events]
        future.add_done_callback(lambda done: done.exception() or self.durable.update(keys))
        return future


class CheckingHub(EventHub):
    """Fails the test if an event reaches watchers before it is durable."""

    def __init__(self, store: RecordingStore) -> None:
        super().__init__()
        self.store = store
        self.seen: list[JobEvent] = []

    def publish(self, events: Sequence[JobEvent]) -> None:  # type: ignore[override]
        for event in events:
            if not event.ephemeral:
                assert (event.job_id, event.sequence) in self.store.durable, event
                self.seen.append(event)
        super().publish(events)


async def chatty(context: JobContext, _spec: ImageSpec) -> JobResult:
    for step in range(PROGRESS_EVENTS):
        await context.progress(JobStage.GENERATING, step=step + 1, total_steps=PROGRESS_EVENTS)
    return JobResult(text="done")


async def two_steps_apart(context: JobContext, _spec: ImageSpec) -> JobResult:
    await context.progress(JobStage.GENERATING, step=1, total_steps=2)
    await asyncio.sleep(0.05)
    await context.progress(JobStage.GENERATING, step=2, total_steps=2)
    return JobResult(text="should not get here")


@pytest.fixture
async def database(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await database.migrate()
    yield database
    await database.close()


async def run_one(database: Database, handler, fail_save: int = 0):
    store = RecordingStore(database, fail_save)
    hub = CheckingHub(store)
    runner = JobRunner(store, hub, RunnerSettings())
    await runner.start({JobKind.IMAGE_GENERATION: JobHandler(ImageSpec, handler)})
    try:
        job, _ = await runner.submit(
            NewJob(
                workspace_id="w",
                kind=JobKind.IMAGE_GENERATION,
                model_id="m",
                provider_id="p",
                prompt="",
                spec=ImageSpec(
                    prompt="p", model_id="m", width=64, height=64, seed=1, seed_supported=True
                ),
            )
        )
        await asyncio.wait_for(asyncio.gather(*runner._tasks.values()), 10)
        stored = await store.get_job("w", job.id)
        logged = await store.list_events(job.id, after_sequence=0, limit=1000)
        return stored, logged, hub.seen
    finally:
        await runner.shutdown(0)
        await store.close()


async def test_watchers_see_every_event_in_order_and_only_once_durable(database):
    stored, logged, seen = await run_one(database, chatty)

    assert stored is not None and stored.state is JobState.SUCCEEDED
    sequences = [event.sequence for event in logged]
    assert sequences == list(range(1, len(logged) + 1))
    # preparing, the 40 progress events and the completion, after the first (stored at
    # creation, never published)
    assert len(logged) == PROGRESS_EVENTS + 3
    assert [event.sequence for event in seen] == sequences[1:]
    assert stored.last_sequence == sequences[-1]


async def test_a_failed_background_write_stops_the_job(database):
    # Saves: 1 preparing, 2 the first progress (fails), 3 the failure itself.
    stored, logged, seen = await run_one(database, two_steps_apart, fail_save=2)

    assert stored is not None and stored.state is JobState.FAILED
    assert isinstance(logged[-1].body, FailedEvent)
    assert logged[-1].body.error.reason == "JOB_LOG_WRITE_FAILED"
    assert all(event.sequence != 3 for event in seen)  # the lost write was never shown
