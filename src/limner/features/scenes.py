"""Scenes: a writer model drafts one image prompt from the chat's recent messages and the
subjects' looks, an image model renders it with the subjects' reference images.

Everything that can be checked is checked before the job exists: the message, the chat's
subjects and background, a writer model with text+image input and text output (unless the
prompt was given), an image model, the context. The job's spec holds the rendered writer
template (text and image-slot markers), the asset names for each slot, the ordered and
trimmed render references with their numbered map, and the image parameters (seed chosen
up front): never image bytes. A restarted server runs it again from that spec.

Modes: AUTO drafts and renders; ASK_FIRST drafts and stops in AWAITING_APPROVAL (the
engine's ``AwaitApproval``) until ``approve`` resumes the job with the approved prompt
(the handler then skips drafting) or ``reject`` cancels it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from limner.domain.chats import Attachment, Chat, Message, Scene, SceneState
from limner.domain.images import MAX_PROMPT_CHARS
from limner.domain.jobs import Job, JobKind, JobResult, JobState, JobWarning
from limner.domain.models import Feature, ModelSpec, SceneMode
from limner.domain.specs import Approval, SceneSpec, WriterSpec
from limner.domain.subjects import Subject
from limner.domain.webhooks import WebhookSubscription
from limner.errors import (
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    LimnerError,
    NotFound,
    PreconditionViolation,
    Unavailable,
)
from limner.features import writing
from limner.features.chats import Chats, parse_message_name
from limner.features.images import ImageCommand, ImageFeature
from limner.features.scene_prompts import clean_scene_prompt, render_references, writer_values
from limner.jobs import AwaitApproval, JobContext, JobEngine, NewJob
from limner.prompts.api import PromptRenderer, TemplateKind
from limner.registry import ModelCatalog

MAX_OUTPUT_TOKENS = 1024
SCENE_NAME = re.compile(r"^scenes/([A-Za-z0-9][A-Za-z0-9_-]{0,62})$")


class SceneRepository(Protocol):
    async def create_scene(self, scene: Scene) -> Scene: ...
    async def get_scene(self, workspace_id: str, scene_id: str) -> Scene | None: ...
    async def first_scene_of(self, workspace_id: str, message_id: str) -> Scene | None: ...
    async def list_scenes(
        self, workspace_id: str, *, chat_id: str, page_size: int, page_token: str
    ) -> tuple[list[Scene], str]: ...
    async def update_scene(
        self, workspace_id: str, scene_id: str, changes: dict[str, object]
    ) -> Scene | None: ...
    async def delete_scene(self, workspace_id: str, scene_id: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class SceneRequest:
    message: str
    prompt: str = ""
    mode: SceneMode | None = None
    request_id: str = ""
    webhook: WebhookSubscription | None = None

    def fingerprint(self) -> str:
        data: list[object] = [self.message, self.prompt, self.mode.value if self.mode else ""]
        if self.webhook is not None:
            data.append(self.webhook.to_json())
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()


@dataclass(frozen=True)
class _Ready:
    """What a scene for a chat needs, resolved and checked."""

    character: Subject
    persona: Subject | None
    image_model: ModelSpec
    writer_model: ModelSpec | None
    caveats: tuple[str, ...]


def parse_scene_name(name: str, field_name: str = "name") -> str:
    if not name:
        raise InvalidArgument.field(field_name, "is required: scenes/{scene}", "REQUIRED")
    match = SCENE_NAME.match(name)
    if match is None:
        raise InvalidArgument.field(
            field_name, f"{name!r} is not a scene name of the form scenes/{{scene}}"
        )
    return match.group(1)


def public_state(scene: Scene, job: Job | None) -> SceneState:
    """The scene's state: its own phase while its job runs, else what the job's end says."""
    if job is None:
        return scene.state
    if job.state is JobState.SUCCEEDED:
        return SceneState.SUCCEEDED
    if job.state is JobState.FAILED:
        return SceneState.FAILED
    if job.state is JobState.CANCELLED:
        return SceneState.REJECTED if scene.state is SceneState.REJECTED else SceneState.CANCELLED
    if job.state is JobState.AWAITING_APPROVAL:
        return SceneState.AWAITING_APPROVAL
    if scene.state in (SceneState.DRAFTING, SceneState.RENDERING):
        return scene.state
    return SceneState.DRAFTING if job.state is JobState.QUEUED else SceneState.RENDERING


class SceneFeature:
    def __init__(
        self,
        *,
        repository: SceneRepository,
        catalog: ModelCatalog,
        engine: JobEngine,
        chats: Chats,
        images: ImageFeature,
        renderer: PromptRenderer,
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.engine = engine
        self.chats = chats
        # The chat's side of a scene: its context window and the message's attachments.
        self.messages = chats.repository
        self.subjects = chats.subjects
        self.assets = chats.assets
        self.images = images
        self.renderer = renderer

    # -- reading -----------------------------------------------------------------------

    async def get(self, workspace_id: str, name: str) -> Scene:
        scene_id = parse_scene_name(name)
        scene = await self.repository.get_scene(workspace_id, scene_id)
        if scene is None:
            raise NotFound(
                f"scenes/{scene_id} not found in this workspace; ListScenes shows the scenes",
                reason="SCENE_NOT_FOUND",
                metadata={"scene": f"scenes/{scene_id}"},
            )
        return await self._with_state(workspace_id, scene)

    async def first_of(self, workspace_id: str, message_id: str) -> str:
        """The name of the first scene a message started (empty: none)."""
        scene = await self.repository.first_scene_of(workspace_id, message_id)
        return scene.name if scene else ""

    async def list_scenes(
        self, workspace_id: str, *, chat: str, page_size: int, page_token: str
    ) -> tuple[list[Scene], str]:
        chat_id = ""
        if chat:
            chat_id = (await self.chats.get_chat(workspace_id, chat, "chat")).id
        scenes, token = await self.repository.list_scenes(
            workspace_id, chat_id=chat_id, page_size=page_size, page_token=page_token
        )
        return [await self._with_state(workspace_id, scene) for scene in scenes], token

    async def _with_state(self, workspace_id: str, scene: Scene) -> Scene:
        job = await self.engine.get_job(workspace_id, scene.job_id) if scene.job_id else None
        return replace(scene, state=public_state(scene, job))

    # -- starting ----------------------------------------------------------------------

    async def generate(self, workspace_id: str, request: SceneRequest) -> Job:
        """GenerateScene: drafts (unless a prompt is given) and renders a scene for a
        message. MANUAL means ASK_FIRST here (an explicit request always drafts); a given
        prompt is rendered at once, since there is nothing left to approve."""
        if len(request.prompt) > MAX_PROMPT_CHARS:
            raise InvalidArgument.field("prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
        parse_message_name(request.message, "message")
        message = await self.chats.get_message(workspace_id, request.message, "message")
        chat = await self.chats.get_chat(workspace_id, f"chats/{message.chat_id}", "message")
        mode = request.mode or (await self.catalog.image_settings(workspace_id)).scene_mode
        if mode is SceneMode.MANUAL:
            mode = SceneMode.ASK_FIRST
        prompt = " ".join(request.prompt.split())
        if prompt:
            mode = SceneMode.AUTO
        ready = await self._ready(workspace_id, chat, needs_writer=not prompt)
        _scene, job = await self._start(
            workspace_id,
            chat,
            message,
            ready,
            mode=mode,
            given_prompt=prompt,
            directive="",
            request_id=request.request_id,
            request_hash=request.fingerprint(),
            webhook=request.webhook,
        )
        return job

    async def check_ready(self, workspace_id: str, chat: Chat) -> None:
        await self._ready(workspace_id, chat, needs_writer=True)

    async def start_for_directive(
        self, workspace_id: str, chat: Chat, message: Message, prompt: str, mode: SceneMode
    ) -> Scene:
        """A directive at the end of an assistant message: the writer drafts from the
        context with the chat model's prompt as its brief; AUTO renders, ASK_FIRST waits."""
        ready = await self._ready(workspace_id, chat, needs_writer=True)
        scene, _job = await self._start(
            workspace_id,
            chat,
            message,
            ready,
            mode=mode,
            given_prompt="",
            directive=prompt,
            request_id="",
            request_hash="",
        )
        return scene

    async def _ready(self, workspace_id: str, chat: Chat, *, needs_writer: bool) -> _Ready:
        character = await self.subjects.get(
            workspace_id, f"subjects/{chat.character_id}", "chat.character"
        )
        persona = None
        if chat.persona_id:
            persona = await self.subjects.get(
                workspace_id, f"subjects/{chat.persona_id}", "chat.persona"
            )
        writer_model = None
        if needs_writer:
            writer, _ = await self.catalog.resolve_writer(
                workspace_id, Feature.SCENE_WRITER, field="scene_writer_model"
            )
            writer_model = writer.model
        image, caveats = await self.catalog.resolve_image(
            workspace_id, Feature.SCENE_IMAGE, field="scene_image_model"
        )
        image_model = image.model
        for subject in (character, persona):
            if subject is None:
                continue
            for index, name in enumerate(subject.identity_anchors()):
                await self.assets.get(workspace_id, name, f"subjects/{subject.id}[{index}]")
        if chat.background_asset:
            await self.assets.get(workspace_id, chat.background_asset, "chat.background_asset")
        return _Ready(character, persona, image_model, writer_model, tuple(caveats))

    async def _start(
        self,
        workspace_id: str,
        chat: Chat,
        message: Message,
        ready: _Ready,
        *,
        mode: SceneMode,
        given_prompt: str,
        directive: str,
        request_id: str,
        request_hash: str,
        webhook: WebhookSubscription | None = None,
    ) -> tuple[Scene, Job]:
        character, persona = ready.character, ready.persona
        warnings: list[JobWarning] = [JobWarning("MODEL_CAVEAT", c) for c in ready.caveats]
        for subject in (character, persona):
            if subject is not None and not subject.reference_assets:
                warnings.append(
                    JobWarning(
                        "AVATAR_FALLBACK" if subject.avatar_asset else "SUBJECT_HAS_NO_IMAGES",
                        f"subjects/{subject.id} ({subject.display_name}) has no reference "
                        + (
                            "images; its avatar stands in"
                            if subject.avatar_asset
                            else "images and no avatar; the image model only reads its name"
                        ),
                    )
                )
        slots = {
            "character": character.identity_anchors(),
            "persona": persona.identity_anchors() if persona else [],
            "background": [chat.background_asset] if chat.background_asset else [],
        }
        context_names: list[str] = []
        writer: WriterSpec | None = None
        template_version = ""
        if ready.writer_model is not None:
            window = await self.messages.context_window(
                workspace_id,
                chat.id,
                message.id,
                (await self.catalog.image_settings(workspace_id)).context_window_size,
            )
            window = [m for m in window if m.text.strip()]
            if not window:
                raise FailedPrecondition(
                    f"{message.name} and the messages before it have no text for the writer "
                    "to read; add messages, or give the prompt yourself",
                    reason="NO_CONVERSATION_CONTEXT",
                    metadata={"message": message.name},
                    precondition_violations=(
                        PreconditionViolation(
                            "CONTEXT", message.name, "no message with text in the window"
                        ),
                    ),
                )
            context_names = [m.name for m in window]
            rendered = await self.renderer.render(
                workspace_id,
                TemplateKind.SCENE_WRITER,
                writer_values(character, persona, chat, window, directive),
            )
            template_version = rendered.version
            writer = WriterSpec(
                model_id=ready.writer_model.id,
                messages=writing.planned_messages(rendered),
                slots={name: tuple(assets) for name, assets in slots.items()},
            )
            placed = set(rendered.image_slots())
            unplaced = [s for s, names in slots.items() if names and s not in placed]
            if unplaced:
                warnings.append(
                    JobWarning(
                        "IMAGE_SLOT_MISSING",
                        f"the scene-writer template places no {', '.join(unplaced)} image "
                        "slot, so the writer does not see those images",
                    )
                )
        references, reference_map, trimmed = render_references(
            character, persona, chat, ready.image_model
        )
        if trimmed:
            warnings.append(
                JobWarning(
                    "REFERENCES_TRIMMED",
                    f"models/{ready.image_model.id} accepts at most "
                    f"{ready.image_model.profile.max_reference_images} reference image(s); "
                    f"not sent: {', '.join(trimmed)}",
                )
            )
        image_spec, image_warnings = await self.images.plan(
            workspace_id,
            ImageCommand(prompt=given_prompt or "scene", reference_assets=tuple(references)),
            ready.image_model,
        )
        warnings.extend(image_warnings)
        now = datetime.now(UTC)
        scene = Scene(
            id=uuid.uuid4().hex,
            workspace_id=workspace_id,
            chat_id=chat.id,
            message_id=message.id,
            state=SceneState.RENDERING if given_prompt else SceneState.DRAFTING,
            context_messages=tuple(context_names),
            writer_model=ready.writer_model.id if ready.writer_model else "",
            drafted_prompt="",
            image_model=ready.image_model.id,
            reference_assets=tuple(references),
            template_version=template_version,
            attachment_id=uuid.uuid4().hex,
            create_time=now,
            update_time=now,
        )
        spec = SceneSpec(
            image=image_spec,
            scene_id=scene.id,
            chat_id=chat.id,
            message_id=message.id,
            attachment_id=scene.attachment_id,
            mode=mode,
            given_prompt=given_prompt,
            directive=directive,
            writer=writer,
            reference_map=reference_map,
            template_version=template_version,
        )
        await self.repository.create_scene(scene)
        try:
            job, created = await self.engine.submit(
                NewJob(
                    workspace_id=workspace_id,
                    kind=JobKind.SCENE,
                    model_id=ready.image_model.id,
                    provider_id=ready.image_model.provider,
                    prompt=given_prompt or directive,
                    spec=spec,
                    target=scene.name,
                    request_id=request_id,
                    request_hash=request_hash,
                    warnings=tuple(warnings),
                    webhook=webhook,
                )
            )
        except BaseException:
            await self.repository.delete_scene(workspace_id, scene.id)
            raise
        if not created:
            # A retry of an earlier request: that request's scene, not this one.
            await self.repository.delete_scene(workspace_id, scene.id)
            return await self.get(workspace_id, job.target), job
        scene = replace(scene, job_id=job.id)
        await self.repository.update_scene(workspace_id, scene.id, {"job_id": job.id})
        if mode is SceneMode.AUTO:
            await self._placeholder(workspace_id, scene, job.id)
        return scene, job

    async def _placeholder(self, workspace_id: str, scene: Scene, job_id: str) -> None:
        await self.messages.put_attachment(
            workspace_id,
            scene.message_id,
            Attachment(id=scene.attachment_id, job_id=job_id, scene_id=scene.id, placeholder=True),
            overwrite=False,
        )

    # -- approval ----------------------------------------------------------------------

    async def _waiting(self, workspace_id: str, name: str) -> tuple[Scene, Job]:
        scene = await self.get(workspace_id, name)
        job = await self.engine.get_job(workspace_id, scene.job_id) if scene.job_id else None
        if job is None or job.state is not JobState.AWAITING_APPROVAL:
            state = public_state(scene, job)
            raise FailedPrecondition(
                f"{scene.name} is {state.value}, not waiting for approval; only scenes in "
                "AWAITING_APPROVAL can be approved or rejected",
                reason="SCENE_NOT_AWAITING_APPROVAL",
                metadata={"scene": scene.name, "state": state.value},
                precondition_violations=(
                    PreconditionViolation("SCENE_STATE", scene.name, f"the scene is {state.value}"),
                ),
            )
        return scene, job

    async def approve(self, workspace_id: str, name: str, prompt: str) -> tuple[Job, int]:
        """Resumes a waiting scene with the draft or an edited prompt; returns the job and
        the sequence to stream its events after."""
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidArgument.field("prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
        scene, job = await self._waiting(workspace_id, name)
        edited = " ".join(prompt.split())
        approved = edited or scene.drafted_prompt
        after = job.last_sequence
        try:
            resumed = await self.engine.resume(workspace_id, job.id, Approval(approved))
        except FailedPrecondition as error:
            if error.reason != "JOB_NOT_AWAITING_APPROVAL":
                raise
            await self._waiting(workspace_id, name)  # raises the scene's own error
            raise
        if edited and edited != scene.drafted_prompt:
            await self.repository.update_scene(workspace_id, scene.id, {"edited_prompt": edited})
        await self._placeholder(workspace_id, scene, job.id)
        return resumed, after

    async def reject(self, workspace_id: str, name: str) -> Scene:
        scene, job = await self._waiting(workspace_id, name)
        await self.repository.update_scene(workspace_id, scene.id, {"state": SceneState.REJECTED})
        await self.engine.cancel(workspace_id, job.id, "rejected")
        await self.messages.remove_placeholder(workspace_id, scene.attachment_id)
        return await self.get(workspace_id, name)

    # -- the job -----------------------------------------------------------------------

    async def render(self, context: JobContext, spec: SceneSpec) -> JobResult:
        """Runs a scene job: drafts the prompt (unless it was given or approved), pauses for
        approval in ask-first mode, then renders it."""
        workspace_id = context.job.workspace_id
        scene_id = spec.scene_id
        try:
            prompt = spec.approved_prompt or spec.given_prompt
            if not prompt:
                await self._scene(workspace_id, scene_id, state=SceneState.DRAFTING)
                prompt = await self._draft(context, spec)
                await self._scene(workspace_id, scene_id, drafted_prompt=prompt)
                if spec.mode is SceneMode.ASK_FIRST:
                    await self._scene(workspace_id, scene_id, state=SceneState.AWAITING_APPROVAL)
                    raise AwaitApproval(prompt=prompt, scene=f"scenes/{scene_id}")
            return await self._render(context, spec, prompt)
        except AwaitApproval:
            raise
        except (LimnerError, Exception):
            await self.messages.remove_placeholder(workspace_id, spec.attachment_id)
            await self._scene(workspace_id, scene_id, state=SceneState.FAILED)
            raise

    async def _scene(self, workspace_id: str, scene_id: str, **changes: Any) -> None:
        await self.repository.update_scene(workspace_id, scene_id, changes)

    async def _draft(self, context: JobContext, spec: SceneSpec) -> str:
        if spec.writer is None:
            raise InternalError(f"scenes/{spec.scene_id} has neither a prompt nor a writer")
        writer = await self.catalog.writer_model(context.job.workspace_id, spec.writer.model_id)
        model = writer.model
        output = await writing.write(
            context,
            writer=writer,
            spec=spec.writer,
            assets=self.assets,
            max_output_tokens=MAX_OUTPUT_TOKENS,
        )
        prompt = clean_scene_prompt(output.text)
        if not prompt:
            raise Unavailable(
                f"models/{model.id} answered with no scene prompt; try again or pick another "
                "scene writer model",
                reason="WRITER_RETURNED_NO_PROMPT",
                metadata={"model": f"models/{model.id}"},
            )
        return prompt[:MAX_PROMPT_CHARS]

    async def _render(self, context: JobContext, spec: SceneSpec, prompt: str) -> JobResult:
        job = context.job
        workspace_id = job.workspace_id
        await self._scene(workspace_id, spec.scene_id, state=SceneState.RENDERING)
        rendered = await self.renderer.render(
            workspace_id,
            TemplateKind.SCENE_RENDER,
            {"prompt": prompt, "reference_map": spec.reference_map},
        )
        result = await self.images.render(context, replace(spec.image, prompt=rendered.text()))
        image = result.images[0]
        attached = await self.messages.put_attachment(
            workspace_id,
            spec.message_id,
            Attachment(
                id=spec.attachment_id,
                asset=image.asset,
                job_id=job.id,
                scene_id=spec.scene_id,
            ),
            overwrite=True,
        )
        if not attached:
            await context.warn(
                "MESSAGE_DELETED",
                f"chats/{spec.chat_id}/messages/{spec.message_id} was deleted while the "
                "scene was rendered; the image is kept as an asset",
            )
        await self._scene(
            workspace_id,
            spec.scene_id,
            state=SceneState.SUCCEEDED,
            result_asset=image.asset,
            seed=image.seed,
        )
        return JobResult(images=result.images, text=prompt)
