"""``limner/v1/image_service.proto``: the request options shared by the image RPCs."""

from __future__ import annotations

from limner.domain.images import ImageOptions
from limner.v1 import image_service_pb2


def image_options_from_pb(options: image_service_pb2.ImageOptions) -> ImageOptions:
    def opt(name: str) -> object | None:
        return getattr(options, name) if options.HasField(name) else None

    return ImageOptions(
        width=opt("width"),  # type: ignore[arg-type]
        height=opt("height"),  # type: ignore[arg-type]
        aspect_ratio=options.aspect_ratio,
        seed=opt("seed"),  # type: ignore[arg-type]
        negative_prompt=options.negative_prompt,
        steps=opt("steps"),  # type: ignore[arg-type]
        guidance_scale=opt("guidance_scale"),  # type: ignore[arg-type]
        sampler=options.sampler,
        image_count=opt("image_count"),  # type: ignore[arg-type]
    )
