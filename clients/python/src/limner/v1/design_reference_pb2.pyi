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

class SubjectKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBJECT_KIND_UNSPECIFIED: _ClassVar[SubjectKind]
    SUBJECT_KIND_CHARACTER: _ClassVar[SubjectKind]
    SUBJECT_KIND_PERSONA: _ClassVar[SubjectKind]
SUBJECT_KIND_UNSPECIFIED: SubjectKind
SUBJECT_KIND_CHARACTER: SubjectKind
SUBJECT_KIND_PERSONA: SubjectKind

class Subject(_message.Message):
    __slots__ = ("name", "kind", "display_name", "description", "avatar_asset", "design_notes", "reference_assets", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AVATAR_ASSET_FIELD_NUMBER: _ClassVar[int]
    DESIGN_NOTES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ASSETS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: SubjectKind
    display_name: str
    description: str
    avatar_asset: str
    design_notes: str
    reference_assets: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[SubjectKind, str]] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., avatar_asset: _Optional[str] = ..., design_notes: _Optional[str] = ..., reference_assets: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
