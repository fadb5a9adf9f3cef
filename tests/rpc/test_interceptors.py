"""The interceptor chain on a real grpc.aio server: errors raised mid-stream are mapped to
rich statuses, unexpected ones become a plain INTERNAL, and aborts pass through."""

from __future__ import annotations

import grpc
import pytest

from limner.api.interceptors import AccessLogInterceptor, AuthInterceptor, ErrorMappingInterceptor
from limner.errors import ContentFiltered, InvalidArgument
from limner.testing.streams import status_details


def _identity(data: bytes) -> bytes:
    return data


async def streaming(request: bytes, context: grpc.aio.ServicerContext) -> object:
    yield b"first"
    if request == b"domain":
        raise InvalidArgument.field("options.width", "is 0")
    if request == b"filtered":
        raise ContentFiltered("the provider refused the prompt")
    if request == b"abort":
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "deliberate")
    raise RuntimeError("secret internal detail")


async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise InvalidArgument.field("prompt", "must not be empty")


@pytest.fixture
async def channel():
    server = grpc.aio.server(
        interceptors=[AccessLogInterceptor(), AuthInterceptor([]), ErrorMappingInterceptor()]
    )
    handler = grpc.method_handlers_generic_handler(
        "limner.v1.TestService",
        {
            "Stream": grpc.unary_stream_rpc_method_handler(
                streaming, request_deserializer=_identity, response_serializer=_identity
            ),
            "Unary": grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=_identity, response_serializer=_identity
            ),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop(None)


async def read_stream(channel, payload: bytes) -> tuple[list[bytes], grpc.aio.AioRpcError]:
    call = channel.unary_stream(
        "/limner.v1.TestService/Stream",
        request_serializer=_identity,
        response_deserializer=_identity,
    )(payload)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for message in call:
            received.append(message)
    return received, raised.value


async def test_domain_error_mid_stream_becomes_a_rich_status(channel):
    received, error = await read_stream(channel, b"domain")
    assert received == [b"first"], "messages before the error still arrive"
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = status_details(error)
    assert details["ErrorInfo"].domain == "limner.dev"
    assert details["ErrorInfo"].reason == "INVALID_FIELD"
    assert details["BadRequest"].field_violations[0].field == "options.width"


async def test_precondition_reason_survives_mid_stream(channel):
    _, error = await read_stream(channel, b"filtered")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status_details(error)["ErrorInfo"].reason == "CONTENT_FILTERED"


async def test_unexpected_error_mid_stream_is_internal_without_details(channel):
    _, error = await read_stream(channel, b"boom")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "secret internal detail" not in (error.details() or "")
    assert "request id" in (error.details() or "")
    assert status_details(error)["ErrorInfo"].reason == "INTERNAL"


async def test_deliberate_abort_passes_through(channel):
    _, error = await read_stream(channel, b"abort")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "deliberate"


async def test_unary_domain_error_and_request_id_trailer(channel):
    call = channel.unary_unary(
        "/limner.v1.TestService/Unary",
        request_serializer=_identity,
        response_deserializer=_identity,
    )(b"", metadata=(("x-request-id", "req-42"),))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(raised.value.trailing_metadata())["x-request-id"] == "req-42"
