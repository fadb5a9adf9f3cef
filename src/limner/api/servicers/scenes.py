"""SceneService: chats, messages and scene images drafted from chat context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from limner.api.context import current_workspace
from limner.api.convert import model as model_convert
from limner.api.convert import scene as scene_convert
from limner.api.convert import scene_service as scene_service_convert
from limner.api.convert.common import enum_from_pb
from limner.api.convert.job import webhook_from_pb
from limner.api.servicers.jobs import stream_events
from limner.domain.chats import MessageRole
from limner.domain.models import SceneMode
from limner.errors import InvalidArgument
from limner.features.chats import Chats, MessageDraft
from limner.features.jobs import JobQueries
from limner.features.messages import MessagePosting
from limner.features.scenes import SceneFeature, SceneRequest
from limner.v1 import scene_pb2, scene_service_pb2_grpc
from limner.v1 import scene_service_pb2 as pb


class SceneServicer(scene_service_pb2_grpc.SceneServiceServicer):
    def __init__(
        self, *, chats: Chats, messages: MessagePosting, scenes: SceneFeature, jobs: JobQueries
    ) -> None:
        self.chats = chats
        self.messages = messages
        self.scenes = scenes
        self.jobs = jobs

    async def CreateChat(
        self, request: pb.CreateChatRequest, context: Any
    ) -> pb.CreateChatResponse:
        if not request.HasField("chat"):
            raise InvalidArgument.field("chat", "is required", "REQUIRED")
        created = await self.chats.create_chat(
            current_workspace(), scene_convert.chat_from_pb(request.chat), request.request_id
        )
        return pb.CreateChatResponse(chat=scene_convert.chat_to_pb(created))

    async def GetChat(self, request: pb.GetChatRequest, context: Any) -> pb.GetChatResponse:
        chat = await self.chats.get_chat(current_workspace(), request.name)
        return pb.GetChatResponse(chat=scene_convert.chat_to_pb(chat))

    async def ListChats(self, request: pb.ListChatsRequest, context: Any) -> pb.ListChatsResponse:
        chats, token = await self.chats.list_chats(
            current_workspace(), page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListChatsResponse(
            chats=[scene_convert.chat_to_pb(c) for c in chats], next_page_token=token
        )

    async def DeleteChat(
        self, request: pb.DeleteChatRequest, context: Any
    ) -> pb.DeleteChatResponse:
        await self.chats.delete_chat(current_workspace(), request.name)
        return pb.DeleteChatResponse()

    async def CreateMessage(
        self, request: pb.CreateMessageRequest, context: Any
    ) -> pb.CreateMessageResponse:
        if not request.HasField("message"):
            raise InvalidArgument.field("message", "is required", "REQUIRED")
        role: MessageRole | None = None
        if request.message.role != scene_pb2.MESSAGE_ROLE_UNSPECIFIED:
            role = enum_from_pb(
                scene_convert.MESSAGE_ROLES_FROM_PB, request.message.role, "message.role"
            )
        created = await self.messages.create_message(
            current_workspace(),
            MessageDraft(
                chat=request.parent,
                role=role,
                text=request.message.text,
                returned_images=tuple(
                    scene_service_convert.returned_image_from_pb(i) for i in request.returned_images
                ),
                request_id=request.request_id,
            ),
        )
        return pb.CreateMessageResponse(
            message=scene_convert.message_to_pb(created.message), scene=created.scene
        )

    async def ListMessages(
        self, request: pb.ListMessagesRequest, context: Any
    ) -> pb.ListMessagesResponse:
        messages, token = await self.chats.list_messages(
            current_workspace(),
            request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListMessagesResponse(
            messages=[scene_convert.message_to_pb(m) for m in messages], next_page_token=token
        )

    async def GenerateScene(
        self, request: pb.GenerateSceneRequest, context: Any
    ) -> AsyncIterator[pb.GenerateSceneResponse]:
        mode: SceneMode | None = None
        if request.mode:
            mode = enum_from_pb(model_convert.SCENE_MODES_FROM_PB, request.mode, "mode")
        job = await self.scenes.generate(
            current_workspace(),
            SceneRequest(
                message=request.message,
                prompt=request.prompt,
                mode=mode,
                request_id=request.request_id,
                webhook=webhook_from_pb(request.webhook, "webhook"),
            ),
        )
        async for event in stream_events(self.jobs, job.id):
            yield pb.GenerateSceneResponse(event=event)

    async def GetScene(self, request: pb.GetSceneRequest, context: Any) -> pb.GetSceneResponse:
        scene = await self.scenes.get(current_workspace(), request.name)
        return pb.GetSceneResponse(scene=scene_convert.scene_to_pb(scene))

    async def ListScenes(
        self, request: pb.ListScenesRequest, context: Any
    ) -> pb.ListScenesResponse:
        scenes, token = await self.scenes.list_scenes(
            current_workspace(),
            chat=request.chat,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListScenesResponse(
            scenes=[scene_convert.scene_to_pb(s) for s in scenes], next_page_token=token
        )

    async def ApproveScene(
        self, request: pb.ApproveSceneRequest, context: Any
    ) -> AsyncIterator[pb.ApproveSceneResponse]:
        job, after = await self.scenes.approve(current_workspace(), request.name, request.prompt)
        async for event in stream_events(self.jobs, job.id, after):
            yield pb.ApproveSceneResponse(event=event)

    async def RejectScene(
        self, request: pb.RejectSceneRequest, context: Any
    ) -> pb.RejectSceneResponse:
        scene = await self.scenes.reject(current_workspace(), request.name)
        return pb.RejectSceneResponse(scene=scene_convert.scene_to_pb(scene))
