"""Ceiling server: a bare ``grpc.aio`` server with one generic unary-stream method.

Run by ``bench/bench_generate.py`` as a separate process. ``/bench.Bare/Stream`` answers
every call with ``--messages`` messages of ``--payload-bytes`` raw bytes each (no protobuf,
no interceptors, no database): what the same number of streamed messages costs in
grpc.aio on this machine, i.e. the best Limner could do. Prints ``PORT <n>`` on stdout once
it listens, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc

SERVICE = "bench.Bare"
METHOD = "Stream"


async def serve(messages: int, payload_bytes: int) -> None:
    payload = b"x" * payload_bytes

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(messages):
            yield payload

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            METHOD: grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {port}", flush=True)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--payload-bytes", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(serve(args.messages, args.payload_bytes))


if __name__ == "__main__":
    main()
