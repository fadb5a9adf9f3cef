"""The gRPC health service: the server's own status and one named service per dependency.

- ``""`` and each ``limner.v1.*`` service: SERVING from start until a graceful stop
  begins (then NOT_SERVING for the drain). This is liveness: a failing dependency does
  not change it, since restarting the process would not mend the database.
- ``limner.database``, ``limner.assets``, ``limner.jobs``: each dependency's own check,
  run every ``LIMNER_HEALTH__INTERVAL_S`` and again when a ``Check`` asks for it (at most
  once a second; a check still running is shared). A check that raises or does not
  answer within ``LIMNER_HEALTH__TIMEOUT_S`` makes its service NOT_SERVING until a later
  check passes. ``Watch`` streams see every change.
- ``limner.ready``: SERVING when every dependency is; what a readiness probe asks.

The checks themselves are plain async callables from the composition root (``app.py``),
so this module knows nothing of databases or files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from grpc_health.v1 import health, health_pb2

from limner.observability import tracing

log = logging.getLogger("limner.health")

HealthCheck = Callable[[], Awaitable[None]]
"""Returns when the dependency works; raises (anything) when it does not."""

DATABASE = "limner.database"
ASSETS = "limner.assets"
JOBS = "limner.jobs"
READY = "limner.ready"

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# An on-demand check reuses a result younger than this, so probes cannot hammer a
# dependency.
_FRESH_S = 1.0


class DependencyHealth(health.aio.HealthServicer):  # type: ignore[misc]
    """``grpc.health.v1.Health`` with periodic and on-demand dependency checks."""

    def __init__(
        self, checks: Mapping[str, HealthCheck], *, interval_s: float, timeout_s: float
    ) -> None:
        super().__init__()
        self.checks = dict(checks)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.problems: dict[str, str] = {}  # dependency -> why it is NOT_SERVING
        self._checked_at: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Checks every dependency once, then keeps checking in the background."""
        await self.check_all()
        self._loop = asyncio.create_task(self._keep_checking(), name="health-checks")

    async def stop(self) -> None:
        self._stopping = True
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        for task in list(self._running.values()):
            task.cancel()

    async def enter_graceful_shutdown(self) -> None:
        """Every service, dependencies included, reports NOT_SERVING from now on."""
        await self.stop()
        await super().enter_graceful_shutdown()

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(name) for name in self.checks))

    async def check(self, name: str) -> None:
        """Runs one dependency's check (or joins the one running) and publishes it."""
        running = self._running.get(name)
        if running is None:
            running = asyncio.ensure_future(self._run_check(name))
            self._running[name] = running
            running.add_done_callback(lambda _task: self._running.pop(name, None))
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled, not just the check (by stop())

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> Any:
        """Answers from a fresh check for a dependency (or ``limner.ready``)."""
        service = request.service
        names = list(self.checks) if service == READY else [service]
        stale = [
            name
            for name in names
            if name in self.checks and time.monotonic() - self._checked_at.get(name, 0.0) > _FRESH_S
        ]
        if stale and not self._stopping:
            await asyncio.gather(*(self.check(name) for name in stale))
        return await super().Check(request, context)

    async def _keep_checking(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_all()

    async def _run_check(self, name: str) -> None:
        problem = ""
        try:
            # Polled every few seconds: no trace of its own each time.
            with tracing.untraced():
                async with asyncio.timeout(self.timeout_s):
                    await self.checks[name]()
        except TimeoutError:
            problem = f"no answer within {self.timeout_s:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        self._checked_at[name] = time.monotonic()
        if self._stopping:
            return
        before = self.problems.get(name)
        if problem:
            self.problems[name] = problem
            if before != problem:
                log.warning("%s is NOT_SERVING: %s", name, problem, extra={"health_service": name})
        else:
            self.problems.pop(name, None)
            if before is not None:
                log.info("%s is SERVING again", name, extra={"health_service": name})
        await self.set(name, NOT_SERVING if problem else SERVING)
        await self.set(READY, NOT_SERVING if self.problems else SERVING)
