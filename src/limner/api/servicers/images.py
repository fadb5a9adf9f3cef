"""ImageService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from limner.api.context import current_workspace
from limner.api.convert import asset as asset_convert
from limner.api.convert import image_service as image_service_convert
from limner.api.convert.common import enum_from_pb
from limner.api.convert.job import webhook_from_pb
from limner.api.servicers.jobs import stream_events
from limner.domain.assets import AssetSource
from limner.errors import InvalidArgument
from limner.features.assets import AssetLibrary
from limner.features.avatars import AvatarFeature, AvatarRequest
from limner.features.images import ImageCommand, ImageFeature
from limner.features.jobs import JobQueries
from limner.features.uploads import Uploads
from limner.v1 import image_service_pb2 as pb
from limner.v1 import image_service_pb2_grpc


class ImageServicer(image_service_pb2_grpc.ImageServiceServicer):
    def __init__(
        self,
        *,
        images: ImageFeature,
        jobs: JobQueries,
        assets: AssetLibrary,
        uploads: Uploads,
        chunk_bytes: int,
        avatars: AvatarFeature,
    ) -> None:
        self.images = images
        self.jobs = jobs
        self.assets = assets
        self.uploads = uploads
        self.chunk_bytes = chunk_bytes
        self.avatars = avatars

    async def GenerateImage(
        self, request: pb.GenerateImageRequest, context: Any
    ) -> AsyncIterator[pb.GenerateImageResponse]:
        command = ImageCommand(
            prompt=request.prompt,
            model=request.model,
            options=image_service_convert.image_options_from_pb(request.options),
            reference_assets=tuple(request.reference_assets),
            request_id=request.request_id,
            webhook=webhook_from_pb(request.webhook, "webhook"),
        )
        job = await self.images.submit(current_workspace(), command)
        async for event in stream_events(self.jobs, job.id):
            yield pb.GenerateImageResponse(event=event)

    async def EditImage(
        self, request: pb.EditImageRequest, context: Any
    ) -> AsyncIterator[pb.EditImageResponse]:
        if not request.source_asset:
            raise InvalidArgument.field("source_asset", "is required: the image to edit")
        command = ImageCommand(
            prompt=request.prompt,
            model=request.model,
            options=image_service_convert.image_options_from_pb(request.options),
            reference_assets=tuple(request.reference_assets),
            source_asset=request.source_asset,
            mask_asset=request.mask_asset,
            strength=request.strength if request.HasField("strength") else None,
            request_id=request.request_id,
            webhook=webhook_from_pb(request.webhook, "webhook"),
        )
        job = await self.images.submit(current_workspace(), command)
        async for event in stream_events(self.jobs, job.id):
            yield pb.EditImageResponse(event=event)

    async def GenerateAvatar(
        self, request: pb.GenerateAvatarRequest, context: Any
    ) -> AsyncIterator[pb.GenerateAvatarResponse]:
        job = await self.avatars.generate(
            current_workspace(),
            AvatarRequest(
                subject=request.subject,
                request=request.request,
                model=request.model,
                options=image_service_convert.image_options_from_pb(request.options),
                request_id=request.request_id,
                webhook=webhook_from_pb(request.webhook, "webhook"),
            ),
        )
        async for event in stream_events(self.jobs, job.id):
            yield pb.GenerateAvatarResponse(event=event)

    async def EditAvatar(
        self, request: pb.EditAvatarRequest, context: Any
    ) -> AsyncIterator[pb.EditAvatarResponse]:
        job = await self.avatars.edit(
            current_workspace(),
            AvatarRequest(
                subject=request.subject,
                edit_request=request.edit_request,
                source_asset=request.source_asset,
                model=request.model,
                options=image_service_convert.image_options_from_pb(request.options),
                request_id=request.request_id,
                webhook=webhook_from_pb(request.webhook, "webhook"),
            ),
        )
        async for event in stream_events(self.jobs, job.id):
            yield pb.EditAvatarResponse(event=event)

    async def AcceptAvatar(
        self, request: pb.AcceptAvatarRequest, context: Any
    ) -> pb.AcceptAvatarResponse:
        if not request.asset:
            raise InvalidArgument.field("asset", "is required: assets/{sha256}", "REQUIRED")
        subject = await self.avatars.accept(current_workspace(), request.subject, request.asset)
        return pb.AcceptAvatarResponse(avatar_asset=subject.avatar_asset)

    async def UploadImage(
        self, request: pb.UploadImageRequest, context: Any
    ) -> pb.UploadImageResponse:
        asset, created = await self.uploads.upload(
            current_workspace(),
            request.content,
            display_name=request.display_name,
            request_id=request.request_id,
        )
        return pb.UploadImageResponse(asset=asset_convert.asset_to_pb(asset), created=created)

    async def GetAsset(self, request: pb.GetAssetRequest, context: Any) -> pb.GetAssetResponse:
        asset = await self.assets.get(current_workspace(), request.name)
        return pb.GetAssetResponse(asset=asset_convert.asset_to_pb(asset))

    async def ListAssets(
        self, request: pb.ListAssetsRequest, context: Any
    ) -> pb.ListAssetsResponse:
        source: AssetSource | None = None
        if request.source:
            source = enum_from_pb(asset_convert.ASSET_SOURCES_FROM_PB, request.source, "source")
        assets, token = await self.assets.list_assets(
            current_workspace(),
            source=source,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListAssetsResponse(
            assets=[asset_convert.asset_to_pb(a) for a in assets], next_page_token=token
        )

    async def ReadAssetContent(
        self, request: pb.ReadAssetContentRequest, context: Any
    ) -> AsyncIterator[pb.ReadAssetContentResponse]:
        asset, chunks = await self.assets.read(current_workspace(), request.name, self.chunk_bytes)
        offset = 0
        first = True
        async for chunk in chunks:
            message = pb.ReadAssetContentResponse(offset=offset, data=chunk)
            if first:
                message.asset.CopyFrom(asset_convert.asset_to_pb(asset))
                first = False
            offset += len(chunk)
            yield message

    async def DeleteAsset(
        self, request: pb.DeleteAssetRequest, context: Any
    ) -> pb.DeleteAssetResponse:
        await self.assets.delete(current_workspace(), request.name)
        return pb.DeleteAssetResponse()
