"""Benchmark fake: the OpenAI Images fake answering with a large, fixed, noisy PNG.

Run by ``bench/bench_http.py`` as a separate process (so its CPU is not the Limner
server's). Prints ``PORT <n>`` on stdout once it listens on 127.0.0.1, then serves until
SIGTERM/SIGINT.

It is ``limner.testing.fakes.openai.OpenAIFake`` (same routes, same JSON answer shape,
same ``latency_s`` delay before answering) with two changes that matter for a benchmark:

- **The image.** Every answer is a 1024x1024 RGB PNG of random noise from a fixed seed,
  10 values per channel, filter type None, zlib level 6: about 1.48 MB of PNG, so the
  ``b64_json`` answer is about 1.97 MB of JSON (a real gpt-image-1 1024x1024 PNG is
  1.5-2.5 MB). Noise does not compress, so the size stays the same whatever Limner does.
  **Each answer differs by a few pixels**: the answer's sequence number is written into
  the first three pixels of the top row. The asset store is content-addressed (SHA-256),
  so identical answers would be deduplicated and the blob written once; different ones
  are hashed, verified and written every time, as with a real model.
- **Cheap answers.** Re-encoding a 1024x1024 PNG costs ~100 ms and ``json.dumps`` of a
  2 MB string ~4 ms, which would make this fake the bottleneck. So the zlib stream is
  built in two independent parts: the top row, compressed per answer and ended with a
  full flush (which resets the compressor's history), and the other 1023 rows,
  compressed once at start-up as raw deflate. They go in separate IDAT chunks (a PNG's
  zlib stream may span IDAT chunks; the big part in 64 KiB ones, as encoders write
  them), the Adler-32 trailer is combined arithmetically, and a padding ``tEXt`` chunk
  keeps the per-answer prefix a multiple of 3 bytes long so the base64 of the big middle
  part is also computed once. The JSON body is the fake's own ``image_response`` with
  the base64 spliced in as bytes. Building an answer costs ~0.15 ms of CPU, serving it
  (aiohttp writing 2 MB) ~1.4 ms in all.

``GET /_bench/stats`` returns the answers served so far; ``PUT /_bench/latency`` with
``{"latency_s": 2.0}`` changes the delay before answering (the benchmark measures at
0 s, then the 256-job batch at 2 s, against the same process).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import signal
import struct
import sys
import zlib
from typing import Any

from aiohttp import web

from limner.testing.fakes.openai import OpenAIFake

WIDTH = HEIGHT = 1024
SEED = 1
LEVELS = 10  # distinct values per channel (~3.3 random bits per byte)
ZLIB_LEVEL = 6
IDAT_BYTES = 64 * 1024
MARKED_PIXELS = 3  # the sequence number goes in the first 3 pixels (9 bytes) of row 0
_ADLER_BASE = 65521


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of ``a + b`` from ``adler32(a)``, ``adler32(b)`` and ``len(b)`` (zlib's
    ``adler32_combine``, which Python's zlib module does not expose)."""
    rem = len2 % _ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % _ADLER_BASE
    sum1 += (adler2 & 0xFFFF) + _ADLER_BASE - 1
    sum2 += (adler1 >> 16) + (adler2 >> 16) + _ADLER_BASE - rem
    return ((sum2 % _ADLER_BASE) << 16) | (sum1 % _ADLER_BASE)


class NoisePng:
    """A fixed noisy RGB PNG whose answer ``n`` differs from the others in 3 pixels."""

    def __init__(
        self, width: int = WIDTH, height: int = HEIGHT, seed: int = SEED, levels: int = LEVELS
    ) -> None:
        if height < 2 or width < MARKED_PIXELS:
            raise ValueError("the image needs at least 2 rows and 3 columns")
        rng = random.Random(seed)
        step = 256 // levels
        table = bytes((i % levels) * step for i in range(256))
        stride = 3 * width
        noise = rng.randbytes(stride * height).translate(table)
        # Filter type 0 (None) before every row.
        self._row0 = bytearray(b"\0" + noise[:stride])
        rest = b"".join(b"\0" + noise[y * stride : (y + 1) * stride] for y in range(1, height))
        tail = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, -15)
        self._rest_adler = zlib.adler32(rest)
        self._rest_len = len(rest)
        deflated = tail.compress(rest) + tail.flush()
        # 64 KiB IDAT chunks, as encoders write them (Pillow, libpng use 8-64 KiB).
        middle = b"".join(
            _chunk(b"IDAT", deflated[i : i + IDAT_BYTES])
            for i in range(0, len(deflated), IDAT_BYTES)
        )
        split = len(middle) - len(middle) % 3
        self._middle_b64 = base64.b64encode(middle[:split])
        self._middle = middle[:split]
        self._middle_rest = middle[split:]
        self._head = b"\x89PNG\r\n\x1a\n" + _chunk(
            b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        )

    def parts(self, n: int) -> tuple[bytes, bytes, bytes]:
        """(prefix, middle, suffix) of answer ``n``; ``prefix`` is a multiple of 3 bytes."""
        row0 = self._row0
        row0[1 : 1 + 3 * MARKED_PIXELS] = n.to_bytes(3 * MARKED_PIXELS, "big")
        head = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, 15)
        first = head.compress(bytes(row0)) + head.flush(zlib.Z_FULL_FLUSH)
        idat0 = _chunk(b"IDAT", first)
        # A tEXt chunk of 0-2 filler bytes aligns the prefix to 3 bytes for base64.
        pad = (-(len(self._head) + 12 + len(b"bench\0") + len(idat0))) % 3
        prefix = self._head + _chunk(b"tEXt", b"bench\0" + b"-" * pad) + idat0
        adler = adler32_combine(zlib.adler32(bytes(row0)), self._rest_adler, self._rest_len)
        suffix = (
            self._middle_rest + _chunk(b"IDAT", struct.pack(">I", adler)) + _chunk(b"IEND", b"")
        )
        return prefix, self._middle, suffix

    def png(self, n: int) -> bytes:
        return b"".join(self.parts(n))

    def b64(self, n: int) -> bytes:
        prefix, _, suffix = self.parts(n)
        return base64.b64encode(prefix) + self._middle_b64 + base64.b64encode(suffix)


class BenchOpenAIFake(OpenAIFake):
    """The OpenAI fake with cheap, large, distinct answers (see the module docstring)."""

    def __init__(self, *, latency_s: float, image: NoisePng) -> None:
        super().__init__(latency_s=latency_s, image_size=(WIDTH, HEIGHT))
        self.image = image
        self.answers = 0
        self.bytes_sent = 0

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/_bench/stats", self._stats)
        app.router.add_put("/_bench/latency", self._set_latency)

    def next_image(self, width: int | None = None, height: int | None = None) -> bytes:
        # Fallback paths (hosted URLs, streamed answers) serve the same kind of image.
        self._counter += 1
        return self.image.png(self._counter)

    async def _images(self, request: web.Request) -> web.StreamResponse:
        fields = self.fields(await self.record(request))
        self.requests.clear()  # keep memory flat over thousands of requests
        if self.streams(fields) or self.wants_url(fields) or self._faults:
            return await super()._images(request)
        await self.delay(None)
        count = self.image_count(fields)
        marker = "@@B64@@"
        template = json.dumps(
            self.image_response([{"b64_json": marker}] * count, fields),
            separators=(",", ":"),
        ).encode()
        pieces = template.split(marker.encode())
        body = [pieces[0]]
        for piece in pieces[1:]:
            self._counter += 1
            body += [self.image.b64(self._counter), piece]
        data = b"".join(body)
        self.answers += 1
        self.bytes_sent += len(data)
        return web.Response(body=data, content_type="application/json")

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "answers": self.answers,
                "bytes_sent": self.bytes_sent,
                "images": self._counter,
                "latency_s": self.latency_s,
                "png_bytes": len(self.image.png(0)),
            }
        )

    async def _set_latency(self, request: web.Request) -> web.StreamResponse:
        body: Any = await request.json()
        self.latency_s = float(body["latency_s"])
        return web.json_response({"latency_s": self.latency_s})


async def serve(args: argparse.Namespace) -> None:
    image = NoisePng(levels=args.levels)
    fake = BenchOpenAIFake(latency_s=args.latency_s, image=image)
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    png = image.png(0)
    print(
        f"fake OpenAI on {fake.base_url}: {WIDTH}x{HEIGHT} PNG of {len(png)} bytes, "
        f"b64_json {len(image.b64(0))} bytes, latency {args.latency_s:g} s",
        file=sys.stderr,
        flush=True,
    )
    print(f"PORT {fake.port}", flush=True)
    await stop.wait()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI fake for bench/bench_http.py")
    parser.add_argument("--latency-s", type=float, default=0.0, help="delay before answering")
    parser.add_argument(
        "--levels",
        type=int,
        default=LEVELS,
        help="distinct values per colour channel (10: 1.48 MB PNG, 1.97 MB b64_json; "
        "16: 1.79 MB PNG)",
    )
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
