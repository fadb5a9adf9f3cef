"""Kind ``openai-compatible`` images through the gRPC API, against a fake self-hosted
server that copies the OpenAI Images API and refuses (HTTP 400) any field it does not
take: what is sent, warned about and never sent, b64 and URL results, multipart edits,
partial-image previews, auth headers, faults, and the settings that configure it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from provider_helpers import (
    Deltas,
    image_model,
    provider_adapter,
    serving,
    stored_assets,
    upload,
    warning_fields,
)

from limner.providers.base import WriterMessage, WriterRequest
from limner.providers.openai_chat import compatible_base_url
from limner.providers.openai_compatible import auth_headers
from limner.settings import Settings
from limner.startup import InvalidSettingError, UnknownSettingError
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.openai import OpenAICompatibleFake
from limner.testing.streams import collect, kinds, unpack
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2

# A diffusion model that honours everything Limner can ask for; the server's `images`
# settings decide what actually goes out.
PROFILE = {
    "max_reference_images": 2,
    "supports_seed": True,
    "supports_negative_prompt": True,
    "supports_sampling_parameters": True,
    "supports_aspect_ratio": True,
    "supports_edit": True,
    "supports_mask": True,
    "supports_previews": True,
    "max_images_per_request": 4,
}
MODELS = [
    image_model("qwen", "omni", "Qwen/Qwen-Image", PROFILE),
    image_model("qwen-live", "omni", "Qwen/Qwen-Image-Live", PROFILE),
]
# What vLLM-Omni's image endpoints take beyond the OpenAI fields.
EXTENSIONS = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale")


@pytest.fixture
def serve(tmp_path: Path) -> Any:
    """``serve(fake, **section)``: a server whose provider ``omni`` points at ``fake``."""

    def start(fake: OpenAICompatibleFake, **section: Any) -> Any:
        provider = {
            "kind": "openai-compatible",
            "base_url": fake.base_url,  # a bare host: /v1 is added
            "api_key": "sk-local",
            "max_retries": 1,
            **section,
        }
        return serving(tmp_path / "data", {"omni": provider}, MODELS)

    return start


def generate(model: str = "qwen", **options: Any) -> ipb.GenerateImageRequest:
    return ipb.GenerateImageRequest(
        prompt="a lighthouse", model=model, options=ipb.ImageOptions(**options)
    )


def openai_part(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the fields OpenAI's API does not define (checked on their own)."""
    return {k: v for k, v in body.items() if k not in EXTENSIONS}


def form_as_json(form: dict[str, list[Any]]) -> dict[str, Any]:
    """A recorded multipart form as the JSON value the spec's multipart schema describes:
    numbers and booleans decoded, file parts as placeholders, ``image[]`` as ``image``,
    repeated parts as arrays."""
    body: dict[str, Any] = {}
    for name, values in form.items():
        items = ["<file>" if isinstance(v, dict) else _typed(v) for v in values]
        key = name.removesuffix("[]")
        body[key] = items if name.endswith("[]") or len(items) > 1 else items[0]
    return body


def _typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    return int(value) if value.isdigit() else value


def progress_steps(events: list[job_pb2.JobEvent]) -> list[tuple[int, int]]:
    return [(e.progress.step, e.progress.total_steps) for e in events if e.progress.total_steps]


# -- generate -----------------------------------------------------------------------------


async def test_generate_sends_the_fields_the_server_takes_and_reads_b64(serve, spec_check):
    images = {"fields": ["n", "size", *EXTENSIONS], "quality": "high", "output_format": "png"}
    accepts = ["n", "size", "response_format", "quality", "output_format", *EXTENSIONS]
    async with OpenAICompatibleFake(accepts=accepts) as fake, serve(fake, images=images) as server:
        events = await collect(
            server.images.GenerateImage(
                generate(
                    width=768,
                    height=512,
                    seed=42,
                    negative_prompt="blur",
                    steps=30,
                    guidance_scale=4.5,
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == []
        (image,) = events[-1].completed.images
        assert image.seed == 42, "the seed was sent, so it is the image's"
        assert not any(e.HasField("preview") for e in events), "streaming is off by default"

    sent = fake.requests[-1]
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == "Bearer sk-local"
    assert sent.json == {
        "model": "Qwen/Qwen-Image",
        "prompt": "a lighthouse",
        "n": 1,
        "size": "768x512",
        "response_format": "b64_json",
        "quality": "high",
        "output_format": "png",
        "seed": 42,
        "negative_prompt": "blur",
        "num_inference_steps": 30,
        "guidance_scale": 4.5,
    }
    spec_check("openai", "/images/generations", openai_part(sent.json))


async def test_unsupported_parameters_are_warned_about_and_not_sent(serve, spec_check):
    # The default settings: the server takes n and size (and response_format); the fake
    # answers 400 to any other field, so a completed job also proves nothing else went out.
    async with OpenAICompatibleFake() as fake, serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(
                generate(
                    seed=7,
                    negative_prompt="blur",
                    steps=30,
                    guidance_scale=4.5,
                    sampler="euler",
                    aspect_ratio="16:9",
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert sorted(warning_fields(events)) == [
            ("PARAMETER_IGNORED", "options.aspect_ratio"),
            ("PARAMETER_IGNORED", "options.guidance_scale"),
            ("PARAMETER_IGNORED", "options.negative_prompt"),
            ("PARAMETER_IGNORED", "options.sampler"),
            ("PARAMETER_IGNORED", "options.steps"),
        ]
        (image,) = events[-1].completed.images
        assert not image.HasField("seed"), "the seed was not sent"

    body = fake.requests[-1].json
    assert body == {
        "model": "Qwen/Qwen-Image",
        "prompt": "a lighthouse",
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
    }
    assert len(fake.requests) == 1
    spec_check("openai", "/images/generations", body)


async def test_without_n_each_image_is_a_request_with_the_next_seed(serve):
    images = {"fields": ["size", "seed"]}
    async with (
        OpenAICompatibleFake(accepts=["size", "seed", "response_format"]) as fake,
        serve(fake, images=images) as server,
    ):
        events = await collect(server.images.GenerateImage(generate(seed=10, image_count=3)))
        assert kinds(events)[-1] == "completed", events[-1]
        assert [i.seed for i in events[-1].completed.images] == [10, 11, 12]
        assert progress_steps(events) == [(1, 3), (2, 3), (3, 3)]
        assert len(await stored_assets(server)) == 3
    assert [r.json.get("seed") for r in fake.requests] == [10, 11, 12]
    assert all("n" not in r.json for r in fake.requests)


async def test_a_server_without_size_gets_none_and_the_job_is_told(serve):
    async with (
        OpenAICompatibleFake(accepts=["n", "response_format"]) as fake,
        serve(fake, images={"fields": ["n"]}) as server,
    ):
        events = await collect(server.images.GenerateImage(generate(width=512, height=512)))
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == [("PARAMETER_IGNORED", "options.width")]
    assert "size" not in fake.requests[-1].json


@pytest.mark.parametrize(
    ("response_format", "server_default", "sent"),
    [
        ("url", "b64_json", "url"),  # asked for URLs
        ("", "url", None),  # nothing asked; the server answers with URLs (LocalAI)
    ],
)
async def test_url_results_are_downloaded_through_the_guard(
    serve, spec_check, response_format, server_default, sent
):
    async with (
        OpenAICompatibleFake(default_format=server_default) as fake,
        serve(fake, images={"response_format": response_format}) as server,
    ):
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "completed", events[-1]
        stages = [e.progress.stage for e in events if e.HasField("progress")]
        assert job_pb2.JOB_STAGE_DOWNLOADING in stages
        assert len(events[-1].completed.images) == 2
        assert len(await stored_assets(server)) == 2
    body = fake.requests[-1].json
    assert body.get("response_format") == sent and body["n"] == 2
    spec_check("openai", "/images/generations", body)


# -- edit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("image_part", ["image", "image[]"])
async def test_edit_sends_multipart_images_and_mask(serve, spec_check, image_part):
    source_png, reference_png, mask_png = (fake_png(32, 32, n) for n in (1, 2, 3))
    async with (
        OpenAICompatibleFake(image_part=image_part) as fake,
        serve(fake, images={"image_part": image_part}) as server,
    ):
        source = await upload(server, source_png)
        reference = await upload(server, reference_png)
        mask = await upload(server, mask_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="make it night",
                    model="qwen",
                    mask_asset=mask,
                    reference_assets=[reference],
                    strength=0.6,
                    options=ipb.ImageOptions(width=512, height=512),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == [("PARAMETER_IGNORED", "strength")]

    sent = fake.requests[-1]
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    form = sent.form
    assert [f["data"] for f in form[image_part]] == [source_png, reference_png]
    assert form["mask"][0]["data"] == mask_png
    fields = {k: v[0] for k, v in form.items() if k not in (image_part, "mask")}
    assert fields == {
        "model": "Qwen/Qwen-Image",
        "prompt": "make it night",
        "n": "1",
        "size": "512x512",
        "response_format": "b64_json",
    }
    spec_check("openai", "/images/edits", form_as_json(form), content_type="multipart/form-data")


# -- streaming ----------------------------------------------------------------------------


async def test_a_streaming_model_sends_partial_images_as_previews(serve, spec_check):
    # Streaming is switched on for one model only; the other model on the same server
    # gets plain requests.
    images = {"models": {"Qwen/Qwen-Image-Live": {"stream": True}}}
    async with (
        OpenAICompatibleFake(streaming=True) as fake,
        serve(fake, images=images) as server,
    ):
        events = await collect(server.images.GenerateImage(generate(model="qwen-live")))
        assert kinds(events)[-1] == "completed", events[-1]
        assert [e.preview.step for e in events if e.HasField("preview")] == [1, 2]
        assert progress_steps(events) == [(1, 3), (2, 3), (3, 3)]
        streamed = fake.requests[-1].json
        assert streamed["stream"] is True and streamed["partial_images"] == 2
        spec_check("openai", "/images/generations", streamed)

        source = await upload(server, fake_png(32, 32, 4))
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(source_asset=source, prompt="at dusk", model="qwen-live")
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert [e.preview.step for e in events if e.HasField("preview")] == [1, 2]
        assert fake.requests[-1].form["stream"] == ["true"]

        events = await collect(server.images.GenerateImage(generate(model="qwen")))
        assert kinds(events)[-1] == "completed", events[-1]
        assert not any(e.HasField("preview") for e in events)
        assert "stream" not in fake.requests[-1].json


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "header", "value"),
    [
        ({"auth_header": "api-key"}, "api-key", "secret"),  # Azure style: the bare key
        ({"auth_scheme": "Token"}, "Authorization", "Token secret"),
        ({"auth_header": "X-Api-Key", "auth_scheme": "Key"}, "X-Api-Key", "Key secret"),
        ({"auth_scheme": ""}, "Authorization", "secret"),
    ],
)
async def test_custom_auth_header(serve, client, section, header, value):
    async with (
        OpenAICompatibleFake(auth=(header, value)) as fake,
        serve(fake, api_key="secret", **section) as server,
    ):
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]
    sent = fake.requests[-1].headers
    assert sent[header.lower()] == value
    if header != "Authorization":
        assert "authorization" not in sent

    # The writer of the same provider sends the same header.
    async with OpenAICompatibleFake() as chat:
        provider = provider_adapter(
            client, "openai-compatible", "omni", base_url=chat.base_url, api_key="secret", **section
        )
        assert provider.writer is not None
        request = WriterRequest(
            job_id="j", provider_model_id="m", messages=(WriterMessage(role="user", text="hi"),)
        )
        await provider.writer.write(request, Deltas())
        assert chat.requests[-1].headers[header.lower()] == value


async def test_without_a_key_no_auth_header_is_sent(serve):
    async with OpenAICompatibleFake() as fake, serve(fake, api_key="") as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]
    assert "authorization" not in fake.requests[-1].headers
    assert auth_headers("", "api-key", None) is None


# -- faults -------------------------------------------------------------------------------


async def test_rate_limit_retry_after_is_a_job_event_then_succeeds(serve):
    async with OpenAICompatibleFake() as fake, serve(fake) as server:
        fake.arm(Fault.RATE_LIMITED, retry_after_s=0.05)
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]
        retries = [e.warning for e in events if e.HasField("warning")]
        assert [w.code for w in retries] == ["PROVIDER_RETRY"]
        assert "HTTP 429" in retries[0].message
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("fault", "code", "reason", "calls"),
    [
        (Fault.RATE_LIMITED, "RESOURCE_EXHAUSTED", "PROVIDER_RATE_LIMITED", 2),
        (Fault.SERVER_ERROR, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 2),
        (Fault.UNAVAILABLE, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 2),
        (Fault.CONNECTION_RESET, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 2),
        (Fault.MALFORMED_JSON, "UNAVAILABLE", "PROVIDER_BAD_RESPONSE", 1),
        (Fault.BAD_REQUEST, "FAILED_PRECONDITION", "PROVIDER_REJECTED_REQUEST", 1),
        (Fault.UNAUTHORIZED, "FAILED_PRECONDITION", "PROVIDER_AUTH_FAILED", 1),
        (Fault.CONTENT_FILTERED, "FAILED_PRECONDITION", "CONTENT_FILTERED", 1),
        (Fault.TEXT_INSTEAD_OF_IMAGE, "UNKNOWN", "NO_IMAGE_RETURNED", 3),
        (Fault.BROKEN_URL, None, "DOWNLOAD_FAILED", 1),
        (Fault.OVERSIZED_IMAGE, None, "DOWNLOAD_REFUSED", 1),
    ],
)
async def test_faults_fail_the_job_and_store_nothing(serve, fault, code, reason, calls):
    async with OpenAICompatibleFake() as fake, serve(fake, timeout_s=5) as server:
        fake.arm(fault, times=5, retry_after_s=0.05)
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "failed", events[-1]
        status = events[-1].failed
        assert unpack(status)["ErrorInfo"].reason == reason
        if code is not None:
            assert status.code == getattr(grpc.StatusCode, code).value[0]
        assert "iVBOR" not in status.message
        assert await stored_assets(server) == [], "nothing stored on failure"
    assert len(fake.requests) == calls


async def test_a_field_the_server_refuses_is_a_rejected_request_not_a_retry(serve):
    # Misconfigured: seed is listed, but this server refuses it (as vLLM-Omni's siblings
    # refuse unknown fields). The job fails with the server's message, once.
    async with (
        OpenAICompatibleFake() as fake,
        serve(fake, images={"fields": ["n", "size", "seed"]}) as server,
    ):
        events = await collect(server.images.GenerateImage(generate()))
        status = events[-1].failed
        assert unpack(status)["ErrorInfo"].reason == "PROVIDER_REJECTED_REQUEST"
        assert "seed" in status.message
        assert await stored_assets(server) == []
    assert len(fake.requests) == 1


# -- settings -----------------------------------------------------------------------------


def _provider(**section: Any) -> dict[str, Any]:
    return {"omni": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1", **section}}


def test_settings_resolve_per_model_over_provider_over_defaults():
    from limner.providers.openai_compatible import ImageRequestProfile, request_profiles

    settings = Settings.load(
        None,
        providers=_provider(
            images={
                "fields": ["size", "seed"],
                "quality": "high",
                "models": {"live": {"stream": True, "quality": "low"}},
            }
        ),
    )
    provider, models = request_profiles(settings.providers["omni"].images)
    assert provider == ImageRequestProfile(fields=frozenset({"size", "seed"}), quality="high")
    assert models["live"] == ImageRequestProfile(
        fields=frozenset({"size", "seed"}), quality="low", stream=True
    )
    assert request_profiles(None) == (ImageRequestProfile(), {})


@pytest.mark.parametrize(
    ("providers", "error", "says"),
    [
        (_provider(images={"fields": ["n", "style"]}), InvalidSettingError, '"style"'),
        (
            _provider(images={"qualty": "high"}),
            UnknownSettingError,
            '"providers.omni.images.quality"',
        ),
        (
            _provider(images={"models": {"m": {"strem": True}}}),
            UnknownSettingError,
            "providers.omni.images.models.m.strem",
        ),
        (_provider(auth_header="api key"), InvalidSettingError, "auth_header"),
        (
            {"oa": {"kind": "openai", "images": {"stream": True}}},
            InvalidSettingError,
            'kind "openai-compatible" only',
        ),
    ],
)
def test_unknown_or_misplaced_image_options_stop_the_start(providers, error, says):
    with pytest.raises(error) as raised:
        Settings.load(None, providers=providers)
    assert says in " ".join(raised.value.lines)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000/v1/images/generations", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/images/edits/", "http://127.0.0.1:8000/v1"),
        ("https://host.example/openai/v1", "https://host.example/openai/v1"),
    ],
)
def test_a_pasted_images_endpoint_is_a_base_url(given, expected):
    assert compatible_base_url(given) == expected
