"""Generate an image with Limner and save it: the Python client's example, in both flavours.

    pip install ./clients/python            # or: pip install limner-client
    limner serve &                          # a server on 127.0.0.1:50051
    python clients/python/examples/generate.py "a lighthouse at dusk" lighthouse.png
    python clients/python/examples/generate.py --asyncio "a lighthouse at dusk" lighthouse.png

LIMNER_ADDR (default 127.0.0.1:50051) and LIMNER_API_KEY configure the connection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import grpc

from limner.client import aio, error_details, sync
from limner.v1 import image_service_pb2, job_pb2


def describe(event: job_pb2.JobEvent) -> str | None:
    kind = event.WhichOneof("event")
    if kind == "progress" and event.progress.total_steps:
        return f"step {event.progress.step}/{event.progress.total_steps}"
    if kind in ("completed", "failed", "cancelled"):
        return str(kind)
    return None


def run_sync(address: str, api_key: str, prompt: str, out: Path) -> int:
    with sync.connect(address, api_key=api_key) as client:
        request = image_service_pb2.GenerateImageRequest(prompt=prompt)
        result = None
        for event in sync.generate_image(client, request):
            if line := describe(event):
                print(f"{event.job}: {line}", file=sys.stderr)
            if event.HasField("completed"):
                result = event.completed
        if result is None or not result.images:
            return 1
        written = sync.download_asset(client, result.images[0].asset, out)
    print(f"{out} ({written} bytes)")
    return 0


async def run_asyncio(address: str, api_key: str, prompt: str, out: Path) -> int:
    async with aio.connect(address, api_key=api_key) as client:
        request = image_service_pb2.GenerateImageRequest(prompt=prompt)
        result = None
        async for event in aio.generate_image(client, request):
            if line := describe(event):
                print(f"{event.job}: {line}", file=sys.stderr)
            if event.HasField("completed"):
                result = event.completed
        if result is None or not result.images:
            return 1
        written = await aio.download_asset(client, result.images[0].asset, out)
    print(f"{out} ({written} bytes)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt")
    parser.add_argument("output", type=Path)
    parser.add_argument("--asyncio", action="store_true", help="use limner.client.aio")
    args = parser.parse_args()
    address = os.environ.get("LIMNER_ADDR", "127.0.0.1:50051")
    api_key = os.environ.get("LIMNER_API_KEY", "")
    try:
        if args.asyncio:
            return asyncio.run(run_asyncio(address, api_key, args.prompt, args.output))
        return run_sync(address, api_key, args.prompt, args.output)
    except grpc.RpcError as error:
        info = error_details(error).error_info
        reason = f" [{info.reason}]" if info is not None else ""
        print(f"error: {error.code().name}{reason}: {error.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
