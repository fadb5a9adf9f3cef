"""Proto <-> domain conversion, one module per proto file in ``proto/limner/v1/``.

Each module pairs ``<thing>_to_pb(domain) -> pb`` with ``<thing>_from_pb(pb) -> domain``;
``common`` holds the enum lookup and the well-known types (timestamps, durations, masks).
"""

from limner.api.convert import (
    asset,
    common,
    design_reference,
    image_service,
    job,
    model,
    scene,
    scene_service,
)

__all__ = [
    "asset",
    "common",
    "design_reference",
    "image_service",
    "job",
    "model",
    "scene",
    "scene_service",
]
