"""Turning what providers return (base64, data URLs, hosted URLs) into images."""

from __future__ import annotations

import base64
import binascii

import pybase64

from limner.domain.images import GeneratedImage
from limner.errors import NoImageReturned, Unavailable


def decode_base64(provider_id: str, value: str) -> bytes:
    """Raw base64, tolerating a stray ``data:...;base64,`` prefix (xAI does this)."""
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        # Strict and SIMD-fast (0.1 ms for 2 MB; the stdlib takes 6 ms on the event loop).
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass  # line breaks or other stray characters: the lenient decoder below
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise Unavailable(
            f"providers/{provider_id} returned image data that is not valid base64",
            reason="PROVIDER_BAD_RESPONSE",
            metadata={"provider": provider_id},
        ) from None


def image_from_reference(provider_id: str, value: str, seed: int | None = None) -> GeneratedImage:
    """A data URL becomes bytes; an http(s) URL is downloaded later, with guards."""
    if value.startswith("data:"):
        return GeneratedImage(data=decode_base64(provider_id, value), seed=seed)
    if value.startswith(("http://", "https://")):
        return GeneratedImage(url=value, seed=seed)
    raise Unavailable(
        f"providers/{provider_id} returned an image reference that is neither a data URL nor "
        "an http(s) URL",
        reason="PROVIDER_BAD_RESPONSE",
        metadata={"provider": provider_id},
    )


def data_url(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode()}"


def no_image(provider_id: str, text: str = "") -> NoImageReturned:
    """The provider answered, but with text (or nothing) instead of an image."""
    snippet = " ".join(text.split())[:200]
    message = f"providers/{provider_id} answered without an image"
    if snippet:
        message += f"; it said: {snippet!r}"
    return NoImageReturned(message, metadata={"provider": provider_id, "text": snippet})
