"""WatchJob: snapshot first, replay after a sequence, then follow live until the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from limner.domain.jobs import Heartbeat, JobEvent, Snapshot, WatchItem
from limner.errors import InvalidArgument, NotFound
from limner.jobs.hub import EventHub
from limner.jobs.store import JobReader

REPLAY_BATCH = 500


async def watch_job(
    store: JobReader,
    hub: EventHub,
    *,
    workspace_id: str,
    job_id: str,
    after_sequence: int,
    heartbeat_interval_s: float,
) -> AsyncIterator[WatchItem]:
    """Yields a snapshot, the logged events after ``after_sequence`` in order, then live
    events, with heartbeats while idle; returns after the terminal event.

    Every logged event is yielded exactly once: live events are deduplicated by sequence,
    and any gap (events logged by another process, or published before we subscribed) is
    filled from the store.
    """
    if after_sequence < 0:
        raise InvalidArgument.field("after_sequence", "must not be negative")
    # Subscribe before reading, so nothing logged between the read and the follow is lost.
    queue = hub.subscribe(job_id)
    try:
        job = await store.get_job(workspace_id, job_id)
        if job is None:
            raise NotFound.resource("job", f"jobs/{job_id}")
        if after_sequence > job.last_sequence:
            raise InvalidArgument.field(
                "after_sequence",
                f"is {after_sequence} but the job's last sequence is {job.last_sequence}",
            )
        yield Snapshot(job, job.last_sequence)
        last = after_sequence

        async def catch_up() -> AsyncIterator[JobEvent]:
            nonlocal last
            while True:
                batch = await store.list_events(job_id, after_sequence=last, limit=REPLAY_BATCH)
                for event in batch:
                    last = event.sequence
                    yield event
                if len(batch) < REPLAY_BATCH:
                    return

        async for event in catch_up():
            yield event
            if event.terminal:
                return
        if job.state.terminal:
            return

        while True:
            try:
                live = await asyncio.wait_for(queue.get(), timeout=heartbeat_interval_s)
            except TimeoutError:
                caught_up = False
                async for event in catch_up():
                    caught_up = True
                    yield event
                    if event.terminal:
                        return
                if not caught_up:
                    current = await store.get_job(workspace_id, job_id)
                    if current is None:
                        raise NotFound.resource("job", f"jobs/{job_id}") from None
                    if current.state.terminal and current.last_sequence <= last:
                        return
                    yield Heartbeat(job_id, last, current.state)
                continue
            if live is None:  # logged by another process: read the log
                async for event in catch_up():
                    yield event
                    if event.terminal:
                        return
                continue
            if live.ephemeral:
                if live.sequence == last:
                    yield live  # state such as a queue position; not part of the log
                continue
            if live.sequence <= last:
                continue
            if live.sequence > last + 1:
                async for event in catch_up():
                    yield event
                    if event.terminal:
                        return
                continue
            last = live.sequence
            yield live
            if live.terminal:
                return
    finally:
        hub.unsubscribe(job_id, queue)
