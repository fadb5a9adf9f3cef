"""Bounded concurrency per provider, first come first served, with queue positions."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class _Waiter:
    __slots__ = ("changed", "granted")

    def __init__(self) -> None:
        self.granted = False
        self.changed = asyncio.Event()


class ProviderSlots:
    """At most ``limit`` holders at once; the rest wait in order and learn their position."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._active = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def hold(self, on_position: Callable[[int], Awaitable[None]]) -> AsyncIterator[None]:
        """Holds a slot for the body. ``on_position(n)`` runs while waiting whenever this
        caller's place in the queue changes (1 = next)."""
        await self._acquire(on_position)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, on_position: Callable[[int], Awaitable[None]]) -> None:
        if self._active < self.limit and not self._waiters:
            self._active += 1
            return
        waiter = _Waiter()
        self._waiters.append(waiter)
        reported = 0
        try:
            while not waiter.granted:
                position = self._waiters.index(waiter) + 1
                waiter.changed.clear()
                if position != reported:
                    reported = position
                    await on_position(position)
                    continue  # the queue may have moved while we reported
                await waiter.changed.wait()
        except BaseException:
            if waiter.granted:
                self._release()
            else:
                self._waiters.remove(waiter)
                self._wake_all()
            raise

    def _release(self) -> None:
        if self._waiters:
            # Hand the slot straight to the next waiter: ``active`` stays the same.
            waiter = self._waiters.popleft()
            waiter.granted = True
            self._wake_all()
            waiter.changed.set()
        else:
            self._active -= 1

    def _wake_all(self) -> None:
        for waiter in self._waiters:
            waiter.changed.set()
