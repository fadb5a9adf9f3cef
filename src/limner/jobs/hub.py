"""In-process fan-out of freshly logged events to the watchers of a job.

The database log is the source of truth; the hub only saves watchers a poll. Watchers
deduplicate by sequence and fill gaps from the log, so a missed or repeated hub message is
harmless. Across processes, PostgreSQL notifications poke the watchers of a job (see
``limner.persistence.notify``); without them the watch reads the log on every idle tick.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from limner.domain.jobs import JobEvent

# What a watcher's queue carries: an event, or ``None``: "new events are in the log" (logged
# by another process; see limner.persistence.notify).
Delivery = JobEvent | None


class EventHub:
    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[Delivery]]] = defaultdict(set)

    def subscribe(self, job_id: str) -> asyncio.Queue[Delivery]:
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._subscribers[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[Delivery]) -> None:
        subscribers = self._subscribers.get(job_id)
        if subscribers is None:
            return
        subscribers.discard(queue)
        if not subscribers:
            del self._subscribers[job_id]

    def publish(self, events: Iterable[JobEvent]) -> None:
        for event in events:
            for queue in self._subscribers.get(event.job_id, ()):
                queue.put_nowait(event)

    def poke(self, job_ids: Iterable[str]) -> None:
        """Another process logged events for these jobs: their watchers read the log."""
        for job_id in job_ids:
            for queue in self._subscribers.get(job_id, ()):
                queue.put_nowait(None)

    def watcher_count(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))

    def watching(self) -> int:
        """Open watches of all jobs. Safe to call from another thread (metrics)."""
        return sum(map(len, list(self._subscribers.values())))
