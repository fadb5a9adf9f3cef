"""Chats and messages through the gRPC API: CRUD, paging, idempotency, the scene directive
in manual mode, and images a chat model returned (stored and attached, no scene job)."""

from __future__ import annotations

import base64

import grpc
import pytest
from google.protobuf import field_mask_pb2

from limner.testing.fakes import fake_png
from limner.testing.streams import status_details
from limner.v1 import asset_pb2, model_pb2
from limner.v1 import design_reference_pb2 as dpb
from limner.v1 import design_reference_service_pb2 as spb
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_service_pb2 as jpb
from limner.v1 import model_service_pb2 as mpb
from limner.v1 import scene_pb2 as cpb
from limner.v1 import scene_service_pb2 as pb

UNKNOWN_SUBJECT = "subjects/" + "0" * 32


async def subject(server, name: str, kind=dpb.SUBJECT_KIND_CHARACTER) -> str:
    response = await server.design_references.CreateSubject(
        spb.CreateSubjectRequest(subject=dpb.Subject(kind=kind, display_name=name))
    )
    return response.subject.name


async def upload(server, data: bytes) -> str:
    return (await server.images.UploadImage(ipb.UploadImageRequest(content=data))).asset.name


async def set_mode(server, mode) -> None:
    await server.models.UpdateImageSettings(
        mpb.UpdateImageSettingsRequest(
            image_settings=model_pb2.ImageSettings(scene_mode=mode),
            update_mask=field_mask_pb2.FieldMask(paths=["scene_mode"]),
        )
    )


async def new_chat(server, **fields) -> cpb.Chat:
    if "character" not in fields:
        fields["character"] = await subject(server, "Mara Quill")
    response = await server.scenes.CreateChat(pb.CreateChatRequest(chat=cpb.Chat(**fields)))
    return response.chat


async def say(server, chat: str, text: str, role=cpb.MESSAGE_ROLE_USER, **fields):
    return await server.scenes.CreateMessage(
        pb.CreateMessageRequest(parent=chat, message=cpb.Message(role=role, text=text), **fields)
    )


async def messages(server, chat: str) -> list[cpb.Message]:
    response = await server.scenes.ListMessages(pb.ListMessagesRequest(parent=chat))
    return list(response.messages)


async def job_count(server) -> int:
    return len((await server.jobs.ListJobs(jpb.ListJobsRequest())).jobs)


def reason(error: grpc.aio.AioRpcError) -> str:
    return str(status_details(error)["ErrorInfo"].reason)


async def test_chat_crud_and_idempotency(make_server, database_url):
    async with make_server(database_url) as server:
        character = await subject(server, "Mara Quill")
        persona = await subject(server, "Tomas", dpb.SUBJECT_KIND_PERSONA)
        background = await upload(server, fake_png(80, 60, 9))
        chat = await new_chat(
            server,
            character=character,
            persona=persona,
            background_asset=background,
            display_name=" Lighthouse ",
        )
        assert chat.name.startswith("chats/")
        assert (chat.character, chat.persona, chat.background_asset) == (
            character,
            persona,
            background,
        )
        assert chat.display_name == "Lighthouse" and chat.HasField("create_time")
        got = await server.scenes.GetChat(pb.GetChatRequest(name=chat.name))
        assert got.chat == chat

        request = pb.CreateChatRequest(chat=cpb.Chat(character=character), request_id="c-1")
        first = (await server.scenes.CreateChat(request)).chat
        again = (await server.scenes.CreateChat(request)).chat
        assert first == again
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.scenes.CreateChat(
                pb.CreateChatRequest(chat=cpb.Chat(character=persona), request_id="c-1")
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(caught.value) == "REQUEST_ID_CONFLICT"

        # Newest first, paged.
        page = await server.scenes.ListChats(pb.ListChatsRequest(page_size=1))
        assert [c.name for c in page.chats] == [first.name] and page.next_page_token
        rest = await server.scenes.ListChats(
            pb.ListChatsRequest(page_size=5, page_token=page.next_page_token)
        )
        assert [c.name for c in rest.chats] == [chat.name] and not rest.next_page_token

        await say(server, chat.name, "hello")
        await server.scenes.DeleteChat(pb.DeleteChatRequest(name=chat.name))
        for call in (
            server.scenes.GetChat(pb.GetChatRequest(name=chat.name)),
            server.scenes.ListMessages(pb.ListMessagesRequest(parent=chat.name)),
            server.scenes.DeleteChat(pb.DeleteChatRequest(name=chat.name)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert reason(caught.value) == "CHAT_NOT_FOUND"


async def test_chat_refusals(server):
    cases = [
        (cpb.Chat(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD"),
        (cpb.Chat(character="nonsense"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD"),
        (cpb.Chat(character=UNKNOWN_SUBJECT), grpc.StatusCode.NOT_FOUND, "SUBJECT_NOT_FOUND"),
    ]
    character = await subject(server, "Mara")
    cases.append(
        (
            cpb.Chat(character=character, background_asset="assets/" + "a" * 64),
            grpc.StatusCode.NOT_FOUND,
            "ASSET_NOT_FOUND",
        )
    )
    for chat, code, why in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.scenes.CreateChat(pb.CreateChatRequest(chat=chat))
        assert caught.value.code() == code, chat
        assert reason(caught.value) == why
    assert (await server.scenes.ListChats(pb.ListChatsRequest())).chats == []


async def test_messages_are_listed_oldest_first_with_paging(make_server, database_url):
    async with make_server(database_url) as server:
        chat = await new_chat(server)
        roles = [
            cpb.MESSAGE_ROLE_SYSTEM,
            cpb.MESSAGE_ROLE_USER,
            cpb.MESSAGE_ROLE_ASSISTANT,
            cpb.MESSAGE_ROLE_SCENE,
            cpb.MESSAGE_ROLE_USER,
        ]
        created = [
            (await say(server, chat.name, f"m{index}", role)).message
            for index, role in enumerate(roles)
        ]
        assert all(m.name.startswith(chat.name + "/messages/") for m in created)
        seen, token = [], ""
        while True:
            page = await server.scenes.ListMessages(
                pb.ListMessagesRequest(parent=chat.name, page_size=2, page_token=token)
            )
            seen += page.messages
            token = page.next_page_token
            if not token:
                break
        assert [m.text for m in seen] == [f"m{i}" for i in range(5)]
        assert [m.role for m in seen] == roles
        assert seen == created

        # Idempotent appends: the same message, not a second one.
        request = pb.CreateMessageRequest(
            parent=chat.name,
            message=cpb.Message(role=cpb.MESSAGE_ROLE_USER, text="again"),
            request_id="m-1",
        )
        one = await server.scenes.CreateMessage(request)
        two = await server.scenes.CreateMessage(request)
        assert one.message == two.message
        assert len(await messages(server, chat.name)) == 6

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await say(server, chat.name, "no role", cpb.MESSAGE_ROLE_UNSPECIFIED)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_manual_mode_strips_the_directive_and_does_nothing_else(server):
    await set_mode(server, model_pb2.SCENE_MODE_MANUAL)
    chat = await new_chat(server)
    response = await say(
        server,
        chat.name,
        "She lifts the lantern.\n< IMG >Mara on the stairs, lantern light</img>\n",
        cpb.MESSAGE_ROLE_ASSISTANT,
    )
    assert response.message.text == "She lifts the lantern."
    assert response.scene == "" and list(response.message.attachments) == []
    assert await job_count(server) == 0
    assert (await server.scenes.ListScenes(pb.ListScenesRequest())).scenes == []
    # A user's message is stored as written.
    user = await say(server, chat.name, "draw <img>this</img>")
    assert user.message.text == "draw <img>this</img>" and user.scene == ""


async def test_images_a_chat_model_returned_are_attached_without_a_job(make_server, database_url):
    async with make_server(database_url) as server:
        await set_mode(server, model_pb2.SCENE_MODE_AUTO)
        chat = await new_chat(server)
        raw, inline = fake_png(40, 30, 1), fake_png(30, 40, 2)
        data_url = "data:image/png;base64," + base64.b64encode(inline).decode()
        response = await say(
            server,
            chat.name,
            "Here you go.",
            cpb.MESSAGE_ROLE_ASSISTANT,
            returned_images=[pb.ReturnedImage(content=raw), pb.ReturnedImage(data_url=data_url)],
        )
        attachments = list(response.message.attachments)
        assert len(attachments) == 2 and response.scene == ""
        assert all(a.asset and not a.placeholder and not a.job for a in attachments)
        for attachment, data in zip(attachments, (raw, inline), strict=True):
            asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=attachment.asset))).asset
            assert asset.provenance.source == asset_pb2.ASSET_SOURCE_CHAT
            chunks = server.images.ReadAssetContent(
                ipb.ReadAssetContentRequest(name=attachment.asset)
            )
            assert b"".join([c.data async for c in chunks]) == data
        assert (await messages(server, chat.name))[0].attachments == attachments
        assert await job_count(server) == 0

        # Bad images and refused downloads store nothing.
        for image, code in (
            (pb.ReturnedImage(data_url="data:image/png;base64,@@@"), "INVALID_ARGUMENT"),
            (pb.ReturnedImage(content=b"not an image"), "INVALID_ARGUMENT"),
            (pb.ReturnedImage(url="http://127.0.0.1:9/x.png"), "FAILED_PRECONDITION"),
            (pb.ReturnedImage(url="ftp://example.com/x.png"), "INVALID_ARGUMENT"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await say(server, chat.name, "x", returned_images=[image])
            assert caught.value.code().name == code, image
        assert len(await messages(server, chat.name)) == 1


async def test_a_background_or_attachment_cannot_be_deleted_while_shown(make_server, database_url):
    async with make_server(database_url) as server:
        background = await upload(server, fake_png(80, 60, 9))
        chat = await new_chat(server, background_asset=background)
        response = await say(
            server,
            chat.name,
            "Here you go.",
            cpb.MESSAGE_ROLE_ASSISTANT,
            returned_images=[pb.ReturnedImage(content=fake_png(40, 30, 1))],
        )
        attached = response.message.attachments[0].asset
        for asset, user in ((background, chat.name), (attached, response.message.name)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=asset))
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert reason(caught.value) == "ASSET_IN_USE"
            violations = status_details(caught.value)["PreconditionFailure"].violations
            assert [v.subject for v in violations] == [user]

        # Once the chat is gone, nothing shows them any more.
        await server.scenes.DeleteChat(pb.DeleteChatRequest(name=chat.name))
        for asset in (background, attached):
            await server.images.DeleteAsset(ipb.DeleteAssetRequest(name=asset))
