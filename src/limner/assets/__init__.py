"""Image asset handling: validation of untrusted bytes and content-addressed storage."""

from limner.assets.blobs import BlobMissing, BlobStore
from limner.assets.probe import ImageInfo, ImageRejected, RejectReason, probe_image

__all__ = [
    "BlobMissing",
    "BlobStore",
    "ImageInfo",
    "ImageRejected",
    "RejectReason",
    "probe_image",
]
