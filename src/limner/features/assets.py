"""The asset library: validate, store once, describe, stream and delete images."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

from limner.assets import BlobStore, ImageHeader, ImageRejected, check_integrity, read_header
from limner.domain.assets import Asset, AssetDeletion, AssetSource, Provenance
from limner.domain.images import SourceImage
from limner.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PreconditionViolation,
)
from limner.observability import tracing

ASSET_NAME = re.compile(r"^assets/([0-9a-f]{64})$")


class AssetRepository(Protocol):
    async def add(self, asset: Asset, workspace_id: str) -> tuple[Asset, bool]: ...
    async def get(self, workspace_id: str, sha256: str) -> Asset | None: ...
    async def list_assets(
        self, workspace_id: str, *, source: AssetSource | None, page_size: int, page_token: str
    ) -> tuple[list[Asset], str]: ...
    async def delete(self, workspace_id: str, sha256: str) -> AssetDeletion: ...
    async def count(self, sha256: str) -> int: ...


def parse_asset_name(name: str, field: str) -> str:
    """``assets/{sha256}`` -> the digest, or INVALID_ARGUMENT naming ``field``."""
    match = ASSET_NAME.match(name)
    if match is None:
        raise InvalidArgument.field(
            field, f"{name!r} is not an asset name of the form assets/<64 lowercase hex digits>"
        )
    return match.group(1)


class AssetLibrary:
    def __init__(
        self,
        repository: AssetRepository,
        blobs: BlobStore,
        *,
        max_image_bytes: int,
        max_image_pixels: int,
    ) -> None:
        self.repository = repository
        self.blobs = blobs
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels

    async def store(
        self,
        workspace_id: str,
        data: bytes,
        provenance: Provenance,
        *,
        display_name: str = "",
        field: str = "content",
    ) -> tuple[Asset, bool]:
        """Validates ``data`` as an image and stores it once. Returns the asset and whether
        it is new to the workspace. Bad images are INVALID_ARGUMENT on ``field``."""
        attributes = {
            "limner.workspace": workspace_id,
            "limner.asset.source": provenance.source.value,
            "limner.asset.size_bytes": len(data),
        }
        with tracing.span("asset.store", attributes) as span:
            asset, new = await self._store(workspace_id, data, provenance, display_name, field)
            span.set_attribute("limner.asset.sha256", asset.sha256)
            span.set_attribute("limner.asset.mime_type", asset.mime_type)
            span.set_attribute("limner.asset.new", new)
            return asset, new

    async def _store(
        self, workspace_id: str, data: bytes, provenance: Provenance, display_name: str, field: str
    ) -> tuple[Asset, bool]:
        try:
            # The header checks are cheap and stay on the loop; the integrity check, the
            # digest and the durable write (~3 ms for a 1.5 MB PNG) share one thread hop.
            header = read_header(
                data, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
            )
            sha256 = await asyncio.to_thread(self._check_and_keep, data, header)
        except ImageRejected as rejected:
            raise InvalidArgument(
                f"{field}: {rejected.message}",
                reason="IMAGE_REJECTED",
                metadata={"field": field, "rejection": rejected.reason},
                field_violations=(FieldViolation(field, rejected.message, rejected.reason),),
            ) from None
        asset = Asset(
            sha256=sha256,
            mime_type=header.mime_type,
            width=header.width,
            height=header.height,
            size_bytes=header.size_bytes,
            provenance=provenance,
            create_time=datetime.now(UTC),
            display_name=display_name,
        )
        stored = await self.repository.add(asset, workspace_id)
        if not self.blobs.exists(sha256):
            # A DeleteAsset of the last other row removed the blob after this store found
            # it present: write it again, now that the new row protects it (see delete).
            await asyncio.to_thread(self.blobs.add_sync, data)
        return stored

    def _check_and_keep(self, data: bytes, header: ImageHeader) -> str:
        check_integrity(data, header)
        return self.blobs.add_sync(data)

    async def get(self, workspace_id: str, name: str, field: str = "name") -> Asset:
        sha256 = parse_asset_name(name, field)
        asset = await self.repository.get(workspace_id, sha256)
        if asset is None:
            raise NotFound(
                f"{name} not found in this workspace; upload it with UploadImage first",
                reason="ASSET_NOT_FOUND",
                metadata={"asset": name, "field": field},
            )
        return asset

    async def list_assets(
        self, workspace_id: str, *, source: AssetSource | None, page_size: int, page_token: str
    ) -> tuple[list[Asset], str]:
        return await self.repository.list_assets(
            workspace_id, source=source, page_size=page_size, page_token=page_token
        )

    async def read(
        self, workspace_id: str, name: str, chunk_bytes: int
    ) -> tuple[Asset, AsyncIterator[bytes]]:
        asset = await self.get(workspace_id, name)
        return asset, self.blobs.read_chunks(asset.sha256, chunk_bytes)

    async def load(self, workspace_id: str, name: str, field: str) -> SourceImage:
        """An asset's bytes for sending to a provider."""
        asset = await self.get(workspace_id, name, field)
        data = await self.blobs.read(asset.sha256)
        return SourceImage(
            asset=name,
            data=data,
            mime_type=asset.mime_type,
            width=asset.width,
            height=asset.height,
        )

    async def delete(self, workspace_id: str, name: str) -> None:
        """Deletes the workspace's asset; refused while an avatar, a reference image, a
        chat background or a message attachment shows it (nothing would be left to show)."""
        sha256 = parse_asset_name(name, "name")
        outcome = await self.repository.delete(workspace_id, sha256)
        if outcome.existed and not outcome.in_use and outcome.remaining == 0:
            await self._delete_blob(sha256)
        if not outcome.existed:
            raise NotFound(f"{name} not found", reason="ASSET_NOT_FOUND", metadata={"asset": name})
        if outcome.in_use:
            first = outcome.in_use[0]
            raise FailedPrecondition(
                f"{name} is in use ({first.role} of {first.resource}"
                + (f" and {len(outcome.in_use) - 1} more" if len(outcome.in_use) > 1 else "")
                + "); replace or remove it there first",
                reason="ASSET_IN_USE",
                metadata={"asset": name, "uses": str(len(outcome.in_use))},
                precondition_violations=[
                    PreconditionViolation(
                        "ASSET_IN_USE", use.resource, f"shows {name} as its {use.role}"
                    )
                    for use in outcome.in_use
                ],
            )

    async def _delete_blob(self, sha256: str) -> None:
        """Deletes bytes no row uses, without a lock against concurrent stores of the same
        bytes (in this process or another): the blob is moved aside, the rows counted
        again, and the blob put back if a store added a row meanwhile. A store that added
        its row after the count finds the blob gone and writes it again (see store)."""
        aside = await self.blobs.retire(sha256)
        if aside is None:
            return
        if await self.repository.count(sha256) > 0:
            await self.blobs.restore(aside, sha256)
        else:
            await self.blobs.discard(aside)


def upload_provenance() -> Provenance:
    return Provenance(source=AssetSource.UPLOAD)
