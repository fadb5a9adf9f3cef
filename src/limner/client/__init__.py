"""A small async Python client for Limner: connect, follow jobs with resume, upload and
download images. Imports only ``grpc`` and the generated ``limner.v1`` stubs."""

from limner.client._client import (
    KeepAliveConfig,
    LimnerClient,
    TlsConfig,
    TlsConfigError,
    connect,
    download_asset,
    edit_image,
    generate_image,
    upload_image,
    watch_job,
)

__all__ = [
    "KeepAliveConfig",
    "LimnerClient",
    "TlsConfig",
    "TlsConfigError",
    "connect",
    "download_asset",
    "edit_image",
    "generate_image",
    "upload_image",
    "watch_job",
]
