"""Uploading images, idempotently."""

from __future__ import annotations

import hashlib
from typing import Protocol

from limner.domain.assets import Asset
from limner.features.assets import AssetLibrary, parse_asset_name, upload_provenance


class RequestLedger(Protocol):
    async def lookup(
        self, workspace_id: str, request_id: str, method: str, request_hash: str
    ) -> str | None: ...

    async def remember(
        self, workspace_id: str, request_id: str, method: str, request_hash: str, resource: str
    ) -> None: ...


class Uploads:
    def __init__(self, assets: AssetLibrary, ledger: RequestLedger) -> None:
        self.assets = assets
        self.ledger = ledger

    async def upload(
        self, workspace_id: str, content: bytes, *, display_name: str, request_id: str
    ) -> tuple[Asset, bool]:
        digest = hashlib.sha256(content).hexdigest()
        request_hash = hashlib.sha256(f"{digest}:{display_name}".encode()).hexdigest()
        if request_id:
            earlier = await self.ledger.lookup(
                workspace_id, request_id, "UploadImage", request_hash
            )
            if earlier is not None:
                parse_asset_name(earlier, "request_id")
                return await self.assets.get(workspace_id, earlier), False
        asset, created = await self.assets.store(
            workspace_id, content, upload_provenance(), display_name=display_name
        )
        if request_id:
            await self.ledger.remember(
                workspace_id, request_id, "UploadImage", request_hash, f"assets/{asset.sha256}"
            )
        return asset, created
