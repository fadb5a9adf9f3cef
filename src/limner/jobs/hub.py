"""In-process fan-out of freshly logged events to the watchers of a job.

The database log is the source of truth; the hub only saves watchers a poll. Watchers
deduplicate by sequence and fill gaps from the log, so a missed or repeated hub message is
harmless. (Across replicas the watch falls back to reading the log on every idle tick; see
ARCHITECTURE §7 for the LISTEN/NOTIFY route.)
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from limner.domain.jobs import JobEvent


class EventHub:
    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[asyncio.Queue[JobEvent]]] = defaultdict(set)

    def subscribe(self, job_id: str) -> asyncio.Queue[JobEvent]:
        queue: asyncio.Queue[JobEvent] = asyncio.Queue()
        self._subscribers[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[JobEvent]) -> None:
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

    def watcher_count(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))
