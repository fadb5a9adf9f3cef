"""End-to-end benchmark of GenerateImage over the HTTP path: Limner's OpenAI adapter against
the loopback OpenAI fake answering with a 1024x1024 PNG as ``b64_json`` (~2 MB of JSON).

    .venv/bin/python bench/bench_http.py [--transports httpx,aiohttp] [--json out.json]
        [--profile /tmp/limner-http.prof]

Three processes on 127.0.0.1: this client (grpc.aio), the Limner server
(``bench/_server.py --http-base-url ...``, a real ``openai`` provider and a model with
``--provider-slots`` = 256 concurrent jobs, so Limner's own queue does not cap the batch)
and the fake (``bench/_http_server.py``: noise PNG, each answer a few pixels different so
the content-addressed asset store really hashes, verifies and writes every result). For
each ``http.transport`` setting of Limner's shared ``httpx.AsyncClient`` (``httpx``: its
own transport; ``aiohttp``, the default: the same API over aiohttp), a fresh Limner server
is measured:

  - p50/p99 at concurrency 1 (fake answering at once),
  - jobs/s and p50/p99 at concurrency 16 (fake answering at once),
  - one batch of 256 jobs in flight with the fake answering after 2 s: wall time of the
    batch and the server's peak RSS (VmHWM, which covers the whole run of that server).

A "direct" reference first measures a plain aiohttp client calling the fake itself (read,
``orjson.loads``, ``pybase64.b64decode``): the floor on this machine. Targets: p50 <= 15 ms at c=1,
>= 120 jobs/s at c=16, the 256-job batch in <= 4 s, peak RSS <= 600 MB. Exit status 1
when a target is missed. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson
import pybase64

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import (  # a sibling of this script
    PROMPT,
    SIZE,
    CallFailed,
    CallResult,
    Phase,
    ServerProcess,
    create_fresh_database,
    drop_database,
    limner_caller,
    profile_text,
    run_phase,
)

BENCH_DIR = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODEL = "bench-http"  # as configured by bench/_server.py in HTTP mode

TARGET_P50_MS = 15.0
TARGET_JOBS_PER_S = 120.0
TARGET_BATCH_S = 4.0
TARGET_RSS_MB = 600.0
DISTURBED_CORES = 0.25  # other processes' CPU during a phase above which a warning is printed


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used (``/proc/stat``, every CPU)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class OtherLoad:
    """CPU used by processes other than this benchmark's three, in cores, over a span:
    the sign that another job on the machine disturbed the figures."""

    def __init__(self, *procs: ServerProcess) -> None:
        self.procs = list(dict.fromkeys(procs))
        self.t0 = time.perf_counter()
        self.busy0 = machine_busy_s()
        self.ours0 = self._ours()

    def _ours(self) -> float:
        return sum(p.cpu_s() for p in self.procs) + time.process_time()

    def cores(self) -> float:
        wall = time.perf_counter() - self.t0
        other = (machine_busy_s() - self.busy0) - (self._ours() - self.ours0)
        return round(max(other, 0.0) / wall, 2) if wall > 0 else 0.0


class Fake:
    """The fake's process plus its small control API (latency, counters)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.base_url = f"http://{server.address}"
        self.session = aiohttp.ClientSession()

    async def set_latency(self, seconds: float) -> None:
        async with self.session.put(
            f"{self.base_url}/_bench/latency", json={"latency_s": seconds}
        ) as response:
            response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        async with self.session.get(f"{self.base_url}/_bench/stats") as response:
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
            return result

    async def close(self) -> None:
        await self.session.close()


def direct_caller(session: aiohttp.ClientSession, base_url: str) -> Any:
    """A plain client doing the least Limner must: POST, read, parse, decode (with the
    same orjson and pybase64 Limner uses)."""
    body = {"model": "gpt-image-1", "prompt": PROMPT, "n": 1, "size": f"{SIZE}x{SIZE}"}

    async def call(detail: bool) -> CallResult:
        t0 = time.perf_counter()
        async with session.post(f"{base_url}/v1/images/generations", json=body) as response:
            raw = await response.read()
        if response.status != 200:
            raise CallFailed(f"HTTP {response.status}")
        data = pybase64.b64decode(orjson.loads(raw)["data"][0]["b64_json"], validate=True)
        if not data.startswith(b"\x89PNG"):
            raise CallFailed("not a PNG")
        return CallResult(time.perf_counter() - t0, 1, len(raw), ("direct",))

    return call


def _phase_summary(phase: Phase, fake_cpu_s: float, other: OtherLoad) -> dict[str, Any]:
    summary = phase.summary()
    ok = max(phase.calls - phase.errors, 1)
    summary["fake_cpu_ms_per_call"] = round(1000 * fake_cpu_s / ok, 3)
    summary["other_load_cores"] = other.cores()
    summary["loadavg_after"] = loadavg()
    return summary


async def measured(
    call: Any,
    server: ServerProcess,
    fake: ServerProcess,
    calls: int,
    concurrency: int,
    *,
    detail: bool = False,
    max_s: float = 0.0,
) -> dict[str, Any]:
    fake0, other = fake.cpu_s(), OtherLoad(server, fake)
    phase = await run_phase(call, server, calls, concurrency, detail=detail, max_s=max_s)
    return _phase_summary(phase, fake.cpu_s() - fake0, other)


async def batch(call: Any, server: ServerProcess, fake: ServerProcess, size: int) -> dict[str, Any]:
    """``size`` calls started at once; wall time until the last one completes."""
    fake0, server0, client0 = fake.cpu_s(), server.cpu_s(), time.process_time()
    other = OtherLoad(server, fake)
    rss_before = server.memory_mb()
    t0 = time.perf_counter()
    samples: list[tuple[float, float]] = []  # (s since start, VmRSS MB) every 50 ms

    async def sample_rss() -> None:
        while True:
            rss = server.memory_mb().get("VmRSS", float("nan"))
            samples.append((time.perf_counter() - t0, rss))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample_rss())
    try:
        results = await asyncio.gather(*(call(False) for _ in range(size)), return_exceptions=True)
    finally:
        sampler.cancel()
    wall = time.perf_counter() - t0
    peak_t, peak_rss = max(samples, key=lambda s: s[1]) if samples else (0.0, float("nan"))
    latencies = sorted(r.latency_s * 1000 for r in results if isinstance(r, CallResult))
    errors = [r for r in results if not isinstance(r, CallResult)]
    memory = server.memory_mb()
    ok = max(len(latencies), 1)

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, round((len(latencies) - 1) * p / 100))]

    return {
        "calls": size,
        "errors": len(errors),
        "first_error": repr(errors[0])[:300] if errors else "",
        "wall_s": round(wall, 3),
        "first_ms": round(latencies[0], 1) if latencies else None,
        "p50_ms": round(pct(50), 1),
        "p99_ms": round(pct(99), 1),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "server_cpu_ms_per_call": round(1000 * (server.cpu_s() - server0) / ok, 3),
        "fake_cpu_ms_per_call": round(1000 * (fake.cpu_s() - fake0) / ok, 3),
        "client_cpu_ms_per_call": round(1000 * (time.process_time() - client0) / ok, 3),
        "rss_before_mb": round(rss_before.get("VmRSS", float("nan")), 1),
        "rss_peak_mb": round(memory.get("VmHWM", float("nan")), 1),
        "rss_after_mb": round(memory.get("VmRSS", float("nan")), 1),
        "rss_batch_max_mb": round(peak_rss, 1),
        "rss_batch_max_at_s": round(peak_t, 2),
        "other_load_cores": other.cores(),
        "loadavg_after": loadavg(),
    }


async def measure_direct(fake: Fake, fake_proc: ServerProcess, args: argparse.Namespace) -> Any:
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        call = direct_caller(session, fake.base_url)
        await run_phase(call, fake_proc, 20, 1)
        print("  [direct] c=1 ...", file=sys.stderr, flush=True)
        c1 = await measured(call, fake_proc, fake_proc, args.direct_calls, 1, max_s=10)
        print(f"  [direct] c={args.concurrency} ...", file=sys.stderr, flush=True)
        ch = await measured(
            call, fake_proc, fake_proc, 4 * args.direct_calls, args.concurrency, max_s=10
        )
    for phase in (c1, ch):  # the "server" is the fake here
        phase.pop("server_thread_cpu_ms_per_call", None)
    return {"c1": c1, "high": ch}


async def measure_limner(
    transport: str, fake: Fake, fake_proc: ServerProcess, args: argparse.Namespace
) -> dict[str, Any]:
    argv = [
        str(BENCH_DIR / "_server.py"),
        "--http-base-url",
        fake.base_url,
        "--http-transport",
        transport,
        "--http-model",
        args.http_model,
        "--provider-slots",
        str(args.provider_slots),
    ]
    if args.experiments:
        argv += ["--experiments", args.experiments]
    if args.database_url:
        argv += ["--database-url", args.database_url]
    env = dict(e.split("=", 1) for e in args.server_env)
    if args.profile:
        env["LIMNER_BENCH_PROFILE"] = profile_path(args.profile, transport)
    print(f"Limner server, transport {transport} ...", file=sys.stderr, flush=True)
    server = ServerProcess(f"limner-{transport}", argv, env)
    channels = [grpc.aio.insecure_channel(server.address) for _ in range(args.channels)]
    result: dict[str, Any] = {"transport": transport}
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 10)
        call = limner_caller(channels, model=MODEL)
        await fake.set_latency(0.0)
        answers0 = (await fake.stats())["answers"]
        print(f"  [{transport}] warm-up {args.warmup} ...", file=sys.stderr, flush=True)
        warm = await run_phase(call, server, args.warmup, 1)
        if warm.errors:
            raise RuntimeError(f"{transport}: warm-up calls failed: {warm.first_error}")
        print(f"  [{transport}] c=1 x {args.sequential} ...", file=sys.stderr, flush=True)
        result["c1"] = await measured(
            call, server, fake_proc, args.sequential, 1, detail=True, max_s=args.max_phase_s
        )
        high = args.concurrency
        print(f"  [{transport}] c={high} x {args.requests} ...", file=sys.stderr, flush=True)
        result["high"] = await measured(
            call, server, fake_proc, args.requests, high, max_s=args.max_phase_s
        )
        if args.batch:
            await fake.set_latency(args.batch_latency_s)
            print(
                f"  [{transport}] batch of {args.batch}, fake latency {args.batch_latency_s:g} s",
                file=sys.stderr,
                flush=True,
            )
            result["batch"] = await batch(call, server, fake_proc, args.batch)
            await fake.set_latency(0.0)
        memory = server.memory_mb()
        result["rss_peak_mb"] = round(memory.get("VmHWM", float("nan")), 1)
        calls = sum(result[p]["calls"] for p in ("c1", "high")) + args.warmup + args.batch
        result["fake_answers"] = (await fake.stats())["answers"] - answers0
        result["jobs_started"] = calls
    finally:
        for channel in channels:
            await channel.close()
        code = server.stop()
        if code not in (0, None, -15):
            print(f"  limner server exited {code}:\n{server.log_tail()}", file=sys.stderr)
    if args.profile:
        path = profile_path(args.profile, transport)
        result["profile"] = {
            "path": path,
            "text": profile_text(path, args.profile_top),
            "categories": profile_categories(path),
        }
    return result


def profile_path(base: str, transport: str) -> str:
    path = Path(base)
    return str(path.with_name(f"{path.stem}.{transport}{path.suffix or '.prof'}"))


# Own time of the event-loop thread grouped by what the HTTP path does with a result.
# Matched against "file:function" of each profiled function (first match wins).
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("base64 decode", ("binascii.a2b_base64", "base64.py:b64decode", "pybase64")),
    (
        "JSON parse",
        (
            "raw_decode",
            "json/decoder.py",
            "json/__init__.py:loads",
            "'decode' of 'bytes'",
            "orjson",
        ),
    ),
    ("sha256", ("openssl_sha256", "hexdigest", "hashlib")),
    ("PNG verify/open (Pillow, zlib.crc32)", ("/PIL/", "zlib.crc32")),
    (
        "httpx default transport (httpcore, h11, anyio)",
        ("/httpcore/", "/h11/", "/anyio/", "getpeername", "select.poll"),
    ),
    (
        "failed 'import sniffio' per httpcore lock",
        ("importlib", "posix.stat", "_distutils_hack"),
    ),
    ("aiohttp transport", ("/aiohttp/", "/httpx_aiohttp/", "/multidict/", "/yarl/")),
    ("httpx API", ("/httpx/",)),
    ("socket recv/send (copies out of the kernel)", ("'recv' of", "'send' of")),
    ("bytes join / copies", ("method 'join' of 'bytes'", "bytearray")),
    ("gRPC (grpc.aio)", ("/grpc/", "cygrpc")),
    ("database (SQLAlchemy, aiosqlite)", ("/sqlalchemy/", "/aiosqlite/", "/sqlmodel/")),
    ("limner", ("/limner/",)),
    ("callback dispatch (asyncio, gRPC's Cython)", ("_contextvars.Context",)),
    ("event loop / selector (incl. idle wait)", ("select.epoll", "selectors.py", "asyncio/")),
    ("teardown (temporary data dir removal)", ("posix.unlink", "shutil.py")),
]


def profile_categories(path: str) -> dict[str, float]:
    stats = pstats.Stats(path)
    totals: dict[str, float] = collections.defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{filename}:{name}"
        for category, patterns in CATEGORIES:
            if any(p in key for p in patterns):
                totals[category] += tt
                break
        else:
            totals["other"] += tt
    total = sum(totals.values()) or 1.0
    return {k: round(100 * v / total, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


# -- report --------------------------------------------------------------------------------


def _get(result: dict[str, Any] | None, *keys: str) -> float | None:
    value: Any = result
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}{unit}"


def print_report(results: dict[str, Any]) -> None:
    limner: dict[str, dict[str, Any]] = results["limner"]
    direct = results.get("direct")
    high = results["config"]["concurrency"]
    batch_n = results["config"]["batch"]
    names = list(limner)
    rows: list[tuple[str, tuple[str, ...], str, int, str]] = [
        ("c=1   p50 latency", ("c1", "p50_ms"), " ms", 2, f"<= {TARGET_P50_MS:g} ms"),
        ("c=1   p99 latency", ("c1", "p99_ms"), " ms", 2, ""),
        ("c=1   server CPU / job", ("c1", "server_cpu_ms_per_call"), " ms", 2, ""),
        ("c=1   other processes' CPU", ("c1", "other_load_cores"), " cores", 2, "~0"),
        (f"c={high:<3} throughput", ("high", "per_s"), " jobs/s", 1, f">= {TARGET_JOBS_PER_S:g}"),
        (f"c={high:<3} p50 latency", ("high", "p50_ms"), " ms", 1, ""),
        (f"c={high:<3} p99 latency", ("high", "p99_ms"), " ms", 1, ""),
        (f"c={high:<3} server CPU / job", ("high", "server_cpu_ms_per_call"), " ms", 2, ""),
        (f"c={high:<3} server CPU use", ("high", "server_cpu_util"), " cores", 2, ""),
        (f"c={high:<3} fake CPU / job", ("high", "fake_cpu_ms_per_call"), " ms", 2, ""),
        (f"c={high:<3} client CPU / job", ("high", "client_cpu_ms_per_call"), " ms", 2, ""),
        (f"c={high:<3} other processes' CPU", ("high", "other_load_cores"), " cores", 2, "~0"),
        (f"batch {batch_n} wall time", ("batch", "wall_s"), " s", 2, f"<= {TARGET_BATCH_S:g} s"),
        (f"batch {batch_n} first done", ("batch", "first_ms"), " ms", 0, ""),
        (f"batch {batch_n} p50 latency", ("batch", "p50_ms"), " ms", 0, ""),
        (f"batch {batch_n} server CPU / job", ("batch", "server_cpu_ms_per_call"), " ms", 2, ""),
        (f"batch {batch_n} RSS max (sampled)", ("batch", "rss_batch_max_mb"), " MB", 0, ""),
        (f"batch {batch_n} RSS max at", ("batch", "rss_batch_max_at_s"), " s", 2, ""),
        (f"batch {batch_n} RSS after", ("batch", "rss_after_mb"), " MB", 0, ""),
        (f"batch {batch_n} other processes' CPU", ("batch", "other_load_cores"), " cores", 2, "~0"),
        ("peak server RSS (VmHWM)", ("rss_peak_mb",), " MB", 0, f"<= {TARGET_RSS_MB:g} MB"),
    ]
    header = ["metric", *names, "target"]
    if direct:
        header.insert(-1, "direct client")
    table = [header]
    for label, keys, unit, digits, target in rows:
        cells = [label, *(_fmt(_get(limner[n], *keys), unit, digits) for n in names)]
        if direct:
            value = _get(direct, *keys) if keys[0] in ("c1", "high") else None
            if keys[-1].startswith("server_cpu") or keys[-1] == "fake_cpu_ms_per_call":
                value = None  # the direct client's "server" is the fake itself
            cells.append(_fmt(value, unit, digits))
        cells.append(target)
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    cfg = results["config"]
    print()
    print(
        f"GenerateImage over HTTP (OpenAI fake, {cfg['png_bytes']} B PNG as "
        f"{cfg['json_bytes']} B of JSON, {cfg['database']})"
    )
    print(line)
    for index, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            print(line)
    print(line)
    for name in names:
        result = limner[name]
        kinds = result["c1"].get("event_kinds")
        if kinds:
            print(f"{name}: stream at c=1: {' > '.join(kinds)}")
        for phase in ("c1", "high", "batch"):
            other = result.get(phase, {}).get("other_load_cores") or 0.0
            if other > DISTURBED_CORES:
                print(
                    f"!! {name} {phase}: other processes used {other:.2f} cores meanwhile; "
                    "the figures are disturbed, rerun on a quiet machine"
                )
            if result.get(phase, {}).get("errors"):
                print(
                    f"!! {name} {phase}: {result[phase]['errors']} failed calls, first: "
                    f"{result[phase]['first_error']}"
                )
        for phase, label in (("c1", "c=1"), ("high", f"c={high}")):
            threads = result[phase].get("server_thread_cpu_ms_per_call", {})
            if threads:
                parts = ", ".join(f"{n} {v:.2f} ms" for n, v in threads.items())
                print(f"{name}: server CPU per job at {label}, by thread: {parts}")
            if result[phase].get("stopped_by_time_limit"):
                print(f"({name} {label}: stopped by --max-phase-s after {result[phase]['calls']})")
        if result.get("fake_answers") != result.get("jobs_started"):
            print(
                f"!! {name}: the fake answered {result.get('fake_answers')} image requests "
                f"for {result.get('jobs_started')} jobs (retries or failures)"
            )
    print(
        f"load average: start {cfg['loadavg_start']}, end {cfg['loadavg_end']} ({cfg['cpus']} CPUs)"
    )
    if cfg["experiments"]:
        print(f"experiments on the Limner servers: {cfg['experiments']}")
    if cfg["server_env"]:
        print(f"Limner server environment: {' '.join(cfg['server_env'])}")
    if cfg["profiled"]:
        print("profiled run: Limner's figures are slower than normal; use the proportions")
    print()
    print("targets")
    for target in results["targets"]:
        print(
            f"  {target['transport']:<8} {target['name']:<26} {target['value']:>9.2f} "
            f"{target['unit']:<7} target {target['op']} {target['target']:g}  {target['result']}"
        )
    for name in names:
        profile = limner[name].get("profile")
        if profile:
            print()
            print(f"== {name}: own time of the event-loop thread by category (% of profiled)")
            for category, share in profile["categories"].items():
                print(f"  {category:<40} {share:5.1f} %")
            print()
            print(profile["text"])


def targets(limner: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, result in limner.items():
        checks = [
            ("p50 latency at c=1", _get(result, "c1", "p50_ms"), "ms", "<=", TARGET_P50_MS),
            (
                "throughput at c=16",
                _get(result, "high", "per_s"),
                "jobs/s",
                ">=",
                TARGET_JOBS_PER_S,
            ),
            ("256-job batch wall time", _get(result, "batch", "wall_s"), "s", "<=", TARGET_BATCH_S),
            ("peak server RSS", _get(result, "rss_peak_mb"), "MB", "<=", TARGET_RSS_MB),
            (
                "failed calls",
                sum(float(result.get(p, {}).get("errors", 0)) for p in ("c1", "high", "batch")),
                "",
                "<=",
                0.0,
            ),
        ]
        for label, value, unit, op, target in checks:
            if value is None:
                continue
            ok = value <= target if op == "<=" else value >= target
            out.append(
                {
                    "transport": name,
                    "name": label,
                    "value": value,
                    "unit": unit,
                    "op": op,
                    "target": target,
                    "result": "PASS" if ok else "FAIL",
                }
            )
    return out


# -- main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "config": {
            "transports": args.transports,
            "warmup": args.warmup,
            "sequential": args.sequential,
            "requests": args.requests,
            "concurrency": args.concurrency,
            "batch": args.batch,
            "batch_latency_s": args.batch_latency_s,
            "provider_slots": args.provider_slots,
            "http_model": args.http_model,
            "experiments": args.experiments,
            "server_env": args.server_env,
            "database": "PostgreSQL" if args.database_url else "SQLite",
            "profiled": bool(args.profile),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": loadavg(),
        },
        "limner": {},
    }
    print("fake OpenAI server ...", file=sys.stderr, flush=True)
    fake_proc = ServerProcess("fake-openai", [str(BENCH_DIR / "_http_server.py")])
    fake = Fake(fake_proc)
    try:
        if not args.skip_direct:
            print("direct client -> fake ...", file=sys.stderr, flush=True)
            results["direct"] = await measure_direct(fake, fake_proc, args)
        for transport in args.transports:
            given_url, drop = args.database_url, None
            if given_url:  # a fresh database per server, as bench_generate.py does
                args.database_url, drop = await create_fresh_database(given_url)
            try:
                results["limner"][transport] = await measure_limner(
                    transport, fake, fake_proc, args
                )
            finally:
                if drop is not None:
                    await drop_database(given_url, drop)
                args.database_url = given_url
        stats = await fake.stats()
        results["config"]["png_bytes"] = stats["png_bytes"]
        results["config"]["json_bytes"] = stats["bytes_sent"] // max(stats["answers"], 1)
    finally:
        await fake.close()
        fake_proc.stop()
    results["config"]["loadavg_end"] = loadavg()
    results["targets"] = targets(results["limner"])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark GenerateImage end to end over HTTP against the OpenAI fake."
    )
    parser.add_argument(
        "--transports",
        default="httpx,aiohttp",
        help="comma-separated http.transport settings, each measured on a fresh server: "
        "httpx (httpcore) and/or aiohttp (the default: the httpx API over aiohttp)",
    )
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls (not measured)")
    parser.add_argument("--sequential", type=int, default=200, help="calls at concurrency 1")
    parser.add_argument("--requests", type=int, default=1200, help="calls at --concurrency")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--max-phase-s",
        type=float,
        default=20.0,
        help="a measured phase starts no new call after this many seconds (0: no limit)",
    )
    parser.add_argument("--batch", type=int, default=256, help="jobs in the batch (0: skip)")
    parser.add_argument("--batch-latency-s", type=float, default=2.0, help="fake's delay")
    parser.add_argument(
        "--provider-slots",
        type=int,
        default=256,
        help="the provider's max concurrent jobs on the server (so the batch is not queued)",
    )
    parser.add_argument("--http-model", default="gpt-image-1", help="provider model id")
    parser.add_argument("--channels", type=int, default=1, help="client channels (connections)")
    parser.add_argument(
        "--direct-calls", type=int, default=100, help="calls of the direct reference at c=1"
    )
    parser.add_argument("--skip-direct", action="store_true", help="no direct reference")
    parser.add_argument(
        "--experiments",
        default="",
        help="what-if switches passed to the server, each emulating a change to src/ "
        "(see bench/_server.py: apply_experiments): no-fsync, switch-interval",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable for the Limner servers (repeatable), e.g. "
        "MALLOC_MMAP_THRESHOLD_=131072",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL URL (a fresh database is created per server through it); "
        "default: SQLite in a temporary directory",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="run each Limner server under cProfile (PATH.<transport>.prof) and print where "
        "its event loop spends time (figures of a profiled run are slower than normal)",
    )
    parser.add_argument("--profile-top", type=int, default=25)
    args = parser.parse_args()
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    for transport in args.transports:
        if transport not in ("httpx", "aiohttp"):
            parser.error(f"unknown transport {transport!r}")
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
