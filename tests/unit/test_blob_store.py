"""Tests for limner.assets.blobs.BlobStore."""

from __future__ import annotations

import hashlib
import os
from contextlib import aclosing
from pathlib import Path

import pytest

from limner.assets.blobs import BlobMissing, BlobStore

DATA = b"limner blob " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


async def test_put_then_read(store: BlobStore, tmp_path: Path) -> None:
    assert not store.exists(SHA)
    await store.put(SHA, DATA)
    assert store.exists(SHA)
    assert store.path(SHA) == tmp_path / "blobs" / SHA[:2] / SHA[2:]
    assert await store.read(SHA) == DATA
    # No temp files left behind next to the blob.
    assert os.listdir(store.path(SHA).parent) == [SHA[2:]]


async def test_put_is_idempotent(store: BlobStore) -> None:
    await store.put(SHA, DATA)
    mtime = store.path(SHA).stat().st_mtime_ns
    await store.put(SHA, DATA)
    assert store.path(SHA).stat().st_mtime_ns == mtime  # skipped, not rewritten
    assert await store.read(SHA) == DATA


async def test_put_repairs_wrong_size_file(store: BlobStore) -> None:
    store.path(SHA).parent.mkdir(parents=True)
    store.path(SHA).write_bytes(DATA[:10])
    await store.put(SHA, DATA)
    assert await store.read(SHA) == DATA


async def test_put_rejects_mismatched_digest(store: BlobStore) -> None:
    with pytest.raises(ValueError):
        await store.put(SHA, DATA + b"x")
    assert not store.exists(SHA)


async def test_read_chunks(store: BlobStore) -> None:
    await store.put(SHA, DATA)
    chunks = [chunk async for chunk in store.read_chunks(SHA, 5000)]
    assert [len(c) for c in chunks] == [5000, 5000, 2000]
    assert b"".join(chunks) == DATA


async def test_read_chunks_early_close(store: BlobStore) -> None:
    await store.put(SHA, DATA)
    async with aclosing(store.read_chunks(SHA, 100)) as chunks:
        async for chunk in chunks:
            assert chunk == DATA[:100]
            break


async def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(BlobMissing):
        await store.read(SHA)
    with pytest.raises(BlobMissing):
        async for _ in store.read_chunks(SHA, 1024):
            pass


async def test_delete(store: BlobStore) -> None:
    await store.put(SHA, DATA)
    await store.delete(SHA)
    assert not store.exists(SHA)
    await store.delete(SHA)  # deleting again is fine
    with pytest.raises(BlobMissing):
        await store.read(SHA)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../" + "a" * 61,
        SHA.upper(),
        SHA[:-1],
        SHA + "0",
        "/" + SHA[1:],
        "g" * 64,
        SHA[:32] + "/" + SHA[33:],
    ],
)
async def test_bad_names_rejected(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.path(name)
    with pytest.raises(ValueError):
        store.exists(name)
    with pytest.raises(ValueError):
        await store.put(name, DATA)
    with pytest.raises(ValueError):
        await store.read(name)
    with pytest.raises(ValueError):
        await store.delete(name)
    with pytest.raises(ValueError):
        async for _ in store.read_chunks(name, 10):
            pass


def test_add_sync_names_the_blob_by_its_digest(store: BlobStore) -> None:
    assert store.add_sync(DATA) == SHA
    assert store.path(SHA).read_bytes() == DATA
    assert store.add_sync(DATA) == SHA  # idempotent
    assert os.listdir(store.path(SHA).parent) == [SHA[2:]]


async def test_retire_then_restore_or_discard(store: BlobStore) -> None:
    await store.put(SHA, DATA)
    aside = await store.retire(SHA)
    assert aside is not None and not store.exists(SHA)
    await store.restore(aside, SHA)
    assert await store.read(SHA) == DATA
    aside = await store.retire(SHA)
    assert aside is not None
    await store.discard(aside)
    assert not store.exists(SHA) and os.listdir(store.path(SHA).parent) == []
    assert await store.retire(SHA) is None  # nothing to move
