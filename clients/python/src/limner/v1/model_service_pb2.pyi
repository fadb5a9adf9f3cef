from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from limner.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListProvidersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers", "next_page_token")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[_model_pb2.Provider]
    next_page_token: str
    def __init__(self, providers: _Optional[_Iterable[_Union[_model_pb2.Provider, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "provider", "output_modality", "feature")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODALITY_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    provider: str
    output_modality: _model_pb2.Modality
    feature: _model_pb2.Feature
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., provider: _Optional[str] = ..., output_modality: _Optional[_Union[_model_pb2.Modality, str]] = ..., feature: _Optional[_Union[_model_pb2.Feature, str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("model_id", "model", "request_id")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    model: _model_pb2.Model
    request_id: str
    def __init__(self, model_id: _Optional[str] = ..., model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class UpdateModelRequest(_message.Message):
    __slots__ = ("model", "update_mask")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DiscoverModelsRequest(_message.Message):
    __slots__ = ("provider", "image_output_only")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    IMAGE_OUTPUT_ONLY_FIELD_NUMBER: _ClassVar[int]
    provider: str
    image_output_only: bool
    def __init__(self, provider: _Optional[str] = ..., image_output_only: _Optional[bool] = ...) -> None: ...

class DiscoverModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.Model]
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.Model, _Mapping]]] = ...) -> None: ...

class CheckFeatureRequest(_message.Message):
    __slots__ = ("feature", "model")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    feature: _model_pb2.Feature
    model: str
    def __init__(self, feature: _Optional[_Union[_model_pb2.Feature, str]] = ..., model: _Optional[str] = ...) -> None: ...

class CheckFeatureResponse(_message.Message):
    __slots__ = ("check",)
    CHECK_FIELD_NUMBER: _ClassVar[int]
    check: _model_pb2.FeatureCheck
    def __init__(self, check: _Optional[_Union[_model_pb2.FeatureCheck, _Mapping]] = ...) -> None: ...

class GetImageSettingsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetImageSettingsResponse(_message.Message):
    __slots__ = ("image_settings",)
    IMAGE_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    image_settings: _model_pb2.ImageSettings
    def __init__(self, image_settings: _Optional[_Union[_model_pb2.ImageSettings, _Mapping]] = ...) -> None: ...

class UpdateImageSettingsRequest(_message.Message):
    __slots__ = ("image_settings", "update_mask")
    IMAGE_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    image_settings: _model_pb2.ImageSettings
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, image_settings: _Optional[_Union[_model_pb2.ImageSettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateImageSettingsResponse(_message.Message):
    __slots__ = ("image_settings",)
    IMAGE_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    image_settings: _model_pb2.ImageSettings
    def __init__(self, image_settings: _Optional[_Union[_model_pb2.ImageSettings, _Mapping]] = ...) -> None: ...

class ListPromptTemplatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPromptTemplatesResponse(_message.Message):
    __slots__ = ("prompt_templates",)
    PROMPT_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    prompt_templates: _containers.RepeatedCompositeFieldContainer[_model_pb2.PromptTemplate]
    def __init__(self, prompt_templates: _Optional[_Iterable[_Union[_model_pb2.PromptTemplate, _Mapping]]] = ...) -> None: ...

class GetPromptTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetPromptTemplateResponse(_message.Message):
    __slots__ = ("prompt_template",)
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    prompt_template: _model_pb2.PromptTemplate
    def __init__(self, prompt_template: _Optional[_Union[_model_pb2.PromptTemplate, _Mapping]] = ...) -> None: ...

class UpdatePromptTemplateRequest(_message.Message):
    __slots__ = ("prompt_template",)
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    prompt_template: _model_pb2.PromptTemplate
    def __init__(self, prompt_template: _Optional[_Union[_model_pb2.PromptTemplate, _Mapping]] = ...) -> None: ...

class UpdatePromptTemplateResponse(_message.Message):
    __slots__ = ("prompt_template",)
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    prompt_template: _model_pb2.PromptTemplate
    def __init__(self, prompt_template: _Optional[_Union[_model_pb2.PromptTemplate, _Mapping]] = ...) -> None: ...

class ResetPromptTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResetPromptTemplateResponse(_message.Message):
    __slots__ = ("prompt_template",)
    PROMPT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    prompt_template: _model_pb2.PromptTemplate
    def __init__(self, prompt_template: _Optional[_Union[_model_pb2.PromptTemplate, _Mapping]] = ...) -> None: ...

class PreviewPromptTemplateRequest(_message.Message):
    __slots__ = ("name", "source", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    values: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PreviewPromptTemplateResponse(_message.Message):
    __slots__ = ("rendered", "image_slots")
    RENDERED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    rendered: str
    image_slots: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rendered: _Optional[str] = ..., image_slots: _Optional[_Iterable[str]] = ...) -> None: ...
