"""The one place domain errors become ``google.rpc.Status`` (AIP-193).

Every status carries exactly one ``ErrorInfo`` (domain ``limner.dev``) plus, where they
apply, ``BadRequest`` field violations, ``PreconditionFailure`` and ``RetryInfo``.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from limner.errors import DOMAIN, Code, ErrorPayload, LimnerError

GRPC_CODES: dict[Code, grpc.StatusCode] = {code: grpc.StatusCode[code.value] for code in Code}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status_proto(error: ErrorPayload) -> status_pb2.Status:
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=DOMAIN, metadata=dict(error.metadata)
            )
        )
    ]
    if error.field_violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.reason
                        )
                        for v in error.field_violations
                    ]
                )
            )
        )
    if error.precondition_violations:
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=v.type, subject=v.subject, description=v.description
                        )
                        for v in error.precondition_violations
                    ]
                )
            )
        )
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(
        code=getattr(code_pb2, error.code.value), message=error.message, details=details
    )


async def abort(context: grpc.aio.ServicerContext[object, object], error: LimnerError) -> None:
    """Ends the RPC with ``error`` as a rich status (raises ``grpc.aio.AbortError``)."""
    status = rpc_status.to_status(to_status_proto(error.payload()))
    # abort() replaces the trailers, so keep those set earlier (x-request-id).
    earlier = tuple(context.trailing_metadata() or ())
    await context.abort(status.code, status.details, earlier + tuple(status.trailing_metadata))
