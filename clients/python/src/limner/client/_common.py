"""What the sync and asyncio flavours share: connection settings, TLS, job-event helpers,
rich error details and the checks a download makes."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from limner.v1 import image_service_pb2, job_pb2

TERMINAL_EVENTS = ("completed", "failed", "cancelled")
DEFAULT_UNARY_TIMEOUT_S = 30.0
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class KeepAliveConfig:
    """Client keepalive pings. ``interval_ms`` must not be below the server's
    ``grpc.min_ping_interval_without_data_ms`` (10 s by default) or it answers GOAWAY."""

    interval_ms: int = 30_000
    timeout_ms: int = 10_000


class TlsConfigError(ValueError):
    """The TLS options are incomplete, or name a file that cannot be read or holds no PEM
    certificate or key. The message is one line naming the file."""


@dataclass(frozen=True)
class TlsConfig:
    """Connect over TLS.

    ``ca_cert``: a PEM file with the CA certificate(s) that signed the server's certificate;
    ``None`` trusts the system's CAs. ``client_cert`` and ``client_key``: this client's PEM
    certificate and unencrypted key, for a server that requires client certificates (mTLS);
    both or neither. ``server_name``: the name to check the server's certificate against
    when it is not the host in the address (e.g. connecting by IP to a certificate for
    ``limner.internal``).
    """

    ca_cert: Path | str | None = None
    client_cert: Path | str | None = None
    client_key: Path | str | None = None
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        """Reads the files; raises ``TlsConfigError`` when one is missing or not PEM."""
        if (self.client_cert is None) != (self.client_key is None):
            raise TlsConfigError(
                "TLS: a client certificate needs its key and a key needs its certificate: "
                "give both client_cert and client_key, or neither"
            )
        ca = _read_pem(self.ca_cert, "the CA certificate", "CERTIFICATE-----")
        cert = _read_pem(self.client_cert, "the client certificate", "CERTIFICATE-----")
        key = _read_pem(self.client_key, "the client key", "PRIVATE KEY-----")
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )


def _read_pem(path: Path | str | None, what: str, marker: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TlsConfigError(f"TLS: cannot read {what} {path}: {error.strerror or error}") from None
    if marker.encode() not in data:
        raise TlsConfigError(f"TLS: {what} {path} holds no PEM {marker.rstrip('-').lower()}")
    return data


def channel_options(
    keepalive: KeepAliveConfig | None, max_message_bytes: int, tls: TlsConfig | None
) -> list[tuple[str, Any]]:
    keepalive = keepalive or KeepAliveConfig()
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", keepalive.interval_ms),
        ("grpc.keepalive_timeout_ms", keepalive.timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Reconnect within a second of a server's return (a restart, a dropped connection)
        # instead of gRPC's default backoff of up to 120 s; calls made meanwhile fail fast
        # with UNAVAILABLE and the job followers retry them.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def api_key_metadata(api_key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def new_request_id() -> str:
    """A fresh idempotency key (a random UUID) for a job-creating request."""
    return str(uuid.uuid4())


def is_terminal(event: job_pb2.JobEvent) -> bool:
    """Whether ``event`` ends its job: completed, failed or cancelled."""
    return event.WhichOneof("event") in TERMINAL_EVENTS


def is_logged(event: job_pb2.JobEvent) -> bool:
    """Whether ``event`` is in the job's log (has a sequence to resume after): everything
    but snapshots and heartbeats."""
    return not event.transient


# --- rich errors --------------------------------------------------------------------------

M = TypeVar("M", bound=Message)

_STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class ErrorDetails:
    """The ``google.rpc`` details a Limner error carries (each ``None`` when absent)."""

    error_info: error_details_pb2.ErrorInfo | None = None
    bad_request: error_details_pb2.BadRequest | None = None
    precondition_failure: error_details_pb2.PreconditionFailure | None = None
    retry_info: error_details_pb2.RetryInfo | None = None
    # Every detail, unpacked when its type is one of google.rpc's error details.
    all: tuple[Message, ...] = field(default=())


def rpc_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` an error carries in its trailers, or ``None`` (works for
    sync ``grpc.RpcError`` and ``grpc.aio.AioRpcError`` alike)."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata: Iterable[tuple[str, str | bytes]] = (trailing() if callable(trailing) else None) or ()
    for key, value in metadata:
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status: status_pb2.Status = status_pb2.Status.FromString(value)
            return status
    return None


_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    error_details_pb2.DebugInfo,
    error_details_pb2.RequestInfo,
)


def _unpacked(status: status_pb2.Status) -> list[Message]:
    out: list[Message] = []
    for detail in status.details:
        for kind in _DETAIL_TYPES:
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                out.append(message)
                break
    return out


def find_detail(error: grpc.RpcError, kind: type[M]) -> M | None:
    """The first detail of type ``kind`` (e.g. ``error_details_pb2.ErrorInfo``) in a gRPC
    error's ``google.rpc.Status``, or ``None``."""
    status = rpc_status(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            return message
    return None


def error_details(error: grpc.RpcError) -> ErrorDetails:
    """ErrorInfo, BadRequest, PreconditionFailure and RetryInfo of a gRPC error, typed."""
    status = rpc_status(error)
    if status is None:
        return ErrorDetails()
    details = _unpacked(status)

    def first(kind: type[M]) -> M | None:
        return next((d for d in details if isinstance(d, kind)), None)

    return ErrorDetails(
        error_info=first(error_details_pb2.ErrorInfo),
        bad_request=first(error_details_pb2.BadRequest),
        precondition_failure=first(error_details_pb2.PreconditionFailure),
        retry_info=first(error_details_pb2.RetryInfo),
        all=tuple(details),
    )


# --- downloads ----------------------------------------------------------------------------


class DownloadError(Exception):
    """A download's bytes do not match the asset: a chunk out of order, a size other than
    the asset's, or content whose sha256 is not the one the asset's name gives. The partial
    file is removed."""


class ChunkChecker:
    """Checks a ReadAssetContent stream chunk by chunk: offsets in order, the total size
    against the asset's ``size_bytes``, the sha256 against ``assets/{sha256}``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.digest = hashlib.sha256()
        self.written = 0
        self.expected = -1

    def add(self, chunk: image_service_pb2.ReadAssetContentResponse) -> bytes:
        if chunk.HasField("asset") and chunk.asset.size_bytes > 0:
            self.expected = chunk.asset.size_bytes
        if chunk.offset != self.written:
            raise DownloadError(
                f"download {self.name}: chunk at offset {chunk.offset}, expected {self.written}"
            )
        self.digest.update(chunk.data)
        self.written += len(chunk.data)
        return chunk.data

    def finish(self) -> int:
        if self.expected >= 0 and self.written != self.expected:
            raise DownloadError(
                f"download {self.name}: got {self.written} bytes, the asset has {self.expected}"
            )
        want = self.name.removeprefix("assets/")
        if want != self.name and len(want) == 64:
            got = self.digest.hexdigest()
            if got != want:
                raise DownloadError(f"download {self.name}: content has sha256 {got}")
        return self.written
