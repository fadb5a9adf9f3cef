"""Image asset handling: validation of untrusted bytes and content-addressed storage."""

from limner.assets.blobs import BlobMissing, BlobStore
from limner.assets.probe import (
    ImageHeader,
    ImageInfo,
    ImageRejected,
    RejectReason,
    check_integrity,
    probe_image,
    read_header,
)

__all__ = [
    "BlobMissing",
    "BlobStore",
    "ImageHeader",
    "ImageInfo",
    "ImageRejected",
    "RejectReason",
    "check_integrity",
    "probe_image",
    "read_header",
]
