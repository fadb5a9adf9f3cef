"""``limner/v1/asset.proto``: stored images and their provenance."""

from __future__ import annotations

from limner.api.convert.common import timestamp_to_pb
from limner.domain.assets import Asset, AssetSource
from limner.v1 import asset_pb2

ASSET_SOURCES = {
    AssetSource.UPLOAD: asset_pb2.ASSET_SOURCE_UPLOAD,
    AssetSource.GENERATED: asset_pb2.ASSET_SOURCE_GENERATED,
    AssetSource.PREVIEW: asset_pb2.ASSET_SOURCE_PREVIEW,
    AssetSource.CHAT: asset_pb2.ASSET_SOURCE_CHAT,
}
ASSET_SOURCES_FROM_PB = {value: key for key, value in ASSET_SOURCES.items()}


def asset_to_pb(asset: Asset) -> asset_pb2.Asset:
    provenance = asset_pb2.AssetProvenance(
        source=ASSET_SOURCES[asset.provenance.source],
        job=asset.provenance.job_id,
        model=asset.provenance.model_id,
        prompt=asset.provenance.prompt,
        reference_assets=list(asset.provenance.reference_assets),
    )
    if asset.provenance.seed is not None:
        provenance.seed = asset.provenance.seed
    return asset_pb2.Asset(
        name=f"assets/{asset.sha256}",
        mime_type=asset.mime_type,
        width=asset.width,
        height=asset.height,
        size_bytes=asset.size_bytes,
        provenance=provenance,
        create_time=timestamp_to_pb(asset.create_time),
        display_name=asset.display_name,
    )
