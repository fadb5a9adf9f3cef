"""Job leases in the store: claims are exclusive, and a process that lost a job can no
longer write to it. Two stores (two processes) on one real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from limner.domain.jobs import (
    Job,
    JobEvent,
    JobKind,
    JobStage,
    JobState,
    Progress,
    ProgressEvent,
)
from limner.domain.specs import ImageSpec
from limner.jobs.store import LeaseLost
from limner.persistence import Database
from limner.persistence.jobs import SqlJobStore


@pytest.fixture
async def database(database_url):
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


def new_job() -> Job:
    now = datetime.now(UTC)
    return Job(
        id="j" * 32,
        workspace_id="w",
        kind=JobKind.IMAGE_GENERATION,
        state=JobState.RUNNING,
        progress=Progress(stage=JobStage.QUEUED),
        model_id="m",
        provider_id="p",
        prompt="",
        spec=ImageSpec(prompt="p", model_id="m", width=64, height=64, seed=1, seed_supported=True),
        create_time=now,
        update_time=now,
    )


def progress(job: Job, message: str) -> list[JobEvent]:
    job.last_sequence += 1
    body = ProgressEvent(Progress(stage=JobStage.GENERATING, message=message))
    return [JobEvent(job.id, job.last_sequence, datetime.now(UTC), body)]


async def test_a_claimed_job_refuses_its_old_owner(database):
    first = SqlJobStore(database, owner="first", lease_s=0.2)
    second = SqlJobStore(database, owner="second", lease_s=30)
    job, _ = await first.create_job(
        new_job(), ProgressEvent(Progress(stage=JobStage.QUEUED)), request_id="", request_hash=""
    )
    assert await second.claim_jobs() == [], "the first lease is still live"
    await asyncio.sleep(0.3)

    claims = await asyncio.gather(second.claim_jobs(), second.claim_jobs())
    assert sorted(len(c) for c in claims) == [0, 1], "one claim wins"
    ((claimed, cancel_reason),) = [c for claim in claims for c in claim]
    assert (claimed.id, cancel_reason) == (job.id, "")

    with pytest.raises(LeaseLost):
        await first.save(job, progress(job, "stale"))
    news = await first.renew_leases([job.id])
    assert news.lost == {job.id}

    claimed.last_sequence = 1
    await second.save(claimed, progress(claimed, "fresh"))
    events = await second.list_events(job.id, after_sequence=0, limit=10)
    assert [e.body.progress.message for e in events[1:]] == ["fresh"]
    stored = await second.get_job("w", job.id)
    assert stored is not None and stored.last_sequence == 2
    await first.close()
    await second.close()


async def test_a_cancel_request_reaches_the_owner(database):
    owner = SqlJobStore(database, owner="owner", lease_s=30)
    other = SqlJobStore(database, owner="other", lease_s=30)
    job, _ = await owner.create_job(
        new_job(), ProgressEvent(Progress(stage=JobStage.QUEUED)), request_id="", request_hash=""
    )
    assert not await owner.request_cancel(job.id, "mine"), "not forwarded to oneself"
    assert await other.request_cancel(job.id, "stop it")
    news = await owner.renew_leases([job.id])
    assert news.cancel == {job.id: "stop it"} and not news.lost
    assert not await other.take(job.id), "a live lease cannot be taken"
    await owner.release([job.id])
    assert await other.take(job.id)


async def test_an_approval_is_taken_by_one_process_only(database):
    first = SqlJobStore(database, owner="first")
    second = SqlJobStore(database, owner="second")
    waiting = new_job()
    waiting.state = JobState.AWAITING_APPROVAL
    job, _ = await first.create_job(
        waiting, ProgressEvent(Progress(stage=JobStage.QUEUED)), request_id="", request_hash=""
    )
    taken = await asyncio.gather(first.take_approved(job.id), second.take_approved(job.id))
    assert sorted(taken) == [False, True]
    stored = await first.get_job("w", job.id)
    assert stored is not None and stored.state is JobState.QUEUED
