"""The job engine through the public API, on SQLite and on PostgreSQL: streaming order,
disconnects, resume, cancellation from another connection, idempotency, restarts, queue
positions, heartbeats and concurrency."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from limner.testing.providers import GatedImageGenerator
from limner.testing.providers import replacing_offline as gated_provider
from limner.testing.streams import collect, kinds, logged, status_details
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2
from limner.v1 import job_service_pb2 as jpb

pytestmark = pytest.mark.timeout(30)


def small(
    prompt: str = "a lantern", request_id: str = "", seed: int = 1
) -> ipb.GenerateImageRequest:
    return ipb.GenerateImageRequest(
        prompt=prompt,
        options=ipb.ImageOptions(width=96, height=96, seed=seed),
        request_id=request_id,
    )


async def first_event(call) -> job_pb2.JobEvent:
    async for response in call:
        return response.event
    raise AssertionError("stream ended before its first event")


async def until(call, predicate) -> list[job_pb2.JobEvent]:
    seen = []
    async for response in call:
        seen.append(response.event)
        if predicate(response.event):
            return seen
    raise AssertionError("stream ended before the expected event")


async def wait_state(server, name: str, state: int) -> job_pb2.Job:
    for _ in range(400):
        job = (await server.jobs.GetJob(jpb.GetJobRequest(name=name))).job
        if job.state == state:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never reached state {state}; last {job}")


async def test_disconnecting_mid_stream_does_not_stop_the_job(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=gated_provider(gated)) as server:
        call = server.images.GenerateImage(small())
        snapshot = await first_event(call)
        await gated.started.wait()
        call.cancel()  # the client goes away mid-job
        gated.gate.set()
        job = await wait_state(server, snapshot.job, job_pb2.JOB_STATE_SUCCEEDED)
        assert len(job.result.images) == 1
        assert not gated.cancelled.is_set()


async def test_watch_resume_returns_exactly_the_events_after_the_sequence(
    make_server, database_url
):
    async with make_server(database_url) as server:
        events = await collect(server.images.GenerateImage(small()))
        name = events[0].job
        full = logged(await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name))))
        assert [e.sequence for e in full] == [e.sequence for e in logged(events)]
        for after in (0, 1, 3, len(full) - 1, len(full)):
            resumed = await collect(
                server.jobs.WatchJob(jpb.WatchJobRequest(name=name, after_sequence=after))
            )
            assert kinds(resumed)[0] == "snapshot"
            assert resumed[0].snapshot.state == job_pb2.JOB_STATE_SUCCEEDED
            assert [e.sequence for e in logged(resumed)] == list(range(after + 1, len(full) + 1))
            assert [str(e) for e in logged(resumed)] == [str(e) for e in full[after:]]


async def test_resume_mid_job_loses_and_repeats_nothing(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=gated_provider(gated)) as server:
        call = server.images.GenerateImage(small())
        seen = await until(call, lambda e: e.progress.step == 1)
        call.cancel()
        name = seen[0].job
        last = max(e.sequence for e in logged(seen))
        gated.gate.set()
        rest = await collect(
            server.jobs.WatchJob(jpb.WatchJobRequest(name=name, after_sequence=last))
        )
        combined = [e.sequence for e in logged(seen)] + [e.sequence for e in logged(rest)]
        assert combined == list(range(1, combined[-1] + 1))
        assert kinds(rest)[-1] == "completed"


async def test_cancel_from_a_second_connection_reaches_the_provider(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=gated_provider(gated)) as server:
        call = server.images.GenerateImage(small())
        snapshot = await first_event(call)
        await gated.started.wait()
        async with server.new_channel() as other:
            from limner.v1 import job_service_pb2_grpc

            jobs = job_service_pb2_grpc.JobServiceStub(other)
            cancelled = (await jobs.CancelJob(jpb.CancelJobRequest(name=snapshot.job))).job
        assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
        assert gated.cancelled.is_set(), "the provider call was interrupted"
        rest = [response.event async for response in call]
        assert kinds(rest)[-1] == "cancelled"
        assert rest[-1].cancelled.reason == "cancelled by client"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await server.jobs.CancelJob(jpb.CancelJobRequest(name=snapshot.job))
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert status_details(raised.value)["ErrorInfo"].reason == "JOB_NOT_CANCELLABLE"


async def test_request_id_retry_returns_the_same_job(make_server, database_url):
    async with make_server(database_url) as server:
        first = await collect(server.images.GenerateImage(small(request_id="req-1")))
        again = await collect(server.images.GenerateImage(small(request_id="req-1")))
        assert first[0].job == again[0].job
        assert kinds(again)[-1] == "completed"
        assert again[-1].completed == first[-1].completed
        jobs = (await server.jobs.ListJobs(jpb.ListJobsRequest())).jobs
        assert [j.name for j in jobs] == [first[0].job]
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await collect(server.images.GenerateImage(small("another prompt", request_id="req-1")))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert status_details(raised.value)["ErrorInfo"].reason == "REQUEST_ID_CONFLICT"


async def test_concurrent_retries_with_one_request_id_create_one_job(make_server, database_url):
    async with make_server(database_url) as server:
        results = await asyncio.gather(
            *(collect(server.images.GenerateImage(small(request_id="same"))) for _ in range(8))
        )
        assert len({events[0].job for events in results}) == 1
        assert all(kinds(events)[-1] == "completed" for events in results)


async def test_restart_resumes_a_job_that_was_in_flight(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=gated_provider(gated)) as server:
        call = server.images.GenerateImage(small())
        name = (await first_event(call)).job
        await gated.started.wait()
        call.cancel()
    # The server stopped with the job still rendering; a new one picks it up.
    async with make_server(database_url) as server:
        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
        assert kinds(events)[-1] == "completed"
        codes = [e.warning.code for e in events if e.HasField("warning")]
        assert "JOB_INTERRUPTED" in codes and "JOB_RESUMED" in codes
        job = (await server.jobs.GetJob(jpb.GetJobRequest(name=name))).job
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED and job.attempt == 2
        sequences = [e.sequence for e in logged(events)]
        assert sequences == list(range(1, len(sequences) + 1))


async def test_restart_fails_a_job_out_of_attempts(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(
        database_url, providers=gated_provider(gated), jobs={"max_attempts": 1}
    ) as server:
        call = server.images.GenerateImage(small())
        name = (await first_event(call)).job
        await gated.started.wait()
        call.cancel()
    async with make_server(database_url, jobs={"max_attempts": 1}) as server:
        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
        assert kinds(events)[-1] == "failed"
        assert "restarted" in events[-1].failed.message
        job = (await server.jobs.GetJob(jpb.GetJobRequest(name=name))).job
        assert job.state == job_pb2.JOB_STATE_FAILED
        assert job.error.code == grpc.StatusCode.ABORTED.value[0]


async def test_jobs_wait_in_order_with_queue_positions(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(
        database_url,
        providers=gated_provider(gated),
        jobs={"default_provider_concurrency": 1, "queue_report_interval_s": 0},
    ) as server:
        first = server.images.GenerateImage(small("first"))
        await first_event(first)
        await gated.started.wait()
        second = server.images.GenerateImage(small("second"))
        queued_second = await until(second, lambda e: e.progress.queue_position > 0)
        third = server.images.GenerateImage(small("third"))
        queued_third = await until(third, lambda e: e.progress.queue_position > 0)
        assert all(e.transient for e in queued_third if e.progress.queue_position)
        assert queued_second[-1].progress.queue_position == 1
        assert queued_third[-1].progress.queue_position == 2
        gated.gate.set()
        rest_third = [r.event async for r in third]
        positions = [e.progress.queue_position for e in rest_third if e.progress.queue_position]
        assert positions == [1], "the third job moves up when the second starts"
        assert kinds(rest_third)[-1] == "completed"
        assert kinds([r.event async for r in second])[-1] == "completed"
        assert kinds([r.event async for r in first])[-1] == "completed"


async def test_idle_watch_gets_heartbeats(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(
        database_url, providers=gated_provider(gated), jobs={"heartbeat_interval_s": 0.1}
    ) as server:
        call = server.images.GenerateImage(small())
        # Heartbeats report the durable state: once the provider's first step is logged,
        # the job is RUNNING on disk too (its RUNNING save came before that step).
        seen = await until(call, lambda e: e.progress.step == 1)
        seen += await until(call, lambda e: e.HasField("heartbeat"))
        heartbeat = seen[-1]
        assert heartbeat.heartbeat.state == job_pb2.JOB_STATE_RUNNING
        assert heartbeat.sequence == max(e.sequence for e in logged(seen))
        gated.gate.set()
        assert kinds([r.event async for r in call])[-1] == "completed"


async def test_list_jobs_filters_and_pages(make_server, database_url):
    async with make_server(database_url) as server:
        names = []
        for index in range(5):
            events = await collect(server.images.GenerateImage(small(f"p{index}")))
            names.append(events[0].job)
        source = (await collect(server.images.GenerateImage(small("src"))))[-1]
        await collect(
            server.images.EditImage(
                ipb.EditImageRequest(source_asset=source.completed.images[0].asset, prompt="x")
            )
        )
        pages, token = [], ""
        while True:
            page = await server.jobs.ListJobs(
                jpb.ListJobsRequest(
                    page_size=2, page_token=token, kinds=[job_pb2.JOB_KIND_IMAGE_GENERATION]
                )
            )
            pages.append([j.name for j in page.jobs])
            token = page.next_page_token
            if not token:
                break
        flat = [name for page in pages for name in page]
        assert len(flat) == 6 and len(set(flat)) == 6
        assert flat[-5:] == list(reversed(names)), "newest first"
        edits = await server.jobs.ListJobs(jpb.ListJobsRequest(kinds=[job_pb2.JOB_KIND_IMAGE_EDIT]))
        assert len(edits.jobs) == 1
        running = await server.jobs.ListJobs(
            jpb.ListJobsRequest(states=[job_pb2.JOB_STATE_RUNNING])
        )
        assert running.jobs == []
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await server.jobs.ListJobs(
                jpb.ListJobsRequest(page_size=2, page_token=token or pages_token(pages))
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def pages_token(_pages):
    return "not-a-token"


async def test_many_concurrent_jobs_all_complete(make_server, database_url):
    async with make_server(database_url) as server:
        results = await asyncio.gather(
            *(collect(server.images.GenerateImage(small(f"c{i}", seed=i))) for i in range(24))
        )
        assert len({events[0].job for events in results}) == 24
        for events in results:
            assert kinds(events)[-1] == "completed"
            sequences = [e.sequence for e in logged(events)]
            assert sequences == list(range(1, len(sequences) + 1))


async def test_queue_positions_are_throttled_but_the_latest_arrives(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(
        database_url,
        providers=gated_provider(gated),
        jobs={"default_provider_concurrency": 1, "queue_report_interval_s": 0.3},
    ) as server:
        first = server.images.GenerateImage(small("first"))
        await first_event(first)
        await gated.started.wait()
        waiting = [server.images.GenerateImage(small(f"w{i}")) for i in range(3)]
        for call in waiting:
            await until(call, lambda e: e.progress.queue_position > 0)
        last = waiting[-1]
        # Two slots free within one interval: the last job moves 3 -> 2 -> 1 but is told
        # only once more, and that report is the newest position.
        gated.gate.clear()
        gated.started.clear()
        gated.gate.set()
        seen = await until(last, lambda e: e.progress.stage == job_pb2.JOB_STAGE_PREPARING)
        positions = [e.progress.queue_position for e in seen if e.progress.queue_position]
        # Unthrottled it would be told [2, 1]; throttled, at most one newer position.
        assert len(positions) <= 1 and all(p < 3 for p in positions), positions
        for call in (first, *waiting):
            assert kinds([r.event async for r in call])[-1] == "completed"
