"""Thin servicers: convert the request, await one use case, convert the answer."""

from limner.api.servicers.design_references import DesignReferenceServicer
from limner.api.servicers.images import ImageServicer
from limner.api.servicers.jobs import JobServicer
from limner.api.servicers.models import ModelServicer
from limner.api.servicers.scenes import SceneServicer

__all__ = [
    "DesignReferenceServicer",
    "ImageServicer",
    "JobServicer",
    "ModelServicer",
    "SceneServicer",
]
