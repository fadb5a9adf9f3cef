"""The asset store through the public API: uploads, validation of hostile bytes, chunked
reads, paging, deletion, and per-workspace isolation under API keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import random
import struct
import zlib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from limner.testing.streams import collect, kinds, status_details
from limner.v1 import asset_pb2
from limner.v1 import image_service_pb2 as ipb

UNKNOWN_ASSET = "assets/" + "f" * 64


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(
    colour: tuple[int, int, int], size: tuple[int, int] = (64, 48), fmt: str = "PNG"
) -> bytes:
    return encode(Image.new("RGB", size, colour), fmt)


def noise_png(size: tuple[int, int] = (80, 80), seed: int = 1) -> bytes:
    """Incompressible pixels: about 3 bytes per pixel."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    return encode(Image.frombytes("RGB", size, pixels), "PNG", compress_level=1)


def png_with_header(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose IHDR claims ``width`` x ``height``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def name_of(data: bytes) -> str:
    return f"assets/{hashlib.sha256(data).hexdigest()}"


def rejection(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    """(ErrorInfo rejection, BadRequest field) of a refused upload."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "Traceback" not in (error.details() or "")
    details = status_details(error)
    info = details["ErrorInfo"]
    assert info.domain == "limner.dev"
    assert info.reason == "IMAGE_REJECTED"
    violations = details["BadRequest"].field_violations
    assert len(violations) == 1
    assert violations[0].reason == info.metadata["rejection"]
    return info.metadata["rejection"], violations[0].field


async def upload_error(server, data: bytes, **kwargs) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.UploadImage(ipb.UploadImageRequest(content=data), **kwargs)
    return caught.value


async def read_all(server, name: str, **kwargs) -> list[ipb.ReadAssetContentResponse]:
    return [
        chunk
        async for chunk in server.images.ReadAssetContent(
            ipb.ReadAssetContentRequest(name=name), **kwargs
        )
    ]


# -- uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
async def test_upload_stores_the_image_under_its_digest(server, fmt, mime):
    data = solid((200, 30, 30), (96, 40), fmt)
    response = await server.images.UploadImage(
        ipb.UploadImageRequest(content=data, display_name="red bar")
    )

    assert response.created is True
    asset = response.asset
    assert asset.name == name_of(data)
    assert (asset.width, asset.height) == (96, 40)
    assert asset.mime_type == mime
    assert asset.size_bytes == len(data)
    assert asset.display_name == "red bar"
    assert asset.provenance.source == asset_pb2.ASSET_SOURCE_UPLOAD
    assert asset.provenance.job == "" and asset.provenance.model == ""
    assert asset.HasField("create_time")

    fetched = (await server.images.GetAsset(ipb.GetAssetRequest(name=asset.name))).asset
    assert fetched == asset
    chunks = await read_all(server, asset.name)
    assert b"".join(c.data for c in chunks) == data


async def test_same_bytes_again_return_the_existing_asset(server):
    data = solid((1, 2, 3))
    first = await server.images.UploadImage(ipb.UploadImageRequest(content=data))
    again = await server.images.UploadImage(
        ipb.UploadImageRequest(content=data, display_name="another label")
    )

    assert first.created is True
    assert again.created is False
    assert again.asset.name == first.asset.name
    assert again.asset.create_time == first.asset.create_time
    listed = await server.images.ListAssets(ipb.ListAssetsRequest())
    assert [a.name for a in listed.assets] == [first.asset.name], "stored once"


async def test_upload_request_id_is_idempotent_and_checked(server):
    data = solid((4, 5, 6))
    request = ipb.UploadImageRequest(
        content=data, request_id="8d0c1f0e-0000-4000-8000-000000000001"
    )
    first = await server.images.UploadImage(request)
    retry = await server.images.UploadImage(request)
    assert first.created is True
    assert retry.created is False
    assert retry.asset.name == first.asset.name

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.UploadImage(
            ipb.UploadImageRequest(content=solid((6, 5, 4)), request_id=request.request_id)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(caught.value)["ErrorInfo"].reason == "REQUEST_ID_CONFLICT"


async def test_not_an_image_is_rejected_on_content(server):
    error = await upload_error(server, b"hello")
    assert rejection(error) == ("NOT_AN_IMAGE", "content")
    assert "hello" not in error.details(), "the payload is never echoed"


async def test_empty_upload_is_rejected(server):
    error = await upload_error(server, b"")
    assert rejection(error) == ("EMPTY", "content")


async def test_truncated_png_is_rejected(server):
    data = noise_png()
    error = await upload_error(server, data[: len(data) // 2])
    assert rejection(error) == ("NOT_AN_IMAGE", "content")


async def test_unsupported_format_is_rejected(server):
    error = await upload_error(server, solid((1, 1, 1), fmt="BMP"))
    rejected, field = rejection(error)
    assert (rejected, field) == ("UNSUPPORTED_FORMAT", "content")
    assert "BMP" in error.details()


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (100_000, 100_000),  # far beyond Pillow's own limit
        (10_000, 10_000),  # past Pillow's warning threshold
        (9_000, 9_000),  # under Pillow's threshold, over the server's 64 Mi pixel limit
    ],
)
async def test_decompression_bomb_is_rejected(server, width, height):
    bomb = png_with_header(width, height)
    assert len(bomb) < 200

    error = await upload_error(server, bomb)
    assert rejection(error) == ("DECOMPRESSION_BOMB", "content")
    listed = await server.images.ListAssets(ipb.ListAssetsRequest())
    assert list(listed.assets) == []


async def test_pixel_limit_comes_from_settings(make_server):
    async with make_server(assets={"max_image_pixels": 10_000}) as server:
        ok = await server.images.UploadImage(
            ipb.UploadImageRequest(content=solid((1, 1, 1), (100, 100)))
        )
        assert ok.created
        error = await upload_error(server, solid((1, 1, 1), (101, 100)))
        assert rejection(error) == ("DECOMPRESSION_BOMB", "content")
        assert "10000" in error.details()


async def test_oversized_upload_is_rejected(make_server):
    async with make_server(assets={"max_image_bytes": 1000}) as server:
        small = solid((9, 9, 9), (16, 16))
        assert len(small) <= 1000
        assert (await server.images.UploadImage(ipb.UploadImageRequest(content=small))).created

        large = noise_png()
        assert len(large) > 1000
        error = await upload_error(server, large)
        assert rejection(error) == ("IMAGE_TOO_LARGE", "content")
        assert "1000" in error.details() and str(len(large)) in error.details()


# -- reading -----------------------------------------------------------------------------


async def test_read_asset_content_streams_in_configured_chunks(make_server):
    async with make_server(assets={"chunk_bytes": 1000}) as server:
        data = noise_png((80, 80))
        assert 18_000 < len(data) < 22_000
        name = (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name

        chunks = await read_all(server, name)

        assert len(chunks) == -(-len(data) // 1000)
        assert all(len(c.data) == 1000 for c in chunks[:-1])
        assert 0 < len(chunks[-1].data) <= 1000
        assert [c.offset for c in chunks] == [i * 1000 for i in range(len(chunks))]
        assert b"".join(c.data for c in chunks) == data
        assert chunks[0].HasField("asset")
        assert chunks[0].asset.name == name
        assert chunks[0].asset.size_bytes == len(data)
        assert chunks[0].asset.mime_type == "image/png"
        assert not any(c.HasField("asset") for c in chunks[1:]), "metadata on the first only"


async def test_small_asset_is_one_chunk(server):
    data = solid((3, 3, 3))
    name = (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name
    chunks = await read_all(server, name)
    assert len(chunks) == 1
    assert (chunks[0].offset, chunks[0].data, chunks[0].asset.name) == (0, data, name)


async def test_reading_an_unknown_asset_is_not_found(server):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_all(server, UNKNOWN_ASSET)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert status_details(caught.value)["ErrorInfo"].reason == "ASSET_NOT_FOUND"


@pytest.mark.parametrize("name", ["", "assets/abc", "f" * 64, "assets/" + "F" * 64])
async def test_get_asset_with_malformed_name(server, name):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.GetAsset(ipb.GetAssetRequest(name=name))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = status_details(caught.value)["BadRequest"].field_violations
    assert [v.field for v in violations] == ["name"]


# -- listing -----------------------------------------------------------------------------


async def upload_distinct(server, count: int) -> list[str]:
    names = []
    for index in range(count):
        data = solid((index * 40, 255 - index * 40, 7))
        names.append(
            (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name
        )
    return names


async def test_list_assets_pages_newest_first(server):
    uploaded = await upload_distinct(server, 5)

    pages: list[list[str]] = []
    token = ""
    while True:
        response = await server.images.ListAssets(
            ipb.ListAssetsRequest(page_size=2, page_token=token)
        )
        pages.append([a.name for a in response.assets])
        token = response.next_page_token
        if not token:
            break
        assert len(pages) < 10, "paging must end"

    assert [len(p) for p in pages] == [2, 2, 1]
    seen = [name for page in pages for name in page]
    assert len(set(seen)) == 5, "no duplicates"
    assert seen == list(reversed(uploaded)), "newest first"

    everything = await server.images.ListAssets(ipb.ListAssetsRequest())
    assert [a.name for a in everything.assets] == seen
    assert everything.next_page_token == ""


async def test_list_assets_filters_by_source(server):
    uploaded = await upload_distinct(server, 1)
    events = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt="a tree", options=ipb.ImageOptions(width=64, height=64))
        )
    )
    assert kinds(events)[-1] == "completed"
    generated = events[-1].completed.images[0].asset

    async def names(source: int) -> list[str]:
        listed = await server.images.ListAssets(ipb.ListAssetsRequest(source=source))
        assert all(a.provenance.source == source for a in listed.assets)
        return [a.name for a in listed.assets]

    assert await names(asset_pb2.ASSET_SOURCE_UPLOAD) == uploaded
    assert await names(asset_pb2.ASSET_SOURCE_GENERATED) == [generated]
    previews = await names(asset_pb2.ASSET_SOURCE_PREVIEW)
    assert generated not in previews and uploaded[0] not in previews


async def test_page_token_is_bound_to_its_query(server):
    await upload_distinct(server, 3)
    first = await server.images.ListAssets(ipb.ListAssetsRequest(page_size=1))
    assert first.next_page_token

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.ListAssets(
            ipb.ListAssetsRequest(
                page_size=1,
                page_token=first.next_page_token,
                source=asset_pb2.ASSET_SOURCE_UPLOAD,
            )
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = status_details(error)
    assert details["ErrorInfo"].reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in details["BadRequest"].field_violations] == ["page_token"]
    assert "different query" in error.details()

    # The page size may change between pages.
    second = await server.images.ListAssets(
        ipb.ListAssetsRequest(page_size=5, page_token=first.next_page_token)
    )
    assert len(second.assets) == 2


@pytest.mark.parametrize("token", ["garbage", "!!!", base64.urlsafe_b64encode(b"[1,2]").decode()])
async def test_garbage_page_token_is_invalid_argument(server, token):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.ListAssets(ipb.ListAssetsRequest(page_token=token))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = status_details(error)
    assert details["ErrorInfo"].reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in details["BadRequest"].field_violations] == ["page_token"]


def forged_token(position: list, query: dict) -> str:
    fingerprint = hashlib.sha256(
        json.dumps(query, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:16]
    body = json.dumps({"v": 1, "p": position, "q": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


async def test_forged_page_token_with_a_malformed_position_is_invalid_argument(server):
    await upload_distinct(server, 2)
    token = forged_token([1], {"list": "assets", "source": ""})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.ListAssets(ipb.ListAssetsRequest(page_token=token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_negative_page_size_is_invalid_argument(server):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.ListAssets(ipb.ListAssetsRequest(page_size=-1))
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = status_details(error)["BadRequest"].field_violations
    assert [v.field for v in violations] == ["page_size"]
    assert "negative" in violations[0].description


async def test_negative_page_size_is_not_reported_as_a_bad_token(server):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.ListAssets(ipb.ListAssetsRequest(page_size=-1))
    assert status_details(caught.value)["ErrorInfo"].reason == "INVALID_FIELD"


async def test_huge_page_size_is_capped_not_refused(server):
    uploaded = await upload_distinct(server, 2)
    listed = await server.images.ListAssets(ipb.ListAssetsRequest(page_size=10_000))
    assert [a.name for a in listed.assets] == list(reversed(uploaded))


# -- deleting ----------------------------------------------------------------------------


async def test_delete_then_get_is_not_found(server):
    data = solid((50, 60, 70))
    name = (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name

    await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=name))

    for call in (
        lambda: server.images.GetAsset(ipb.GetAssetRequest(name=name)),
        lambda: read_all(server, name),
        lambda: server.images.DeleteAsset(ipb.DeleteAssetRequest(name=name)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        info = status_details(caught.value)["ErrorInfo"]
        assert info.reason == "ASSET_NOT_FOUND"
        assert info.metadata["asset"] == name
    assert list((await server.images.ListAssets(ipb.ListAssetsRequest())).assets) == []

    # Uploading the bytes again stores them anew.
    again = await server.images.UploadImage(ipb.UploadImageRequest(content=data))
    assert again.created is True
    assert b"".join(c.data for c in await read_all(server, name)) == data


async def test_delete_unknown_asset_is_not_found(server):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=UNKNOWN_ASSET))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = status_details(caught.value)["ErrorInfo"]
    assert info.reason == "ASSET_NOT_FOUND"
    assert info.metadata["asset"] == UNKNOWN_ASSET


async def test_delete_malformed_name_is_invalid_argument(server):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.images.DeleteAsset(ipb.DeleteAssetRequest(name="assets/../../etc/passwd"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = status_details(caught.value)["BadRequest"].field_violations
    assert [v.field for v in violations] == ["name"]


# -- workspaces --------------------------------------------------------------------------

KEYS = {"api_keys": [{"key": "k1", "workspace": "a"}, {"key": "k2", "workspace": "b"}]}
K1 = (("authorization", "Bearer k1"),)
K2 = (("authorization", "Bearer k2"),)


async def test_api_keys_isolate_workspaces(make_server):
    async with make_server(auth=KEYS) as server:
        data = solid((11, 22, 33))
        uploaded = await server.images.UploadImage(
            ipb.UploadImageRequest(content=data), metadata=K1
        )
        name = uploaded.asset.name

        assert (
            await server.images.GetAsset(ipb.GetAssetRequest(name=name), metadata=K1)
        ).asset.name == name
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.images.GetAsset(ipb.GetAssetRequest(name=name), metadata=K2)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert status_details(caught.value)["ErrorInfo"].reason == "ASSET_NOT_FOUND"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await read_all(server, name, metadata=K2)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        listed_b = await server.images.ListAssets(ipb.ListAssetsRequest(), metadata=K2)
        assert list(listed_b.assets) == []
        listed_a = await server.images.ListAssets(ipb.ListAssetsRequest(), metadata=K1)
        assert [a.name for a in listed_a.assets] == [name]


async def test_shared_bytes_survive_deletion_in_another_workspace(make_server):
    async with make_server(auth=KEYS) as server:
        data = solid((44, 55, 66))
        in_a = await server.images.UploadImage(ipb.UploadImageRequest(content=data), metadata=K1)
        in_b = await server.images.UploadImage(ipb.UploadImageRequest(content=data), metadata=K2)
        assert in_a.created and in_b.created, "new to each workspace"
        assert in_a.asset.name == in_b.asset.name

        await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=in_b.asset.name), metadata=K2)

        chunks = await read_all(server, in_a.asset.name, metadata=K1)
        assert b"".join(c.data for c in chunks) == data
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.images.GetAsset(ipb.GetAssetRequest(name=in_b.asset.name), metadata=K2)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bytes_uploaded_while_the_last_copy_is_deleted_are_kept(make_server):
    # Workspace a deletes the last row for some bytes while workspace b uploads the same
    # bytes: whatever the interleaving, b's asset must be readable afterwards.
    async with make_server(auth=KEYS) as server:
        for round_ in range(12):
            data = solid((round_, 90, 160))
            name = (
                await server.images.UploadImage(ipb.UploadImageRequest(content=data), metadata=K1)
            ).asset.name
            await asyncio.gather(
                server.images.DeleteAsset(ipb.DeleteAssetRequest(name=name), metadata=K1),
                server.images.UploadImage(ipb.UploadImageRequest(content=data), metadata=K2),
            )
            chunks = await read_all(server, name, metadata=K2)
            assert b"".join(c.data for c in chunks) == data, round_


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Bearer nope"),),
        (("authorization", "Bearer "),),
        (("authorization", "k1"),),  # no scheme
        (("x-api-key", "k1x"),),
        (("authorization", "Basic azE6"),),
    ],
    ids=["none", "wrong", "empty", "no-scheme", "wrong-x-api-key", "basic"],
)
async def test_missing_or_wrong_key_is_unauthenticated(make_server, metadata):
    async with make_server(auth=KEYS) as server:
        calls = (
            lambda: server.images.ListAssets(ipb.ListAssetsRequest(), metadata=metadata),
            lambda: read_all(server, UNKNOWN_ASSET, metadata=metadata),
            lambda: server.images.UploadImage(
                ipb.UploadImageRequest(content=solid((1, 1, 1))), metadata=metadata
            ),
        )
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call()
            error = caught.value
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            info = status_details(error)["ErrorInfo"]
            assert info.reason == "API_KEY_INVALID"
            assert info.domain == "limner.dev"
            assert "k1" not in error.details() and "nope" not in error.details()


@pytest.mark.parametrize(
    "metadata",
    [
        (("x-api-key", "k1"),),
        (("authorization", "bearer k1"),),
        (("authorization", "Bearer  k1 "),),
    ],
    ids=["x-api-key", "lowercase-bearer", "padded"],
)
async def test_other_key_spellings_are_accepted(make_server, metadata):
    async with make_server(auth=KEYS) as server:
        data = solid((12, 34, 56))
        uploaded = await server.images.UploadImage(
            ipb.UploadImageRequest(content=data), metadata=metadata
        )
        got = await server.images.GetAsset(
            ipb.GetAssetRequest(name=uploaded.asset.name), metadata=K1
        )
        assert got.asset.name == name_of(data), "acted in workspace a"


async def test_health_check_needs_no_key(make_server):
    async with make_server(auth=KEYS) as server:
        health = health_pb2_grpc.HealthStub(server.channel)
        response = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        response = await health.Check(
            health_pb2.HealthCheckRequest(service="limner.v1.ImageService")
        )
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_without_keys_everyone_shares_the_default_workspace(server):
    data = solid((77, 77, 77))
    uploaded = await server.images.UploadImage(
        ipb.UploadImageRequest(content=data), metadata=(("authorization", "Bearer anything"),)
    )
    got = await server.images.GetAsset(ipb.GetAssetRequest(name=uploaded.asset.name))
    assert got.asset.name == name_of(data)
