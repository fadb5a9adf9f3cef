"""Provider adapters. ``PROVIDER_KINDS`` maps an adapter name (a provider's ``kind`` in
settings) to the factory that builds it; each adapter lives in its own module."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from limner.domain.models import Modality, ModelOrigin, ModelProfile, ModelSpec
from limner.observability.metrics import NO_METRICS, MetricsHooks
from limner.providers.base import (
    ImageGenerator,
    ProgressSink,
    Provider,
    TextWriter,
    WriterMessage,
    WriterRequest,
)
from limner.providers.http import ProviderHttp, RetryPolicy, normalise_base_url
from limner.providers.offline import OfflineImageGenerator, OfflineSettings, OfflineWriter
from limner.settings import ProviderSettings, Settings


@dataclass(frozen=True)
class ProviderContext:
    """What a factory gets: the provider's settings section and the shared HTTP client."""

    id: str
    section: ProviderSettings
    settings: Settings
    client: httpx.AsyncClient
    # At most this many answers read and parsed at once, across providers (None: no limit).
    answer_gate: asyncio.Semaphore | None = None
    # Provider HTTP requests and retries are reported here.
    metrics: MetricsHooks = NO_METRICS

    def http(
        self,
        *,
        default_base_url: str,
        known_suffixes: tuple[str, ...] = (),
        auth_headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> ProviderHttp:
        """A ``ProviderHttp`` for this provider: the configured base URL (normalised) or
        the documented default, auth headers, then the operator's extra headers on top."""
        base = normalise_base_url(self.section.base_url or default_base_url, known_suffixes)
        return ProviderHttp(
            provider_id=self.id,
            client=self.client,
            base_url=base,
            headers={**(auth_headers or {}), **self.section.extra_headers},
            timeout_s=self.section.timeout_s,
            retry=RetryPolicy(max_retries=self.section.max_retries),
            auth=auth,
            answer_gate=self.answer_gate,
            metrics=self.metrics,
        )

    def api_key(self) -> str:
        key = self.section.api_key
        return key.get_secret_value() if key is not None else ""


ProviderFactory = Callable[[ProviderContext], Provider]

OFFLINE_PROVIDER = "offline"


def _offline(context: ProviderContext) -> Provider:
    settings = context.settings
    options = OfflineSettings(
        steps=settings.offline.steps, step_delay_s=settings.offline.step_delay_s
    )
    return Provider(
        id=context.id,
        kind="offline",
        images=OfflineImageGenerator(options),
        writer=OfflineWriter(options),
    )


def _adapter(module: str) -> ProviderFactory:
    """Imports an adapter module on first use; each defines ``create(context)``."""

    def create(context: ProviderContext) -> Provider:
        factory: ProviderFactory = importlib.import_module(f"limner.providers.{module}").create
        return factory(context)

    return create


# Adapter name (a provider's ``kind`` in settings) -> factory. One module per adapter.
PROVIDER_KINDS: dict[str, ProviderFactory] = {
    "offline": _offline,
    "automatic1111": _adapter("automatic1111"),
    "comfyui": _adapter("comfyui"),
    "openai": _adapter("openai"),
    "openrouter": _adapter("openrouter"),
    "gemini": _adapter("gemini"),
    "stability": _adapter("stability"),
    "xai": _adapter("xai"),
    "nanogpt": _adapter("nanogpt"),
    "fal": _adapter("fal"),
    # Any OpenAI-compatible server (a local server, Groq, vLLM-Omni, ...): a chat writer,
    # and OpenAI-shaped images when its base_url is set.
    "openai-compatible": _adapter("openai_compatible"),
}

_OFFLINE_PROFILE = ModelProfile(
    max_reference_images=4,
    default_size="1024x1024",
    supports_seed=True,
    supports_edit=True,
    supports_mask=True,
    supports_previews=True,
    max_images_per_request=4,
)

BUILTIN_MODELS = (
    ModelSpec(
        id="offline-image",
        provider=OFFLINE_PROVIDER,
        provider_model_id="offline-image",
        display_name="Offline placeholder renderer (not AI output)",
        input_modalities=frozenset({Modality.TEXT, Modality.IMAGE}),
        output_modalities=frozenset({Modality.IMAGE}),
        profile=_OFFLINE_PROFILE,
        origin=ModelOrigin.BUILTIN,
    ),
    ModelSpec(
        id="offline-writer",
        provider=OFFLINE_PROVIDER,
        provider_model_id="offline-writer",
        display_name="Offline template writer (not AI output)",
        input_modalities=frozenset({Modality.TEXT, Modality.IMAGE}),
        output_modalities=frozenset({Modality.TEXT}),
        profile=ModelProfile(),
        origin=ModelOrigin.BUILTIN,
    ),
)

__all__ = [
    "BUILTIN_MODELS",
    "OFFLINE_PROVIDER",
    "PROVIDER_KINDS",
    "ImageGenerator",
    "ProgressSink",
    "Provider",
    "ProviderContext",
    "ProviderFactory",
    "TextWriter",
    "WriterMessage",
    "WriterRequest",
]
