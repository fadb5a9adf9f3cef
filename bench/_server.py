"""Benchmark server: a real Limner ``App`` whose offline provider answers at once.

Run by ``bench/bench_generate.py`` as a separate process. Prints ``PORT <n>`` on stdout
once it listens, then serves until SIGTERM/SIGINT and stops gracefully.

The offline provider is replaced by ``InstantImageGenerator(FIXED_PNG)``: every job
"renders" the same fixed 1024x1024 PNG (made once at start-up with the offline renderer),
so the figures measure Limner (validation, job store, event log, asset store, gRPC
streaming), not a model. Identical bytes dedupe in the content-addressed asset store, so
after the first job the blob write is skipped: realistic for a fixed image, optimistic for
a real model whose outputs all differ.

HTTP mode (``bench/bench_http.py``): ``--http-base-url URL`` configures a real ``openai``
provider ``oa`` at that URL (the loopback fake of ``bench/_http_server.py``) with
``--provider-slots`` concurrent jobs, and a model ``bench-http`` on it
(``--http-model``, gpt-image-1 by default). Previews are switched off
(``jobs.preview_interval_s`` = 1e9) so the adapter sends one plain JSON request and gets
one ``b64_json`` answer, instead of streaming partial images. The offline provider keeps
its normal renderer (unused). ``--http-transport`` sets ``http.transport``: ``aiohttp`` (the
default: the httpx API over aiohttp) or ``httpx`` (httpx's own transport).

Profiling: set ``LIMNER_BENCH_PROFILE=/path/out.prof`` and the event-loop thread runs under
cProfile; the stats are dumped there when the server stops.

Tracing: ``LIMNER_BENCH_TRACING=1`` (``bench_generate.py --tracing``) turns OpenTelemetry
traces on as in production (the same instrumentations, a ``BatchSpanProcessor``, the sampler
of ``OTEL_TRACES_SAMPLER``), with one exporter of its own: it encodes each batch to OTLP
protobuf as the OTLP exporter would, counts it and drops it. No collector is needed, and
none is missing (an OTLP exporter aimed at a closed port would log errors and back off).

Metrics: the server inherits the environment, and settings read ``LIMNER_*`` variables, so
``LIMNER_METRICS__ADDRESS=127.0.0.1:0`` turns on the Prometheus endpoint (its address is
printed on stderr) to measure what recording metrics costs.
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
from typing import Any

from limner import logs
from limner.app import App
from limner.observability import tracing
from limner.providers import Provider
from limner.providers.offline_render import render_image
from limner.testing.providers import InstantImageGenerator
from limner.testing.server import fast_settings

HTTP_PROVIDER = "oa"
HTTP_MODEL = "bench-http"


def fixed_png() -> bytes:
    return render_image("benchmark", seed=1, width=1024, height=1024)


EXPERIMENTS = (
    "no-fsync",
    "switch-interval",
)


def apply_experiments(names: list[str]) -> None:
    """What-if switches, each emulating a change to ``src/`` by monkeypatching it in this
    process, so its effect can be measured before (or instead of) making it:

    - ``no-fsync``: blob writes skip ``os.fsync`` (measures what durability costs a job;
      not a proposal as such, see bench/README.md).
    - ``switch-interval``: ``sys.setswitchinterval(0.001)`` instead of 5 ms (threads that
      hold the GIL, such as the database writer, keep the event loop waiting up to it).
    """
    unknown = set(names) - set(EXPERIMENTS)
    if unknown:
        raise SystemExit(f"unknown experiments: {sorted(unknown)} (known: {EXPERIMENTS})")
    if "switch-interval" in names:
        sys.setswitchinterval(0.001)
    if "no-fsync" in names:
        import limner.assets.blobs as blobs_module

        class _NoFsync:
            def __getattr__(self, name: str) -> Any:
                return getattr(os, name)

            @staticmethod
            def fsync(fd: int) -> None:
                return None

        blobs_module.os = _NoFsync()  # type: ignore[assignment]
    if names:
        print(f"experiments on: {', '.join(names)}", file=sys.stderr, flush=True)


class OtlpToNowhere:
    """A span exporter that does the OTLP exporter's CPU work (encoding each batch to
    protobuf) and drops the bytes instead of sending them."""

    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0

    def export(self, spans: Any) -> Any:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.bytes += len(encode_spans(spans).SerializeToString())
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def bench_tracing() -> OtlpToNowhere:
    exporter = OtlpToNowhere()
    tracing.setup(exporter)
    print("tracing on (OTLP encoded, then dropped)", file=sys.stderr, flush=True)
    return exporter


def http_sections(args: argparse.Namespace) -> dict[str, Any]:
    """Settings for an ``openai`` provider at ``--http-base-url`` and one model on it."""
    provider = {
        "kind": "openai",
        "base_url": args.http_base_url,
        "api_key": "sk-bench",
        "max_retries": 0,  # a failure shows as a failed call, not as a slow one
        "timeout_s": 60.0,
        "max_concurrent_jobs": args.provider_slots,
    }
    model = {
        "id": HTTP_MODEL,
        "provider": HTTP_PROVIDER,
        "provider_model_id": args.http_model,
        "input_modalities": ["text"],
        "output_modalities": ["image"],
        "profile": {"supported_sizes": ["1024x1024"], "max_images_per_request": 1},
    }
    return {"providers": {HTTP_PROVIDER: provider}, "models": [model]}


async def serve(args: argparse.Namespace, image: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="limner-bench-data-") as scratch:
        await _serve(args, image, Path(args.data_dir or scratch))


async def _serve(args: argparse.Namespace, image: bytes, data_dir: Path) -> None:
    http_mode = bool(args.http_base_url)
    settings = fast_settings(
        data_dir,
        args.database_url,
        log_level="WARNING",
        jobs={
            "heartbeat_interval_s": 1.0,
            # HTTP mode: no previews, so gpt-image-1 is asked for one JSON answer.
            "preview_interval_s": 1e9 if http_mode else 0.0,
            "default_provider_concurrency": args.provider_slots,
        },
        http={"transport": args.http_transport},
        **(http_sections(args) if http_mode else {}),
    )
    providers = {}
    if not http_mode:
        providers["offline"] = Provider(
            id="offline", kind="offline", images=InstantImageGenerator(image)
        )
    apply_experiments(args.experiments)
    traced = bench_tracing() if os.environ.get("LIMNER_BENCH_TRACING") else None
    app = App(settings, providers=providers)
    port = await app.start()
    if app.http is not None:
        transport = type(app.http._transport)  # report what is really used
        print(
            f"shared HTTP client transport: {transport.__module__}.{transport.__name__}",
            file=sys.stderr,
            flush=True,
        )
    if app.metrics.address:
        print(f"metrics on http://{app.metrics.address}/metrics", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {port}", flush=True)
    await stop.wait()
    await app.stop(grace_s=1.0)
    if traced is not None:
        print(
            f"traces: {traced.spans} spans exported as {traced.bytes / 1e6:.1f} MB of OTLP",
            file=sys.stderr,
            flush=True,
        )


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
    parser.add_argument(
        "--http-base-url",
        default="",
        help="HTTP mode: an openai provider at this URL (the fake of bench/_http_server.py) "
        f"and a model {HTTP_MODEL!r} on it",
    )
    parser.add_argument(
        "--http-model", default="gpt-image-1", help="HTTP mode: the provider model id"
    )
    parser.add_argument(
        "--http-transport",
        choices=("httpx", "aiohttp"),
        default="aiohttp",
        help="the http.transport setting: httpx's own transport (httpcore) or the httpx API "
        "over aiohttp (Limner's default)",
    )
    parser.add_argument(
        "--experiments",
        default="",
        help=f"comma-separated what-if switches (see apply_experiments): {', '.join(EXPERIMENTS)}",
    )
    args = parser.parse_args()
    args.experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    logs.configure("WARNING", "text")
    # Before the profiler starts: not part of serving (and not needed in HTTP mode).
    image = b"" if args.http_base_url else fixed_png()

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
