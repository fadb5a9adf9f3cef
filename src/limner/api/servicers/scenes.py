"""SceneService: declared now, implemented by the scenes release."""

from __future__ import annotations

from limner.api.servicers._coming import coming_stream, coming_unary
from limner.v1 import scene_service_pb2_grpc

_FEATURE = "chats and scene images"


class SceneServicer(scene_service_pb2_grpc.SceneServiceServicer):
    CreateChat = coming_unary("CreateChat", _FEATURE)
    GetChat = coming_unary("GetChat", _FEATURE)
    ListChats = coming_unary("ListChats", _FEATURE)
    DeleteChat = coming_unary("DeleteChat", _FEATURE)
    CreateMessage = coming_unary("CreateMessage", _FEATURE)
    ListMessages = coming_unary("ListMessages", _FEATURE)
    GenerateScene = coming_stream("GenerateScene", _FEATURE)
    GetScene = coming_unary("GetScene", _FEATURE)
    ListScenes = coming_unary("ListScenes", _FEATURE)
    ApproveScene = coming_stream("ApproveScene", _FEATURE)
    RejectScene = coming_unary("RejectScene", _FEATURE)
