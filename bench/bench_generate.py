"""End-to-end benchmark of ImageService.GenerateImage against a bare grpc.aio ceiling.

    .venv/bin/python bench/bench_generate.py [--requests N] [--concurrency-high 32]
        [--database-url URL] [--json out.json] [--profile out.prof]

1. Limner: ``bench/_server.py`` runs the real ``App`` in its own process, with the offline
   provider replaced by an instant generator that returns one fixed 1024x1024 PNG. The
   client (grpc.aio, one stdlib event loop, this process) calls GenerateImage and reads the
   stream until the ``completed`` event:
     - latency p50/p99 at concurrency 1 (``--sequential`` calls after ``--warmup``),
     - jobs/s and p50/p99 at ``--concurrency-high`` concurrent streams (``--requests``),
     - peak server RSS (VmHWM of the server process) and server CPU per job.
2. Ceiling: ``bench/_bare_server.py``, a bare grpc.aio server streaming the same number
   of messages per call (and the same mean message size) as Limner sent at c=1,
   measured the same way.
3. Ratios and targets (p50 <= 10 ms at c=1, >= 200 jobs/s at high concurrency, peak
   server RSS <= 250 MB), each marked PASS/FAIL.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import pstats
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from limner.v1 import image_service_pb2, image_service_pb2_grpc

BENCH_DIR = Path(__file__).resolve().parent
BARE_METHOD = "/bench.Bare/Stream"
PROMPT = "a lighthouse on a cliff at dusk, watercolour"
SIZE = 1024

TARGET_P50_MS = 10.0
TARGET_JOBS_PER_S = 200.0
TARGET_RSS_MB = 250.0

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- server processes ----------------------------------------------------------------------


class ServerProcess:
    """A benchmark server in its own process; it prints ``PORT <n>`` when ready."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115  (kept open for the child)
            prefix=f"limner-bench-{name}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self.port = self._read_port(timeout_s=60.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _read_port(self, timeout_s: float) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("PORT "):
                    return int(line.split()[1])
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"{self.name} server did not start; its log:\n{tail}")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def thread_cpu_s(self) -> dict[str, float]:
        """CPU seconds per thread group: the event-loop (main) thread, and the others by
        name (aiosqlite worker threads show as the process name, e.g. ``python``)."""
        groups: dict[str, float] = collections.defaultdict(float)
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                stat = (task / "stat").read_text()
                comm = (task / "comm").read_text().strip()
            except OSError:
                continue  # the thread ended
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            name = "event loop (main thread)" if int(task.name) == self.pid else f"{comm} threads"
            groups[name] += cpu
        return dict(groups)

    def memory_mb(self) -> dict[str, float]:
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
        return values

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.proc.returncode in (0, -signal.SIGTERM):
            Path(self.log.name).unlink(missing_ok=True)
        else:
            print(f"  {self.name} server log kept at {self.log.name}", file=sys.stderr)
        return self.proc.returncode


# -- measurement ---------------------------------------------------------------------------


class CallFailed(Exception):
    pass


@dataclass
class CallResult:
    latency_s: float
    events: int
    bytes: int = 0
    kinds: tuple[str, ...] = ()


@dataclass
class Phase:
    calls: int
    concurrency: int
    wall_s: float
    latencies_ms: list[float]
    errors: int
    events_per_call: float
    server_cpu_s: float
    client_cpu_s: float
    first_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def pct(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        k = (len(data) - 1) * p / 100
        lo, hi = int(k), min(int(k) + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (k - lo)

    @property
    def per_s(self) -> float:
        ok = self.calls - self.errors
        return ok / self.wall_s if self.wall_s else 0.0

    def summary(self) -> dict[str, Any]:
        ok = max(self.calls - self.errors, 1)
        return {
            "calls": self.calls,
            "concurrency": self.concurrency,
            "errors": self.errors,
            "first_error": self.first_error,
            "wall_s": round(self.wall_s, 3),
            "per_s": round(self.per_s, 1),
            "p50_ms": round(self.pct(50), 3),
            "p90_ms": round(self.pct(90), 3),
            "p99_ms": round(self.pct(99), 3),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 3),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else None,
            "events_per_call": round(self.events_per_call, 2),
            "server_cpu_ms_per_call": round(1000 * self.server_cpu_s / ok, 3),
            "client_cpu_ms_per_call": round(1000 * self.client_cpu_s / ok, 3),
            "server_cpu_util": round(self.server_cpu_s / self.wall_s, 2) if self.wall_s else None,
            **self.extra,
        }


async def run_phase(
    call: Any,
    server: ServerProcess,
    calls: int,
    concurrency: int,
    *,
    detail: bool = False,
    max_s: float = 0.0,
) -> Phase:
    """``calls`` calls from ``concurrency`` workers; with ``max_s``, no new call starts after
    that many seconds (the phase reports the calls it made)."""
    latencies: list[float] = []
    events = 0
    nbytes = 0
    errors = 0
    first_error = ""
    kinds: collections.Counter[tuple[str, ...]] = collections.Counter()
    remaining = calls
    started = 0
    deadline = time.perf_counter() + max_s if max_s else float("inf")

    async def worker() -> None:
        nonlocal remaining, events, nbytes, errors, first_error, started
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            started += 1
            try:
                result: CallResult = await call(detail)
            except (CallFailed, grpc.RpcError) as exc:
                errors += 1
                first_error = first_error or repr(exc)[:300]
                continue
            latencies.append(result.latency_s * 1000)
            events += result.events
            nbytes += result.bytes
            if detail:
                kinds[result.kinds] += 1

    threads0 = server.thread_cpu_s()
    cpu0, client0, t0 = server.cpu_s(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    server_cpu, client_cpu = server.cpu_s() - cpu0, time.process_time() - client0
    threads1 = server.thread_cpu_s()
    calls = started
    ok = max(calls - errors, 1)
    extra: dict[str, Any] = {
        "server_thread_cpu_ms_per_call": {
            name: round(1000 * (cpu - threads0.get(name, 0.0)) / ok, 3)
            for name, cpu in sorted(threads1.items(), key=lambda kv: -kv[1])
            if cpu - threads0.get(name, 0.0) > 0
        },
        "stopped_by_time_limit": remaining > 0,
    }
    if detail and kinds:
        common, count = kinds.most_common(1)[0]
        extra["event_kinds"] = list(common)
        extra["event_kinds_share"] = round(count / ok, 3)
        extra["mean_message_bytes"] = round(nbytes / max(events, 1), 1)
    return Phase(
        calls=calls,
        concurrency=concurrency,
        wall_s=wall,
        latencies_ms=latencies,
        errors=errors,
        events_per_call=events / ok,
        server_cpu_s=server_cpu,
        client_cpu_s=client_cpu,
        first_error=first_error,
        extra=extra,
    )


def limner_caller(channels: list[grpc.aio.Channel], model: str = "") -> Any:
    """GenerateImage, round-robin over ``channels``, timed to the ``completed`` event
    (also bench_http.py's caller, which names its HTTP model)."""
    stubs = [image_service_pb2_grpc.ImageServiceStub(c) for c in channels]
    counter = 0

    async def call(detail: bool) -> CallResult:
        nonlocal counter
        stub = stubs[counter % len(stubs)]
        counter += 1
        request = image_service_pb2.GenerateImageRequest(
            prompt=PROMPT,
            model=model,
            options=image_service_pb2.ImageOptions(width=SIZE, height=SIZE),
            request_id=str(uuid.uuid4()),
        )
        t0 = time.perf_counter()
        done = None
        events = 0
        nbytes = 0
        kinds: list[str] = []
        async for response in stub.GenerateImage(request):
            events += 1
            kind = response.event.WhichOneof("event")
            if detail:
                nbytes += response.ByteSize()
                kinds.append(kind or "?")
            if kind == "completed":
                done = time.perf_counter()
            elif kind in ("failed", "cancelled"):
                raise CallFailed(f"job ended {kind}: {response.event}")
        if done is None:
            raise CallFailed("stream ended without a completed event")
        return CallResult(done - t0, events, nbytes, tuple(kinds))

    return call


def bare_caller(channels: list[grpc.aio.Channel]) -> Any:
    methods = [
        c.unary_stream(BARE_METHOD, request_serializer=None, response_deserializer=None)
        for c in channels
    ]
    counter = 0

    async def call(detail: bool) -> CallResult:
        nonlocal counter
        method = methods[counter % len(methods)]
        counter += 1
        t0 = time.perf_counter()
        events = 0
        nbytes = 0
        async for message in method(PROMPT.encode()):
            events += 1
            nbytes += len(message)
        return CallResult(time.perf_counter() - t0, events, nbytes, ("raw",) * events)

    return call


async def measure(
    name: str, server: ServerProcess, make_caller: Any, args: argparse.Namespace
) -> dict[str, Any]:
    channels = [grpc.aio.insecure_channel(server.address) for _ in range(args.channels)]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        call = make_caller(channels)
        print(f"  [{name}] warm-up {args.warmup} ...", file=sys.stderr, flush=True)
        warm = await run_phase(call, server, args.warmup, 1)
        if warm.errors:
            raise RuntimeError(f"{name}: warm-up calls failed: {warm.first_error}")
        print(f"  [{name}] c=1 x {args.sequential} ...", file=sys.stderr, flush=True)
        c1 = await run_phase(call, server, args.sequential, 1, detail=True, max_s=args.max_phase_s)
        high = args.concurrency_high
        print(f"  [{name}] c={high} x {args.requests} ...", file=sys.stderr, flush=True)
        if args.requests > 0:
            ch = await run_phase(call, server, args.requests, high, max_s=args.max_phase_s)
        else:
            ch = None
        memory = server.memory_mb()
    finally:
        for channel in channels:
            await channel.close()
    return {
        "c1": c1.summary(),
        "high": ch.summary() if ch is not None else {},
        "rss_peak_mb": round(memory.get("VmHWM", float("nan")), 1),
        "rss_end_mb": round(memory.get("VmRSS", float("nan")), 1),
    }


# -- PostgreSQL: a fresh database per run --------------------------------------------------


async def create_fresh_database(url: str) -> tuple[str, str | None]:
    """Returns (url to use, database to drop afterwards or None)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return url, None
    import asyncpg  # type: ignore[import-untyped]

    name = f"limner_bench_{os.getpid()}_{int(time.time())}"
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
    except Exception as exc:  # no CREATEDB right, or server unreachable
        print(
            f"  note: could not create a fresh database ({exc!r}); using {parsed.database!r} "
            "as given (the benchmark's jobs and assets stay in it)",
            file=sys.stderr,
        )
        return url, None
    fresh = parsed.set(database=name).render_as_string(hide_password=False)
    print(f"  created fresh database {name}", file=sys.stderr)
    return fresh, name


async def drop_database(url: str, name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- report --------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}{unit}"


def print_report(results: dict[str, Any]) -> None:
    limner = results.get("limner")
    bare = results.get("bare")
    high = results["config"]["concurrency_high"]

    def row(
        label: str, key: tuple[str, ...], unit: str, digits: int = 2, ratio: str = "x"
    ) -> list[str]:
        def get(r: dict[str, Any] | None) -> float | None:
            if r is None:
                return None
            value: Any = r
            for k in key:
                value = value.get(k) if isinstance(value, dict) else None
            return float(value) if isinstance(value, int | float) else None

        lv, bv = get(limner), get(bare)
        rat = "-"
        if lv and bv and ratio != "none":
            rat = f"{(lv / bv if ratio == 'x' else bv / lv):.1f}x"
        return [label, _fmt(lv, unit, digits), _fmt(bv, unit, digits), rat]

    rows = [
        row("c=1   calls measured", ("c1", "calls"), "", 0, ratio="none"),
        row("c=1   p50 latency", ("c1", "p50_ms"), " ms"),
        row("c=1   p90 latency", ("c1", "p90_ms"), " ms"),
        row("c=1   p99 latency", ("c1", "p99_ms"), " ms"),
        row("c=1   server CPU / call", ("c1", "server_cpu_ms_per_call"), " ms"),
        row(f"c={high:<3} calls measured", ("high", "calls"), "", 0, ratio="none"),
        row(f"c={high:<3} throughput", ("high", "per_s"), " /s", 1, ratio="inv"),
        row(f"c={high:<3} p50 latency", ("high", "p50_ms"), " ms"),
        row(f"c={high:<3} p99 latency", ("high", "p99_ms"), " ms"),
        row(f"c={high:<3} server CPU / call", ("high", "server_cpu_ms_per_call"), " ms"),
        row(f"c={high:<3} server CPU use", ("high", "server_cpu_util"), " cores", ratio="none"),
        row(f"c={high:<3} client CPU / call", ("high", "client_cpu_ms_per_call"), " ms"),
        row("streamed messages / call (c=1)", ("c1", "events_per_call"), "", 1),
        row(f"streamed messages / call (c={high})", ("high", "events_per_call"), "", 1),
        row("peak server RSS (VmHWM)", ("rss_peak_mb",), " MB", 1),
    ]
    header = ["metric", "Limner", "bare grpc.aio", "Limner worse by"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print()
    sampler = results["config"].get("tracing")
    traced = f", traced: sampler {sampler}, OTLP-encoded" if sampler else ""
    print(f"GenerateImage benchmark ({results['config']['database']}{traced})")
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(line)
    if limner:
        kinds = limner["c1"].get("event_kinds")
        if kinds:
            print(f"Limner stream at c=1: {' > '.join(kinds)}")
        for phase in ("c1", "high"):
            if limner[phase].get("errors"):
                print(
                    f"!! Limner {phase}: {limner[phase]['errors']} failed calls, first: "
                    f"{limner[phase]['first_error']}"
                )
        for phase, label in (("c1", "c=1"), ("high", f"c={high}")):
            threads = limner[phase].get("server_thread_cpu_ms_per_call", {})
            if threads:
                parts = ", ".join(f"{n} {v:.2f} ms" for n, v in threads.items())
                print(f"Limner server CPU per call at {label}, by thread: {parts}")
            if limner[phase].get("stopped_by_time_limit"):
                print(
                    f"(Limner {label}: stopped by --max-phase-s after "
                    f"{limner[phase]['calls']} calls)"
                )
        print(
            "Note: every job returns the same PNG bytes, which the content-addressed asset store "
            "dedupes (the blob is written once)."
        )
        print()
        print("targets")
        for target in results["targets"]:
            print(
                f"  {target['name']:<34} {target['value']:>9.2f} {target['unit']:<6} "
                f"target {target['op']} {target['target']:g}  {target['result']}"
            )
    if results.get("profile"):
        print()
        print(results["profile"]["text"])


def targets(limner: dict[str, Any], high: int) -> list[dict[str, Any]]:
    checks = [
        ("p50 latency at c=1", limner["c1"]["p50_ms"], "ms", "<=", TARGET_P50_MS),
        (f"throughput at c={high}", limner["high"].get("per_s"), "jobs/s", ">=", TARGET_JOBS_PER_S),
        ("peak server RSS", limner["rss_peak_mb"], "MB", "<=", TARGET_RSS_MB),
    ]
    out = []
    for name, value, unit, op, target in checks:
        if value is None:
            continue
        ok = value <= target if op == "<=" else value >= target
        out.append(
            {
                "name": name,
                "value": value,
                "unit": unit,
                "op": op,
                "target": target,
                "result": "PASS" if ok else "FAIL",
            }
        )
    failed = limner["high"].get("errors", 0) + limner["c1"]["errors"]
    if failed:
        out.append(
            {
                "name": "failed calls",
                "value": float(failed),
                "unit": "",
                "op": "<=",
                "target": 0,
                "result": "FAIL",
            }
        )
    return out


def _package(filename: str) -> str:
    """Groups a profiled function's file into a package, for the own-time breakdown."""
    if filename.startswith(("~", "<")):
        return "builtins / C calls"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "limner" in parts:
        index = len(parts) - 1 - parts[::-1].index("limner")
        sub = parts[index + 1] if index + 2 < len(parts) else Path(parts[-1]).stem
        return f"limner.{Path(sub).stem}"
    return f"stdlib {Path(filename).stem}"


def profile_text(path: str, top: int) -> str:
    import io

    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    by_package: dict[str, float] = collections.defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename)] += tt
    out.write(f"server profile ({path}), event-loop thread, {total:.2f} s profiled\n")
    out.write("own time by package (excludes the idle epoll wait only where noted):\n")
    for name, tt in sorted(by_package.items(), key=lambda kv: -kv[1])[:20]:
        out.write(f"  {name:<32} {tt:8.2f} s  {100 * tt / total:5.1f} %\n")
    stats.strip_dirs()
    out.write(f"\ntop {top} by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(top)
    out.write(f"top {top} by own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- main ----------------------------------------------------------------------------------


def tracing_sampler() -> str:
    """The sampler a --tracing server uses (always_on unless OTEL_TRACES_SAMPLER says)."""
    sampler = os.environ.get("OTEL_TRACES_SAMPLER") or "always_on"
    argument = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    return f"{sampler} {argument}" if argument else sampler


async def run(args: argparse.Namespace) -> dict[str, Any]:
    database_url = args.database_url
    drop: str | None = None
    if database_url and not args.no_fresh_db:
        database_url, drop = await create_fresh_database(database_url)
    results: dict[str, Any] = {
        "config": {
            "requests": args.requests,
            "sequential": args.sequential,
            "warmup": args.warmup,
            "concurrency_high": args.concurrency_high,
            "channels": args.channels,
            "provider_slots": args.provider_slots,
            "database": "PostgreSQL" if database_url.startswith("postgresql") else "SQLite",
            "profiled": bool(args.profile),
            "tracing": tracing_sampler() if args.tracing else "",
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "cpus": os.cpu_count(),
        }
    }
    try:
        if not args.skip_limner:
            argv = [str(BENCH_DIR / "_server.py"), "--provider-slots", str(args.provider_slots)]
            if database_url:
                argv += ["--database-url", database_url]
            env = {"LIMNER_BENCH_PROFILE": args.profile} if args.profile else {}
            if args.tracing:
                # Every call traced unless OTEL_TRACES_SAMPLER says otherwise (see
                # bench/_server.py: spans are encoded to OTLP, then dropped).
                env["LIMNER_BENCH_TRACING"] = "1"
                if not os.environ.get("OTEL_TRACES_SAMPLER"):
                    env["OTEL_TRACES_SAMPLER"] = "always_on"
            print("Limner server ...", file=sys.stderr, flush=True)
            server = ServerProcess("limner", argv, env)
            try:
                results["limner"] = await measure("limner", server, limner_caller, args)
            finally:
                code = server.stop()
                if code not in (0, None, -signal.SIGTERM):
                    print(f"  limner server exited {code}:\n{server.log_tail()}", file=sys.stderr)
            if args.profile:
                results["profile"] = {
                    "path": args.profile,
                    "text": profile_text(args.profile, args.profile_top),
                }
        if not args.skip_bare:
            messages = args.bare_messages
            payload = args.bare_payload_bytes
            if "limner" in results:
                messages = messages or round(results["limner"]["c1"]["events_per_call"])
                payload = payload or round(results["limner"]["c1"]["mean_message_bytes"])
            messages = messages or 6
            payload = payload or 150
            print(
                f"bare grpc.aio server ({messages} messages x {payload} B per call) ...",
                file=sys.stderr,
                flush=True,
            )
            argv = [
                str(BENCH_DIR / "_bare_server.py"),
                "--messages",
                str(messages),
                "--payload-bytes",
                str(payload),
            ]
            server = ServerProcess("bare", argv)
            try:
                results["bare"] = await measure("bare", server, bare_caller, args)
                results["bare"]["messages_per_call"] = messages
                results["bare"]["payload_bytes"] = payload
            finally:
                server.stop()
    finally:
        if drop:
            try:
                await drop_database(args.database_url, drop)
                print(f"  dropped database {drop}", file=sys.stderr)
            except Exception as exc:
                print(f"  note: could not drop database {drop}: {exc!r}", file=sys.stderr)
    if "limner" in results:
        results["targets"] = targets(results["limner"], args.concurrency_high)
    else:
        results["targets"] = []
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark ImageService.GenerateImage end to end against a bare grpc.aio "
        "ceiling."
    )
    parser.add_argument("--requests", type=int, default=2000, help="calls at high concurrency")
    parser.add_argument("--sequential", type=int, default=300, help="calls at concurrency 1")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up calls (not measured)")
    parser.add_argument("--concurrency-high", type=int, default=32)
    parser.add_argument(
        "--max-phase-s",
        type=float,
        default=45.0,
        help="a measured phase starts no new call after this many seconds (0: no limit), "
        "which keeps a slow server's run short; the table reports the calls made",
    )
    parser.add_argument("--channels", type=int, default=1, help="client channels (connections)")
    parser.add_argument(
        "--provider-slots",
        type=int,
        default=32,
        help=(
            "the provider's max concurrent jobs on the server. The in-process provider "
            "answers at once, so it gets as many slots as the client has streams and the "
            "figures measure Limner, not its per-provider queue (whose production default, "
            "4, suits real providers; pass --provider-slots 4 to measure with it)"
        ),
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="server database (default: SQLite in a temporary directory); for PostgreSQL a "
        "fresh database is created for the run and dropped after, when the role may",
    )
    parser.add_argument("--no-fresh-db", action="store_true", help="use --database-url as is")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="run the Limner server under cProfile, dump the stats to PATH and print the top "
        "functions (the figures of a profiled run are slower than normal)",
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="the Limner server traces every call (OpenTelemetry; OTEL_TRACES_SAMPLER, "
        "always_on unless set; spans are encoded to OTLP and dropped in-process)",
    )
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--skip-limner", action="store_true")
    parser.add_argument("--bare-messages", type=int, default=0, help="default: as Limner sent")
    parser.add_argument("--bare-payload-bytes", type=int, default=0, help="default: as Limner")
    args = parser.parse_args()

    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    started = time.perf_counter()
    results = asyncio.run(run(args))
    results["config"]["elapsed_s"] = round(time.perf_counter() - started, 1)
    print_report(results)
    print(f"\n(total {results['config']['elapsed_s']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    return 1 if any(t["result"] == "FAIL" for t in results["targets"]) else 0


if __name__ == "__main__":
    sys.exit(main())
