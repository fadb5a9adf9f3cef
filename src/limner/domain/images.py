"""Image requests as the use cases and providers see them."""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_SIDE = 64
MAX_SIDE = 4096
MAX_IMAGE_COUNT = 8
MAX_PROMPT_CHARS = 32_000


@dataclass(frozen=True, kw_only=True)
class ImageOptions:
    """Caller-chosen options. ``None`` means "the model's default"."""

    width: int | None = None
    height: int | None = None
    aspect_ratio: str = ""
    seed: int | None = None
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    sampler: str = ""
    image_count: int | None = None


@dataclass(frozen=True, kw_only=True)
class SourceImage:
    """An image sent to a provider (edit source, mask or reference)."""

    asset: str
    data: bytes
    mime_type: str
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class ProviderImageRequest:
    """What an image generator receives: resolved, validated, bytes loaded."""

    job_id: str
    provider_model_id: str
    prompt: str
    width: int
    height: int
    seed: int
    image_count: int = 1
    aspect_ratio: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    sampler: str = ""
    source: SourceImage | None = None
    mask: SourceImage | None = None
    strength: float | None = None
    references: tuple[SourceImage, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GeneratedImage:
    """One image a provider returned, either as bytes or as a URL to download."""

    data: bytes = b""
    url: str = ""
    seed: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
