"""Tests for the deterministic offline placeholder renderer."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageChops

from limner.providers.offline_render import edit_image, render_image


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _source_png(size: tuple[int, int] = (128, 96), mode: str = "RGB") -> bytes:
    raw = random.Random(3).randbytes(size[0] * size[1] * len(mode))
    buf = io.BytesIO()
    Image.frombytes(mode, size, raw).save(buf, "PNG")
    return buf.getvalue()


def _differs(a: Image.Image, b: Image.Image) -> bool:
    return ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is not None


def test_render_is_deterministic_png() -> None:
    a = render_image("a red fox in snow", seed=7, width=256, height=192)
    b = render_image("a red fox in snow", seed=7, width=256, height=192)
    assert a == b
    assert a.startswith(b"\x89PNG\r\n\x1a\n")
    img = _open(a)
    assert img.format == "PNG"
    assert img.size == (256, 192)
    assert "placeholder" in img.info.get("Comment", "")


def test_render_varies_with_seed_and_prompt() -> None:
    base = render_image("a red fox", seed=1, width=128, height=128)
    other_seed = render_image("a red fox", seed=2, width=128, height=128)
    other_prompt = render_image("a blue whale", seed=1, width=128, height=128)
    assert base != other_seed
    assert base != other_prompt
    assert _differs(_open(base), _open(other_seed))
    assert _differs(_open(base), _open(other_prompt))


@pytest.mark.parametrize(("width", "height"), [(64, 64), (64, 4096), (300, 77 + 64), (1024, 768)])
def test_render_size_honoured(width: int, height: int) -> None:
    assert _open(render_image("size", seed=0, width=width, height=height)).size == (width, height)


def test_render_odd_prompts() -> None:
    for prompt in ["", "line1\nline2\t\x00", "🦊 狐狸 " * 30, "x" * 10_000]:
        assert _open(render_image(prompt, seed=5, width=64, height=64)).size == (64, 64)


@pytest.mark.parametrize(("width", "height"), [(63, 64), (64, 4097), (0, 100)])
def test_render_rejects_bad_size(width: int, height: int) -> None:
    with pytest.raises(ValueError):
        render_image("x", seed=0, width=width, height=height)


def test_render_previews_are_deterministic_and_distinct() -> None:
    previews = [
        render_image("castle", seed=3, width=128, height=128, step=s, total_steps=4)
        for s in range(5)
    ]
    assert previews == [
        render_image("castle", seed=3, width=128, height=128, step=s, total_steps=4)
        for s in range(5)
    ]
    assert len(set(previews)) == 5
    final = render_image("castle", seed=3, width=128, height=128)
    assert all(p != final for p in previews)  # step label differs from the final render


def test_render_rejects_bad_steps() -> None:
    with pytest.raises(ValueError):
        render_image("x", seed=0, width=64, height=64, step=1)
    with pytest.raises(ValueError):
        render_image("x", seed=0, width=64, height=64, step=5, total_steps=4)
    with pytest.raises(ValueError):
        render_image("x", seed=0, width=64, height=64, step=0, total_steps=0)


def test_edit_changes_pixels_and_is_deterministic() -> None:
    source = _source_png()
    a = edit_image(source, "make it sepia", seed=9)
    b = edit_image(source, "make it sepia", seed=9)
    assert a == b
    out = _open(a)
    assert out.size == (128, 96)
    assert _differs(out, _open(source))
    assert edit_image(source, "make it sepia", seed=10) != a


def test_edit_resizes_and_accepts_jpeg() -> None:
    img = Image.new("RGB", (200, 100), (10, 120, 200))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    out = _open(edit_image(buf.getvalue(), "wide", seed=1, width=128, height=128))
    assert out.size == (128, 128)


def test_edit_keeps_alpha() -> None:
    out = _open(edit_image(_source_png(mode="RGBA"), "alpha", seed=1))
    assert out.mode == "RGBA"


def test_edit_mask_restricts_change() -> None:
    source = _source_png((128, 96))
    mask_img = Image.new("L", (128, 96), 0)
    mask_img.paste(255, (64, 0, 128, 96))  # right half white = editable
    buf = io.BytesIO()
    mask_img.save(buf, "PNG")

    out = _open(edit_image(source, "masked", seed=4, strength=0.8, mask=buf.getvalue()))
    src = _open(source).convert("RGB")
    out_rgb = out.convert("RGB")
    left = (0, 0, 64, 96)
    right = (64, 0, 128, 96)
    assert not _differs(out_rgb.crop(left), src.crop(left))  # black: untouched
    assert _differs(out_rgb.crop(right), src.crop(right))  # white: edited


def test_edit_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        edit_image(b"not an image", "x", seed=0)
    with pytest.raises(ValueError):
        edit_image(_source_png(), "x", seed=0, strength=1.5)
    with pytest.raises(ValueError):
        edit_image(_source_png(), "x", seed=0, width=32)
