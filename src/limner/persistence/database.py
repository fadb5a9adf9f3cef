"""The database: engines, one call per transaction, and start-up migrations.

Repositories write each transaction as a plain function over a SQLAlchemy Core
``Connection`` and hand it to ``Database.run``. That keeps the event loop free and cheap:

- SQLite runs the function on a dedicated thread (one writer thread, a few reader threads),
  so a whole transaction costs one thread hop instead of one per statement, commit and
  fetch. SQLite allows one writer at a time anyway, so the writer thread commits every
  write waiting for it together (group commit); if one of them fails, the batch is rolled
  back and each write is run again alone, so only the failing one fails.
- PostgreSQL runs it on the asyncpg-backed async engine through ``run_sync``, which needs
  no thread at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


def _json_dumps(value: Any) -> str:
    """JSON columns (job rows and events are rewritten on every save) through orjson,
    several times faster than ``json.dumps`` and with the same output for our data."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    """One per process. ``url`` is a SQLAlchemy URL: ``sqlite:///path`` (the async
    ``sqlite+aiosqlite`` spelling is accepted too) or ``postgresql+asyncpg://...``."""

    def __init__(
        self, url: str, *, pool_size: int = 10, echo: bool = False, carry_context: bool = False
    ) -> None:
        self.url = url
        # SQLite: run each transaction in a copy of its caller's context (contextvars) on
        # the database's threads, so traced statements belong to the caller's span.
        self.carry_context = carry_context
        self.is_sqlite = url.startswith("sqlite")
        # SQLite: the file, and its identity once migrated (see check()).
        self._file: Path | None = None
        self._file_id: tuple[int, int] | None = None
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        if self.is_sqlite:
            self._sync = create_engine(
                "sqlite://" + url.split("://", 1)[1],
                echo=echo,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            database = self._sync.url.database
            if database and database != ":memory:":
                self._file = Path(database)
            # pysqlite's own transaction handling breaks SAVEPOINT: let SQLAlchemy emit
            # BEGIN itself (the documented recipe).
            event.listen(self._sync, "begin", _sqlite_begin)
            self._writer = _GroupCommitWriter(self._sync)
            self._readers = ThreadPoolExecutor(4, thread_name_prefix="limner-db-read")
        else:
            self._async = create_async_engine(
                url,
                echo=echo,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
                pool_size=pool_size,
                max_overflow=pool_size,
                # No pre-ping: it costs a round trip per checkout. Recycle instead.
                pool_recycle=1800,
            )

    async def run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        """Runs ``work`` in one transaction (committed when ``write``) and returns its
        result. ``work`` must not touch the event loop: it runs on another thread for
        SQLite."""
        if self._sync is not None:
            if self.carry_context:
                work = _in_context(work)
            if write:
                return await self._writer.submit(work)
            return await asyncio.get_running_loop().run_in_executor(
                self._readers, _in_transaction, self._sync, work, False
            )
        assert self._async is not None
        if write:
            async with self._async.begin() as connection:
                return await connection.run_sync(work)
        async with self._async.connect() as connection:
            return await connection.run_sync(work)

    @property
    def ordered_writes(self) -> bool:
        """Whether :meth:`queue_write` is available: writes commit in the order they were
        queued (SQLite, whose one writer thread takes them first come, first served)."""
        return self._sync is not None

    def queue_write(self, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        """Queues a write transaction and returns at once; the future is done when it has
        committed. Only where :attr:`ordered_writes` holds."""
        if self._sync is None:
            raise RuntimeError("queue_write needs ordered writes (SQLite)")
        return self._writer.submit(_in_context(work) if self.carry_context else work)

    @property
    def engine(self) -> Engine:
        """The engine statements run on (PostgreSQL's: the async engine's sync face), for
        instrumentation."""
        if self._sync is not None:
            return self._sync
        assert self._async is not None
        return self._async.sync_engine

    async def migrate(self) -> None:
        """Brings the schema to the newest Alembic revision (runs at every start)."""
        await self.run(_upgrade, write=True)
        if self._file is not None:
            self._file_id = await asyncio.to_thread(_file_identity, self._file)

    async def check(self) -> None:
        """Raises when the database cannot serve: a query on a reader and a transaction on
        the writer (SQLite's writer thread, or a PostgreSQL connection) must both answer.
        For SQLite the file must also still be the one opened at start: a file that was
        removed, moved or replaced underneath keeps answering from its open handles while
        everything written to it is lost."""
        if self._file is not None and self._file_id is not None:
            try:
                found = await asyncio.to_thread(_file_identity, self._file)
            except OSError as error:
                raise OSError(f"{self._file} is not there: {error.strerror or error}") from None
            if found != self._file_id:
                raise OSError(f"{self._file} was replaced by another file")
        await self.run(_select_one)
        await self.run(_select_one, write=True)

    async def close(self) -> None:
        if self._sync is not None:
            # Waited for on a daemon thread, not an executor's: if the writer hangs (a
            # locked file) and the caller gives up, nothing is left for the exit to join.
            await self._writer.stopped()
            self._readers.shutdown(wait=False)
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()


class _GroupCommitWriter:
    """One thread that runs every SQLite write. Works that queue up while a commit is in
    flight are run together in the next transaction."""

    MAX_BATCH = 256

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: queue.SimpleQueue[_Work[Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="limner-db-write", daemon=True)
        self.thread.start()

    def submit(self, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.queue.put(_Work(work, future, loop))
        return future

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    async def stopped(self) -> None:
        """Stops the thread once the writes queued so far are done, and waits for it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def join() -> None:
            self.thread.join()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_settle, done, True, None)

        threading.Thread(target=join, name="limner-db-close", daemon=True).start()
        self.queue.put(None)
        await done

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.MAX_BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Work[Any]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.engine.begin() as connection:
                outcomes = [(True, item.work(connection)) for item in batch]
        except BaseException as error:
            if len(batch) == 1:
                outcomes = [(False, error)]
            else:
                # Something in the batch failed and the whole batch rolled back: run each
                # write alone so only the failing one fails (rare; costs one commit each).
                outcomes = [self._alone(item) for item in batch]
        for item, (ok, value) in zip(batch, outcomes, strict=True):
            item.loop.call_soon_threadsafe(_settle, item.future, ok, value)

    def _alone(self, item: _Work[Any]) -> tuple[bool, Any]:
        try:
            with self.engine.begin() as connection:
                return True, item.work(connection)
        except BaseException as error:
            return False, error


class _Work(Generic[T]):
    __slots__ = ("future", "loop", "work")

    def __init__(
        self,
        work: Callable[[Connection], T],
        future: asyncio.Future[T],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.work = work
        self.future = future
        self.loop = loop


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return  # the caller went away; the write itself has happened (or not)
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _in_transaction(engine: Engine, work: Callable[[Connection], T], write: bool) -> T:
    if write:
        with engine.begin() as connection:
            return work(connection)
    with engine.connect() as connection:
        return work(connection)


def _select_one(connection: Connection) -> None:
    connection.execute(text("SELECT 1")).scalar_one()


def _file_identity(path: Path) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_dev, status.st_ino


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _in_context(work: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """``work``, to run in a copy of the current context (on another thread)."""
    context = contextvars.copy_context()
    return lambda connection: context.run(work, connection)


def _sqlite_begin(connection: Connection) -> None:
    # On the driver's connection: not a statement of its own in traces (one per transaction).
    connection.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
