"""``limner/v1/scene_service.proto``: request-only messages of SceneService."""

from __future__ import annotations

from limner.features.chats import ReturnedImage
from limner.v1 import scene_service_pb2


def returned_image_from_pb(image: scene_service_pb2.ReturnedImage) -> ReturnedImage:
    source = image.WhichOneof("source")
    if source == "content":
        return ReturnedImage(content=image.content)
    if source == "data_url":
        return ReturnedImage(data_url=image.data_url)
    if source == "url":
        return ReturnedImage(url=image.url)
    return ReturnedImage()
