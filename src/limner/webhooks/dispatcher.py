"""The webhook dispatcher: posts queued deliveries, retries them, records every attempt.

Deliveries are rows of the outbox (``webhook_deliveries``), queued in the transaction that
logs their job event, so the dispatcher can stop and start at any time: at start, on a
timer (``poll_interval_s``) and whenever this process queues one, it takes the due
deliveries (``DeliveryStore.claim_due``; holding them keeps other processes away) and
posts each, at most ``max_concurrent`` at once.

One attempt: the target is checked again with the downloader's guard (http(s) only, public
addresses unless allowed) and the connection goes to the checked address (DNS pinning);
the body is the stored JSON document, signed afresh (a new ``webhook-timestamp``, the same
``webhook-id``). A 2xx answer delivers it. 410 Gone, or a target that is no longer
allowed, gives it up at once. Anything else (another status, a timeout, a connection
error) is retried with exponential backoff and jitter, never sooner than a 429 or 503's
``Retry-After``, until ``max_attempts`` or ``retry_window_s`` after the event.

At-least-once: an attempt whose answer is lost (the process dies, the stop interrupts it)
is made again, so a receiver may see a delivery twice; it deduplicates by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from limner.assets.fetch import (
    HostUnresolved,
    PrivateAddress,
    UnsupportedUrl,
    checked_address,
    pinned,
)
from limner.domain.webhooks import DeliveryState
from limner.observability import tracing
from limner.settings import WebhookSettings
from limner.webhooks.signing import secret_key, sign
from limner.webhooks.store import AttemptOutcome, DeliveryStore, DueDelivery

log = logging.getLogger(__name__)

USER_AGENT = "limner-webhooks/1"
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, kw_only=True)
class DispatchPolicy:
    """How deliveries are posted and retried (``[webhooks]`` settings)."""

    timeout_s: float = 10.0
    first_retry_s: float = 2.0
    max_retry_s: float = 60.0
    max_attempts: int = 10
    retry_window_s: float = 300.0
    max_concurrent: int = 16
    poll_interval_s: float = 5.0
    allow_private_addresses: bool = False

    @property
    def hold_s(self) -> float:
        """How long a taken delivery is kept from other processes: past any attempt."""
        return 2 * self.timeout_s + 5.0

    def backoff_s(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt: doubling, capped, ±20 %."""
        base = min(self.max_retry_s, self.first_retry_s * 2.0 ** max(attempts - 1, 0))
        return base * random.uniform(0.8, 1.2)

    @classmethod
    def of(cls, settings: WebhookSettings) -> DispatchPolicy:
        return cls(
            timeout_s=settings.timeout_s,
            first_retry_s=settings.first_retry_s,
            max_retry_s=settings.max_retry_s,
            max_attempts=max(settings.max_attempts, 1),
            retry_window_s=settings.retry_window_s,
            max_concurrent=max(settings.max_concurrent, 1),
            poll_interval_s=settings.poll_interval_s,
            allow_private_addresses=settings.allow_private_addresses,
        )


class WebhookDispatcher:
    def __init__(
        self,
        store: DeliveryStore,
        client: httpx.AsyncClient,
        keys: Sequence[bytes],
        policy: DispatchPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("webhook deliveries need a signing key")
        self.store = store
        self.client = client
        self.keys = tuple(keys)
        self.policy = policy
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._problem = ""  # why the last outbox read failed ("" when it worked)
        self._owns_client = False

    @classmethod
    def from_settings(
        cls, settings: WebhookSettings, store: DeliveryStore
    ) -> WebhookDispatcher | None:
        """The dispatcher ``[webhooks]`` asks for, with an HTTP client of its own (httpx's
        transport: pinned https connections need its ``sni_hostname``); ``None`` without a
        signing secret (webhooks off)."""
        if settings.secret is None:
            return None
        secrets = [settings.secret, *settings.previous_secrets]
        client = httpx.AsyncClient(follow_redirects=False)
        tracing.instrument_http(client)
        keys = [secret_key(secret.get_secret_value()) for secret in secrets]
        dispatcher = cls(store, client, keys, DispatchPolicy.of(settings))
        dispatcher._owns_client = True
        return dispatcher

    # -- start and stop ----------------------------------------------------------------

    def start(self) -> None:
        """Starts posting: what is due now (left pending by an earlier run, or queued by
        another process) at once, then whatever is queued or falls due."""
        if self._task is None:
            # A context of its own: deliveries are in no request's trace.
            self._task = asyncio.create_task(
                self._run(), name="webhook-dispatcher", context=contextvars.Context()
            )

    def wake(self) -> None:
        """Deliveries were queued (or a slot freed up): look for due ones now."""
        self._wake.set()

    async def stop(self, timeout_s: float = 0.5) -> None:
        """Stops taking deliveries; attempts in flight get ``timeout_s``, then are
        interrupted and their deliveries made due again (posted again by the next start or
        another process: at least once)."""
        task, self._task = self._task, None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        running = list(self._inflight.values())
        if running:
            await asyncio.wait(running, timeout=timeout_s)
        interrupted = list(self._inflight)
        for attempt in self._inflight.values():
            attempt.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if interrupted:
            try:
                async with asyncio.timeout(timeout_s):
                    await self.store.release(interrupted)
            except Exception:  # they fall due by themselves when their hold runs out
                log.warning("could not release %d webhook deliveries", len(interrupted))
        if self._owns_client:
            await self.client.aclose()

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the read: a delivery queued during it wakes us
            free = self.policy.max_concurrent - len(self._inflight)
            if free > 0:
                try:
                    with tracing.untraced():  # polled: no trace of its own each time
                        due = await self.store.claim_due(free, self.policy.hold_s)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # the database may be away for a moment
                    if not self._problem:
                        log.warning("could not read the webhook outbox", exc_info=True)
                    self._problem = f"could not read the webhook outbox: {error}"
                    due = []
                else:
                    if self._problem:
                        log.info("the webhook outbox can be read again")
                    self._problem = ""
                for delivery in due:
                    self._spawn(delivery)
            try:
                async with asyncio.timeout(self.policy.poll_interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _spawn(self, delivery: DueDelivery) -> None:
        task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.id}")
        self._inflight[delivery.id] = task

        def done(_task: asyncio.Task[None]) -> None:
            if self._inflight.get(delivery.id) is task:
                del self._inflight[delivery.id]
            self.wake()  # a free slot

        task.add_done_callback(done)

    def _wake_in(self, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def fire() -> None:
            if timer is not None:
                self._timers.discard(timer)
            self.wake()

        timer = loop.call_later(delay_s, fire)
        self._timers.add(timer)

    # -- one attempt -------------------------------------------------------------------

    async def _deliver(self, delivery: DueDelivery) -> None:
        outcome = await self._attempt(delivery)
        try:
            await self.store.record(delivery.id, outcome)
        except Exception:
            # Held until its hold runs out, then attempted again: at least once.
            log.warning("could not record webhook delivery %s", delivery.id, exc_info=True)
            return
        # Forgotten only once recorded: a stop meanwhile releases what is still in flight.
        self._inflight.pop(delivery.id, None)
        if outcome.state is DeliveryState.PENDING and outcome.next_attempt is not None:
            self._wake_in(max(outcome.next_attempt.timestamp() - self._clock(), 0.0))
        elif outcome.state is DeliveryState.FAILED:
            log.warning(
                "gave up webhook delivery %s of jobs/%s to %s after %d attempt(s): %s",
                delivery.id,
                delivery.job_id,
                urlsplit(delivery.url).hostname,
                outcome.attempts,
                outcome.error,
            )

    async def _attempt(self, delivery: DueDelivery) -> AttemptOutcome:
        attempts = delivery.attempts + 1
        started = self._clock()
        at = datetime.fromtimestamp(started, UTC)
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                address = await checked_address(
                    delivery.url, allow_private=self.policy.allow_private_addresses
                )
                target, headers, extensions = pinned(delivery.url, address)
                body = delivery.body.encode()
                headers |= sign(self.keys, delivery.id, int(self._clock()), body)
                headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
                # The answer's body is never read: only its status matters.
                async with self.client.stream(
                    "POST",
                    target,
                    content=body,
                    headers=headers,
                    extensions=extensions,
                    follow_redirects=False,
                    timeout=self.policy.timeout_s,
                ) as response:
                    status = response.status_code
                    retry_after = _retry_after_s(response, self._clock())
        except (UnsupportedUrl, PrivateAddress) as refused:
            return AttemptOutcome(
                state=DeliveryState.FAILED,
                attempts=attempts,
                attempt_time=at,
                error=f"refused: {refused}",
            )
        except HostUnresolved as unresolved:
            return self._retry(delivery, attempts, at, 0, str(unresolved), None)
        except TimeoutError:
            error = f"no answer within {self.policy.timeout_s:g} s"
            return self._retry(delivery, attempts, at, 0, error, None)
        except httpx.HTTPError as failed:
            return self._retry(delivery, attempts, at, 0, _describe(failed), None)
        if 200 <= status < 300:
            return AttemptOutcome(
                state=DeliveryState.DELIVERED,
                attempts=attempts,
                attempt_time=at,
                status_code=status,
            )
        if status == 410:
            return AttemptOutcome(
                state=DeliveryState.FAILED,
                attempts=attempts,
                attempt_time=at,
                status_code=status,
                error="HTTP 410 Gone: the endpoint asked not to be posted to again",
            )
        error = f"HTTP {status}"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
        honoured = retry_after if status in _RETRY_AFTER_STATUSES else None
        return self._retry(delivery, attempts, at, status, error, honoured)

    def _retry(
        self,
        delivery: DueDelivery,
        attempts: int,
        at: datetime,
        status: int,
        error: str,
        retry_after_s: float | None,
    ) -> AttemptOutcome:
        """Pending again after the backoff (at least ``retry_after_s``), or given up when
        out of attempts or past the retry window."""
        delay = self.policy.backoff_s(attempts)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        due = datetime.fromtimestamp(self._clock() + delay, UTC)
        window_end = delivery.create_time + timedelta(seconds=self.policy.retry_window_s)
        if attempts >= self.policy.max_attempts or due > window_end:
            return AttemptOutcome(
                state=DeliveryState.FAILED,
                attempts=attempts,
                attempt_time=at,
                status_code=status,
                error=f"{error}; gave up after {attempts} attempt(s)",
            )
        return AttemptOutcome(
            state=DeliveryState.PENDING,
            attempts=attempts,
            attempt_time=at,
            status_code=status,
            error=error,
            next_attempt=due,
        )


def _retry_after_s(response: httpx.Response, now: float) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


def _describe(error: httpx.HTTPError) -> str:
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
