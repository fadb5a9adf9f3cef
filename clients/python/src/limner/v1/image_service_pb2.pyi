from google.api import field_behavior_pb2 as _field_behavior_pb2
from limner.v1 import asset_pb2 as _asset_pb2
from limner.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageOptions(_message.Message):
    __slots__ = ("width", "height", "aspect_ratio", "seed", "negative_prompt", "steps", "guidance_scale", "sampler", "image_count")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    aspect_ratio: str
    seed: int
    negative_prompt: str
    steps: int
    guidance_scale: float
    sampler: str
    image_count: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., aspect_ratio: _Optional[str] = ..., seed: _Optional[int] = ..., negative_prompt: _Optional[str] = ..., steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., sampler: _Optional[str] = ..., image_count: _Optional[int] = ...) -> None: ...

class GenerateImageRequest(_message.Message):
    __slots__ = ("prompt", "model", "options", "reference_assets", "request_id", "webhook")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ASSETS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    model: str
    options: ImageOptions
    reference_assets: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    webhook: _job_pb2.JobWebhook
    def __init__(self, prompt: _Optional[str] = ..., model: _Optional[str] = ..., options: _Optional[_Union[ImageOptions, _Mapping]] = ..., reference_assets: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class GenerateImageResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class EditImageRequest(_message.Message):
    __slots__ = ("source_asset", "prompt", "model", "mask_asset", "strength", "options", "reference_assets", "request_id", "webhook")
    SOURCE_ASSET_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MASK_ASSET_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ASSETS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    source_asset: str
    prompt: str
    model: str
    mask_asset: str
    strength: float
    options: ImageOptions
    reference_assets: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    webhook: _job_pb2.JobWebhook
    def __init__(self, source_asset: _Optional[str] = ..., prompt: _Optional[str] = ..., model: _Optional[str] = ..., mask_asset: _Optional[str] = ..., strength: _Optional[float] = ..., options: _Optional[_Union[ImageOptions, _Mapping]] = ..., reference_assets: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class EditImageResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class GenerateAvatarRequest(_message.Message):
    __slots__ = ("subject", "request", "model", "options", "request_id", "webhook")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    subject: str
    request: str
    model: str
    options: ImageOptions
    request_id: str
    webhook: _job_pb2.JobWebhook
    def __init__(self, subject: _Optional[str] = ..., request: _Optional[str] = ..., model: _Optional[str] = ..., options: _Optional[_Union[ImageOptions, _Mapping]] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class GenerateAvatarResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class EditAvatarRequest(_message.Message):
    __slots__ = ("subject", "edit_request", "source_asset", "model", "options", "request_id", "webhook")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    EDIT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ASSET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    subject: str
    edit_request: str
    source_asset: str
    model: str
    options: ImageOptions
    request_id: str
    webhook: _job_pb2.JobWebhook
    def __init__(self, subject: _Optional[str] = ..., edit_request: _Optional[str] = ..., source_asset: _Optional[str] = ..., model: _Optional[str] = ..., options: _Optional[_Union[ImageOptions, _Mapping]] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class EditAvatarResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _job_pb2.JobEvent
    def __init__(self, event: _Optional[_Union[_job_pb2.JobEvent, _Mapping]] = ...) -> None: ...

class AcceptAvatarRequest(_message.Message):
    __slots__ = ("subject", "asset")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    subject: str
    asset: str
    def __init__(self, subject: _Optional[str] = ..., asset: _Optional[str] = ...) -> None: ...

class AcceptAvatarResponse(_message.Message):
    __slots__ = ("avatar_asset",)
    AVATAR_ASSET_FIELD_NUMBER: _ClassVar[int]
    avatar_asset: str
    def __init__(self, avatar_asset: _Optional[str] = ...) -> None: ...

class UploadImageRequest(_message.Message):
    __slots__ = ("content", "display_name", "request_id")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    display_name: str
    request_id: str
    def __init__(self, content: _Optional[bytes] = ..., display_name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UploadImageResponse(_message.Message):
    __slots__ = ("asset", "created")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    asset: _asset_pb2.Asset
    created: bool
    def __init__(self, asset: _Optional[_Union[_asset_pb2.Asset, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetAssetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetAssetResponse(_message.Message):
    __slots__ = ("asset",)
    ASSET_FIELD_NUMBER: _ClassVar[int]
    asset: _asset_pb2.Asset
    def __init__(self, asset: _Optional[_Union[_asset_pb2.Asset, _Mapping]] = ...) -> None: ...

class ListAssetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "source")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    source: _asset_pb2.AssetSource
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., source: _Optional[_Union[_asset_pb2.AssetSource, str]] = ...) -> None: ...

class ListAssetsResponse(_message.Message):
    __slots__ = ("assets", "next_page_token")
    ASSETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    assets: _containers.RepeatedCompositeFieldContainer[_asset_pb2.Asset]
    next_page_token: str
    def __init__(self, assets: _Optional[_Iterable[_Union[_asset_pb2.Asset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReadAssetContentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ReadAssetContentResponse(_message.Message):
    __slots__ = ("asset", "offset", "data")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    asset: _asset_pb2.Asset
    offset: int
    data: bytes
    def __init__(self, asset: _Optional[_Union[_asset_pb2.Asset, _Mapping]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class DeleteAssetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteAssetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
