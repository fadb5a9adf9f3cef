"""Benchmark server: a real Limner ``App`` whose offline provider answers at once.

Run by ``bench/bench_generate.py`` as a separate process. Prints ``PORT <n>`` on stdout
once it listens, then serves until SIGTERM/SIGINT and stops gracefully.

The offline provider is replaced by ``InstantImageGenerator(FIXED_PNG)``: every job
"renders" the same fixed 1024x1024 PNG (made once at start-up with the offline renderer),
so the figures measure Limner (validation, job store, event log, asset store, gRPC
streaming), not a model. Identical bytes dedupe in the content-addressed asset store, so
after the first job the blob write is skipped: realistic for a fixed image, optimistic for
a real model whose outputs all differ.

Profiling: set ``LIMNER_BENCH_PROFILE=/path/out.prof`` and the event-loop thread runs under
cProfile; the stats are dumped there when the server stops.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import signal
import sys
import tempfile
from pathlib import Path

from limner import logs
from limner.app import App
from limner.providers import Provider
from limner.providers.offline_render import render_image
from limner.testing.providers import InstantImageGenerator
from limner.testing.server import fast_settings


def fixed_png() -> bytes:
    return render_image("benchmark", seed=1, width=1024, height=1024)


async def serve(args: argparse.Namespace, image: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="limner-bench-data-") as scratch:
        await _serve(args, image, Path(args.data_dir or scratch))


async def _serve(args: argparse.Namespace, image: bytes, data_dir: Path) -> None:
    settings = fast_settings(
        data_dir,
        args.database_url,
        log_level="WARNING",
        jobs={
            "heartbeat_interval_s": 1.0,
            "preview_interval_s": 0.0,
            "default_provider_concurrency": args.provider_slots,
        },
    )
    app = App(
        settings,
        providers={
            "offline": Provider(id="offline", kind="offline", images=InstantImageGenerator(image))
        },
    )
    port = await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {port}", flush=True)
    await stop.wait()
    await app.stop(grace_s=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--provider-slots",
        type=int,
        default=4,
        help="max concurrent jobs on the provider (Limner's default is 4)",
    )
    args = parser.parse_args()
    logs.configure("WARNING", "text")
    image = fixed_png()  # before the profiler starts: not part of serving

    profile_path = os.environ.get("LIMNER_BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(serve(args, image))
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
            print(f"profile written to {profile_path}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
