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
its normal renderer (unused). ``--http-transport aiohttp`` makes Limner's shared
``httpx.AsyncClient`` use ``httpx_aiohttp.AiohttpTransport`` (see ``use_aiohttp_transport``).

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from limner import logs
from limner.app import App
from limner.providers import Provider
from limner.providers.offline_render import render_image
from limner.testing.providers import InstantImageGenerator
from limner.testing.server import fast_settings

HTTP_PROVIDER = "oa"
HTTP_MODEL = "bench-http"


def fixed_png() -> bytes:
    return render_image("benchmark", seed=1, width=1024, height=1024)


@contextmanager
def use_aiohttp_transport() -> Iterator[None]:
    """While active, ``httpx.AsyncClient(...)`` (as called in ``App.start``) builds a client
    whose transport is ``httpx_aiohttp.AiohttpTransport`` with the same ``limits``.

    This emulates the proposed ``LIMNER_HTTP__TRANSPORT=aiohttp`` setting without editing
    ``src/``: the API Limner uses (``httpx.AsyncClient``, ``build_request``, ``send``,
    ``aread``, ``json()``) stays the same; only the HTTP/1.1 implementation underneath
    (httpcore + h11 + anyio streams) is replaced by aiohttp's connector and parser.
    ``limner.app.httpx`` is the ``httpx`` module itself, so the class is swapped only for
    the duration of ``App.start`` (it creates the one shared client) and then restored.
    """
    from httpx_aiohttp import AiohttpTransport

    import limner.app

    original = limner.app.httpx.AsyncClient

    class AiohttpAsyncClient(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            limits = kwargs.get("limits") or httpx.Limits(
                max_connections=100, max_keepalive_connections=20
            )
            if kwargs.get("transport") is None:
                kwargs["transport"] = AiohttpTransport(limits=limits)
            super().__init__(*args, **kwargs)

    limner.app.httpx.AsyncClient = AiohttpAsyncClient  # type: ignore[misc]
    try:
        yield
    finally:
        limner.app.httpx.AsyncClient = original  # type: ignore[misc]


EXPERIMENTS = (
    "sniffio",
    "fast-json",
    "fast-b64",
    "read-gate",
    "result-gate",
    "local-body",
    "store-in-thread",
    "big-chunks",
    "no-fsync",
    "switch-interval",
)


def apply_experiments(names: list[str], read_gate: int) -> None:
    """What-if switches for the HTTP path, each emulating a proposed change to ``src/`` by
    monkeypatching it in this process (so its gain can be measured before it is made):

    - ``sniffio``: httpcore asks ``import sniffio`` on every lock/semaphore/event it sets
      up; sniffio is not installed (anyio >= 4.11 no longer pulls it in) and a failed
      import is not cached, so each one scans ``sys.path``. Emulates installing sniffio
      (or httpcore's pending fix) by caching the answer.
    - ``fast-json``: ``orjson.loads`` for provider answers instead of ``json.loads`` (needs
      orjson importable, e.g. ``PYTHONPATH``).
    - ``fast-b64``: ``pybase64.b64decode(..., validate=True)`` (SIMD) with the stdlib's
      lenient decoder as the fallback for input with whitespace (needs pybase64).
    - ``read-gate``: at most ``read_gate`` provider answers are read and parsed at once
      (a semaphore around ``aread()`` + JSON parse in ``ProviderHttp.json``); the others
      wait in the socket buffers instead of Limner's heap.
    - ``result-gate``: the same permit, but kept until the job's images are stored, so the
      decoded images waiting for their blob write count too (see ``_patch_provider_json``).
    - ``local-body``: the answer is read into a local and parsed from there, so its 2 MB are
      freed when the call returns instead of at the next cyclic garbage collection (an
      ``httpx.Response`` is in a reference cycle; see ``_patch_provider_json``).
    - ``store-in-thread``: ``AssetLibrary.store`` runs ``probe_image`` (PNG verify, SHA-256)
      and the blob write in one worker-thread hop instead of the probe on the event loop
      and then a second hop for the write, which hashes the bytes again.
    - ``big-chunks``: the aiohttp transport hands the body over in 1 MiB pieces, not 16 KiB.
    - ``no-fsync``: blob writes skip ``os.fsync`` (measures what the fsync costs a job;
      not a proposal as such, see bench/README.md).
    - ``switch-interval``: ``sys.setswitchinterval(0.001)`` instead of 5 ms.
    """
    unknown = set(names) - set(EXPERIMENTS)
    if unknown:
        raise SystemExit(f"unknown experiments: {sorted(unknown)} (known: {EXPERIMENTS})")
    if "sniffio" in names:
        import httpcore._synchronization as sync

        sync.current_async_library = lambda: "asyncio"
    if "fast-json" in names:
        import orjson  # type: ignore[import-not-found]

        import limner.providers.http as provider_http

        original_parse = provider_http.parse_json

        def parse_json(provider_id: str, response: httpx.Response) -> Any:
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                return original_parse(provider_id, response)

        provider_http.parse_json = parse_json
        provider_http._bench_loads = orjson.loads  # type: ignore[attr-defined]  (local-body)
    if "fast-b64" in names:
        import binascii

        import pybase64  # type: ignore[import-not-found]

        import limner.providers.openai
        import limner.providers.results as results

        original_decode = results.decode_base64

        def decode_base64(provider_id: str, value: str) -> bytes:
            if value.startswith("data:"):
                value = value.partition(",")[2]
            try:
                return bytes(pybase64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                return original_decode(provider_id, value)  # whitespace, missing padding

        results.decode_base64 = decode_base64
        limner.providers.openai.decode_base64 = decode_base64  # imported by name there
    gated = "read-gate" in names or "result-gate" in names
    if gated or "local-body" in names:
        _patch_provider_json(
            read_gate if gated else 0,
            whole_job="result-gate" in names,
            local_body="local-body" in names,
        )
    if "switch-interval" in names:
        # Threads holding the GIL (SQLAlchemy in the DB writer, Pillow's verify loop) keep
        # the event loop waiting up to the switch interval (5 ms by default).
        sys.setswitchinterval(0.001)
    if "big-chunks" in names:
        from httpx_aiohttp.transport import AiohttpResponseStream

        # The aiohttp transport hands httpx the body in pieces of at most 16 KiB (128
        # iterations through httpx's stream stack for a 2 MB answer); 1 MiB pieces.
        AiohttpResponseStream.CHUNK_SIZE = 1 << 20
    if "no-fsync" in names:
        import limner.assets.blobs as blobs_module

        class _NoFsync:
            def __getattr__(self, name: str) -> Any:
                return getattr(os, name)

            @staticmethod
            def fsync(fd: int) -> None:
                return None

        blobs_module.os = _NoFsync()  # type: ignore[assignment]
    if "store-in-thread" in names:
        _store_in_thread()
    if names:
        print(f"experiments on: {', '.join(names)}", file=sys.stderr, flush=True)


def _patch_provider_json(gate_slots: int, *, whole_job: bool, local_body: bool) -> None:
    """Replaces ``ProviderHttp.json`` (how the OpenAI adapter reads an image answer).

    ``gate_slots`` > 0: at most that many answers in Limner's memory at once; the others
    wait in the sockets' buffers (the kernel's). ``read-gate`` holds the permit around
    ``aread()`` + JSON parse; ``result-gate`` (``whole_job``) keeps it, in a context variable
    of the job's task, until ``ImageFeature.run`` returns, so the decoded image waiting for
    its blob write and asset row is covered too.

    ``local_body``: the body is read into a local ``bytes`` and parsed from there instead of
    ``response.aread()`` + ``response.json()``. An ``httpx.Response`` is in a reference
    cycle (``response.stream`` is a ``BoundAsyncStream`` holding the response), so the
    2 MB ``response.content`` is freed only by a cyclic garbage collection, not when the
    call returns; a local is freed at once.
    """
    import contextvars
    import json as json_module

    import limner.features.images as feature_images
    import limner.providers.http as provider_http
    from limner.errors import Unavailable
    from limner.providers.http import ProviderHttp

    gate = asyncio.Semaphore(gate_slots) if gate_slots > 0 else None
    held: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_result_permit")

    def parse_body(provider_id: str, body: bytes) -> Any:
        loads = getattr(provider_http, "_bench_loads", json_module.loads)  # fast-json
        try:
            return loads(body)
        except ValueError:  # JSONDecodeError, orjson's and UnicodeDecodeError included
            raise Unavailable(
                f"providers/{provider_id} answered with malformed JSON ({len(body)} bytes)",
                reason="PROVIDER_BAD_RESPONSE",
                metadata={"provider": provider_id},
            ) from None

    async def json(
        self: ProviderHttp, method: str, path: str, *, on_retry: Any = None, **kwargs: Any
    ) -> Any:
        async with self.stream(method, path, on_retry=on_retry, **kwargs) as response:
            if gate is not None and not held.get(False):
                await gate.acquire()
                held.set(True)
            try:
                if local_body:
                    body = b"".join([chunk async for chunk in response.aiter_bytes()])
                    return parse_body(self.provider_id, body)
                await response.aread()
                # Looked up at call time, so fast-json applies here too.
                return provider_http.parse_json(self.provider_id, response)
            finally:
                if gate is not None and not whole_job:
                    held.set(False)
                    gate.release()

    ProviderHttp.json = json  # type: ignore[method-assign]
    if gate is not None and whole_job:
        original_run = feature_images.ImageFeature.run

        async def run(self: Any, context: Any) -> Any:
            held.set(False)
            try:
                return await original_run(self, context)
            finally:
                if held.get(False):
                    held.set(False)
                    gate.release()

        feature_images.ImageFeature.run = run  # type: ignore[method-assign]


def _store_in_thread() -> None:
    """``AssetLibrary.store`` with the probe (PNG verify, SHA-256) and the blob write in one
    worker-thread hop, and the digest computed once (``BlobStore.put`` recomputes it)."""
    import contextlib
    import tempfile as tempfile_module

    import limner.assets.blobs as blobs_module
    import limner.features.assets as feature_assets
    from limner.assets import ImageRejected, probe_image
    from limner.domain.assets import Asset
    from limner.errors import FieldViolation, InvalidArgument

    def probe_and_write(blobs: Any, data: bytes, max_bytes: int, max_pixels: int) -> Any:
        info = probe_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
        target = blobs.path(info.sha256)
        # BlobStore._put_sync without its digest re-check: the digest was just computed
        # from these very bytes in this thread.
        with contextlib.suppress(FileNotFoundError):
            if target.stat().st_size == len(data):
                return info
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile_module.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with blobs_module.os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                blobs_module.os.fsync(tmp.fileno())  # no-fsync applies here too
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return info

    async def store(
        self: feature_assets.AssetLibrary,
        workspace_id: str,
        data: bytes,
        provenance: Any,
        *,
        display_name: str = "",
        field: str = "content",
    ) -> tuple[Asset, bool]:
        # A copy of AssetLibrary.store around probe_and_write.
        try:
            info = await asyncio.to_thread(
                probe_and_write, self.blobs, data, self.max_image_bytes, self.max_image_pixels
            )
        except ImageRejected as rejected:
            raise InvalidArgument(
                f"{field}: {rejected.message}",
                reason="IMAGE_REJECTED",
                metadata={"field": field, "rejection": rejected.reason},
                field_violations=(FieldViolation(field, rejected.message, rejected.reason),),
            ) from None
        asset = Asset(
            sha256=info.sha256,
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            size_bytes=info.size_bytes,
            provenance=provenance,
            create_time=feature_assets.datetime.now(feature_assets.UTC),
            display_name=display_name,
        )
        return await self.repository.add(asset, workspace_id)

    feature_assets.AssetLibrary.store = store  # type: ignore[method-assign]


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
        **(http_sections(args) if http_mode else {}),
    )
    providers = {}
    if not http_mode:
        providers["offline"] = Provider(
            id="offline", kind="offline", images=InstantImageGenerator(image)
        )
    apply_experiments(args.experiments, args.read_gate)
    app = App(settings, providers=providers)
    if args.http_transport == "aiohttp":
        with use_aiohttp_transport():
            port = await app.start()
    else:
        port = await app.start()
    if app.http is not None:
        transport = type(app.http._transport)  # report what is really used
        print(
            f"shared HTTP client transport: {transport.__module__}.{transport.__name__}",
            file=sys.stderr,
            flush=True,
        )
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
        default="httpx",
        help="transport of Limner's shared httpx.AsyncClient: httpx's own (httpcore) or "
        "httpx_aiohttp.AiohttpTransport",
    )
    parser.add_argument(
        "--experiments",
        default="",
        help=f"comma-separated what-if switches (see apply_experiments): {', '.join(EXPERIMENTS)}",
    )
    parser.add_argument(
        "--read-gate", type=int, default=8, help="read-gate/result-gate: answers at once"
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
