"""Copy the few googleapis protos Limner imports out of the installed wheel.

The Buf Schema Registry is unreachable from our machines, so the protos come from the
pinned ``googleapis-common-protos`` wheel, which ships the ``.proto`` sources next to its
generated modules. ``third_party/googleapis`` is only ever written by this script.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import google.api
import google.rpc

VENDORED = (
    "google/api/field_behavior.proto",
    "google/api/resource.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
)


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "third_party" / "googleapis"
    sources = {
        "google/api": Path(next(iter(google.api.__path__))),
        "google/rpc": Path(next(iter(google.rpc.__path__))),
    }
    if root.exists():
        shutil.rmtree(root)
    for relative in VENDORED:
        package, filename = relative.rsplit("/", 1)
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[package] / filename, target)
    print(f"vendored {len(VENDORED)} protos into {root}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
