"""Validate untrusted image bytes before they are stored or handed to a client.

Every provider result and every upload passes through :func:`probe_image`, so it
must reject hostile input (decompression bombs, truncated files, formats we do
not serve) cheaply and without side effects on Pillow's global configuration.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image

RejectReason = Literal[
    "NOT_AN_IMAGE",
    "IMAGE_TOO_LARGE",
    "DECOMPRESSION_BOMB",
    "UNSUPPORTED_FORMAT",
    "EMPTY",
]

# Pillow format name -> MIME type we serve. MPO is how Pillow labels JPEGs that
# carry a Multi-Picture extension (common from phone cameras); the file is still
# a baseline JPEG, so it is served as image/jpeg rather than rejected.
_MIME_BY_FORMAT: Final[dict[str, str]] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, after the limits were checked against it."""

    mime_type: str
    width: int
    height: int
    size_bytes: int
    format: str


@dataclass(frozen=True)
class ImageInfo:
    """Facts about a validated image; ``sha256`` is the lowercase hex digest of the bytes."""

    mime_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str


class ImageRejected(Exception):
    """Raised when bytes are not an image we accept.

    ``reason`` is a stable machine-readable code; ``message`` is for humans and
    never echoes the payload (it may be large or attacker-controlled).
    """

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: str = reason
        self.message: str = message


def probe_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Validate ``data`` as a PNG/JPEG/WEBP/GIF image and describe it.

    Checks run cheapest-first so hostile input is rejected before any pixel
    decoding: size limit, header parse, format, header dimensions (all in
    :func:`read_header`), and only then :func:`check_integrity`, which catches
    truncated or corrupt payloads.
    """
    header = read_header(data, max_bytes=max_bytes, max_pixels=max_pixels)
    check_integrity(data, header)
    return ImageInfo(
        mime_type=header.mime_type,
        width=header.width,
        height=header.height,
        size_bytes=header.size_bytes,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def read_header(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageHeader:
    """The cheap checks (size, format, dimensions): a header parse, no pixel data.

    Call it on the event-loop thread (see the note on warnings below); the costly part,
    :func:`check_integrity`, may then run in a worker thread.
    """
    if not data:
        raise ImageRejected("EMPTY", "image payload is empty")
    size = len(data)
    if size > max_bytes:
        raise ImageRejected(
            "IMAGE_TOO_LARGE",
            f"image is {size} bytes; the limit is {max_bytes} bytes",
        )

    # Pillow reports oversize images through a module-level warning / error based
    # on the global Image.MAX_IMAGE_PIXELS. We never touch that global (it would
    # leak into every other Pillow user in the process); instead we compare the
    # header dimensions with our own limit, and treat Pillow's own bomb signals
    # as a bomb too. catch_warnings keeps the warning from escaping (tests run
    # with warnings-as-errors). Note: catch_warnings mutates process-wide state,
    # which is why this runs on the single event-loop thread only. An image that
    # passes is within Pillow's limit, so opening it again elsewhere cannot warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _read_header(data, size=size, max_pixels=max_pixels)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(
                "DECOMPRESSION_BOMB",
                f"image dimensions exceed the decoder's safety limit (limit {max_pixels} pixels)",
            ) from exc


def _read_header(data: bytes, *, size: int, max_pixels: int) -> ImageHeader:
    try:
        # Image.open only parses the header; pixel data is not decoded yet.
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    except Exception as exc:
        # UnidentifiedImageError is the usual case, but malformed headers also
        # surface as SyntaxError, struct.error, ValueError, OSError...; all of
        # them mean "not an image".
        raise ImageRejected("NOT_AN_IMAGE", "data is not a recognisable image") from exc

    mime = _MIME_BY_FORMAT.get(fmt or "")
    if mime is None:
        raise ImageRejected(
            "UNSUPPORTED_FORMAT",
            f"image format {fmt or 'unknown'} is not supported; use PNG, JPEG, WEBP or GIF",
        )
    if width <= 0 or height <= 0:
        raise ImageRejected("NOT_AN_IMAGE", "image has zero width or height")
    if width * height > max_pixels:
        raise ImageRejected(
            "DECOMPRESSION_BOMB",
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
        )
    return ImageHeader(
        mime_type=mime, width=width, height=height, size_bytes=size, format=fmt or ""
    )


def check_integrity(data: bytes, header: ImageHeader) -> None:
    """Rejects truncated or corrupt image data. Thread-safe; ``header`` must come from
    :func:`read_header` on the same bytes (its limits bound the work done here)."""
    try:
        # verify() checks structure without decoding: for PNG it walks every chunk up to
        # IEND and checks its CRC, which catches truncation and corruption in ~0.5 ms.
        # Decoding a 1024x1024 PNG costs ~9 ms for every provider result, so only formats
        # whose verify() does not read the data (JPEG, WebP, GIF) are fully decoded;
        # load() fails on truncated data (LOAD_TRUNCATED_IMAGES is left at False).
        # Dimensions were bounded by read_header, so decoding is bounded too.
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        if header.format != "PNG":
            with Image.open(io.BytesIO(data)) as img:
                img.load()
    except Exception as exc:
        raise ImageRejected("NOT_AN_IMAGE", "image data is corrupt or truncated") from exc
