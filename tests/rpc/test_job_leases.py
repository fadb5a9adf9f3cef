"""Two server processes on one database (ARCHITECTURE §7): a job runs in exactly one of
them; the other leaves it alone, forwards a cancellation to it, and takes it over when
its process stops renewing its lease."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from limner.testing.providers import GatedImageGenerator, replacing_offline, solid_png
from limner.testing.streams import collect, kinds
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2
from limner.v1 import job_service_pb2 as jpb

# Leases short enough for a test, long enough that a loaded CI machine renews them in time.
LEASES = {"heartbeat_interval_s": 0.5, "preview_interval_s": 0.0, "lease_s": 1.5}


async def start_gated_job(server) -> str:
    call = server.images.GenerateImage(ipb.GenerateImageRequest(prompt="a lighthouse"))
    first = await anext(aiter(call))
    call.cancel()  # the job runs on; only this stream goes
    return first.event.job


async def state_of(server, name: str) -> int:
    return (await server.jobs.GetJob(jpb.GetJobRequest(name=name))).job.state


async def test_a_second_process_leaves_a_running_job_alone(make_server, database_url):
    first, second = GatedImageGenerator(), GatedImageGenerator()
    async with make_server(database_url, providers=replacing_offline(first), jobs=LEASES) as one:
        name = await start_gated_job(one)
        await first.started.wait()
        async with make_server(
            database_url, providers=replacing_offline(second), jobs=LEASES
        ) as two:
            await asyncio.sleep(2.0)  # several lease rounds on both sides
            assert second.calls == 0 and first.calls == 1
            watching = asyncio.ensure_future(
                collect(two.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
            )
            first.gate.set()
            events = await asyncio.wait_for(watching, 10)
            assert kinds(events)[-1] == "completed"
            assert second.calls == 0


async def test_cancel_reaches_the_process_running_the_job(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=replacing_offline(gated), jobs=LEASES) as one:
        name = await start_gated_job(one)
        await gated.started.wait()
        async with make_server(database_url, jobs=LEASES) as two:
            job = (await two.jobs.CancelJob(jpb.CancelJobRequest(name=name))).job
            assert job.state == job_pb2.JOB_STATE_CANCELLED
            assert gated.cancelled.is_set(), "the provider call was interrupted where it ran"
            events = await collect(one.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
            assert kinds(events).count("cancelled") == 1
            assert kinds(events)[-1] == "cancelled"


async def test_a_stalled_process_loses_its_job_to_a_live_one(make_server, database_url):
    stalled_provider = GatedImageGenerator()
    async with make_server(
        database_url, providers=replacing_offline(stalled_provider), jobs=LEASES
    ) as one:
        name = await start_gated_job(one)
        await stalled_provider.started.wait()

        # Process one stops renewing (as a process that hangs or loses the database does).
        store = one.app.runner.store
        renew = store.renew_leases

        async def unreachable(job_ids):
            raise OSError("database unreachable")

        store.renew_leases = unreachable
        live_provider = GatedImageGenerator(solid_png())
        live_provider.gate.set()
        async with make_server(
            database_url, providers=replacing_offline(live_provider), jobs=LEASES
        ) as two:
            events = await asyncio.wait_for(
                collect(two.jobs.WatchJob(jpb.WatchJobRequest(name=name))), 10
            )
            assert kinds(events)[-1] == "completed"
            assert live_provider.calls == 1
            warnings = [e.warning.code for e in events if e.HasField("warning")]
            assert "JOB_RESUMED" in warnings

            # Process one comes back, learns the job is not its own any more and stops
            # it without writing to it.
            store.renew_leases = renew
            await asyncio.wait_for(stalled_provider.cancelled.wait(), 5)
            await asyncio.sleep(0.3)
            after = await collect(two.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
            logged = [e for e in after if not e.transient]
            assert kinds(logged).count("completed") == 1
            assert logged[-1].WhichOneof("event") == "completed"
            assert await state_of(two, name) == job_pb2.JOB_STATE_SUCCEEDED


async def test_a_cancel_for_a_job_nobody_runs_ends_it_here(make_server, database_url):
    gated = GatedImageGenerator()
    async with make_server(database_url, providers=replacing_offline(gated), jobs=LEASES) as one:
        name = await start_gated_job(one)
        await gated.started.wait()
        # The job's process stops on purpose; its lease is released, so the cancellation
        # is not forwarded anywhere.
    async with make_server(database_url, jobs={**LEASES, "max_attempts": 0}) as two:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await two.jobs.CancelJob(jpb.CancelJobRequest(name=name))
        # Claimed at start-up and failed (no attempts left) before the cancel arrived.
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await state_of(two, name) == job_pb2.JOB_STATE_FAILED


async def test_watchers_on_another_process_hear_at_once_on_postgresql(make_server, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite such watchers use idle ticks")
    slow_ticks = {**LEASES, "heartbeat_interval_s": 30.0}
    gated = GatedImageGenerator()
    async with make_server(
        database_url, providers=replacing_offline(gated), jobs=slow_ticks
    ) as one:
        name = await start_gated_job(one)
        await gated.started.wait()
        async with make_server(database_url, jobs=slow_ticks) as two:
            stream = two.jobs.WatchJob(jpb.WatchJobRequest(name=name))
            seen = []

            async def follow() -> None:
                async for response in stream:
                    seen.append(response.event)

            following = asyncio.ensure_future(follow())
            await asyncio.sleep(0.3)  # snapshot and replay are in
            gated.gate.set()
            # Far sooner than the 30 s idle tick: the notification brought it.
            await asyncio.wait_for(following, 5)
            assert kinds(seen)[-1] == "completed"
            steps = [e.progress.step for e in seen if e.progress.total_steps]
            assert 2 in steps, "the events logged after the watch began came too"
