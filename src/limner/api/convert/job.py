"""``limner/v1/job.proto``: jobs, their progress, results and events."""

from __future__ import annotations

from datetime import UTC, datetime

from limner.api.convert.common import duration_to_pb, enum_from_pb, timestamp_to_pb
from limner.api.status import to_status_proto
from limner.domain.jobs import (
    ApprovalRequiredEvent,
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    Heartbeat,
    ImageOutput,
    Job,
    JobEvent,
    JobKind,
    JobResult,
    JobStage,
    JobState,
    JobWarning,
    PreviewEvent,
    Progress,
    ProgressEvent,
    Snapshot,
    TextDeltaEvent,
    Usage,
    UsageEvent,
    WarningEvent,
    WatchItem,
)
from limner.domain.webhooks import (
    DeliveryState,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from limner.v1 import job_pb2

JOB_STATES = {
    JobState.QUEUED: job_pb2.JOB_STATE_QUEUED,
    JobState.RUNNING: job_pb2.JOB_STATE_RUNNING,
    JobState.AWAITING_APPROVAL: job_pb2.JOB_STATE_AWAITING_APPROVAL,
    JobState.SUCCEEDED: job_pb2.JOB_STATE_SUCCEEDED,
    JobState.FAILED: job_pb2.JOB_STATE_FAILED,
    JobState.CANCELLED: job_pb2.JOB_STATE_CANCELLED,
}
JOB_STATES_FROM_PB = {value: key for key, value in JOB_STATES.items()}
JOB_KINDS = {
    JobKind.IMAGE_GENERATION: job_pb2.JOB_KIND_IMAGE_GENERATION,
    JobKind.IMAGE_EDIT: job_pb2.JOB_KIND_IMAGE_EDIT,
    JobKind.AVATAR_GENERATION: job_pb2.JOB_KIND_AVATAR_GENERATION,
    JobKind.AVATAR_EDIT: job_pb2.JOB_KIND_AVATAR_EDIT,
    JobKind.SCENE: job_pb2.JOB_KIND_SCENE,
    JobKind.DESIGN_NOTES: job_pb2.JOB_KIND_DESIGN_NOTES,
}
JOB_KINDS_FROM_PB = {value: key for key, value in JOB_KINDS.items()}
JOB_STAGES = {
    JobStage.QUEUED: job_pb2.JOB_STAGE_QUEUED,
    JobStage.PREPARING: job_pb2.JOB_STAGE_PREPARING,
    JobStage.WRITING: job_pb2.JOB_STAGE_WRITING,
    JobStage.AWAITING_APPROVAL: job_pb2.JOB_STAGE_AWAITING_APPROVAL,
    JobStage.GENERATING: job_pb2.JOB_STAGE_GENERATING,
    JobStage.DOWNLOADING: job_pb2.JOB_STAGE_DOWNLOADING,
    JobStage.STORING: job_pb2.JOB_STAGE_STORING,
}


def progress_to_pb(progress: Progress) -> job_pb2.JobProgress:
    message = job_pb2.JobProgress(
        stage=JOB_STAGES[progress.stage],
        step=progress.step,
        total_steps=progress.total_steps,
        message=progress.message,
        queue_position=progress.queue_position,
        eta=duration_to_pb(progress.eta_s),
    )
    if progress.fraction is not None:
        message.fraction = progress.fraction
    return message


def image_output_to_pb(image: ImageOutput) -> job_pb2.ImageOutput:
    output = job_pb2.ImageOutput(
        asset=image.asset,
        width=image.width,
        height=image.height,
        mime_type=image.mime_type,
        size_bytes=image.size_bytes,
    )
    if image.seed is not None:
        output.seed = image.seed
    return output


def result_to_pb(result: JobResult) -> job_pb2.JobResult:
    return job_pb2.JobResult(
        images=[image_output_to_pb(image) for image in result.images], text=result.text
    )


def warning_to_pb(warning: JobWarning) -> job_pb2.JobWarning:
    return job_pb2.JobWarning(code=warning.code, message=warning.message, field=warning.field)


def usage_to_pb(usage: Usage) -> job_pb2.JobUsage:
    return job_pb2.JobUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cost_usd=usage.cost_usd,
        provider_calls=usage.provider_calls,
    )


def job_to_pb(job: Job) -> job_pb2.Job:
    message = job_pb2.Job(
        name=f"jobs/{job.id}",
        kind=JOB_KINDS[job.kind],
        state=JOB_STATES[job.state],
        progress=progress_to_pb(job.progress),
        model=f"models/{job.model_id}" if job.model_id else "",
        prompt=job.prompt,
        create_time=timestamp_to_pb(job.create_time),
        update_time=timestamp_to_pb(job.update_time),
        start_time=timestamp_to_pb(job.start_time),
        end_time=timestamp_to_pb(job.end_time),
        warnings=[warning_to_pb(w) for w in job.warnings],
        last_sequence=job.last_sequence,
        attempt=job.attempt,
        target=job.target,
        usage=usage_to_pb(job.usage),
    )
    if job.result is not None:
        message.result.CopyFrom(result_to_pb(job.result))
    if job.error is not None:
        message.error.CopyFrom(to_status_proto(job.error))
    if job.webhook is not None:
        message.webhook.CopyFrom(webhook_to_pb(job.webhook))
    return message


def event_to_pb(item: WatchItem) -> job_pb2.JobEvent:
    if isinstance(item, Snapshot):
        return job_pb2.JobEvent(
            job=f"jobs/{item.job.id}",
            sequence=item.sequence,
            time=timestamp_to_pb(item.job.update_time),
            snapshot=job_to_pb(item.job),
            transient=True,
        )
    if isinstance(item, Heartbeat):
        return job_pb2.JobEvent(
            job=f"jobs/{item.job_id}",
            sequence=item.sequence,
            time=timestamp_to_pb(datetime.now(UTC)),
            heartbeat=job_pb2.JobHeartbeat(state=JOB_STATES[item.state]),
            transient=True,
        )
    return logged_event_to_pb(item)


def logged_event_to_pb(event: JobEvent) -> job_pb2.JobEvent:
    message = job_pb2.JobEvent(
        job=f"jobs/{event.job_id}",
        sequence=event.sequence,
        time=timestamp_to_pb(event.time),
        transient=event.ephemeral,
    )
    match event.body:
        case ProgressEvent(progress):
            message.progress.CopyFrom(progress_to_pb(progress))
        case PreviewEvent(asset, step):
            message.preview.CopyFrom(job_pb2.JobPreview(asset=asset, step=step))
        case TextDeltaEvent(text):
            message.text_delta.CopyFrom(job_pb2.JobTextDelta(text=text))
        case ApprovalRequiredEvent(prompt, scene):
            message.approval_required.CopyFrom(
                job_pb2.JobApprovalRequired(prompt=prompt, scene=scene)
            )
        case WarningEvent(warning):
            message.warning.CopyFrom(warning_to_pb(warning))
        case UsageEvent(usage):
            message.usage.CopyFrom(usage_to_pb(usage))
        case CompletedEvent(result):
            message.completed.CopyFrom(result_to_pb(result))
        case FailedEvent(error):
            message.failed.CopyFrom(to_status_proto(error))
        case CancelledEvent(reason):
            message.cancelled.CopyFrom(job_pb2.JobCancelled(reason=reason))
    return message


# -- webhooks ------------------------------------------------------------------------------

WEBHOOK_EVENTS = {
    WebhookEvent.COMPLETED: job_pb2.WEBHOOK_EVENT_COMPLETED,
    WebhookEvent.FAILED: job_pb2.WEBHOOK_EVENT_FAILED,
    WebhookEvent.CANCELLED: job_pb2.WEBHOOK_EVENT_CANCELLED,
    WebhookEvent.AWAITING_APPROVAL: job_pb2.WEBHOOK_EVENT_AWAITING_APPROVAL,
    WebhookEvent.PROGRESS: job_pb2.WEBHOOK_EVENT_PROGRESS,
}
WEBHOOK_EVENTS_FROM_PB = {value: key for key, value in WEBHOOK_EVENTS.items()}
DELIVERY_STATES = {
    DeliveryState.PENDING: job_pb2.WEBHOOK_DELIVERY_STATE_PENDING,
    DeliveryState.DELIVERED: job_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED,
    DeliveryState.FAILED: job_pb2.WEBHOOK_DELIVERY_STATE_FAILED,
}


def webhook_from_pb(message: job_pb2.JobWebhook, field: str) -> WebhookSubscription | None:
    """A request's webhook; ``None`` for an empty message (no URL, no events)."""
    if not message.url and not message.events:
        return None
    events = [
        enum_from_pb(WEBHOOK_EVENTS_FROM_PB, value, f"{field}.events", required=False)
        for value in message.events
    ]
    return WebhookSubscription.of(message.url.strip(), events)


def webhook_to_pb(webhook: WebhookSubscription) -> job_pb2.JobWebhook:
    return job_pb2.JobWebhook(
        url=webhook.url, events=[WEBHOOK_EVENTS[event] for event in webhook.events]
    )


def webhook_delivery_to_pb(delivery: WebhookDelivery) -> job_pb2.WebhookDelivery:
    return job_pb2.WebhookDelivery(
        id=delivery.id,
        job=f"jobs/{delivery.job_id}",
        sequence=delivery.sequence,
        event=WEBHOOK_EVENTS[delivery.event],
        url=delivery.url,
        state=DELIVERY_STATES[delivery.state],
        attempts=delivery.attempts,
        create_time=timestamp_to_pb(delivery.create_time),
        last_attempt_time=timestamp_to_pb(delivery.last_attempt_time),
        next_attempt_time=timestamp_to_pb(delivery.next_attempt_time),
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        body=delivery.body,
    )
