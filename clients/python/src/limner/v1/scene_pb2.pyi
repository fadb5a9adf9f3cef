import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_ROLE_UNSPECIFIED: _ClassVar[MessageRole]
    MESSAGE_ROLE_USER: _ClassVar[MessageRole]
    MESSAGE_ROLE_ASSISTANT: _ClassVar[MessageRole]
    MESSAGE_ROLE_SYSTEM: _ClassVar[MessageRole]
    MESSAGE_ROLE_SCENE: _ClassVar[MessageRole]

class SceneState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCENE_STATE_UNSPECIFIED: _ClassVar[SceneState]
    SCENE_STATE_DRAFTING: _ClassVar[SceneState]
    SCENE_STATE_AWAITING_APPROVAL: _ClassVar[SceneState]
    SCENE_STATE_RENDERING: _ClassVar[SceneState]
    SCENE_STATE_SUCCEEDED: _ClassVar[SceneState]
    SCENE_STATE_FAILED: _ClassVar[SceneState]
    SCENE_STATE_REJECTED: _ClassVar[SceneState]
    SCENE_STATE_CANCELLED: _ClassVar[SceneState]
MESSAGE_ROLE_UNSPECIFIED: MessageRole
MESSAGE_ROLE_USER: MessageRole
MESSAGE_ROLE_ASSISTANT: MessageRole
MESSAGE_ROLE_SYSTEM: MessageRole
MESSAGE_ROLE_SCENE: MessageRole
SCENE_STATE_UNSPECIFIED: SceneState
SCENE_STATE_DRAFTING: SceneState
SCENE_STATE_AWAITING_APPROVAL: SceneState
SCENE_STATE_RENDERING: SceneState
SCENE_STATE_SUCCEEDED: SceneState
SCENE_STATE_FAILED: SceneState
SCENE_STATE_REJECTED: SceneState
SCENE_STATE_CANCELLED: SceneState

class Chat(_message.Message):
    __slots__ = ("name", "character", "persona", "background_asset", "display_name", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_FIELD_NUMBER: _ClassVar[int]
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_ASSET_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    character: str
    persona: str
    background_asset: str
    display_name: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., character: _Optional[str] = ..., persona: _Optional[str] = ..., background_asset: _Optional[str] = ..., display_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("name", "role", "text", "attachments", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: MessageRole
    text: str
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[MessageRole, str]] = ..., text: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("asset", "job", "placeholder", "scene")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDER_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    asset: str
    job: str
    placeholder: bool
    scene: str
    def __init__(self, asset: _Optional[str] = ..., job: _Optional[str] = ..., placeholder: _Optional[bool] = ..., scene: _Optional[str] = ...) -> None: ...

class Scene(_message.Message):
    __slots__ = ("name", "message", "state", "job", "context_messages", "writer_model", "drafted_prompt", "edited_prompt", "image_model", "seed", "reference_assets", "template_version", "result_asset", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    WRITER_MODEL_FIELD_NUMBER: _ClassVar[int]
    DRAFTED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    EDITED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ASSETS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESULT_ASSET_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    message: str
    state: SceneState
    job: str
    context_messages: _containers.RepeatedScalarFieldContainer[str]
    writer_model: str
    drafted_prompt: str
    edited_prompt: str
    image_model: str
    seed: int
    reference_assets: _containers.RepeatedScalarFieldContainer[str]
    template_version: str
    result_asset: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., message: _Optional[str] = ..., state: _Optional[_Union[SceneState, str]] = ..., job: _Optional[str] = ..., context_messages: _Optional[_Iterable[str]] = ..., writer_model: _Optional[str] = ..., drafted_prompt: _Optional[str] = ..., edited_prompt: _Optional[str] = ..., image_model: _Optional[str] = ..., seed: _Optional[int] = ..., reference_assets: _Optional[_Iterable[str]] = ..., template_version: _Optional[str] = ..., result_asset: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
