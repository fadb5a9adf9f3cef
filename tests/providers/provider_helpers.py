"""What the provider tests have in common: the vendored OpenAPI specs, a started fake as a
fixture, a Limner server configured for one provider, direct adapters, and small readers
of job events and stored assets."""

from __future__ import annotations

import functools
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from PIL import Image

from limner.domain.jobs import Usage
from limner.providers import PROVIDER_KINDS, ProviderContext
from limner.providers.base import Provider
from limner.settings import ProviderSettings, Settings
from limner.testing import RunningServer, fast_settings, running_server
from limner.testing.fakes import FakeProvider
from limner.v1 import asset_pb2, job_pb2, job_service_pb2
from limner.v1 import image_service_pb2 as ipb

# -- OpenAPI specs (vendored by scripts/vendor_provider_specs.py) -------------------------

SPECS_DIR = Path(__file__).resolve().parent / "specs"
SPEC_FILES = {
    "openai": "openai-openapi.json",
    "openrouter": "openrouter-openapi.json",
    "nanogpt": "nanogpt-openapi.json",
}


@functools.cache
def load_spec(name: str) -> dict[str, Any]:
    """A vendored spec; a missing file is an error, never a skip."""
    spec: dict[str, Any] = json.loads((SPECS_DIR / SPEC_FILES[name]).read_text("utf-8"))
    return spec


def _validate(name: str, schema: dict[str, Any], value: Any) -> None:
    import jsonschema

    # Validate against the whole document so "#/components/..." references resolve.
    document = {k: v for k, v in load_spec(name).items() if k != "paths"}
    document["x-limner-target"] = schema
    validator = jsonschema.Draft202012Validator({**document, "$ref": "#/x-limner-target"})
    validator.validate(value)


def validate_request(
    name: str, path: str, body: Any, *, method: str = "post", content_type: str = "application/json"
) -> None:
    """Raises ``jsonschema.ValidationError`` when ``body`` is not a valid request body for
    ``method path`` in the vendor's spec."""
    operation = load_spec(name)["paths"][path][method.lower()]
    _validate(name, operation["requestBody"]["content"][content_type]["schema"], body)


def validate_response(
    name: str,
    path: str,
    body: Any,
    *,
    method: str = "get",
    status: str = "200",
    content_type: str = "application/json",
) -> None:
    """Raises ``jsonschema.ValidationError`` when ``body`` is not a valid ``status``
    response to ``method path`` in the vendor's spec."""
    operation = load_spec(name)["paths"][path][method.lower()]
    _validate(name, operation["responses"][status]["content"][content_type]["schema"], body)


# -- fakes, servers and adapters ---------------------------------------------------------

FakeT = TypeVar("FakeT", bound=FakeProvider)


def fake_fixture(kind: type[FakeT], **options: Any) -> Any:
    """A ``fake`` fixture for a test module: ``fake = fake_fixture(OpenAIFake)`` starts
    ``OpenAIFake(**options)`` on a loopback port for each test and stops it afterwards."""

    @pytest.fixture(name="fake")
    async def fixture() -> AsyncIterator[FakeT]:
        async with kind(**options) as running:
            assert isinstance(running, kind)
            yield running

    return fixture


def image_model(
    model_id: str, provider: str, provider_model_id: str, profile: dict[str, Any]
) -> dict[str, Any]:
    """A model entry for settings: text and image in, image out."""
    return {
        "id": model_id,
        "provider": provider,
        "provider_model_id": provider_model_id,
        "input_modalities": ["text", "image"],
        "output_modalities": ["image"],
        "profile": profile,
    }


@asynccontextmanager
async def serving(
    data_dir: Path,
    providers: dict[str, dict[str, Any]],
    models: list[dict[str, Any]],
    **overrides: Any,
) -> AsyncIterator[RunningServer]:
    """A Limner server on a free loopback port with these providers and models."""
    settings = fast_settings(data_dir, providers=providers, models=models, **overrides)
    async with running_server(settings) as server:
        yield server


def server_starter(
    data_dir: Path, provider_id: str, *, kind: str, api_key: str, models: list[dict[str, Any]]
) -> Callable[..., AbstractAsyncContextManager[RunningServer]]:
    """``start(fake, base_url="", **section)``: a server whose one provider (one retry)
    points at ``fake``, or at ``base_url``; ``section`` overrides provider settings."""

    def start(
        fake: FakeProvider, base_url: str = "", **section: Any
    ) -> AbstractAsyncContextManager[RunningServer]:
        provider = {
            "kind": kind,
            "base_url": base_url or fake.base_url,
            "api_key": api_key,
            "max_retries": 1,
            **section,
        }
        return serving(data_dir, {provider_id: provider}, models)

    return start


def provider_adapter(
    client: httpx.AsyncClient, kind: str, provider_id: str, **section: Any
) -> Provider:
    """A provider adapter called directly, without a server, on the default settings."""
    settings = ProviderSettings(kind=kind, **section)
    return PROVIDER_KINDS[kind](ProviderContext(provider_id, settings, Settings.load(None), client))


class Sink:
    """A progress sink that records warnings, usage and retries, and wants no previews."""

    def __init__(self) -> None:
        self.warnings: list[tuple[str, str, str]] = []
        self.usages: list[Usage] = []
        self.retries: list[str] = []

    async def step(
        self, step: int, total: int, *, eta_s: float | None = None, message: str = ""
    ) -> None:
        pass

    def preview_wanted(self) -> bool:
        return False

    async def preview(self, image: bytes, step: int) -> None:
        raise AssertionError("no previews were asked for")

    async def warn(self, code: str, message: str, field: str = "") -> None:
        self.warnings.append((code, message, field))

    async def usage(self, usage: Usage) -> None:
        self.usages.append(usage)

    async def retrying(self, message: str) -> None:
        self.retries.append(message)


class Deltas:
    """A writer's ``on_delta`` (and, as ``retry``, ``on_retry``) that records what it got."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.retries: list[str] = []

    async def __call__(self, text: str) -> None:
        self.parts.append(text)

    async def retry(self, message: str) -> None:
        self.retries.append(message)


# -- images, assets, jobs and events -----------------------------------------------------


def solid_image(
    colour: tuple[int, int, int], size: tuple[int, int] = (96, 64), fmt: str = "PNG"
) -> bytes:
    """A one-colour image (PNG unless ``fmt`` says otherwise)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


async def upload(server: RunningServer, data: bytes) -> str:
    """Uploads ``data`` and returns the asset's name."""
    response = await server.images.UploadImage(ipb.UploadImageRequest(content=data))
    return str(response.asset.name)


async def stored_assets(server: RunningServer) -> list[asset_pb2.Asset]:
    response = await server.images.ListAssets(ipb.ListAssetsRequest())
    return list(response.assets)


async def generated_assets(server: RunningServer) -> list[str]:
    response = await server.images.ListAssets(
        ipb.ListAssetsRequest(source=asset_pb2.ASSET_SOURCE_GENERATED)
    )
    return [asset.name for asset in response.assets]


async def job_of(server: RunningServer, events: list[job_pb2.JobEvent]) -> job_pb2.Job:
    """The job a stream of events belongs to, as GetJob returns it now."""
    request = job_service_pb2.GetJobRequest(name=events[0].job)
    return (await server.jobs.GetJob(request)).job


def warnings(events: list[job_pb2.JobEvent], code: str | None = None) -> list[job_pb2.JobWarning]:
    """The warning events, in order; only those with ``code`` when given."""
    found = [e.warning for e in events if e.HasField("warning")]
    return found if code is None else [w for w in found if w.code == code]


def warning_fields(events: list[job_pb2.JobEvent]) -> list[tuple[str, str]]:
    """``(code, field)`` of each warning event, in order."""
    return [(w.code, w.field) for w in warnings(events)]
