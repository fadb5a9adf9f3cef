"""The OpenAI-compatible chat-completions writer against the fake OpenAI server, over real
HTTP: streamed deltas, usage, image parts, returned images, faults, base URLs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from provider_helpers import Deltas, fake_fixture, provider_adapter

from limner.domain.images import SourceImage
from limner.errors import (
    ContentFiltered,
    ModelNotConfigured,
    ProviderAuthFailed,
    ResourceExhausted,
    Unavailable,
)
from limner.providers.base import Provider, WriterMessage, WriterRequest
from limner.providers.http import ProviderHttp, RetryPolicy
from limner.providers.openai_chat import OpenAIChatWriter, compatible_base_url
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.openai import OpenAIFake

fake = fake_fixture(OpenAIFake)


def provider(client: httpx.AsyncClient, kind: str, **section: Any) -> Provider:
    return provider_adapter(client, kind, "w", **{"max_retries": 2, **section})


def request(*messages: WriterMessage, **kwargs: Any) -> WriterRequest:
    return WriterRequest(
        job_id="j1",
        provider_model_id="gpt-4o-mini",
        messages=messages or (WriterMessage(role="user", text="Describe a lighthouse."),),
        **kwargs,
    )


PNG = fake_png(8, 8)
SOURCE = SourceImage(asset="assets/x", data=PNG, mime_type="image/png", width=8, height=8)


async def test_streams_deltas_and_usage_with_images_as_data_url_parts(fake, client, spec_check):
    writer = provider(client, "openai-compatible", base_url=fake.base_url, api_key="sk-local")
    deltas = Deltas()
    messages = (
        WriterMessage(role="system", text="You write image prompts."),
        WriterMessage(role="user", text="Describe these.", images=(SOURCE, SOURCE)),
    )
    assert writer.writer is not None
    output = await writer.writer.write(request(*messages, temperature=0.4), deltas)

    assert output.text == fake.chat_reply
    assert len(deltas.parts) == len(fake.chat_reply.split(" ")) > 1, "deltas arrive in pieces"
    assert "".join(deltas.parts) == output.text
    assert output.usage is not None
    words = len(fake.chat_reply.split())
    assert (output.usage.input_tokens, output.usage.output_tokens) == (42, words)
    assert (output.usage.total_tokens, output.usage.provider_calls) == (42 + words, 1)
    assert output.images == ()

    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-local"
    body = sent.json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 1024 and body["temperature"] == 0.4
    assert body["messages"][0] == {"role": "system", "content": "You write image prompts."}
    parts = body["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "Describe these."}
    assert [p["type"] for p in parts[1:]] == ["image_url", "image_url"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    spec_check("openai", "/chat/completions", body)


async def test_temperature_absent_unless_given_and_extra_body_hook(fake, client):
    http = ProviderHttp(provider_id="w", client=client, base_url=fake.base_url)
    writer = OpenAIChatWriter(
        http,
        "w",
        path="/v1/chat/completions",
        extra_body=lambda r: {"modalities": ["text"], "user": r.job_id},
        max_tokens_field="max_completion_tokens",
        include_usage=False,
    )
    output = await writer.write(request(max_output_tokens=77), Deltas())
    body = fake.requests[-1].json
    assert "temperature" not in body and "stream_options" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 77
    assert body["modalities"] == ["text"] and body["user"] == "j1"
    assert output.usage is None, "no usage chunk was asked for"


async def test_images_returned_by_a_chat_model_are_parsed(client):
    async with OpenAIFake(chat_images=2) as fake:
        writer = provider(client, "openai-compatible", base_url=fake.base_url)
        assert writer.writer is not None
        output = await writer.writer.write(request(), Deltas())
        assert len(output.images) == 2
        assert all(image.data.startswith(b"\x89PNG") for image in output.images)
        assert "authorization" not in fake.requests[-1].headers, "no key, no header"


async def test_a_server_that_ignores_stream_still_works(fake, client):
    fake.ignore_stream = True
    fake.chat_images = 1
    writer = provider(client, "openai-compatible", base_url=f"{fake.base_url}/v1")
    deltas = Deltas()
    assert writer.writer is not None
    output = await writer.writer.write(request(), deltas)
    assert output.text == fake.chat_reply and deltas.parts == [fake.chat_reply]
    assert output.usage is not None and output.usage.input_tokens == 42
    assert len(output.images) == 1


async def test_retries_are_reported_then_succeed(fake, client):
    fake.arm(Fault.RATE_LIMITED, times=2, retry_after_s=0.05)
    writer = provider(client, "openai-compatible", base_url=fake.base_url)
    deltas = Deltas()
    assert writer.writer is not None
    output = await writer.writer.write(request(), deltas, on_retry=deltas.retry)
    assert output.text == fake.chat_reply
    assert len(deltas.retries) == 2 and "HTTP 429" in deltas.retries[0]
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("fault", "error", "reason"),
    [
        (Fault.CONTENT_FILTERED, ContentFiltered, "CONTENT_FILTERED"),
        (Fault.MALFORMED_JSON, Unavailable, "PROVIDER_BAD_RESPONSE"),
        (Fault.UNAUTHORIZED, ProviderAuthFailed, "PROVIDER_AUTH_FAILED"),
        (Fault.CONNECTION_RESET, Unavailable, "PROVIDER_UNAVAILABLE"),
    ],
)
async def test_faults_map_to_errors(fake, client, fault, error, reason):
    fake.arm(fault, times=5)
    writer = provider(client, "openai-compatible", base_url=fake.base_url, max_retries=0)
    assert writer.writer is not None
    with pytest.raises(error) as raised:
        await writer.writer.write(request(), Deltas())
    assert raised.value.reason == reason


async def test_rate_limit_exhausts_retries(fake, client):
    fake.arm(Fault.RATE_LIMITED, times=5, retry_after_s=0.01)
    writer = provider(client, "openai-compatible", base_url=fake.base_url)
    assert writer.writer is not None
    with pytest.raises(ResourceExhausted):
        await writer.writer.write(request(), Deltas())
    assert len(fake.requests) == 3, "one call plus max_retries=2"


async def test_cancellation_interrupts_the_call(fake, client):
    fake.arm(Fault.LATENCY, delay_s=1)
    writer = provider(client, "openai-compatible", base_url=fake.base_url)
    assert writer.writer is not None
    task = asyncio.create_task(writer.writer.write(request(), Deltas()))
    await asyncio.sleep(0.3)
    assert fake.requests, "the call is in flight"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_without_a_base_url_the_writer_refuses(client):
    writer = provider(client, "openai-compatible")
    assert writer.writer is not None and writer.images is None
    with pytest.raises(ModelNotConfigured):
        await writer.writer.write(request(), Deltas())


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/v1/chat/completions", "http://127.0.0.1:8080/v1"),
        ("https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1"),
    ],
)
def test_compatible_base_urls(given, expected):
    assert compatible_base_url(given) == expected


def test_retry_policy_is_taken_from_settings(client):
    writer = provider(client, "openai-compatible", base_url="http://127.0.0.1:1", max_retries=1)
    assert isinstance(writer.writer, OpenAIChatWriter)
    assert writer.writer.http.retry == RetryPolicy(max_retries=1)
