"""Webhooks as use cases see them: checking a target, giving jobs their webhook, and
listing a job's deliveries.

A job's webhook is decided when it is created: the request's, else the workspace's
default (``ImageSettings.default_webhook``), else none. ``WebhookJobs`` does that in front
of the job engine, so every use case that submits jobs gets it by passing its request's
webhook in ``NewJob.webhook``. Posting is ``limner.webhooks``'s; queueing, the job store's
(each delivery in the transaction that logs its event).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Protocol
from urllib.parse import urlsplit

from limner.assets.fetch import HostUnresolved, PrivateAddress, UnsupportedUrl, checked_address
from limner.domain.jobs import Job, JobKind, JobState, WatchItem
from limner.domain.models import ImageSettings
from limner.domain.specs import Approval
from limner.domain.webhooks import MAX_URL_CHARS, WebhookDelivery, WebhookSubscription
from limner.errors import FailedPrecondition, InvalidArgument, NotFound, PreconditionViolation
from limner.jobs import HandlerTable, JobEngine, NewJob
from limner.jobs.store import JobPage

# How long checking a target's name may take before it counts as not resolving.
RESOLVE_TIMEOUT_S = 5.0


class DeliveryLog(Protocol):
    async def list_for_job(
        self, workspace_id: str, job_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[WebhookDelivery], str]: ...


class WorkspaceSettings(Protocol):
    async def image_settings(self, workspace_id: str) -> ImageSettings: ...


class Webhooks:
    """Checks webhook targets and lists deliveries. ``enabled``: the server has a signing
    secret (``[webhooks] secret``); without one no webhook is accepted."""

    def __init__(
        self,
        *,
        enabled: bool,
        allow_private_addresses: bool,
        deliveries: DeliveryLog,
        engine: JobEngine,
    ) -> None:
        self.enabled = enabled
        self.allow_private_addresses = allow_private_addresses
        self.deliveries = deliveries
        self.engine = engine

    async def check(self, subscription: WebhookSubscription, field: str) -> None:
        """Refuses a webhook Limner will not post to: webhooks off, or a URL that is not
        http(s), carries credentials, or names a host that does not resolve or resolves to
        a non-public address (unless ``[webhooks] allow_private_addresses``). The target is
        checked again before every delivery (DNS may change)."""
        if not self.enabled:
            raise FailedPrecondition(
                "webhooks are not configured on this server: its [webhooks] secret is unset",
                reason="WEBHOOKS_NOT_CONFIGURED",
                precondition_violations=(
                    PreconditionViolation(
                        "CONFIGURATION", "webhooks.secret", "no webhook signing secret"
                    ),
                ),
            )
        url_field = f"{field}.url"
        url = subscription.url
        if not url:
            raise InvalidArgument.field(url_field, "is required: an http(s) URL", "REQUIRED")
        if len(url) > MAX_URL_CHARS:
            raise InvalidArgument.field(url_field, f"must be at most {MAX_URL_CHARS} characters")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument.field(url_field, f"{url!r} is not an absolute http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise InvalidArgument.field(
                url_field, "must not carry credentials: receivers check the signature instead"
            )
        try:
            parts.port  # noqa: B018 - raises for a port out of range
        except ValueError:
            raise InvalidArgument.field(url_field, f"{url!r} has an invalid port") from None
        host = parts.hostname
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                await checked_address(url, allow_private=self.allow_private_addresses)
        except UnsupportedUrl:
            raise InvalidArgument.field(url_field, f"{url!r} is not an http(s) URL") from None
        except (HostUnresolved, TimeoutError):
            raise InvalidArgument.field(url_field, f"the host {host} does not resolve") from None
        except PrivateAddress as private:
            raise InvalidArgument.field(
                url_field,
                f"the host {host} resolves to a non-public address ({private.address}); "
                "webhooks are posted to public addresses only",
                "WEBHOOK_ADDRESS_REFUSED",
            ) from None

    async def list_deliveries(
        self, workspace_id: str, job_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[WebhookDelivery], str]:
        if await self.engine.get_job(workspace_id, job_id) is None:
            raise NotFound.resource("job", f"jobs/{job_id}")
        return await self.deliveries.list_for_job(
            workspace_id, job_id, page_size=page_size, page_token=page_token
        )


class WebhookJobs:
    """The job engine with webhooks decided at creation: a request's webhook is checked
    (field ``webhook``), a job without one gets the workspace's default. Everything else
    goes straight to ``engine``."""

    def __init__(self, engine: JobEngine, webhooks: Webhooks, settings: WorkspaceSettings) -> None:
        self.engine = engine
        self.webhooks = webhooks
        self.settings = settings

    async def submit(self, new: NewJob) -> tuple[Job, bool]:
        webhook = new.webhook
        if webhook is not None:
            await self.webhooks.check(webhook, "webhook")
        elif self.webhooks.enabled:
            webhook = (await self.settings.image_settings(new.workspace_id)).default_webhook
        return await self.engine.submit(replace(new, webhook=webhook))

    async def start(self, handlers: HandlerTable) -> None:
        await self.engine.start(handlers)

    async def shutdown(self, grace_s: float) -> None:
        await self.engine.shutdown(grace_s)

    async def cancel(self, workspace_id: str, job_id: str, reason: str) -> Job:
        return await self.engine.cancel(workspace_id, job_id, reason)

    async def resume(self, workspace_id: str, job_id: str, approval: Approval) -> Job:
        return await self.engine.resume(workspace_id, job_id, approval)

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None:
        return await self.engine.get_job(workspace_id, job_id)

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage:
        return await self.engine.list_jobs(
            workspace_id, states=states, kinds=kinds, page_size=page_size, page_token=page_token
        )

    def watch(
        self, workspace_id: str, job_id: str, *, after_sequence: int, heartbeat_interval_s: float
    ) -> AsyncIterator[WatchItem]:
        return self.engine.watch(
            workspace_id,
            job_id,
            after_sequence=after_sequence,
            heartbeat_interval_s=heartbeat_interval_s,
        )
