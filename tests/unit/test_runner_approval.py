"""Jobs that pause for approval: the runner and a real SQLite store, no RPC layer."""

from __future__ import annotations

import pytest

from limner.domain.jobs import JobKind, JobResult, JobState
from limner.domain.models import SceneMode
from limner.domain.specs import Approval, ImageSpec, SceneSpec
from limner.errors import FailedPrecondition
from limner.jobs import AwaitApproval, JobContext, JobHandler, JobRunner, NewJob
from limner.jobs.hub import EventHub
from limner.jobs.runner import RunnerSettings
from limner.persistence import Database
from limner.persistence.jobs import SqlJobStore


@pytest.fixture
async def runner(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await database.migrate()
    store = SqlJobStore(database)
    runner = JobRunner(store, EventHub(), RunnerSettings())

    async def handler(context: JobContext, spec: SceneSpec) -> JobResult:
        if not spec.approved_prompt:
            raise AwaitApproval("drafted prompt", scene="scenes/s1")
        return JobResult(text=f"rendered {spec.approved_prompt}")

    await runner.start({JobKind.SCENE: JobHandler(SceneSpec, handler)})
    yield runner
    await runner.shutdown(0)
    await store.close()
    await database.close()


def scene_job() -> NewJob:
    image = ImageSpec(
        prompt="scene", model_id="m", width=64, height=64, seed=1, seed_supported=True
    )
    spec = SceneSpec(
        image=image,
        scene_id="s1",
        chat_id="c1",
        message_id="m1",
        attachment_id="a1",
        mode=SceneMode.ASK_FIRST,
    )
    return NewJob(
        workspace_id="w", kind=JobKind.SCENE, model_id="m", provider_id="p", prompt="", spec=spec
    )


async def wait_until(runner: JobRunner, job_id: str, state: JobState) -> None:
    import asyncio

    for _ in range(200):
        job = await runner.get_job("w", job_id)
        if job is not None and job.state is state and job_id not in runner._tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{job_id} never reached {state}")


async def test_pause_then_resume_with_an_updated_spec(runner):
    job, _ = await runner.submit(scene_job())
    await wait_until(runner, job.id, JobState.AWAITING_APPROVAL)
    events = await runner.list_events(job.id, after_sequence=0, limit=100)
    kinds = [type(e.body).__name__ for e in events]
    assert "ApprovalRequiredEvent" in kinds and not any(e.terminal for e in events)

    await runner.resume("w", job.id, Approval("edited"))
    await wait_until(runner, job.id, JobState.SUCCEEDED)
    done = await runner.get_job("w", job.id)
    assert done is not None and done.result is not None
    assert done.result.text == "rendered edited"
    assert isinstance(done.spec, SceneSpec)
    assert done.spec.approved_prompt == "edited", "the approved spec is stored"
    sequences = [e.sequence for e in await runner.list_events(job.id, after_sequence=0, limit=100)]
    assert sequences == list(range(1, len(sequences) + 1))

    with pytest.raises(FailedPrecondition) as raised:
        await runner.resume("w", job.id, Approval("again"))
    assert raised.value.reason == "JOB_NOT_AWAITING_APPROVAL"


async def test_a_waiting_job_can_be_cancelled(runner):
    job, _ = await runner.submit(scene_job())
    await wait_until(runner, job.id, JobState.AWAITING_APPROVAL)
    cancelled = await runner.cancel("w", job.id, "rejected")
    assert cancelled.state is JobState.CANCELLED
    events = await runner.list_events(job.id, after_sequence=0, limit=100)
    assert events[-1].terminal and type(events[-1].body).__name__ == "CancelledEvent"
