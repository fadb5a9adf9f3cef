from google.api import field_behavior_pb2 as _field_behavior_pb2
from limner.v1 import job_pb2 as _job_pb2
from limner.v1 import model_pb2 as _model_pb2
from limner.v1 import scene_pb2 as _scene_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateChatRequest(_message.Message):
    __slots__ = ("chat", "request_id")
    CHAT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    chat: _scene_pb2.Chat
    request_id: str
    def __init__(self, chat: _Optional[_Union[_scene_pb2.Chat, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateChatResponse(_message.Message):
    __slots__ = ("chat",)
    CHAT_FIELD_NUMBER: _ClassVar[int]
    chat: _scene_pb2.Chat
    def __init__(self, chat: _Optional[_Union[_scene_pb2.Chat, _Mapping]] = ...) -> None: ...

class GetChatRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetChatResponse(_message.Message):
    __slots__ = ("chat",)
    CHAT_FIELD_NUMBER: _ClassVar[int]
    chat: _scene_pb2.Chat
    def __init__(self, chat: _Optional[_Union[_scene_pb2.Chat, _Mapping]] = ...) -> None: ...

class ListChatsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListChatsResponse(_message.Message):
    __slots__ = ("chats", "next_page_token")
    CHATS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    chats: _containers.RepeatedCompositeFieldContainer[_scene_pb2.Chat]
    next_page_token: str
    def __init__(self, chats: _Optional[_Iterable[_Union[_scene_pb2.Chat, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteChatRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteChatResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReturnedImage(_message.Message):
    __slots__ = ("content", "data_url", "url")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DATA_URL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    data_url: str
    url: str
    def __init__(self, content: _Optional[bytes] = ..., data_url: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class CreateMessageRequest(_message.Message):
    __slots__ = ("parent", "message", "returned_images", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETURNED_IMAGES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    message: _scene_pb2.Message
    returned_images: _containers.RepeatedCompositeFieldContainer[ReturnedImage]
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., message: _Optional[_Union[_scene_pb2.Message, _Mapping]] = ..., returned_images: _Optional[_Iterable[_Union[ReturnedImage, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateMessageResponse(_message.Message):
    __slots__ = ("message", "scene")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    message: _scene_pb2.Message
    scene: str
    def __init__(self, message: _Optional[_Union[_scene_pb2.Message, _Mapping]] = ..., scene: _Optional[str] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_scene_pb2.Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[_scene_pb2.Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GenerateSceneRequest(_message.Message):
    __slots__ = ("message", "prompt", "mode", "request_id", "webhook")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    message: str
    prompt: str
    mode: _model_pb2.SceneMode
    request_id: str
    webhook: _job_pb2.JobWebhook
    def __init__(self, message: _Optional[str] = ..., prompt: _Optional[str] = ..., mode: _Optional[_Union[_model_pb2.SceneMode, str]] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class GenerateSceneResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class GetSceneRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetSceneResponse(_message.Message):
    __slots__ = ("scene",)
    SCENE_FIELD_NUMBER: _ClassVar[int]
    scene: _scene_pb2.Scene
    def __init__(self, scene: _Optional[_Union[_scene_pb2.Scene, _Mapping]] = ...) -> None: ...

class ListScenesRequest(_message.Message):
    __slots__ = ("chat", "page_size", "page_token")
    CHAT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    chat: str
    page_size: int
    page_token: str
    def __init__(self, chat: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListScenesResponse(_message.Message):
    __slots__ = ("scenes", "next_page_token")
    SCENES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    scenes: _containers.RepeatedCompositeFieldContainer[_scene_pb2.Scene]
    next_page_token: str
    def __init__(self, scenes: _Optional[_Iterable[_Union[_scene_pb2.Scene, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApproveSceneRequest(_message.Message):
    __slots__ = ("name", "prompt")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    name: str
    prompt: str
    def __init__(self, name: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class ApproveSceneResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class RejectSceneRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RejectSceneResponse(_message.Message):
    __slots__ = ("scene",)
    SCENE_FIELD_NUMBER: _ClassVar[int]
    scene: _scene_pb2.Scene
    def __init__(self, scene: _Optional[_Union[_scene_pb2.Scene, _Mapping]] = ...) -> None: ...
