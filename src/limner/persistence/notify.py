"""PostgreSQL LISTEN/NOTIFY for job events (ARCHITECTURE §7).

Every commit that logs job events notifies the channel ``limner_jobs`` with the writing
process's id and the jobs concerned. Each process listens on its own asyncpg connection
and tells its watchers of those jobs (those of other processes only: its own already
heard, in memory) to read the new events from the log. SQLite has no such thing: there a
watcher of another process's job catches up on its idle ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

log = logging.getLogger(__name__)

CHANNEL = "limner_jobs"
_IDS_PER_NOTIFICATION = 200  # 200 ids of 32 characters stay under the 8000-byte limit
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def notify_job_events(connection: Connection, owner: str, job_ids: Sequence[str]) -> None:
    """Queues notifications (sent when the transaction commits): ``"<owner> <id>,<id>…"``."""
    for start in range(0, len(job_ids), _IDS_PER_NOTIFICATION):
        chunk = ",".join(job_ids[start : start + _IDS_PER_NOTIFICATION])
        connection.execute(_NOTIFY, {"channel": CHANNEL, "payload": f"{owner} {chunk}"})


class JobEventListener:
    """Listens for other processes' job events and calls ``on_jobs`` with their job ids.
    Reconnects (after ``retry_s``) when the connection drops."""

    def __init__(
        self,
        url: str,
        owner: str,
        on_jobs: Callable[[list[str]], None],
        *,
        retry_s: float = 2.0,
    ) -> None:
        # SQLAlchemy's URL -> a libpq DSN asyncpg accepts.
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.owner = owner
        self.on_jobs = on_jobs
        self.retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="job-event-listener")
        # The first connection is made before serving, so no event is missed from then on.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            try:
                await self._session()
                log.warning("job event listener: connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job event listener: cannot listen; retrying", exc_info=True)
            finally:
                self.listening.clear()
            await asyncio.sleep(self.retry_s)

    async def _session(self) -> None:
        """One connection's life: listen until it drops."""
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(self.dsn)
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(CHANNEL, self._notified)
            self.listening.set()
            await lost.wait()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        owner, _, ids = payload.partition(" ")
        if owner != self.owner and ids:
            self.on_jobs(ids.split(","))
