"""All proto <-> domain conversion, in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import duration_pb2, timestamp_pb2

from limner.api.status import to_status_proto
from limner.domain.assets import Asset, AssetSource
from limner.domain.images import ImageOptions
from limner.domain.jobs import (
    ApprovalRequiredEvent,
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    Heartbeat,
    ImageOutput,
    Job,
    JobEvent,
    JobKind,
    JobResult,
    JobStage,
    JobState,
    JobWarning,
    PreviewEvent,
    Progress,
    ProgressEvent,
    Snapshot,
    TextDeltaEvent,
    Usage,
    UsageEvent,
    WarningEvent,
    WatchItem,
)
from limner.domain.models import (
    Feature,
    FeatureCheck,
    ImageSettings,
    Modality,
    ModelOrigin,
    ModelProfile,
    ModelSpec,
    ProviderInfo,
    SceneMode,
)
from limner.domain.subjects import Subject, SubjectKind
from limner.errors import InvalidArgument
from limner.prompts import TemplateInfo, TemplateKind
from limner.v1 import asset_pb2, design_reference_pb2, image_service_pb2, job_pb2, model_pb2

V = TypeVar("V")

# -- enums ---------------------------------------------------------------------------------

JOB_STATES = {
    JobState.QUEUED: job_pb2.JOB_STATE_QUEUED,
    JobState.RUNNING: job_pb2.JOB_STATE_RUNNING,
    JobState.AWAITING_APPROVAL: job_pb2.JOB_STATE_AWAITING_APPROVAL,
    JobState.SUCCEEDED: job_pb2.JOB_STATE_SUCCEEDED,
    JobState.FAILED: job_pb2.JOB_STATE_FAILED,
    JobState.CANCELLED: job_pb2.JOB_STATE_CANCELLED,
}
JOB_STATES_FROM_PB = {value: key for key, value in JOB_STATES.items()}
JOB_KINDS = {
    JobKind.IMAGE_GENERATION: job_pb2.JOB_KIND_IMAGE_GENERATION,
    JobKind.IMAGE_EDIT: job_pb2.JOB_KIND_IMAGE_EDIT,
    JobKind.AVATAR_GENERATION: job_pb2.JOB_KIND_AVATAR_GENERATION,
    JobKind.AVATAR_EDIT: job_pb2.JOB_KIND_AVATAR_EDIT,
    JobKind.SCENE: job_pb2.JOB_KIND_SCENE,
    JobKind.DESIGN_NOTES: job_pb2.JOB_KIND_DESIGN_NOTES,
}
JOB_KINDS_FROM_PB = {value: key for key, value in JOB_KINDS.items()}
JOB_STAGES = {
    JobStage.QUEUED: job_pb2.JOB_STAGE_QUEUED,
    JobStage.PREPARING: job_pb2.JOB_STAGE_PREPARING,
    JobStage.WRITING: job_pb2.JOB_STAGE_WRITING,
    JobStage.AWAITING_APPROVAL: job_pb2.JOB_STAGE_AWAITING_APPROVAL,
    JobStage.GENERATING: job_pb2.JOB_STAGE_GENERATING,
    JobStage.DOWNLOADING: job_pb2.JOB_STAGE_DOWNLOADING,
    JobStage.STORING: job_pb2.JOB_STAGE_STORING,
}
ASSET_SOURCES = {
    AssetSource.UPLOAD: asset_pb2.ASSET_SOURCE_UPLOAD,
    AssetSource.GENERATED: asset_pb2.ASSET_SOURCE_GENERATED,
    AssetSource.PREVIEW: asset_pb2.ASSET_SOURCE_PREVIEW,
    AssetSource.CHAT: asset_pb2.ASSET_SOURCE_CHAT,
}
ASSET_SOURCES_FROM_PB = {value: key for key, value in ASSET_SOURCES.items()}
MODALITIES = {Modality.TEXT: model_pb2.MODALITY_TEXT, Modality.IMAGE: model_pb2.MODALITY_IMAGE}
MODALITIES_FROM_PB = {value: key for key, value in MODALITIES.items()}
ORIGINS = {
    ModelOrigin.BUILTIN: model_pb2.MODEL_ORIGIN_BUILTIN,
    ModelOrigin.CONFIG: model_pb2.MODEL_ORIGIN_CONFIG,
    ModelOrigin.API: model_pb2.MODEL_ORIGIN_API,
    ModelOrigin.DISCOVERED: model_pb2.MODEL_ORIGIN_DISCOVERED,
}
FEATURES = {
    Feature.IMAGE_GENERATION: model_pb2.FEATURE_IMAGE_GENERATION,
    Feature.IMAGE_EDIT: model_pb2.FEATURE_IMAGE_EDIT,
    Feature.AVATAR_GENERATION: model_pb2.FEATURE_AVATAR_GENERATION,
    Feature.AVATAR_EDIT: model_pb2.FEATURE_AVATAR_EDIT,
    Feature.SCENE_IMAGE: model_pb2.FEATURE_SCENE_IMAGE,
    Feature.SCENE_WRITER: model_pb2.FEATURE_SCENE_WRITER,
    Feature.DESIGN_REFERENCE_WRITER: model_pb2.FEATURE_DESIGN_REFERENCE_WRITER,
}
FEATURES_FROM_PB = {value: key for key, value in FEATURES.items()}
SCENE_MODES = {
    SceneMode.AUTO: model_pb2.SCENE_MODE_AUTO,
    SceneMode.ASK_FIRST: model_pb2.SCENE_MODE_ASK_FIRST,
    SceneMode.MANUAL: model_pb2.SCENE_MODE_MANUAL,
}
SCENE_MODES_FROM_PB = {value: key for key, value in SCENE_MODES.items()}


def enum_from_pb(table: Mapping[Any, V], value: int, field: str, *, required: bool = True) -> V:
    """Looks up an enum value, refusing UNSPECIFIED (when required) and unknown numbers."""
    if value in table:
        return table[value]
    if value == 0 and required:
        raise InvalidArgument.field(field, "is required")
    raise InvalidArgument.field(field, f"has an unknown value {value}")


# -- scalars -------------------------------------------------------------------------------


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


# -- jobs ----------------------------------------------------------------------------------


def progress_pb(progress: Progress) -> job_pb2.JobProgress:
    message = job_pb2.JobProgress(
        stage=JOB_STAGES[progress.stage],
        step=progress.step,
        total_steps=progress.total_steps,
        message=progress.message,
        queue_position=progress.queue_position,
        eta=duration(progress.eta_s),
    )
    if progress.fraction is not None:
        message.fraction = progress.fraction
    return message


def image_output_pb(image: ImageOutput) -> job_pb2.ImageOutput:
    output = job_pb2.ImageOutput(
        asset=image.asset,
        width=image.width,
        height=image.height,
        mime_type=image.mime_type,
        size_bytes=image.size_bytes,
    )
    if image.seed is not None:
        output.seed = image.seed
    return output


def result_pb(result: JobResult) -> job_pb2.JobResult:
    return job_pb2.JobResult(
        images=[image_output_pb(image) for image in result.images], text=result.text
    )


def warning_pb(warning: JobWarning) -> job_pb2.JobWarning:
    return job_pb2.JobWarning(code=warning.code, message=warning.message, field=warning.field)


def usage_pb(usage: Usage) -> job_pb2.JobUsage:
    return job_pb2.JobUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cost_usd=usage.cost_usd,
        provider_calls=usage.provider_calls,
    )


def job_pb(job: Job) -> job_pb2.Job:
    message = job_pb2.Job(
        name=f"jobs/{job.id}",
        kind=JOB_KINDS[job.kind],
        state=JOB_STATES[job.state],
        progress=progress_pb(job.progress),
        model=f"models/{job.model_id}" if job.model_id else "",
        prompt=job.prompt,
        create_time=timestamp(job.create_time),
        update_time=timestamp(job.update_time),
        start_time=timestamp(job.start_time),
        end_time=timestamp(job.end_time),
        warnings=[warning_pb(w) for w in job.warnings],
        last_sequence=job.last_sequence,
        attempt=job.attempt,
        target=job.target,
        usage=usage_pb(job.usage),
    )
    if job.result is not None:
        message.result.CopyFrom(result_pb(job.result))
    if job.error is not None:
        message.error.CopyFrom(to_status_proto(job.error))
    return message


def event_pb(item: WatchItem) -> job_pb2.JobEvent:
    if isinstance(item, Snapshot):
        return job_pb2.JobEvent(
            job=f"jobs/{item.job.id}",
            sequence=item.sequence,
            time=timestamp(item.job.update_time),
            snapshot=job_pb(item.job),
            transient=True,
        )
    if isinstance(item, Heartbeat):
        return job_pb2.JobEvent(
            job=f"jobs/{item.job_id}",
            sequence=item.sequence,
            time=timestamp(datetime.now(UTC)),
            heartbeat=job_pb2.JobHeartbeat(state=JOB_STATES[item.state]),
            transient=True,
        )
    return logged_event_pb(item)


def logged_event_pb(event: JobEvent) -> job_pb2.JobEvent:
    message = job_pb2.JobEvent(
        job=f"jobs/{event.job_id}",
        sequence=event.sequence,
        time=timestamp(event.time),
        transient=event.ephemeral,
    )
    match event.body:
        case ProgressEvent(progress):
            message.progress.CopyFrom(progress_pb(progress))
        case PreviewEvent(asset, step):
            message.preview.CopyFrom(job_pb2.JobPreview(asset=asset, step=step))
        case TextDeltaEvent(text):
            message.text_delta.CopyFrom(job_pb2.JobTextDelta(text=text))
        case ApprovalRequiredEvent(prompt, scene):
            message.approval_required.CopyFrom(
                job_pb2.JobApprovalRequired(prompt=prompt, scene=scene)
            )
        case WarningEvent(warning):
            message.warning.CopyFrom(warning_pb(warning))
        case UsageEvent(usage):
            message.usage.CopyFrom(usage_pb(usage))
        case CompletedEvent(result):
            message.completed.CopyFrom(result_pb(result))
        case FailedEvent(error):
            message.failed.CopyFrom(to_status_proto(error))
        case CancelledEvent(reason):
            message.cancelled.CopyFrom(job_pb2.JobCancelled(reason=reason))
    return message


# -- images and assets ---------------------------------------------------------------------


def image_options(options: image_service_pb2.ImageOptions) -> ImageOptions:
    def opt(name: str) -> object | None:
        return getattr(options, name) if options.HasField(name) else None

    return ImageOptions(
        width=opt("width"),  # type: ignore[arg-type]
        height=opt("height"),  # type: ignore[arg-type]
        aspect_ratio=options.aspect_ratio,
        seed=opt("seed"),  # type: ignore[arg-type]
        negative_prompt=options.negative_prompt,
        steps=opt("steps"),  # type: ignore[arg-type]
        guidance_scale=opt("guidance_scale"),  # type: ignore[arg-type]
        sampler=options.sampler,
        image_count=opt("image_count"),  # type: ignore[arg-type]
    )


def asset_pb(asset: Asset) -> asset_pb2.Asset:
    provenance = asset_pb2.AssetProvenance(
        source=ASSET_SOURCES[asset.provenance.source],
        job=asset.provenance.job_id,
        model=asset.provenance.model_id,
        prompt=asset.provenance.prompt,
        reference_assets=list(asset.provenance.reference_assets),
    )
    if asset.provenance.seed is not None:
        provenance.seed = asset.provenance.seed
    return asset_pb2.Asset(
        name=f"assets/{asset.sha256}",
        mime_type=asset.mime_type,
        width=asset.width,
        height=asset.height,
        size_bytes=asset.size_bytes,
        provenance=provenance,
        create_time=timestamp(asset.create_time),
        display_name=asset.display_name,
    )


# -- models --------------------------------------------------------------------------------


def profile_pb(profile: ModelProfile) -> model_pb2.ModelProfile:
    return model_pb2.ModelProfile(
        max_reference_images=profile.max_reference_images,
        supported_sizes=list(profile.supported_sizes),
        default_size=profile.default_size,
        supports_seed=profile.supports_seed,
        supports_negative_prompt=profile.supports_negative_prompt,
        supports_edit=profile.supports_edit,
        supports_mask=profile.supports_mask,
        supports_previews=profile.supports_previews,
        supports_sampling_parameters=profile.supports_sampling_parameters,
        supports_aspect_ratio=profile.supports_aspect_ratio,
        max_images_per_request=profile.max_images_per_request,
    )


def profile_from_pb(profile: model_pb2.ModelProfile) -> ModelProfile:
    return ModelProfile(
        max_reference_images=profile.max_reference_images,
        supported_sizes=tuple(profile.supported_sizes),
        default_size=profile.default_size or "1024x1024",
        supports_seed=profile.supports_seed,
        supports_negative_prompt=profile.supports_negative_prompt,
        supports_edit=profile.supports_edit,
        supports_mask=profile.supports_mask,
        supports_previews=profile.supports_previews,
        supports_sampling_parameters=profile.supports_sampling_parameters,
        supports_aspect_ratio=profile.supports_aspect_ratio,
        max_images_per_request=profile.max_images_per_request or 1,
    )


def model_pb(model: ModelSpec) -> model_pb2.Model:
    return model_pb2.Model(
        name=f"models/{model.id}",
        display_name=model.display_name,
        provider=f"providers/{model.provider}",
        provider_model_id=model.provider_model_id,
        input_modalities=[MODALITIES[m] for m in sorted(model.input_modalities)],
        output_modalities=[MODALITIES[m] for m in sorted(model.output_modalities)],
        profile=profile_pb(model.profile),
        origin=ORIGINS[model.origin],
        create_time=timestamp(model.create_time),
        update_time=timestamp(model.update_time),
    )


def modalities_from_pb(values: Iterable[int], field: str) -> frozenset[Modality]:
    return frozenset(enum_from_pb(MODALITIES_FROM_PB, value, field) for value in values)


def provider_pb(provider: ProviderInfo) -> model_pb2.Provider:
    return model_pb2.Provider(
        name=f"providers/{provider.id}",
        kind=provider.kind,
        base_url=provider.base_url,
        has_api_key=provider.has_api_key,
        max_concurrent_jobs=provider.max_concurrent_jobs,
        available=provider.available,
    )


def feature_check_pb(check: FeatureCheck) -> model_pb2.FeatureCheck:
    return model_pb2.FeatureCheck(
        feature=FEATURES[check.feature],
        ready=check.ready,
        model=check.model,
        missing_capabilities=list(check.missing_capabilities),
        message=check.message,
        qualifying_models=list(check.qualifying_models),
        warnings=list(check.warnings),
    )


def image_settings_pb(settings: ImageSettings) -> model_pb2.ImageSettings:
    def name(model_id: str) -> str:
        return f"models/{model_id}" if model_id else ""

    return model_pb2.ImageSettings(
        name="imageSettings",
        image_model=name(settings.image_model),
        avatar_model=name(settings.avatar_model),
        scene_image_model=name(settings.scene_image_model),
        scene_writer_model=name(settings.scene_writer_model),
        scene_mode=SCENE_MODES[settings.scene_mode],
        context_window_size=settings.context_window_size,
        update_time=timestamp(settings.update_time),
    )


# -- subjects (DesignReferenceService) -------------------------------------------------------

SUBJECT_KINDS = {
    SubjectKind.CHARACTER: design_reference_pb2.SUBJECT_KIND_CHARACTER,
    SubjectKind.PERSONA: design_reference_pb2.SUBJECT_KIND_PERSONA,
}
SUBJECT_KINDS_FROM_PB = {value: key for key, value in SUBJECT_KINDS.items()}


def subject_pb(subject: Subject) -> design_reference_pb2.Subject:
    return design_reference_pb2.Subject(
        name=f"subjects/{subject.id}",
        kind=SUBJECT_KINDS[subject.kind],
        display_name=subject.display_name,
        description=subject.description,
        avatar_asset=subject.avatar_asset,
        design_notes=subject.design_notes,
        reference_assets=list(subject.reference_assets),
        create_time=timestamp(subject.create_time),
        update_time=timestamp(subject.update_time),
    )


# -- prompt templates ----------------------------------------------------------------------

TEMPLATE_KINDS = {
    TemplateKind.AVATAR_GENERATION: model_pb2.TEMPLATE_KIND_AVATAR_GENERATION,
    TemplateKind.AVATAR_EDIT: model_pb2.TEMPLATE_KIND_AVATAR_EDIT,
    TemplateKind.SCENE_WRITER: model_pb2.TEMPLATE_KIND_SCENE_WRITER,
    TemplateKind.SCENE_RENDER: model_pb2.TEMPLATE_KIND_SCENE_RENDER,
    TemplateKind.DESIGN_REFERENCE_WRITER: model_pb2.TEMPLATE_KIND_DESIGN_REFERENCE_WRITER,
}
TEMPLATE_KINDS_FROM_PB = {value: key for key, value in TEMPLATE_KINDS.items()}


def prompt_template_pb(template: TemplateInfo) -> model_pb2.PromptTemplate:
    return model_pb2.PromptTemplate(
        name=template.name,
        kind=TEMPLATE_KINDS[template.kind],
        source=template.source,
        required_variables=list(template.required_variables),
        image_slots=list(template.image_slots),
        overridden=template.overridden,
        version=template.version,
        update_time=timestamp(template.update_time),
    )


# -- chats and scenes (append-only section) --------------------------------------------------

from limner.domain.chats import (  # noqa: E402
    Attachment,
    Chat,
    Message,
    MessageRole,
    Scene,
    SceneState,
)
from limner.v1 import scene_pb2  # noqa: E402

MESSAGE_ROLES = {
    MessageRole.USER: scene_pb2.MESSAGE_ROLE_USER,
    MessageRole.ASSISTANT: scene_pb2.MESSAGE_ROLE_ASSISTANT,
    MessageRole.SYSTEM: scene_pb2.MESSAGE_ROLE_SYSTEM,
    MessageRole.SCENE: scene_pb2.MESSAGE_ROLE_SCENE,
}
MESSAGE_ROLES_FROM_PB = {value: key for key, value in MESSAGE_ROLES.items()}
SCENE_STATES = {
    SceneState.DRAFTING: scene_pb2.SCENE_STATE_DRAFTING,
    SceneState.AWAITING_APPROVAL: scene_pb2.SCENE_STATE_AWAITING_APPROVAL,
    SceneState.RENDERING: scene_pb2.SCENE_STATE_RENDERING,
    SceneState.SUCCEEDED: scene_pb2.SCENE_STATE_SUCCEEDED,
    SceneState.FAILED: scene_pb2.SCENE_STATE_FAILED,
    SceneState.REJECTED: scene_pb2.SCENE_STATE_REJECTED,
    SceneState.CANCELLED: scene_pb2.SCENE_STATE_CANCELLED,
}


def chat_pb(chat: Chat) -> scene_pb2.Chat:
    return scene_pb2.Chat(
        name=chat.name,
        character=f"subjects/{chat.character_id}",
        persona=f"subjects/{chat.persona_id}" if chat.persona_id else "",
        background_asset=chat.background_asset,
        display_name=chat.display_name,
        create_time=timestamp(chat.create_time),
    )


def attachment_pb(attachment: Attachment) -> scene_pb2.Attachment:
    return scene_pb2.Attachment(
        asset=attachment.asset,
        job=f"jobs/{attachment.job_id}" if attachment.job_id else "",
        placeholder=attachment.placeholder,
        scene=f"scenes/{attachment.scene_id}" if attachment.scene_id else "",
    )


def message_pb(message: Message) -> scene_pb2.Message:
    return scene_pb2.Message(
        name=message.name,
        role=MESSAGE_ROLES[message.role],
        text=message.text,
        attachments=[attachment_pb(a) for a in message.attachments],
        create_time=timestamp(message.create_time),
    )


def scene_pb(scene: Scene) -> scene_pb2.Scene:
    return scene_pb2.Scene(
        name=scene.name,
        message=scene.message_name,
        state=SCENE_STATES[scene.state],
        job=f"jobs/{scene.job_id}" if scene.job_id else "",
        context_messages=list(scene.context_messages),
        writer_model=f"models/{scene.writer_model}" if scene.writer_model else "",
        drafted_prompt=scene.drafted_prompt,
        edited_prompt=scene.edited_prompt,
        image_model=f"models/{scene.image_model}" if scene.image_model else "",
        seed=scene.seed,
        reference_assets=list(scene.reference_assets),
        template_version=scene.template_version,
        result_asset=scene.result_asset,
        create_time=timestamp(scene.create_time),
    )
