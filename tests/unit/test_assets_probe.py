"""Tests for limner.assets.probe: accepted formats, limits and hostile inputs."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import warnings
import zlib

import pytest
from PIL import Image, features

from limner.assets.probe import ImageInfo, ImageRejected, probe_image

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 4096 * 4096}


def _encode(fmt: str, size: tuple[int, int] = (32, 24), mode: str = "RGB") -> bytes:
    img = Image.new(mode, size, (200, 10, 30) if mode == "RGB" else 7)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _noise_png(size: tuple[int, int]) -> bytes:
    # Random pixels so the IDAT data is large and truncation hits pixel data.
    raw = random.Random(1).randbytes(size[0] * size[1] * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", size, raw).save(buf, "PNG")
    return buf.getvalue()


def _png_with_ihdr_size(width: int, height: int) -> bytes:
    """A tiny valid 1x1 PNG whose IHDR claims width x height, with a fixed-up CRC."""
    data = bytearray(_encode("PNG", (1, 1)))
    # Signature (8) + length (4) + b"IHDR" (4): width and height start at offset 16.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF  # type + 13-byte IHDR body
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def _reason(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageRejected) as excinfo:
        probe_image(data, **{**LIMITS, **limits})
    return excinfo.value.reason


def test_png_accepted_with_metadata() -> None:
    data = _encode("PNG", (32, 24))
    info = probe_image(data, **LIMITS)
    assert info == ImageInfo(
        mime_type="image/png",
        width=32,
        height=24,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_jpeg_accepted() -> None:
    data = _encode("JPEG", (40, 30))
    info = probe_image(data, **LIMITS)
    assert (info.mime_type, info.width, info.height) == ("image/jpeg", 40, 30)
    assert info.size_bytes == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_gif_accepted() -> None:
    info = probe_image(_encode("GIF", (10, 12), mode="P"), **LIMITS)
    assert (info.mime_type, info.width, info.height) == ("image/gif", 10, 12)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_accepted() -> None:
    info = probe_image(_encode("WEBP", (16, 16)), **LIMITS)
    assert (info.mime_type, info.width, info.height) == ("image/webp", 16, 16)


def test_empty_rejected() -> None:
    assert _reason(b"") == "EMPTY"


def test_random_bytes_not_an_image() -> None:
    assert _reason(random.Random(0).randbytes(4096)) == "NOT_AN_IMAGE"


def test_truncated_png_rejected() -> None:
    data = _noise_png((64, 64))
    assert _reason(data[: len(data) // 2]) == "NOT_AN_IMAGE"


def test_truncated_jpeg_rejected() -> None:
    raw = random.Random(2).randbytes(64 * 64 * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 64), raw).save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    assert _reason(data[: len(data) // 2]) == "NOT_AN_IMAGE"


def test_too_large_checked_before_decoding() -> None:
    # Garbage that would be NOT_AN_IMAGE if decoded: the size check must win.
    garbage = b"\x00" * 2048
    with pytest.raises(ImageRejected) as excinfo:
        probe_image(garbage, max_bytes=1024, max_pixels=LIMITS["max_pixels"])
    assert excinfo.value.reason == "IMAGE_TOO_LARGE"
    assert "1024" in excinfo.value.message


def test_exactly_max_bytes_is_allowed() -> None:
    data = _encode("PNG")
    assert probe_image(data, max_bytes=len(data), max_pixels=10_000).size_bytes == len(data)


def test_unsupported_format_rejected() -> None:
    assert _reason(_encode("BMP")) == "UNSUPPORTED_FORMAT"
    assert _reason(_encode("TIFF")) == "UNSUPPORTED_FORMAT"


def test_pixel_limit_from_header() -> None:
    data = _encode("PNG", (100, 100))
    assert _reason(data, max_pixels=9_999) == "DECOMPRESSION_BOMB"
    assert probe_image(data, **{**LIMITS, "max_pixels": 10_000}).width == 100


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (5_000, 5_000),  # above our limit, below Pillow's own bomb threshold
        (10_000, 10_000),  # above Pillow's warning threshold
        (100_000, 100_000),  # above Pillow's hard error threshold
    ],
)
def test_small_file_huge_dimensions_is_bomb(width: int, height: int) -> None:
    data = _png_with_ihdr_size(width, height)
    assert len(data) < 200
    max_pixels_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning may escape
        with pytest.raises(ImageRejected) as excinfo:
            probe_image(data, max_bytes=1024, max_pixels=1_000_000)
    assert excinfo.value.reason == "DECOMPRESSION_BOMB"
    assert max_pixels_before == Image.MAX_IMAGE_PIXELS  # global left untouched


def test_message_never_contains_payload() -> None:
    payload = b"SECRET-PAYLOAD" * 10
    with pytest.raises(ImageRejected) as excinfo:
        probe_image(payload, **LIMITS)
    assert "SECRET" not in excinfo.value.message
    assert "SECRET" not in str(excinfo.value)
