import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from limner.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    MODALITY_TEXT: _ClassVar[Modality]
    MODALITY_IMAGE: _ClassVar[Modality]

class ModelOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_ORIGIN_UNSPECIFIED: _ClassVar[ModelOrigin]
    MODEL_ORIGIN_BUILTIN: _ClassVar[ModelOrigin]
    MODEL_ORIGIN_CONFIG: _ClassVar[ModelOrigin]
    MODEL_ORIGIN_API: _ClassVar[ModelOrigin]
    MODEL_ORIGIN_DISCOVERED: _ClassVar[ModelOrigin]

class Feature(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_UNSPECIFIED: _ClassVar[Feature]
    FEATURE_IMAGE_GENERATION: _ClassVar[Feature]
    FEATURE_IMAGE_EDIT: _ClassVar[Feature]
    FEATURE_AVATAR_GENERATION: _ClassVar[Feature]
    FEATURE_AVATAR_EDIT: _ClassVar[Feature]
    FEATURE_SCENE_IMAGE: _ClassVar[Feature]
    FEATURE_SCENE_WRITER: _ClassVar[Feature]
    FEATURE_DESIGN_REFERENCE_WRITER: _ClassVar[Feature]

class SceneMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCENE_MODE_UNSPECIFIED: _ClassVar[SceneMode]
    SCENE_MODE_AUTO: _ClassVar[SceneMode]
    SCENE_MODE_ASK_FIRST: _ClassVar[SceneMode]
    SCENE_MODE_MANUAL: _ClassVar[SceneMode]

class TemplateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEMPLATE_KIND_UNSPECIFIED: _ClassVar[TemplateKind]
    TEMPLATE_KIND_AVATAR_GENERATION: _ClassVar[TemplateKind]
    TEMPLATE_KIND_AVATAR_EDIT: _ClassVar[TemplateKind]
    TEMPLATE_KIND_SCENE_WRITER: _ClassVar[TemplateKind]
    TEMPLATE_KIND_SCENE_RENDER: _ClassVar[TemplateKind]
    TEMPLATE_KIND_DESIGN_REFERENCE_WRITER: _ClassVar[TemplateKind]
MODALITY_UNSPECIFIED: Modality
MODALITY_TEXT: Modality
MODALITY_IMAGE: Modality
MODEL_ORIGIN_UNSPECIFIED: ModelOrigin
MODEL_ORIGIN_BUILTIN: ModelOrigin
MODEL_ORIGIN_CONFIG: ModelOrigin
MODEL_ORIGIN_API: ModelOrigin
MODEL_ORIGIN_DISCOVERED: ModelOrigin
FEATURE_UNSPECIFIED: Feature
FEATURE_IMAGE_GENERATION: Feature
FEATURE_IMAGE_EDIT: Feature
FEATURE_AVATAR_GENERATION: Feature
FEATURE_AVATAR_EDIT: Feature
FEATURE_SCENE_IMAGE: Feature
FEATURE_SCENE_WRITER: Feature
FEATURE_DESIGN_REFERENCE_WRITER: Feature
SCENE_MODE_UNSPECIFIED: SceneMode
SCENE_MODE_AUTO: SceneMode
SCENE_MODE_ASK_FIRST: SceneMode
SCENE_MODE_MANUAL: SceneMode
TEMPLATE_KIND_UNSPECIFIED: TemplateKind
TEMPLATE_KIND_AVATAR_GENERATION: TemplateKind
TEMPLATE_KIND_AVATAR_EDIT: TemplateKind
TEMPLATE_KIND_SCENE_WRITER: TemplateKind
TEMPLATE_KIND_SCENE_RENDER: TemplateKind
TEMPLATE_KIND_DESIGN_REFERENCE_WRITER: TemplateKind

class Model(_message.Message):
    __slots__ = ("name", "display_name", "provider", "provider_model_id", "input_modalities", "output_modalities", "profile", "origin", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_MODALITIES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODALITIES_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    provider: str
    provider_model_id: str
    input_modalities: _containers.RepeatedScalarFieldContainer[Modality]
    output_modalities: _containers.RepeatedScalarFieldContainer[Modality]
    profile: ModelProfile
    origin: ModelOrigin
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., provider: _Optional[str] = ..., provider_model_id: _Optional[str] = ..., input_modalities: _Optional[_Iterable[_Union[Modality, str]]] = ..., output_modalities: _Optional[_Iterable[_Union[Modality, str]]] = ..., profile: _Optional[_Union[ModelProfile, _Mapping]] = ..., origin: _Optional[_Union[ModelOrigin, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ModelProfile(_message.Message):
    __slots__ = ("max_reference_images", "supported_sizes", "default_size", "supports_seed", "supports_negative_prompt", "supports_edit", "supports_mask", "supports_previews", "supports_sampling_parameters", "supports_aspect_ratio", "max_images_per_request")
    MAX_REFERENCE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_SIZES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SIZE_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_SEED_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_EDIT_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_MASK_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_SAMPLING_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGES_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    max_reference_images: int
    supported_sizes: _containers.RepeatedScalarFieldContainer[str]
    default_size: str
    supports_seed: bool
    supports_negative_prompt: bool
    supports_edit: bool
    supports_mask: bool
    supports_previews: bool
    supports_sampling_parameters: bool
    supports_aspect_ratio: bool
    max_images_per_request: int
    def __init__(self, max_reference_images: _Optional[int] = ..., supported_sizes: _Optional[_Iterable[str]] = ..., default_size: _Optional[str] = ..., supports_seed: _Optional[bool] = ..., supports_negative_prompt: _Optional[bool] = ..., supports_edit: _Optional[bool] = ..., supports_mask: _Optional[bool] = ..., supports_previews: _Optional[bool] = ..., supports_sampling_parameters: _Optional[bool] = ..., supports_aspect_ratio: _Optional[bool] = ..., max_images_per_request: _Optional[int] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("name", "kind", "base_url", "has_api_key", "max_concurrent_jobs", "available")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    HAS_API_KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_JOBS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    base_url: str
    has_api_key: bool
    max_concurrent_jobs: int
    available: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., base_url: _Optional[str] = ..., has_api_key: _Optional[bool] = ..., max_concurrent_jobs: _Optional[int] = ..., available: _Optional[bool] = ...) -> None: ...

class ImageSettings(_message.Message):
    __slots__ = ("name", "image_model", "avatar_model", "scene_image_model", "scene_writer_model", "scene_mode", "context_window_size", "update_time", "default_webhook")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    AVATAR_MODEL_FIELD_NUMBER: _ClassVar[int]
    SCENE_IMAGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    SCENE_WRITER_MODEL_FIELD_NUMBER: _ClassVar[int]
    SCENE_MODE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    name: str
    image_model: str
    avatar_model: str
    scene_image_model: str
    scene_writer_model: str
    scene_mode: SceneMode
    context_window_size: int
    update_time: _timestamp_pb2.Timestamp
    default_webhook: _job_pb2.JobWebhook
    def __init__(self, name: _Optional[str] = ..., image_model: _Optional[str] = ..., avatar_model: _Optional[str] = ..., scene_image_model: _Optional[str] = ..., scene_writer_model: _Optional[str] = ..., scene_mode: _Optional[_Union[SceneMode, str]] = ..., context_window_size: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., default_webhook: _Optional[_Union[_job_pb2.JobWebhook, _Mapping]] = ...) -> None: ...

class FeatureCheck(_message.Message):
    __slots__ = ("feature", "ready", "model", "missing_capabilities", "message", "qualifying_models", "warnings")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MISSING_CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUALIFYING_MODELS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    feature: Feature
    ready: bool
    model: str
    missing_capabilities: _containers.RepeatedScalarFieldContainer[str]
    message: str
    qualifying_models: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature: _Optional[_Union[Feature, str]] = ..., ready: _Optional[bool] = ..., model: _Optional[str] = ..., missing_capabilities: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., qualifying_models: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class PromptTemplate(_message.Message):
    __slots__ = ("name", "kind", "source", "required_variables", "image_slots", "overridden", "version", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: TemplateKind
    source: str
    required_variables: _containers.RepeatedScalarFieldContainer[str]
    image_slots: _containers.RepeatedScalarFieldContainer[str]
    overridden: bool
    version: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TemplateKind, str]] = ..., source: _Optional[str] = ..., required_variables: _Optional[_Iterable[str]] = ..., image_slots: _Optional[_Iterable[str]] = ..., overridden: _Optional[bool] = ..., version: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
