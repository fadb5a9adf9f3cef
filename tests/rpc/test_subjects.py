"""Subjects through DesignReferenceService: CRUD, paging, field masks, idempotent creates,
workspace scoping and reference images (ordered, bounded, existing assets only)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2

from limner.domain.subjects import MAX_REFERENCE_IMAGES
from limner.testing.fakes import fake_png
from limner.testing.streams import status_details
from limner.v1 import design_reference_pb2 as dpb
from limner.v1 import design_reference_service_pb2 as spb
from limner.v1 import image_service_pb2 as ipb

CHARACTER = dpb.SUBJECT_KIND_CHARACTER
PERSONA = dpb.SUBJECT_KIND_PERSONA
UNKNOWN_SUBJECT = "subjects/" + "0" * 32
UNKNOWN_ASSET = "assets/" + "0" * 64


async def create(server, name: str = "Mara Quill", kind=CHARACTER, **fields) -> dpb.Subject:
    request_id = fields.pop("request_id", "")
    metadata = fields.pop("metadata", None)
    response = await server.design_references.CreateSubject(
        spb.CreateSubjectRequest(
            subject=dpb.Subject(kind=kind, display_name=name, **fields), request_id=request_id
        ),
        metadata=metadata,
    )
    return response.subject


async def get(server, name: str, **kwargs) -> dpb.Subject:
    return (
        await server.design_references.GetSubject(spb.GetSubjectRequest(name=name), **kwargs)
    ).subject


async def upload(server, seed: int = 0, **kwargs) -> str:
    response = await server.images.UploadImage(
        ipb.UploadImageRequest(content=fake_png(32, 32, seed)), **kwargs
    )
    return response.asset.name


async def add_reference(server, subject: str, asset: str) -> dpb.Subject:
    return (
        await server.design_references.AddReferenceImage(
            spb.AddReferenceImageRequest(subject=subject, asset=asset)
        )
    ).subject


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert "Traceback" not in (error.details() or "")
    return error


def reason(error: grpc.aio.AioRpcError) -> str:
    info = status_details(error)["ErrorInfo"]
    assert info.domain == "limner.dev"
    return str(info.reason)


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in status_details(error)["BadRequest"].field_violations]


# -- create, get, list, delete -------------------------------------------------------------


async def test_create_and_get_a_subject(make_server, database_url):
    async with make_server(database_url) as server:
        created = await create(
            server, description="A lighthouse keeper.", design_notes="Auburn braid."
        )
        assert created.name.startswith("subjects/")
        assert created.kind == CHARACTER
        assert (created.display_name, created.description, created.design_notes) == (
            "Mara Quill",
            "A lighthouse keeper.",
            "Auburn braid.",
        )
        assert created.avatar_asset == "" and list(created.reference_assets) == []
        assert created.create_time.seconds > 0
        assert created.update_time == created.create_time
        assert await get(server, created.name) == created


async def test_output_only_fields_are_ignored_on_create(server):
    asset = await upload(server)
    created = await create(
        server, avatar_asset=asset, reference_assets=[asset], name="subjects/mine"
    )
    assert created.name != "subjects/mine"
    assert created.avatar_asset == "" and list(created.reference_assets) == []


async def test_create_validates_kind_and_display_name(server):
    error = await rpc_error(
        server.design_references.CreateSubject(
            spb.CreateSubjectRequest(subject=dpb.Subject(display_name="  "))
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == [
        ("subject.kind", "REQUIRED"),
        ("subject.display_name", "REQUIRED"),
    ]
    error = await rpc_error(create(server, "x" * 257))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(error)] == ["subject.display_name"]
    assert "256" in (error.details() or "")
    error = await rpc_error(create(server, kind=7))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(error)] == ["subject.kind"]
    error = await rpc_error(server.design_references.CreateSubject(spb.CreateSubjectRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await server.design_references.ListSubjects(spb.ListSubjectsRequest())
    assert list(listed.subjects) == [], "nothing was stored"


async def test_create_with_a_request_id_is_idempotent(make_server, database_url):
    async with make_server(database_url) as server:
        first = await create(server, request_id="create-1")
        again = await create(server, request_id="create-1")
        assert again == first
        error = await rpc_error(create(server, "Somebody else", request_id="create-1"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(error) == "REQUEST_ID_CONFLICT"
        listed = await server.design_references.ListSubjects(spb.ListSubjectsRequest())
        assert [s.name for s in listed.subjects] == [first.name]


async def test_concurrent_creates_with_one_request_id_make_one_subject(make_server, database_url):
    async with make_server(database_url) as server:
        made = await asyncio.gather(*(create(server, request_id="same") for _ in range(8)))
        assert len({s.name for s in made}) == 1
        listed = await server.design_references.ListSubjects(spb.ListSubjectsRequest())
        assert len(listed.subjects) == 1


async def test_list_pages_newest_first_and_filters_by_kind(make_server, database_url):
    async with make_server(database_url) as server:
        made = [
            await create(server, f"Subject {i}", PERSONA if i % 3 == 0 else CHARACTER)
            for i in range(7)
        ]
        seen: list[str] = []
        token = ""
        while True:
            page = await server.design_references.ListSubjects(
                spb.ListSubjectsRequest(page_size=3, page_token=token)
            )
            assert len(page.subjects) <= 3
            seen += [s.name for s in page.subjects]
            token = page.next_page_token
            if not token:
                break
        assert seen == [s.name for s in reversed(made)]
        personas = await server.design_references.ListSubjects(
            spb.ListSubjectsRequest(kind=PERSONA)
        )
        assert [s.name for s in personas.subjects] == [
            s.name for s in reversed(made) if s.kind == PERSONA
        ]
        first = await server.design_references.ListSubjects(spb.ListSubjectsRequest(page_size=2))
        error = await rpc_error(
            server.design_references.ListSubjects(
                spb.ListSubjectsRequest(page_size=2, page_token=first.next_page_token, kind=PERSONA)
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(error) == "INVALID_PAGE_TOKEN"


async def test_delete_removes_the_subject_but_not_its_images(server):
    subject = await create(server)
    asset = await upload(server)
    await add_reference(server, subject.name, asset)
    await server.design_references.DeleteSubject(spb.DeleteSubjectRequest(name=subject.name))
    error = await rpc_error(get(server, subject.name))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "SUBJECT_NOT_FOUND"
    still = await server.images.GetAsset(ipb.GetAssetRequest(name=asset))
    assert still.asset.name == asset
    error = await rpc_error(
        server.design_references.DeleteSubject(spb.DeleteSubjectRequest(name=subject.name))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_unknown_and_malformed_subject_names(server):
    error = await rpc_error(get(server, UNKNOWN_SUBJECT))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "SUBJECT_NOT_FOUND"
    assert status_details(error)["ErrorInfo"].metadata["subject"] == UNKNOWN_SUBJECT
    for bad in ("", "characters/1", "subjects/", "subjects/a/b"):
        error = await rpc_error(get(server, bad))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert [field for field, _ in violations(error)] == ["name"]


# -- update --------------------------------------------------------------------------------


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def update(server, subject: dpb.Subject, *paths: str) -> dpb.Subject:
    response = await server.design_references.UpdateSubject(
        spb.UpdateSubjectRequest(subject=subject, update_mask=mask(*paths))
    )
    return response.subject


async def test_update_changes_only_the_masked_fields(make_server, database_url):
    async with make_server(database_url) as server:
        subject = await create(server, description="Old description.", design_notes="Old notes.")
        changed = await update(
            server,
            dpb.Subject(
                name=subject.name,
                display_name="Ignored",
                description="Ignored too",
                design_notes="New notes.",
            ),
            "design_notes",
        )
        assert changed.design_notes == "New notes."
        assert (changed.display_name, changed.description) == ("Mara Quill", "Old description.")
        assert changed.update_time.ToDatetime() >= subject.update_time.ToDatetime()
        assert changed.create_time == subject.create_time
        # Paths may be given relative to the request too; "*" replaces every field.
        renamed = await update(
            server, dpb.Subject(name=subject.name, display_name="Mara"), "subject.display_name"
        )
        assert renamed.display_name == "Mara"
        cleared = await update(server, dpb.Subject(name=subject.name, display_name="Mara Q."), "*")
        assert (cleared.display_name, cleared.description, cleared.design_notes) == (
            "Mara Q.",
            "",
            "",
        )
        assert await get(server, subject.name) == cleared


async def test_update_without_a_mask_changes_the_fields_given(server):
    subject = await create(server, description="Keeper.", design_notes="Braid.")
    changed = await update(server, dpb.Subject(name=subject.name, description="Sailor."))
    assert (changed.display_name, changed.description, changed.design_notes) == (
        "Mara Quill",
        "Sailor.",
        "Braid.",
    )


async def test_update_mask_errors_change_nothing(server):
    subject = await create(server, description="Keeper.")
    for path, why in (
        ("colour", "UNKNOWN_FIELD"),
        ("avatar_asset", "READ_ONLY"),
        ("reference_assets", "READ_ONLY"),
        ("kind", "READ_ONLY"),
    ):
        error = await rpc_error(
            update(
                server, dpb.Subject(name=subject.name, description="Changed"), "description", path
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, path
        assert violations(error) == [("update_mask", why)], path
        assert path in (error.details() or "")
    error = await rpc_error(update(server, dpb.Subject(name=subject.name), "display_name"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == [("subject.display_name", "REQUIRED")]
    assert await get(server, subject.name) == subject, "nothing stored half-way"


async def test_update_of_an_unknown_subject_is_not_found(server):
    error = await rpc_error(
        update(server, dpb.Subject(name=UNKNOWN_SUBJECT, design_notes="x"), "design_notes")
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "SUBJECT_NOT_FOUND"


# -- reference images ------------------------------------------------------------------------


async def test_reference_images_are_ordered_and_idempotent(make_server, database_url):
    async with make_server(database_url) as server:
        subject = await create(server)
        assets = [await upload(server, seed) for seed in range(3)]
        for asset in assets:
            subject = await add_reference(server, subject.name, asset)
        assert list(subject.reference_assets) == assets
        again = await add_reference(server, subject.name, assets[0])
        assert list(again.reference_assets) == assets, "adding twice changes nothing"
        assert again.update_time == subject.update_time
        removed = (
            await server.design_references.RemoveReferenceImage(
                spb.RemoveReferenceImageRequest(subject=subject.name, asset=assets[1])
            )
        ).subject
        assert list(removed.reference_assets) == [assets[0], assets[2]]
        readded = await add_reference(server, subject.name, assets[1])
        assert list(readded.reference_assets) == [assets[0], assets[2], assets[1]]
        assert list((await get(server, subject.name)).reference_assets) == list(
            readded.reference_assets
        )
        # The asset itself stays.
        await server.images.GetAsset(ipb.GetAssetRequest(name=assets[1]))


async def test_reference_set_is_bounded(server):
    subject = await create(server)
    assets = [await upload(server, seed) for seed in range(MAX_REFERENCE_IMAGES + 1)]
    for asset in assets[:MAX_REFERENCE_IMAGES]:
        await add_reference(server, subject.name, asset)
    error = await rpc_error(add_reference(server, subject.name, assets[-1]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "REFERENCE_LIMIT_EXCEEDED"
    assert status_details(error)["ErrorInfo"].metadata["limit"] == str(MAX_REFERENCE_IMAGES)
    assert violations(error) == [("asset", "REFERENCE_LIMIT_EXCEEDED")]
    assert "RemoveReferenceImage" in (error.details() or "")
    stored = await get(server, subject.name)
    assert list(stored.reference_assets) == assets[:MAX_REFERENCE_IMAGES]
    # One already in the set is still fine (idempotent), even when full.
    await add_reference(server, subject.name, assets[0])


async def test_concurrent_adds_never_exceed_the_bound(make_server, database_url):
    async with make_server(database_url) as server:
        subject = await create(server)
        assets = [await upload(server, seed) for seed in range(MAX_REFERENCE_IMAGES + 4)]
        results = await asyncio.gather(
            *(add_reference(server, subject.name, a) for a in assets), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(refused) == 4
        assert all(reason(r) == "REFERENCE_LIMIT_EXCEEDED" for r in refused)
        stored = (await get(server, subject.name)).reference_assets
        assert len(stored) == len(set(stored)) == MAX_REFERENCE_IMAGES


async def test_reference_errors(server):
    subject = await create(server)
    asset = await upload(server)
    error = await rpc_error(add_reference(server, subject.name, UNKNOWN_ASSET))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "ASSET_NOT_FOUND"
    error = await rpc_error(add_reference(server, UNKNOWN_SUBJECT, asset))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "SUBJECT_NOT_FOUND"
    error = await rpc_error(add_reference(server, subject.name, "assets/not-a-digest"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(error)] == ["asset"]
    error = await rpc_error(add_reference(server, subject.name, ""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(
        server.design_references.RemoveReferenceImage(
            spb.RemoveReferenceImageRequest(subject=subject.name, asset=asset)
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason(error) == "REFERENCE_IMAGE_NOT_FOUND"
    assert await get(server, subject.name) == subject, "nothing changed"


async def test_a_non_image_upload_never_becomes_a_reference(server):
    """The upload itself is refused (tests/rpc/test_assets.py covers every kind of bad
    upload), so there is no asset to add."""
    subject = await create(server)
    error = await rpc_error(
        server.images.UploadImage(ipb.UploadImageRequest(content=b"%PDF-1.4 not an image"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "IMAGE_REJECTED"
    assets = await server.images.ListAssets(ipb.ListAssetsRequest())
    assert list(assets.assets) == []
    assert await get(server, subject.name) == subject


# -- workspaces ----------------------------------------------------------------------------

KEYS = {"api_keys": [{"key": "k1", "workspace": "a"}, {"key": "k2", "workspace": "b"}]}
K1 = (("authorization", "Bearer k1"),)
K2 = (("authorization", "Bearer k2"),)


async def test_subjects_belong_to_their_workspace(make_server):
    async with make_server(auth=KEYS) as server:
        subject = await create(server, metadata=K1)
        asset_b = await upload(server, 5, metadata=K2)
        error = await rpc_error(get(server, subject.name, metadata=K2))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        listed = await server.design_references.ListSubjects(spb.ListSubjectsRequest(), metadata=K2)
        assert list(listed.subjects) == []
        error = await rpc_error(
            server.design_references.AddReferenceImage(
                spb.AddReferenceImageRequest(subject=subject.name, asset=asset_b), metadata=K1
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert reason(error) == "ASSET_NOT_FOUND", "workspace b's asset is not visible in a"
        error = await rpc_error(
            server.design_references.DeleteSubject(
                spb.DeleteSubjectRequest(name=subject.name), metadata=K2
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert (await get(server, subject.name, metadata=K1)).name == subject.name


# -- assets in use ---------------------------------------------------------------------------


async def test_an_asset_a_subject_shows_cannot_be_deleted(make_server, database_url):
    async with make_server(database_url) as server:
        subject = await create(server)
        avatar, reference, replacement = [await upload(server, seed) for seed in (1, 2, 3)]
        await server.images.AcceptAvatar(
            ipb.AcceptAvatarRequest(subject=subject.name, asset=avatar)
        )
        await add_reference(server, subject.name, reference)

        for asset, role in ((avatar, "avatar"), (reference, "reference image")):
            error = await rpc_error(server.images.DeleteAsset(ipb.DeleteAssetRequest(name=asset)))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert reason(error) == "ASSET_IN_USE"
            assert role in error.details() and subject.name in error.details()
            (violation,) = status_details(error)["PreconditionFailure"].violations
            assert (violation.type, violation.subject) == ("ASSET_IN_USE", subject.name)
            # Still there, bytes and all.
            await server.images.GetAsset(ipb.GetAssetRequest(name=asset))

        await server.design_references.RemoveReferenceImage(
            spb.RemoveReferenceImageRequest(subject=subject.name, asset=reference)
        )
        await server.images.AcceptAvatar(
            ipb.AcceptAvatarRequest(subject=subject.name, asset=replacement)
        )
        for asset in (avatar, reference):
            await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=asset))
        assert (await get(server, subject.name)).avatar_asset == replacement
