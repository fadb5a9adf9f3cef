"""The Python client for Limner (the ``limner-client`` distribution): connect, follow jobs
with resume, upload and download images, read rich error details. Imports only ``grpc``,
``protobuf``, ``googleapis-common-protos`` and the generated ``limner.v1`` stubs.

Two flavours with the same functions: :mod:`limner.client.aio` (asyncio, ``grpc.aio``) and
:mod:`limner.client.sync` (blocking). The names here are the shared settings and error
helpers, plus the asyncio functions under their original names (``limner.client.connect``
is ``limner.client.aio.connect``)."""

from limner.client import aio, sync
from limner.client._common import (
    DownloadError,
    ErrorDetails,
    KeepAliveConfig,
    TlsConfig,
    TlsConfigError,
    error_details,
    find_detail,
    is_logged,
    is_terminal,
    new_request_id,
    rpc_status,
)
from limner.client.aio import (
    LimnerClient,
    connect,
    design_notes,
    download_asset,
    edit_avatar,
    edit_image,
    generate_avatar,
    generate_image,
    generate_scene,
    upload_image,
    watch_job,
)

__all__ = [
    "DownloadError",
    "ErrorDetails",
    "KeepAliveConfig",
    "LimnerClient",
    "TlsConfig",
    "TlsConfigError",
    "aio",
    "connect",
    "design_notes",
    "download_asset",
    "edit_avatar",
    "edit_image",
    "error_details",
    "find_detail",
    "generate_avatar",
    "generate_image",
    "generate_scene",
    "is_logged",
    "is_terminal",
    "new_request_id",
    "rpc_status",
    "sync",
    "upload_image",
    "watch_job",
]
