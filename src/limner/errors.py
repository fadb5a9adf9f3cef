"""The domain error tree. Every error Limner reports to a client is one of these.

Each leaf knows its canonical status code and its stable ``ErrorInfo.reason``. The mapping
to ``google.rpc.Status`` happens in exactly one place, ``limner.api.status``; nothing else
builds statuses. Errors are plain data (``ErrorPayload``) so a failed job can store one and
return it later with the same details an RPC error would carry.

::

    LimnerError
    ├── InvalidArgument          INVALID_ARGUMENT     INVALID_FIELD (+ BadRequest)
    │   ├── RequestIdConflict    INVALID_ARGUMENT     REQUEST_ID_CONFLICT
    │   ├── InvalidPageToken     INVALID_ARGUMENT     INVALID_PAGE_TOKEN (+ BadRequest)
    │   └── ReferenceLimit       INVALID_ARGUMENT     REFERENCE_LIMIT_EXCEEDED (+ BadRequest)
    ├── NotFound                 NOT_FOUND            <KIND>_NOT_FOUND
    ├── AlreadyExists            ALREADY_EXISTS       <KIND>_ALREADY_EXISTS
    ├── FailedPrecondition       FAILED_PRECONDITION  (+ PreconditionFailure)
    │   ├── CapabilityMissing    FAILED_PRECONDITION  MODEL_CAPABILITY_UNSUPPORTED
    │   ├── ModelNotConfigured   FAILED_PRECONDITION  MODEL_NOT_CONFIGURED
    │   ├── JobNotCancellable    FAILED_PRECONDITION  JOB_NOT_CANCELLABLE
    │   ├── ReadOnlyResource     FAILED_PRECONDITION  RESOURCE_READ_ONLY
    │   ├── ContentFiltered      FAILED_PRECONDITION  CONTENT_FILTERED (never retried)
    │   ├── ProviderRejected     FAILED_PRECONDITION  PROVIDER_REJECTED_REQUEST
    │   └── ProviderAuthFailed   FAILED_PRECONDITION  PROVIDER_AUTH_FAILED
    ├── Unauthenticated          UNAUTHENTICATED      API_KEY_INVALID
    ├── ResourceExhausted        RESOURCE_EXHAUSTED   PROVIDER_RATE_LIMITED (+ RetryInfo)
    ├── Unavailable              UNAVAILABLE          PROVIDER_UNAVAILABLE (+ RetryInfo)
    ├── NoImageReturned          UNKNOWN              NO_IMAGE_RETURNED
    ├── OutOfRange               OUT_OF_RANGE         WATCH_HISTORY_EXPIRED
    ├── Aborted                  ABORTED              SERVER_RESTARTED
    └── InternalError            INTERNAL             INTERNAL
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DOMAIN = "limner.dev"


class Code(StrEnum):
    """Canonical status codes, by name (the API layer turns them into grpc.StatusCode)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    ABORTED = "ABORTED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its path (``options.width``) and what is wrong with it."""

    field: str
    description: str
    reason: str = ""


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition: its type (``CAPABILITY``), subject and description."""

    type: str
    subject: str
    description: str


@dataclass(frozen=True)
class ErrorPayload:
    """Everything a client needs to act on an error, as plain data."""

    code: Code
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()
    precondition_violations: tuple[PreconditionViolation, ...] = ()
    retry_after_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "reason": self.reason,
            "message": self.message,
            "metadata": dict(self.metadata),
            "field_violations": [vars(v) for v in self.field_violations],
            "precondition_violations": [vars(v) for v in self.precondition_violations],
            "retry_after_s": self.retry_after_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorPayload:
        return cls(
            code=Code(data["code"]),
            reason=data["reason"],
            message=data["message"],
            metadata=dict(data.get("metadata") or {}),
            field_violations=tuple(FieldViolation(**v) for v in data.get("field_violations", [])),
            precondition_violations=tuple(
                PreconditionViolation(**v) for v in data.get("precondition_violations", [])
            ),
            retry_after_s=data.get("retry_after_s"),
        )


class LimnerError(Exception):
    """Base of every error Limner reports. Subclasses fix the code and default reason."""

    code: Code = Code.INTERNAL
    reason: str = "INTERNAL"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] | list[FieldViolation] = (),
        precondition_violations: (
            tuple[PreconditionViolation, ...] | list[PreconditionViolation]
        ) = (),
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})
        self.field_violations = tuple(field_violations)
        self.precondition_violations = tuple(precondition_violations)
        self.retry_after_s = retry_after_s

    def payload(self) -> ErrorPayload:
        return ErrorPayload(
            code=self.code,
            reason=self.reason,
            message=self.message,
            metadata=self.metadata,
            field_violations=self.field_violations,
            precondition_violations=self.precondition_violations,
            retry_after_s=self.retry_after_s,
        )


class InvalidArgument(LimnerError):
    code = Code.INVALID_ARGUMENT
    reason = "INVALID_FIELD"

    @classmethod
    def field(cls, field: str, description: str, reason: str = "") -> InvalidArgument:
        """One bad field; the message repeats the violation so logs read well."""
        return cls(
            f"{field}: {description}",
            metadata={"field": field},
            field_violations=(FieldViolation(field, description, reason),),
        )


class RequestIdConflict(InvalidArgument):
    reason = "REQUEST_ID_CONFLICT"


class InvalidPageToken(InvalidArgument):
    reason = "INVALID_PAGE_TOKEN"


class ReferenceLimit(InvalidArgument):
    reason = "REFERENCE_LIMIT_EXCEEDED"


class NotFound(LimnerError):
    code = Code.NOT_FOUND
    reason = "NOT_FOUND"

    @classmethod
    def resource(cls, kind: str, name: str) -> NotFound:
        return cls(
            f"{kind} {name!r} not found",
            reason=f"{kind.upper().replace(' ', '_')}_NOT_FOUND",
            metadata={"name": name},
        )


class AlreadyExists(LimnerError):
    code = Code.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(LimnerError):
    code = Code.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class CapabilityMissing(FailedPrecondition):
    reason = "MODEL_CAPABILITY_UNSUPPORTED"


class ModelNotConfigured(FailedPrecondition):
    reason = "MODEL_NOT_CONFIGURED"


class JobNotCancellable(FailedPrecondition):
    reason = "JOB_NOT_CANCELLABLE"


class ReadOnlyResource(FailedPrecondition):
    reason = "RESOURCE_READ_ONLY"


class ContentFiltered(FailedPrecondition):
    reason = "CONTENT_FILTERED"


class ProviderRejected(FailedPrecondition):
    reason = "PROVIDER_REJECTED_REQUEST"


class ProviderAuthFailed(FailedPrecondition):
    reason = "PROVIDER_AUTH_FAILED"


class Unauthenticated(LimnerError):
    code = Code.UNAUTHENTICATED
    reason = "API_KEY_INVALID"


class ResourceExhausted(LimnerError):
    code = Code.RESOURCE_EXHAUSTED
    reason = "PROVIDER_RATE_LIMITED"
    retryable = True


class Unavailable(LimnerError):
    code = Code.UNAVAILABLE
    reason = "PROVIDER_UNAVAILABLE"
    retryable = True


class NoImageReturned(LimnerError):
    code = Code.UNKNOWN
    reason = "NO_IMAGE_RETURNED"
    retryable = True


class OutOfRange(LimnerError):
    code = Code.OUT_OF_RANGE
    reason = "OUT_OF_RANGE"


class Aborted(LimnerError):
    code = Code.ABORTED
    reason = "ABORTED"


class InternalError(LimnerError):
    code = Code.INTERNAL
    reason = "INTERNAL"
