"""TLS and mTLS on the real server, through the Python client (``limner.client.connect``
with ``TlsConfig``), with certificates made for the test (``tests/tls_certs.py``).

TLS: a client trusting the test CA generates, follows and downloads; health and reflection
answer on the same port. A plaintext client, or one that does not trust the CA, is refused.
mTLS: a client certificate signed by the configured client CA gets in; none, or one signed
by another CA, is refused. And the API key given to ``connect`` goes with every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tls_certs import TlsFiles, make_tls_files

from limner.client import (
    LimnerClient,
    TlsConfig,
    TlsConfigError,
    connect,
    download_asset,
    upload_image,
    watch_job,
)
from limner.testing.streams import kinds
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import model_service_pb2

KEYS = {"api_keys": [{"key": "k1", "workspace": "a"}]}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def tls_settings(certs: TlsFiles, *, mutual: bool = False) -> dict[str, Any]:
    settings: dict[str, Any] = {"cert_file": certs.server_cert, "key_file": certs.server_key}
    if mutual:
        settings["client_ca_file"] = certs.ca
    return settings


async def list_models(client: LimnerClient) -> list[str]:
    response = await client.models.ListModels(model_service_pb2.ListModelsRequest(), timeout=10)
    return [model.name for model in response.models]


async def refused(client: LimnerClient) -> grpc.aio.AioRpcError:
    async with client:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await list_models(client)
    return raised.value


async def test_tls_generate_follow_download_and_upload(make_server, certs, tmp_path):
    async with (
        make_server(tls=tls_settings(certs)) as server,
        connect(server.address, tls=TlsConfig(ca_cert=certs.ca)) as client,
    ):
        assert "models/offline-image" in await list_models(client)
        request = ipb.GenerateImageRequest(
            prompt="a lighthouse", options=ipb.ImageOptions(width=96, height=64, seed=3)
        )
        call = client.images.GenerateImage(request)
        first = await anext(aiter(call))
        call.cancel()  # the client goes away; watch_job follows the job from here
        events = [event async for event in watch_job(client, first.event.job)]
        assert kinds(events)[-1] == "completed"
        image = events[-1].completed.images[0]
        path = tmp_path / "out.png"
        assert await download_asset(client, image.asset, path) == image.size_bytes
        uploaded = await upload_image(client, path)
        assert uploaded.asset.name == image.asset


async def test_health_and_reflection_answer_over_tls(make_server, certs):
    async with (
        make_server(tls=tls_settings(certs)) as server,
        connect(server.address, tls=TlsConfig(ca_cert=certs.ca)) as client,
    ):
        health = health_pb2_grpc.HealthStub(client.channel)
        for service in ("", "limner.v1.ImageService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(client.channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        services = [
            service.name
            async for response in responses
            for service in response.list_services_response.service
        ]
        assert "limner.v1.ImageService" in services
        assert "grpc.health.v1.Health" in services


async def test_a_plaintext_client_is_refused_by_a_tls_server(make_server, certs):
    async with make_server(tls=tls_settings(certs)) as server:
        error = await refused(connect(server.address))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_servers_ca_is_refused(make_server, certs):
    async with make_server(tls=tls_settings(certs)) as server:
        error = await refused(connect(server.address, tls=TlsConfig(ca_cert=certs.other_ca)))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_server_name_checks_the_certificate_against_another_name(make_server, certs):
    async with make_server(tls=tls_settings(certs)) as server:
        port = server.address.rsplit(":", 1)[1]
        # "localhost" is in the certificate, "limner.internal" is not.
        ok = connect(f"127.0.0.1:{port}", tls=TlsConfig(ca_cert=certs.ca, server_name="localhost"))
        async with ok:
            assert await list_models(ok)
        wrong = TlsConfig(ca_cert=certs.ca, server_name="limner.internal")
        error = await refused(connect(f"127.0.0.1:{port}", tls=wrong))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_lets_in_a_client_certificate_signed_by_the_client_ca(make_server, certs):
    mutual = TlsConfig(ca_cert=certs.ca, client_cert=certs.client_cert, client_key=certs.client_key)
    async with (
        make_server(tls=tls_settings(certs, mutual=True)) as server,
        connect(server.address, tls=mutual) as client,
    ):
        assert "models/offline-image" in await list_models(client)
        health = health_pb2_grpc.HealthStub(client.channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_mtls_refuses_a_client_without_a_certificate(make_server, certs):
    async with make_server(tls=tls_settings(certs, mutual=True)) as server:
        error = await refused(connect(server.address, tls=TlsConfig(ca_cert=certs.ca)))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        error = await refused(connect(server.address))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_a_client_certificate_from_another_ca(make_server, certs):
    stranger = TlsConfig(
        ca_cert=certs.ca, client_cert=certs.other_client_cert, client_key=certs.other_client_key
    )
    async with make_server(tls=tls_settings(certs, mutual=True)) as server:
        error = await refused(connect(server.address, tls=stranger))
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_client_tls_options_are_checked_when_connecting(certs: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="give both client_cert and client_key"):
        connect("127.0.0.1:1", tls=TlsConfig(ca_cert=certs.ca, client_cert=certs.client_cert))
    missing = tmp_path / "missing.pem"
    with pytest.raises(TlsConfigError, match=f"cannot read the CA certificate {missing}"):
        connect("127.0.0.1:1", tls=TlsConfig(ca_cert=missing))
    with pytest.raises(TlsConfigError, match="holds no PEM private key"):
        TlsConfig(client_cert=certs.client_cert, client_key=certs.client_cert).credentials()


# -- the API key goes with every call ----------------------------------------------------


async def test_the_api_key_goes_with_every_call_over_tls(make_server, certs, tmp_path):
    async with make_server(tls=tls_settings(certs), auth=KEYS) as server:
        tls = TlsConfig(ca_cert=certs.ca)
        async with connect(server.address, tls=tls, api_key="k1") as client:
            # Stubs called without metadata: the channel adds the key.
            assert await list_models(client)
            request = ipb.GenerateImageRequest(prompt="a key", options=ipb.ImageOptions(seed=1))
            events = [r.event async for r in client.images.GenerateImage(request)]
            assert kinds(events)[-1] == "completed"
            # Passing the key yourself too does not send it twice.
            response = await client.models.ListModels(
                model_service_pb2.ListModelsRequest(), metadata=client.metadata, timeout=10
            )
            assert response.models
        error = await refused(connect(server.address, tls=tls))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        error = await refused(connect(server.address, tls=tls, api_key="wrong"))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def _echo_handler() -> grpc.GenericRpcHandler:
    """A service whose four methods (one per call shape) answer with the metadata they got."""

    def seen(context: grpc.aio.ServicerContext) -> bytes:
        pairs = [f"{k}={v}" for k, v in context.invocation_metadata() if k in {"authorization"}]
        return ";".join(pairs).encode()

    async def unary_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return seen(context)

    async def unary_stream(
        request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        yield seen(context)

    async def stream_unary(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        async for _ in requests:
            pass
        return seen(context)

    async def stream_stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield seen(context)

    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "UU": grpc.unary_unary_rpc_method_handler(unary_unary),
            "US": grpc.unary_stream_rpc_method_handler(unary_stream),
            "SU": grpc.stream_unary_rpc_method_handler(stream_unary),
            "SS": grpc.stream_stream_rpc_method_handler(stream_stream),
        },
    )


async def test_the_api_key_is_added_to_every_kind_of_call() -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_echo_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with connect(f"127.0.0.1:{port}", api_key="k1") as client:
            channel = client.channel
            want = b"authorization=Bearer k1"
            assert await channel.unary_unary("/test.Echo/UU")(b"x") == want
            assert [m async for m in channel.unary_stream("/test.Echo/US")(b"x")] == [want]
            assert await channel.stream_unary("/test.Echo/SU")(iter([b"x"])) == want
            assert [m async for m in channel.stream_stream("/test.Echo/SS")(iter([b"x"]))] == [want]
            # A call that brings its own key keeps it, and gets no second one.
            own = (("authorization", "Bearer mine"),)
            answer = await channel.unary_unary("/test.Echo/UU")(b"x", metadata=own)
            assert answer == b"authorization=Bearer mine"
        async with connect(f"127.0.0.1:{port}") as client:
            assert await client.channel.unary_unary("/test.Echo/UU")(b"x") == b""
    finally:
        await server.stop(None)
