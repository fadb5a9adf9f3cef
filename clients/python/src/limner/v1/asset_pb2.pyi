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

class AssetSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSET_SOURCE_UNSPECIFIED: _ClassVar[AssetSource]
    ASSET_SOURCE_UPLOAD: _ClassVar[AssetSource]
    ASSET_SOURCE_GENERATED: _ClassVar[AssetSource]
    ASSET_SOURCE_PREVIEW: _ClassVar[AssetSource]
    ASSET_SOURCE_CHAT: _ClassVar[AssetSource]
ASSET_SOURCE_UNSPECIFIED: AssetSource
ASSET_SOURCE_UPLOAD: AssetSource
ASSET_SOURCE_GENERATED: AssetSource
ASSET_SOURCE_PREVIEW: AssetSource
ASSET_SOURCE_CHAT: AssetSource

class Asset(_message.Message):
    __slots__ = ("name", "mime_type", "width", "height", "size_bytes", "provenance", "create_time", "display_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    mime_type: str
    width: int
    height: int
    size_bytes: int
    provenance: AssetProvenance
    create_time: _timestamp_pb2.Timestamp
    display_name: str
    def __init__(self, name: _Optional[str] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., size_bytes: _Optional[int] = ..., provenance: _Optional[_Union[AssetProvenance, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., display_name: _Optional[str] = ...) -> None: ...

class AssetProvenance(_message.Message):
    __slots__ = ("source", "job", "model", "prompt", "seed", "reference_assets")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ASSETS_FIELD_NUMBER: _ClassVar[int]
    source: AssetSource
    job: str
    model: str
    prompt: str
    seed: int
    reference_assets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source: _Optional[_Union[AssetSource, str]] = ..., job: _Optional[str] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., seed: _Optional[int] = ..., reference_assets: _Optional[_Iterable[str]] = ...) -> None: ...
