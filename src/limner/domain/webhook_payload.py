"""The JSON document a webhook delivery posts for one logged job event.

``{"type": "job.completed", "timestamp": ..., "data": {...}}`` (the Standard Webhooks
payload shape). ``data`` names the job, its kind and state (proto enum names, as in the
API's JSON mapping), the event's sequence and time, and per event: the result (asset
names, sizes, seeds, text), the error status, the cancellation reason, the prompt waiting
for approval, or the progress. Never image bytes. The README documents it.
"""

from __future__ import annotations

import json
from typing import Any

from limner.domain.jobs import (
    ApprovalRequiredEvent,
    CancelledEvent,
    CompletedEvent,
    EventBody,
    FailedEvent,
    Job,
    JobEvent,
    JobResult,
    Progress,
    ProgressEvent,
)
from limner.domain.webhooks import WebhookEvent
from limner.errors import Code, ErrorPayload

# google.rpc.Code numbers, for the error status in a job.failed body.
RPC_CODES = {
    Code.CANCELLED: 1,
    Code.UNKNOWN: 2,
    Code.INVALID_ARGUMENT: 3,
    Code.DEADLINE_EXCEEDED: 4,
    Code.NOT_FOUND: 5,
    Code.ALREADY_EXISTS: 6,
    Code.PERMISSION_DENIED: 7,
    Code.RESOURCE_EXHAUSTED: 8,
    Code.FAILED_PRECONDITION: 9,
    Code.ABORTED: 10,
    Code.OUT_OF_RANGE: 11,
    Code.UNIMPLEMENTED: 12,
    Code.INTERNAL: 13,
    Code.UNAVAILABLE: 14,
    Code.UNAUTHENTICATED: 16,
}


def webhook_event(body: EventBody) -> WebhookEvent | None:
    """The webhook event a logged event is, if any (warnings, usage, previews and text
    deltas are never posted)."""
    match body:
        case CompletedEvent():
            return WebhookEvent.COMPLETED
        case FailedEvent():
            return WebhookEvent.FAILED
        case CancelledEvent():
            return WebhookEvent.CANCELLED
        case ApprovalRequiredEvent():
            return WebhookEvent.AWAITING_APPROVAL
        case ProgressEvent():
            return WebhookEvent.PROGRESS
    return None


def webhook_body(job: Job, event: JobEvent, kind: WebhookEvent) -> str:
    """The body posted for ``event`` of ``job`` (``job`` as it is once the event is
    folded in). Compact JSON; stored as is, so every retry posts the same bytes."""
    data: dict[str, Any] = {
        "job": f"jobs/{job.id}",
        "kind": f"JOB_KIND_{job.kind.value.upper()}",
        "state": f"JOB_STATE_{job.state.value.upper()}",
        "sequence": event.sequence,
        "time": _time(event),
        "target": job.target,
    }
    match event.body:
        case CompletedEvent(result):
            data["result"] = _result(result)
        case FailedEvent(error):
            data["error"] = _status(error)
        case CancelledEvent(reason):
            data["reason"] = reason
        case ApprovalRequiredEvent(prompt, scene):
            data["approval"] = {"prompt": prompt, "scene": scene}
        case ProgressEvent(progress):
            data["progress"] = _progress(progress)
    document = {"type": kind.type, "timestamp": data["time"], "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _time(event: JobEvent) -> str:
    return event.time.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _result(result: JobResult) -> dict[str, Any]:
    images = []
    for image in result.images:
        entry: dict[str, Any] = {
            "asset": image.asset,
            "width": image.width,
            "height": image.height,
            "mime_type": image.mime_type,
            "size_bytes": image.size_bytes,
        }
        if image.seed is not None:
            entry["seed"] = image.seed
        images.append(entry)
    return {"images": images, "text": result.text}


def _status(error: ErrorPayload) -> dict[str, Any]:
    """The error as google.rpc.Status's JSON reads (code, message) plus its name, reason
    and metadata (the ErrorInfo an RPC error carries)."""
    return {
        "code": RPC_CODES.get(error.code, 2),
        "status": error.code.value,
        "message": error.message,
        "reason": error.reason,
        "metadata": dict(error.metadata),
    }


def _progress(progress: Progress) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "stage": f"JOB_STAGE_{progress.stage.value.upper()}",
        "step": progress.step,
        "total_steps": progress.total_steps,
        "message": progress.message,
    }
    if progress.fraction is not None:
        entry["fraction"] = progress.fraction
    return entry
