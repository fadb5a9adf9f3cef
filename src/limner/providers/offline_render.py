"""Deterministic placeholder rendering for the keyless "offline" provider.

This is NOT an image model. It draws an abstract picture (gradient + a few shapes)
whose colours and layout are derived from a hash of the prompt and seed, and
stamps every output with an "offline placeholder" caption plus PNG text metadata,
so nobody mistakes it for AI output. It exists so the whole service (jobs,
progress streaming, storage, editing flows) can run and be tested with no API key
or network access.

Everything is plain Pillow (no numpy) and deterministic: identical inputs give
byte-identical PNGs within one Pillow/zlib build.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import unicodedata
from typing import Final

from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin

MIN_SIZE: Final = 64
MAX_SIZE: Final = 4096
PLACEHOLDER_LABEL: Final = "offline placeholder"
_CAPTION_CHARS: Final = 40
_SHAPE_COUNT: Final = 7
# Preview blur: at step 0 the image is downsampled by this factor, at the last
# step not at all. Downsample+upsample is a cheap, radius-independent blur.
_MAX_PREVIEW_FACTOR: Final = 16

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def render_image(
    prompt: str,
    *,
    seed: int,
    width: int,
    height: int,
    step: int | None = None,
    total_steps: int | None = None,
) -> bytes:
    """Render a placeholder PNG for ``prompt``.

    With ``step``/``total_steps`` the result is a progress preview: fewer shapes
    and a stronger blur the earlier the step, so streamed previews visibly
    converge on the final image (``step == total_steps`` equals the final render,
    apart from the step label).
    """
    _check_size(width, height)
    progress = _progress(step, total_steps)
    digest = _digest(prompt, seed)
    palette = _palette(digest)

    img = _gradient(width, height, palette[:4])
    shapes = _SHAPE_COUNT if progress is None else math.ceil(progress * _SHAPE_COUNT)
    _draw_shapes(img, random.Random(digest), palette[4:], shapes)

    if progress is not None and progress < 1.0:
        factor = 1 + round((1.0 - progress) * (_MAX_PREVIEW_FACTOR - 1))
        small = img.resize(
            (max(1, width // factor), max(1, height // factor)), Image.Resampling.BILINEAR
        )
        img = small.resize((width, height), Image.Resampling.BILINEAR)

    label = PLACEHOLDER_LABEL
    if step is not None and total_steps is not None:
        label = f"{PLACEHOLDER_LABEL} - step {step}/{total_steps}"
    _draw_caption(img, _caption_text(prompt), label)
    return _to_png(img)


def edit_image(
    source: bytes,
    prompt: str,
    *,
    seed: int,
    strength: float = 0.6,
    width: int | None = None,
    height: int | None = None,
    mask: bytes | None = None,
) -> bytes:
    """Apply a visible, deterministic placeholder "edit" to ``source``; returns PNG.

    The source is blended towards a prompt/seed-derived gradient by ``strength``
    (0 keeps the source colours, 1 replaces them), posterized, and overlaid with
    a seeded band and the placeholder caption. Where ``mask`` is given, only its
    white areas change (grey blends proportionally, black is left untouched).
    Output size is ``width``/``height`` when given, else the source size.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError("strength must be between 0 and 1")
    for name, value in (("width", width), ("height", height)):
        if value is not None and not MIN_SIZE <= value <= MAX_SIZE:
            raise ValueError(f"{name} must be between {MIN_SIZE} and {MAX_SIZE}")

    base = _open_rgb_or_rgba(source, "source")
    out_size = (width or base.width, height or base.height)
    if base.size != out_size:
        # fit() crops to the target aspect ratio instead of stretching the picture.
        base = ImageOps.fit(base, out_size, Image.Resampling.BICUBIC)
    alpha = base.getchannel("A") if base.mode == "RGBA" else None
    rgb = base.convert("RGB") if alpha is not None else base

    digest = _digest(prompt, seed)
    palette = _palette(digest)
    rng = random.Random(digest)

    tint = _gradient(out_size[0], out_size[1], palette[:4])
    edited = Image.blend(rgb, tint, strength)
    edited = ImageOps.posterize(edited, 8 - round(strength * 4))
    _draw_band(edited, rng, palette[4])
    _draw_caption(edited, "edit: " + _caption_text(prompt), PLACEHOLDER_LABEL)

    if mask is not None:
        mask_img = _open_image(mask, "mask").convert("L")
        if mask_img.size != out_size:
            mask_img = ImageOps.fit(mask_img, out_size, Image.Resampling.BILINEAR)
        # composite() takes `edited` where the mask is 255 and `rgb` where it is 0,
        # so black mask areas keep the exact source pixels.
        edited = Image.composite(edited, rgb, mask_img)

    if alpha is not None:
        edited.putalpha(alpha)
    return _to_png(edited)


def _check_size(width: int, height: int) -> None:
    if not (MIN_SIZE <= width <= MAX_SIZE and MIN_SIZE <= height <= MAX_SIZE):
        raise ValueError(f"width and height must be between {MIN_SIZE} and {MAX_SIZE}")


def _progress(step: int | None, total_steps: int | None) -> float | None:
    if step is None and total_steps is None:
        return None
    if step is None or total_steps is None:
        raise ValueError("step and total_steps must be given together")
    if total_steps < 1 or not 0 <= step <= total_steps:
        raise ValueError("need total_steps >= 1 and 0 <= step <= total_steps")
    return step / total_steps


def _digest(prompt: str, seed: int) -> bytes:
    # Domain-separated so these hashes never collide with other uses of sha256.
    payload = f"limner-offline\x00{seed}\x00".encode() + prompt.encode("utf-8", "replace")
    return hashlib.sha256(payload).digest()


def _palette(digest: bytes) -> list[RGB]:
    """Eight colours from the 32-byte digest (first 30 bytes, 3 per colour, wrapped)."""
    return [(digest[i % 32], digest[(i + 1) % 32], digest[(i + 2) % 32]) for i in range(0, 24, 3)]


def _gradient(width: int, height: int, corners: list[RGB]) -> Image.Image:
    """Four-corner bilinear gradient, built by upscaling a 2x2 image.

    The ``box`` maps output edges onto the source pixel centres so the gradient
    runs corner to corner instead of having flat bands at the borders.
    """
    seed_img = Image.new("RGB", (2, 2))
    seed_img.putdata(corners)
    return seed_img.resize((width, height), Image.Resampling.BILINEAR, box=(0.5, 0.5, 1.5, 1.5))


def _draw_shapes(img: Image.Image, rng: random.Random, colours: list[RGB], count: int) -> None:
    draw = ImageDraw.Draw(img, "RGBA")
    w, h = img.size
    # Coordinates are fractions of the canvas so a prompt looks the same at any size.
    for i in range(count):
        r, g, b = colours[i % len(colours)]
        fill = (r, g, b, rng.randint(90, 180))
        kind = rng.randrange(3)
        cx, cy = rng.random() * w, rng.random() * h
        rx, ry = (0.08 + rng.random() * 0.25) * w, (0.08 + rng.random() * 0.25) * h
        if kind == 0:
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
        elif kind == 1:
            draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
        else:
            angle = rng.random() * math.tau
            points = [
                (
                    cx + rx * math.cos(angle + k * math.tau / 3),
                    cy + ry * math.sin(angle + k * math.tau / 3),
                )
                for k in range(3)
            ]
            draw.polygon(points, fill=fill)


def _draw_band(img: Image.Image, rng: random.Random, colour: RGB) -> None:
    w, h = img.size
    band_h = max(4, h // 8)
    top = rng.randrange(0, max(1, h - band_h))
    ImageDraw.Draw(img, "RGBA").rectangle((0, top, w, top + band_h), fill=(*colour, 110))


def _caption_text(prompt: str) -> str:
    # Control characters (newlines, tabs, bidi overrides' neighbours) would break
    # the one-line layout; replace them with spaces and collapse whitespace.
    cleaned = "".join(" " if unicodedata.category(c).startswith("C") else c for c in prompt)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > _CAPTION_CHARS:
        cleaned = cleaned[: _CAPTION_CHARS - 3].rstrip() + "..."
    return cleaned


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _drawable(text: str, font: Font) -> str:
    # Pillow's bitmap fallback font (used when built without FreeType) can only
    # encode Latin-1; FreeType renders anything, using a box for missing glyphs.
    if isinstance(font, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _draw_caption(img: Image.Image, text: str, label: str) -> None:
    """Dark band along the bottom with the prompt excerpt and the placeholder label."""
    w, h = img.size
    size = max(8, min(48, w // 32))
    font = _font(size)
    # Shrink the font until the placeholder label fits: it must stay legible
    # even on the smallest (64 px) images.
    while size > 6 and font.getlength(label) > w - 4:
        size -= 1
        font = _font(size)
    pad = max(2, size // 3)
    lines = [line for line in (_drawable(text, font), _drawable(label, font)) if line]
    band_h = len(lines) * (size + pad) + pad
    draw = ImageDraw.Draw(img, "RGBA")
    draw.rectangle((0, h - band_h, w, h), fill=(0, 0, 0, 150))
    y = h - band_h + pad
    for line in lines:
        draw.text((pad, y), line, font=font, fill=(255, 255, 255, 255))
        y += size + pad


def _open_image(data: bytes, what: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            # Honour camera orientation so the edit is applied to the upright picture.
            return ImageOps.exif_transpose(img)
    except Exception as exc:
        raise ValueError(f"{what} is not a readable image") from exc


def _open_rgb_or_rgba(data: bytes, what: str) -> Image.Image:
    img = _open_image(data, what)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if has_alpha else "RGB")


def _to_png(img: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "limner offline placeholder renderer")
    info.add_text("Comment", "Offline placeholder image, not AI generated.")
    buf = io.BytesIO()
    # compress_level=1: these are throwaway placeholders, speed beats file size.
    img.save(buf, "PNG", compress_level=1, pnginfo=info)
    return buf.getvalue()
