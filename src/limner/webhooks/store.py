"""What the webhook dispatcher needs from storage. ``limner.persistence.webhooks``
implements it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from limner.domain.webhooks import DeliveryState


@dataclass(frozen=True, kw_only=True)
class DueDelivery:
    """A pending delivery this process has taken to post now."""

    id: str
    job_id: str
    url: str
    body: str
    attempts: int
    create_time: datetime


@dataclass(frozen=True, kw_only=True)
class AttemptOutcome:
    """What one attempt came to: delivered, given up, or pending until ``next_attempt``."""

    state: DeliveryState
    attempts: int
    attempt_time: datetime
    status_code: int = 0
    error: str = ""
    next_attempt: datetime | None = None


class DeliveryStore(Protocol):
    async def claim_due(self, limit: int, hold_s: float) -> list[DueDelivery]:
        """Takes up to ``limit`` pending deliveries that are due, oldest due first, and
        holds them for ``hold_s`` (no other process takes them meanwhile; if this one dies,
        they are due again after it). No two processes take the same delivery."""
        ...

    async def record(self, delivery_id: str, outcome: AttemptOutcome) -> None:
        """Records an attempt: the delivery is delivered, failed, or pending again."""
        ...

    async def release(self, delivery_ids: Sequence[str]) -> None:
        """Makes held deliveries due now (a stopping process's unfinished attempts)."""
        ...
