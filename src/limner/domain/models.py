"""Models, their capabilities, and the features that need them (ARCHITECTURE §1.4, §3)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from limner.domain.webhooks import WebhookSubscription


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"


class ModelOrigin(StrEnum):
    BUILTIN = "builtin"
    CONFIG = "config"
    API = "api"
    DISCOVERED = "discovered"


@dataclass(frozen=True, kw_only=True)
class ModelProfile:
    """Which request parameters a model honours. Anything else becomes a job warning."""

    max_reference_images: int = 0
    supported_sizes: tuple[str, ...] = ()
    default_size: str = "1024x1024"
    supports_seed: bool = False
    supports_negative_prompt: bool = False
    supports_edit: bool = False
    supports_mask: bool = False
    supports_previews: bool = False
    supports_sampling_parameters: bool = False
    supports_aspect_ratio: bool = False
    max_images_per_request: int = 1

    def default_dimensions(self) -> tuple[int, int]:
        width, _, height = self.default_size.partition("x")
        return int(width), int(height)


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A model Limner can call: who serves it, what it takes in and gives out."""

    id: str
    provider: str
    provider_model_id: str
    input_modalities: frozenset[Modality]
    output_modalities: frozenset[Modality]
    profile: ModelProfile = field(default_factory=ModelProfile)
    display_name: str = ""
    origin: ModelOrigin = ModelOrigin.API
    create_time: datetime | None = None
    update_time: datetime | None = None

    def with_changes(self, **changes: object) -> ModelSpec:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProviderInfo:
    """A configured provider as clients may see it (never its secret)."""

    id: str
    kind: str
    base_url: str
    has_api_key: bool
    max_concurrent_jobs: int
    available: bool


class Feature(StrEnum):
    IMAGE_GENERATION = "image generation"
    IMAGE_EDIT = "image editing"
    AVATAR_GENERATION = "avatar generation"
    AVATAR_EDIT = "avatar editing"
    SCENE_IMAGE = "scene image rendering"
    SCENE_WRITER = "scene writer"
    DESIGN_REFERENCE_WRITER = "design reference writer"


class SceneMode(StrEnum):
    AUTO = "auto"
    ASK_FIRST = "ask_first"
    MANUAL = "manual"


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """Per-workspace choice of model per feature; empty means "first compatible"."""

    image_model: str = ""
    avatar_model: str = ""
    scene_image_model: str = ""
    scene_writer_model: str = ""
    scene_mode: SceneMode = SceneMode.ASK_FIRST
    context_window_size: int = 3
    update_time: datetime | None = None
    # The webhook of jobs created without one of their own; None: none.
    default_webhook: WebhookSubscription | None = None


@dataclass(frozen=True)
class FeatureCheck:
    """Whether a feature can run, with which model, and what to configure if not."""

    feature: Feature
    ready: bool
    model: str
    missing_capabilities: tuple[str, ...]
    message: str
    qualifying_models: tuple[str, ...]
    warnings: tuple[str, ...] = ()
