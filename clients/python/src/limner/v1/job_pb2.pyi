import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_IMAGE_GENERATION: _ClassVar[JobKind]
    JOB_KIND_IMAGE_EDIT: _ClassVar[JobKind]
    JOB_KIND_AVATAR_GENERATION: _ClassVar[JobKind]
    JOB_KIND_AVATAR_EDIT: _ClassVar[JobKind]
    JOB_KIND_SCENE: _ClassVar[JobKind]
    JOB_KIND_DESIGN_NOTES: _ClassVar[JobKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_AWAITING_APPROVAL: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class JobStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STAGE_UNSPECIFIED: _ClassVar[JobStage]
    JOB_STAGE_QUEUED: _ClassVar[JobStage]
    JOB_STAGE_PREPARING: _ClassVar[JobStage]
    JOB_STAGE_WRITING: _ClassVar[JobStage]
    JOB_STAGE_AWAITING_APPROVAL: _ClassVar[JobStage]
    JOB_STAGE_GENERATING: _ClassVar[JobStage]
    JOB_STAGE_DOWNLOADING: _ClassVar[JobStage]
    JOB_STAGE_STORING: _ClassVar[JobStage]

class WebhookEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_EVENT_UNSPECIFIED: _ClassVar[WebhookEvent]
    WEBHOOK_EVENT_COMPLETED: _ClassVar[WebhookEvent]
    WEBHOOK_EVENT_FAILED: _ClassVar[WebhookEvent]
    WEBHOOK_EVENT_CANCELLED: _ClassVar[WebhookEvent]
    WEBHOOK_EVENT_AWAITING_APPROVAL: _ClassVar[WebhookEvent]
    WEBHOOK_EVENT_PROGRESS: _ClassVar[WebhookEvent]

class WebhookDeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_DELIVERY_STATE_UNSPECIFIED: _ClassVar[WebhookDeliveryState]
    WEBHOOK_DELIVERY_STATE_PENDING: _ClassVar[WebhookDeliveryState]
    WEBHOOK_DELIVERY_STATE_DELIVERED: _ClassVar[WebhookDeliveryState]
    WEBHOOK_DELIVERY_STATE_FAILED: _ClassVar[WebhookDeliveryState]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_IMAGE_GENERATION: JobKind
JOB_KIND_IMAGE_EDIT: JobKind
JOB_KIND_AVATAR_GENERATION: JobKind
JOB_KIND_AVATAR_EDIT: JobKind
JOB_KIND_SCENE: JobKind
JOB_KIND_DESIGN_NOTES: JobKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_AWAITING_APPROVAL: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_STAGE_UNSPECIFIED: JobStage
JOB_STAGE_QUEUED: JobStage
JOB_STAGE_PREPARING: JobStage
JOB_STAGE_WRITING: JobStage
JOB_STAGE_AWAITING_APPROVAL: JobStage
JOB_STAGE_GENERATING: JobStage
JOB_STAGE_DOWNLOADING: JobStage
JOB_STAGE_STORING: JobStage
WEBHOOK_EVENT_UNSPECIFIED: WebhookEvent
WEBHOOK_EVENT_COMPLETED: WebhookEvent
WEBHOOK_EVENT_FAILED: WebhookEvent
WEBHOOK_EVENT_CANCELLED: WebhookEvent
WEBHOOK_EVENT_AWAITING_APPROVAL: WebhookEvent
WEBHOOK_EVENT_PROGRESS: WebhookEvent
WEBHOOK_DELIVERY_STATE_UNSPECIFIED: WebhookDeliveryState
WEBHOOK_DELIVERY_STATE_PENDING: WebhookDeliveryState
WEBHOOK_DELIVERY_STATE_DELIVERED: WebhookDeliveryState
WEBHOOK_DELIVERY_STATE_FAILED: WebhookDeliveryState

class Job(_message.Message):
    __slots__ = ("name", "kind", "state", "progress", "model", "prompt", "create_time", "update_time", "start_time", "end_time", "result", "error", "warnings", "last_sequence", "attempt", "target", "usage", "webhook")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: JobKind
    state: JobState
    progress: JobProgress
    model: str
    prompt: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    result: JobResult
    error: _status_pb2.Status
    warnings: _containers.RepeatedCompositeFieldContainer[JobWarning]
    last_sequence: int
    attempt: int
    target: str
    usage: JobUsage
    webhook: JobWebhook
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[JobKind, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[JobWarning, _Mapping]]] = ..., last_sequence: _Optional[int] = ..., attempt: _Optional[int] = ..., target: _Optional[str] = ..., usage: _Optional[_Union[JobUsage, _Mapping]] = ..., webhook: _Optional[_Union[JobWebhook, _Mapping]] = ...) -> None: ...

class JobUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "total_tokens", "cost_usd", "provider_calls")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CALLS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    provider_calls: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., provider_calls: _Optional[int] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job", "sequence", "time", "transient", "snapshot", "progress", "preview", "text_delta", "approval_required", "warning", "completed", "failed", "cancelled", "heartbeat", "usage")
    JOB_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSIENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    job: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    transient: bool
    snapshot: Job
    progress: JobProgress
    preview: JobPreview
    text_delta: JobTextDelta
    approval_required: JobApprovalRequired
    warning: JobWarning
    completed: JobResult
    failed: _status_pb2.Status
    cancelled: JobCancelled
    heartbeat: JobHeartbeat
    usage: JobUsage
    def __init__(self, job: _Optional[str] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transient: _Optional[bool] = ..., snapshot: _Optional[_Union[Job, _Mapping]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., preview: _Optional[_Union[JobPreview, _Mapping]] = ..., text_delta: _Optional[_Union[JobTextDelta, _Mapping]] = ..., approval_required: _Optional[_Union[JobApprovalRequired, _Mapping]] = ..., warning: _Optional[_Union[JobWarning, _Mapping]] = ..., completed: _Optional[_Union[JobResult, _Mapping]] = ..., failed: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., cancelled: _Optional[_Union[JobCancelled, _Mapping]] = ..., heartbeat: _Optional[_Union[JobHeartbeat, _Mapping]] = ..., usage: _Optional[_Union[JobUsage, _Mapping]] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("stage", "fraction", "step", "total_steps", "eta", "message", "queue_position")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    stage: JobStage
    fraction: float
    step: int
    total_steps: int
    eta: _duration_pb2.Duration
    message: str
    queue_position: int
    def __init__(self, stage: _Optional[_Union[JobStage, str]] = ..., fraction: _Optional[float] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., message: _Optional[str] = ..., queue_position: _Optional[int] = ...) -> None: ...

class JobPreview(_message.Message):
    __slots__ = ("asset", "step")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    asset: str
    step: int
    def __init__(self, asset: _Optional[str] = ..., step: _Optional[int] = ...) -> None: ...

class JobTextDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class JobApprovalRequired(_message.Message):
    __slots__ = ("prompt", "scene")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    scene: str
    def __init__(self, prompt: _Optional[str] = ..., scene: _Optional[str] = ...) -> None: ...

class JobWarning(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("images", "text")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ImageOutput]
    text: str
    def __init__(self, images: _Optional[_Iterable[_Union[ImageOutput, _Mapping]]] = ..., text: _Optional[str] = ...) -> None: ...

class ImageOutput(_message.Message):
    __slots__ = ("asset", "width", "height", "mime_type", "seed", "size_bytes")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    asset: str
    width: int
    height: int
    mime_type: str
    seed: int
    size_bytes: int
    def __init__(self, asset: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., mime_type: _Optional[str] = ..., seed: _Optional[int] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class JobCancelled(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class JobHeartbeat(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    def __init__(self, state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class JobWebhook(_message.Message):
    __slots__ = ("url", "events")
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    url: str
    events: _containers.RepeatedScalarFieldContainer[WebhookEvent]
    def __init__(self, url: _Optional[str] = ..., events: _Optional[_Iterable[_Union[WebhookEvent, str]]] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("id", "job", "sequence", "event", "url", "state", "attempts", "create_time", "last_attempt_time", "next_attempt_time", "last_status_code", "last_error", "body")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    id: str
    job: str
    sequence: int
    event: WebhookEvent
    url: str
    state: WebhookDeliveryState
    attempts: int
    create_time: _timestamp_pb2.Timestamp
    last_attempt_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    last_status_code: int
    last_error: str
    body: str
    def __init__(self, id: _Optional[str] = ..., job: _Optional[str] = ..., sequence: _Optional[int] = ..., event: _Optional[_Union[WebhookEvent, str]] = ..., url: _Optional[str] = ..., state: _Optional[_Union[WebhookDeliveryState, str]] = ..., attempts: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...
