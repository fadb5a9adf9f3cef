from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from limner.v1 import design_reference_pb2 as _design_reference_pb2
from limner.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateSubjectRequest(_message.Message):
    __slots__ = ("subject", "request_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    request_id: str
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSubjectResponse(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ...) -> None: ...

class GetSubjectRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetSubjectResponse(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ...) -> None: ...

class ListSubjectsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: _design_reference_pb2.SubjectKind
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[_Union[_design_reference_pb2.SubjectKind, str]] = ...) -> None: ...

class ListSubjectsResponse(_message.Message):
    __slots__ = ("subjects", "next_page_token")
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subjects: _containers.RepeatedCompositeFieldContainer[_design_reference_pb2.Subject]
    next_page_token: str
    def __init__(self, subjects: _Optional[_Iterable[_Union[_design_reference_pb2.Subject, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSubjectRequest(_message.Message):
    __slots__ = ("subject", "update_mask")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateSubjectResponse(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ...) -> None: ...

class DeleteSubjectRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSubjectResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddReferenceImageRequest(_message.Message):
    __slots__ = ("subject", "asset")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    subject: str
    asset: str
    def __init__(self, subject: _Optional[str] = ..., asset: _Optional[str] = ...) -> None: ...

class AddReferenceImageResponse(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ...) -> None: ...

class RemoveReferenceImageRequest(_message.Message):
    __slots__ = ("subject", "asset")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    subject: str
    asset: str
    def __init__(self, subject: _Optional[str] = ..., asset: _Optional[str] = ...) -> None: ...

class RemoveReferenceImageResponse(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: _design_reference_pb2.Subject
    def __init__(self, subject: _Optional[_Union[_design_reference_pb2.Subject, _Mapping]] = ...) -> None: ...

class DraftDesignNotesRequest(_message.Message):
    __slots__ = ("subject", "model", "save_on_completion", "request_id", "webhook")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SAVE_ON_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    subject: str
    model: str
    save_on_completion: bool
    request_id: str
    webhook: _job_pb2.JobWebhook
    def __init__(self, subject: _Optional[str] = ..., model: _Optional[str] = ..., save_on_completion: _Optional[bool] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class DraftDesignNotesResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...
