"""Webhooks: where a job's events are posted, and the record of each post. Pure data.

A job carries at most one ``WebhookSubscription``: its creating request's, or the
workspace's default when it was created (``ImageSettings.default_webhook``). Each logged
event the subscription asks for becomes one ``WebhookDelivery``, queued in the same
transaction as the event (``limner.persistence.webhooks``) and posted by
``limner.webhooks``. The body is built by ``limner.domain.webhook_payload``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class WebhookEvent(StrEnum):
    """The job events a webhook can ask for; the body's ``type`` is ``job.<value>``."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    AWAITING_APPROVAL = "awaiting_approval"
    # Throttled per job (``[webhooks] progress_interval_s``).
    PROGRESS = "progress"

    @property
    def type(self) -> str:
        return f"job.{self.value}"


# What an empty event filter means: the outcomes and the pause, not progress.
DEFAULT_EVENTS: tuple[WebhookEvent, ...] = (
    WebhookEvent.COMPLETED,
    WebhookEvent.FAILED,
    WebhookEvent.CANCELLED,
    WebhookEvent.AWAITING_APPROVAL,
)
_ORDER = {event: index for index, event in enumerate(WebhookEvent)}

MAX_URL_CHARS = 2048


@dataclass(frozen=True)
class WebhookSubscription:
    """A webhook: the endpoint and the events posted to it (sorted, never empty)."""

    url: str
    events: tuple[WebhookEvent, ...] = DEFAULT_EVENTS

    @classmethod
    def of(cls, url: str, events: Iterable[WebhookEvent] = ()) -> WebhookSubscription:
        """A subscription in canonical form: events deduplicated and sorted, none = the
        defaults (so equal subscriptions compare, hash and fingerprint equal)."""
        chosen = sorted(set(events), key=_ORDER.__getitem__)
        return cls(url, tuple(chosen) if chosen else DEFAULT_EVENTS)

    def wants(self, event: WebhookEvent) -> bool:
        return event in self.events

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "events": [event.value for event in self.events]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookSubscription:
        return cls.of(data["url"], (WebhookEvent(e) for e in data.get("events", ())))


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: 410 Gone, a refused address, or out of attempts


@dataclass(frozen=True, kw_only=True)
class WebhookDelivery:
    """One event posted (or to be posted) to a webhook, with its attempts so far.

    ``id`` is the ``webhook-id`` header: the same on every attempt, so receivers
    deduplicate by it. ``body`` is the JSON document posted, byte for byte."""

    id: str
    workspace_id: str
    job_id: str
    sequence: int
    event: WebhookEvent
    url: str
    body: str
    state: DeliveryState
    attempts: int
    create_time: datetime
    last_attempt_time: datetime | None = None
    next_attempt_time: datetime | None = None
    last_status_code: int = 0
    last_error: str = ""


def delivery_id(job_id: str, sequence: int) -> str:
    """A delivery's id: one per logged event (a job has at most one webhook)."""
    return f"msg_{job_id}_{sequence}"
