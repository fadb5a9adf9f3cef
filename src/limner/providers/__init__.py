"""Provider adapters. ``PROVIDER_KINDS`` maps an adapter name (a provider's ``kind`` in
settings) to the factory that builds it; each adapter lives in its own module."""

from __future__ import annotations

from collections.abc import Callable

from limner.domain.models import Modality, ModelOrigin, ModelProfile, ModelSpec
from limner.providers.base import (
    ImageGenerator,
    ProgressSink,
    Provider,
    TextWriter,
    WriterMessage,
    WriterRequest,
)
from limner.providers.offline import OfflineImageGenerator, OfflineSettings, OfflineWriter
from limner.settings import ProviderSettings, Settings

ProviderFactory = Callable[[str, ProviderSettings, Settings], Provider]

OFFLINE_PROVIDER = "offline"


def _offline(provider_id: str, _section: ProviderSettings, settings: Settings) -> Provider:
    options = OfflineSettings(
        steps=settings.offline.steps, step_delay_s=settings.offline.step_delay_s
    )
    return Provider(
        id=provider_id,
        kind="offline",
        images=OfflineImageGenerator(options),
        writer=OfflineWriter(options),
    )


PROVIDER_KINDS: dict[str, ProviderFactory] = {"offline": _offline}

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
    "ProviderFactory",
    "TextWriter",
    "WriterMessage",
    "WriterRequest",
]
