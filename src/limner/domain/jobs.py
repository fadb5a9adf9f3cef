"""Jobs and their events (ARCHITECTURE §1.2-1.3, §5). Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from limner.domain.specs import JobSpec
from limner.domain.webhooks import WebhookSubscription
from limner.errors import ErrorPayload


class JobKind(StrEnum):
    IMAGE_GENERATION = "image_generation"
    IMAGE_EDIT = "image_edit"
    AVATAR_GENERATION = "avatar_generation"
    AVATAR_EDIT = "avatar_edit"
    SCENE = "scene"
    DESIGN_NOTES = "design_notes"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class JobStage(StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    WRITING = "writing"
    AWAITING_APPROVAL = "awaiting_approval"
    GENERATING = "generating"
    DOWNLOADING = "downloading"
    STORING = "storing"


@dataclass(frozen=True, kw_only=True)
class Progress:
    stage: JobStage
    fraction: float | None = None
    step: int = 0
    total_steps: int = 0
    eta_s: float | None = None
    message: str = ""
    queue_position: int = 0


@dataclass(frozen=True, kw_only=True)
class ImageOutput:
    asset: str
    width: int
    height: int
    mime_type: str
    size_bytes: int
    seed: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobResult:
    images: tuple[ImageOutput, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class JobWarning:
    code: str
    message: str
    field: str = ""


@dataclass(frozen=True, kw_only=True)
class Usage:
    """What providers reported using. Adds up across a job's calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    provider_calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            provider_calls=self.provider_calls + other.provider_calls,
        )


# Logged events. Each is one entry of a job's append-only log.


@dataclass(frozen=True)
class ProgressEvent:
    progress: Progress


@dataclass(frozen=True)
class PreviewEvent:
    asset: str
    step: int = 0


@dataclass(frozen=True)
class TextDeltaEvent:
    text: str


@dataclass(frozen=True)
class ApprovalRequiredEvent:
    prompt: str
    scene: str = ""


@dataclass(frozen=True)
class WarningEvent:
    warning: JobWarning


@dataclass(frozen=True)
class UsageEvent:
    usage: Usage


@dataclass(frozen=True)
class CompletedEvent:
    result: JobResult


@dataclass(frozen=True)
class FailedEvent:
    error: ErrorPayload


@dataclass(frozen=True)
class CancelledEvent:
    reason: str


EventBody = (
    ProgressEvent
    | PreviewEvent
    | TextDeltaEvent
    | ApprovalRequiredEvent
    | WarningEvent
    | UsageEvent
    | CompletedEvent
    | FailedEvent
    | CancelledEvent
)
TERMINAL_EVENTS = (CompletedEvent, FailedEvent, CancelledEvent)


@dataclass(frozen=True)
class JobEvent:
    """A logged event with its per-job sequence number."""

    job_id: str
    sequence: int
    time: datetime
    body: EventBody
    # Not in the log (queue positions): ``sequence`` repeats the last logged one.
    ephemeral: bool = False

    @property
    def terminal(self) -> bool:
        return isinstance(self.body, TERMINAL_EVENTS)


@dataclass(kw_only=True)
class Job:
    """A job's current state (the snapshot a watch starts with)."""

    id: str
    workspace_id: str
    kind: JobKind
    state: JobState
    progress: Progress
    model_id: str
    provider_id: str
    prompt: str
    # What the job was planned to do; a restarted server runs it again from this.
    spec: JobSpec
    create_time: datetime
    update_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    result: JobResult | None = None
    error: ErrorPayload | None = None
    warnings: list[JobWarning] = field(default_factory=list)
    last_sequence: int = 0
    attempt: int = 0
    target: str = ""
    usage: Usage = field(default_factory=Usage)
    # The W3C trace context (``traceparent``, ``tracestate``) of the span that submitted
    # the job, so every run of it joins that trace; empty when tracing was off.
    trace_context: dict[str, str] = field(default_factory=dict)
    # Where its events are posted (the request's webhook, or the workspace default when it
    # was created); None: nowhere.
    webhook: WebhookSubscription | None = None

    def record(self, body: EventBody, *, keep_warning: bool = True) -> None:
        """Folds a logged event into the job's current state."""
        match body:
            case ProgressEvent(progress):
                self.progress = progress
            case CompletedEvent(result):
                self.result = result
            case FailedEvent(error):
                self.error = error
            case WarningEvent(warning) if keep_warning:
                self.warnings.append(warning)
            case UsageEvent(usage):
                self.usage = self.usage + usage

    def copy(self) -> Job:
        """A snapshot that later changes to this job do not affect."""
        return replace(self, warnings=list(self.warnings))


# Watch stream items that are not logged.


@dataclass(frozen=True)
class Snapshot:
    job: Job
    sequence: int


@dataclass(frozen=True)
class Heartbeat:
    job_id: str
    sequence: int
    state: JobState


WatchItem = JobEvent | Snapshot | Heartbeat
