"""JSON round-trips for job data, so storage layers can persist events as documents."""

from __future__ import annotations

from typing import Any

from limner.domain.jobs import (
    ApprovalRequiredEvent,
    CancelledEvent,
    CompletedEvent,
    EventBody,
    FailedEvent,
    ImageOutput,
    JobResult,
    JobStage,
    JobWarning,
    PreviewEvent,
    Progress,
    ProgressEvent,
    TextDeltaEvent,
    Usage,
    UsageEvent,
    WarningEvent,
)
from limner.errors import ErrorPayload


# Explicit dicts rather than dataclasses.asdict: these run for every logged event, and
# asdict's recursive deep copy cost ~50 µs each.
def progress_to_json(progress: Progress) -> dict[str, Any]:
    return {
        "stage": progress.stage.value,
        "fraction": progress.fraction,
        "step": progress.step,
        "total_steps": progress.total_steps,
        "eta_s": progress.eta_s,
        "message": progress.message,
        "queue_position": progress.queue_position,
    }


def progress_from_json(data: dict[str, Any]) -> Progress:
    return Progress(**{**data, "stage": JobStage(data["stage"])})


def result_to_json(result: JobResult) -> dict[str, Any]:
    return {
        "images": [
            {
                "asset": image.asset,
                "width": image.width,
                "height": image.height,
                "mime_type": image.mime_type,
                "size_bytes": image.size_bytes,
                "seed": image.seed,
            }
            for image in result.images
        ],
        "text": result.text,
    }


def result_from_json(data: dict[str, Any]) -> JobResult:
    return JobResult(
        images=tuple(ImageOutput(**image) for image in data.get("images", [])),
        text=data.get("text", ""),
    )


def warning_to_json(warning: JobWarning) -> dict[str, Any]:
    return {"code": warning.code, "message": warning.message, "field": warning.field}


def warning_from_json(data: dict[str, Any]) -> JobWarning:
    return JobWarning(**data)


def usage_to_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cost_usd": usage.cost_usd,
        "provider_calls": usage.provider_calls,
    }


def usage_from_json(data: dict[str, Any] | None) -> Usage:
    return Usage(**data) if data else Usage()


def event_to_json(body: EventBody) -> tuple[str, dict[str, Any]]:
    """Returns the event's type tag and its JSON payload."""
    match body:
        case ProgressEvent(progress):
            return "progress", progress_to_json(progress)
        case PreviewEvent(asset, step):
            return "preview", {"asset": asset, "step": step}
        case TextDeltaEvent(text):
            return "text_delta", {"text": text}
        case ApprovalRequiredEvent(prompt, scene):
            return "approval_required", {"prompt": prompt, "scene": scene}
        case WarningEvent(warning):
            return "warning", warning_to_json(warning)
        case UsageEvent(usage):
            return "usage", usage_to_json(usage)
        case CompletedEvent(result):
            return "completed", result_to_json(result)
        case FailedEvent(error):
            return "failed", error.to_json()
        case CancelledEvent(reason):
            return "cancelled", {"reason": reason}
    raise TypeError(f"unknown event body {body!r}")


def event_from_json(kind: str, data: dict[str, Any]) -> EventBody:
    match kind:
        case "progress":
            return ProgressEvent(progress_from_json(data))
        case "preview":
            return PreviewEvent(data["asset"], data.get("step", 0))
        case "text_delta":
            return TextDeltaEvent(data["text"])
        case "approval_required":
            return ApprovalRequiredEvent(data["prompt"], data.get("scene", ""))
        case "warning":
            return WarningEvent(warning_from_json(data))
        case "usage":
            return UsageEvent(usage_from_json(data))
        case "completed":
            return CompletedEvent(result_from_json(data))
        case "failed":
            return FailedEvent(ErrorPayload.from_json(data))
        case "cancelled":
            return CancelledEvent(data.get("reason", ""))
    raise ValueError(f"unknown event kind {kind!r}")
