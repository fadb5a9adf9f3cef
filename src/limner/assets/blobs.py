"""Content-addressed blob store on the local filesystem.

Blobs are named by the SHA-256 of their bytes, which makes writes idempotent
(the same content always lands at the same path) and lets identical images be
stored once. All disk I/O runs in worker threads so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import BinaryIO, Final

# Exactly 64 lowercase hex chars: anything else (dots, slashes, uppercase) is
# refused so a crafted name can never resolve outside the store root.
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


class BlobMissing(Exception):
    """Raised when reading a blob that is not in the store."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob {sha256} is not in the store")
        self.sha256 = sha256


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or _SHA256_RE.fullmatch(sha256) is None:
        raise ValueError("blob name must be 64 lowercase hex characters (a SHA-256 digest)")
    return sha256


class BlobStore:
    """Stores blobs at ``root / sha[:2] / sha[2:]``.

    The two-character fan-out keeps directories small enough for fast lookups
    even with millions of blobs.
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def path(self, sha256: str) -> Path:
        """Where the blob lives (whether or not it exists); validates the name."""
        sha = _check_sha(sha256)
        return self._root / sha[:2] / sha[2:]

    async def check(self) -> None:
        """Raises unless the store's directory is there and takes a write (a small file,
        written and removed). The directory is never created here: one that vanished (an
        unmounted volume) must show, not be silently made anew on another disk."""
        await asyncio.to_thread(self._check_sync)

    def _check_sync(self) -> None:
        if not self._root.is_dir():
            raise FileNotFoundError(f"the asset store {self._root} is not a directory")
        fd, name = tempfile.mkstemp(dir=self._root, prefix=".health-", suffix=".part")
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(name)

    def exists(self, sha256: str) -> bool:
        # A single stat() is cheap enough to do on the loop.
        return self.path(sha256).is_file()

    async def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` under ``sha256``; a no-op if it is already stored.

        The digest is re-checked in the worker thread: a mislabelled blob would
        silently corrupt every later reader that trusts the name.
        """
        target = self.path(sha256)
        await asyncio.to_thread(self._put_sync, sha256, target, data)

    def add_sync(self, data: bytes) -> str:
        """Store ``data`` under the SHA-256 it computes, and return that digest.

        Blocking (hashing and a durable write): for a worker thread, where the caller can
        do the rest of its CPU work on the same bytes in the same hop.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        self._write(self.path(sha256), data)
        return sha256

    @classmethod
    def _put_sync(cls, sha256: str, target: Path, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("data does not match its SHA-256 name")
        cls._write(target, data)

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):
            if target.stat().st_size == len(data):
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temp file in the same directory, then rename: os.replace is
        # atomic within a filesystem, so readers see either nothing or the whole
        # blob, never a partial write, and concurrent puts of the same blob are safe.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    async def read(self, sha256: str) -> bytes:
        """Return the whole blob; raises :class:`BlobMissing` if absent."""
        target = self.path(sha256)
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None

    async def read_chunks(self, sha256: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        """Yield the blob in chunks of at most ``chunk_size`` bytes.

        Typed as an AsyncGenerator (an AsyncIterator) so callers that stop early
        can ``aclose()`` it, e.g. via ``contextlib.aclosing``, to close the file.

        The file is opened once and each read runs in a worker thread, so large
        blobs can be streamed to a client without holding them in memory.
        Raises :class:`BlobMissing` (on first iteration) if the blob is absent.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        target = self.path(sha256)
        try:
            fh: BinaryIO = await asyncio.to_thread(target.open, "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        try:
            while True:
                chunk = await asyncio.to_thread(fh.read, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            # Closing a regular file is fast and cannot block meaningfully; doing it
            # inline also works when the generator is finalised during cancellation.
            fh.close()

    async def delete(self, sha256: str) -> None:
        """Remove the blob; deleting a missing blob is not an error."""
        target = self.path(sha256)
        await asyncio.to_thread(target.unlink, missing_ok=True)

    async def retire(self, sha256: str) -> Path | None:
        """Move the blob aside (atomically) to delete it once nothing needs it; ``None`` if
        it is not there. Undo with :meth:`restore`, finish with :meth:`discard`."""
        target = self.path(sha256)
        aside = target.with_name(f".gone-{target.name}-{uuid.uuid4().hex}")
        try:
            await asyncio.to_thread(os.replace, target, aside)
        except FileNotFoundError:
            return None
        return aside

    async def restore(self, aside: Path, sha256: str) -> None:
        # Whoever wrote the blob again meanwhile wrote the same bytes: replacing is safe.
        await asyncio.to_thread(os.replace, aside, self.path(sha256))

    async def discard(self, aside: Path) -> None:
        await asyncio.to_thread(aside.unlink, missing_ok=True)
