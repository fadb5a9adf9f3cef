"""Avatars: template-driven image jobs for a subject, and accepting one as its avatar.

Generating and editing are ordinary image jobs (``ImageFeature``) with a rendered prompt, a
kind of their own and the subject as their target. Every image they produce is recorded as
one of the subject's avatar *candidates*; only ``accept`` changes the subject's avatar, so
regenerating never loses the accepted one, and earlier avatars stay available as assets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from limner.domain.images import MAX_PROMPT_CHARS, ImageOptions
from limner.domain.jobs import Job, JobKind, JobResult
from limner.domain.models import Feature
from limner.domain.specs import AvatarSpec, TemplateUse
from limner.domain.subjects import Subject
from limner.domain.webhooks import WebhookSubscription
from limner.errors import FailedPrecondition, InvalidArgument, PreconditionViolation
from limner.features.assets import parse_asset_name
from limner.features.images import ImageCommand, ImageFeature
from limner.features.subjects import Subjects, parse_subject_name, subject_not_found
from limner.jobs import JobContext, JobEngine, NewJob
from limner.prompts.api import PromptRenderer, RenderedPrompt, TemplateKind


@dataclass(frozen=True, kw_only=True)
class AvatarRequest:
    """GenerateAvatar (no ``edit_request``) or EditAvatar, as the client sent it."""

    subject: str
    request: str = ""  # what to draw (generate)
    edit_request: str = ""  # what to change (edit)
    source_asset: str = ""  # the candidate to edit; empty = the current avatar
    model: str = ""
    options: ImageOptions = field(default_factory=ImageOptions)
    request_id: str = ""
    webhook: WebhookSubscription | None = None

    def fingerprint(self, method: str) -> str:
        data = asdict(self)
        data.pop("request_id")
        # "models/x" and "x" name the same model: a retry may spell it either way.
        data["model"] = self.model.removeprefix("models/")
        if data["webhook"] is None:
            del data["webhook"]  # requests without one keep the fingerprint they had
        data["method"] = method
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def subject_values(subject: Subject) -> dict[str, Any]:
    """The subject variables the avatar and design-reference templates declare."""
    return {"subject_name": subject.display_name, "subject_description": subject.description}


class AvatarFeature:
    def __init__(
        self,
        *,
        subjects: Subjects,
        images: ImageFeature,
        renderer: PromptRenderer,
        engine: JobEngine,
    ) -> None:
        self.subjects = subjects
        self.images = images
        self.renderer = renderer
        self.engine = engine

    async def generate(self, workspace_id: str, request: AvatarRequest) -> Job:
        """Renders the avatar-generation template for the subject and the user's request
        and starts an image job whose results become avatar candidates."""
        _check_text(request.request, "request", required=False)
        subject = await self.subjects.get(workspace_id, request.subject, "subject")
        rendered = await self.renderer.render(
            workspace_id,
            TemplateKind.AVATAR_GENERATION,
            {**subject_values(subject), "avatar_request": request.request.strip()},
        )
        return await self._submit(
            workspace_id,
            subject,
            request,
            rendered,
            kind=JobKind.AVATAR_GENERATION,
            feature=Feature.AVATAR_GENERATION,
            method="GenerateAvatar",
        )

    async def edit(self, workspace_id: str, request: AvatarRequest) -> Job:
        """Edits the subject's avatar, or one of its candidates, with the avatar-edit
        template (keep the identity, change only what was asked)."""
        _check_text(request.edit_request, "edit_request", required=True)
        if request.source_asset:
            parse_asset_name(request.source_asset, "source_asset")
        subject = await self.subjects.get(workspace_id, request.subject, "subject")
        source = request.source_asset or subject.avatar_asset
        if not source:
            raise FailedPrecondition(
                f"subjects/{subject.id} has no avatar to edit; accept one with AcceptAvatar, "
                "or name one of its candidates in source_asset",
                reason="SUBJECT_HAS_NO_AVATAR",
                metadata={"subject": f"subjects/{subject.id}"},
                precondition_violations=(
                    PreconditionViolation(
                        "AVATAR",
                        f"subjects/{subject.id}",
                        "the subject has no avatar and no source_asset was given",
                    ),
                ),
            )
        # The image must exist in the workspace (NOT_FOUND otherwise) ...
        await self.subjects.assets.get(workspace_id, source, "source_asset")
        # ... and be one of this subject's avatar images.
        previous_prompt = await self.subjects.repository.candidate_prompt(
            workspace_id, subject.id, source.removeprefix("assets/")
        )
        if previous_prompt is None and source != subject.avatar_asset:
            raise FailedPrecondition(
                f"{source} is not an avatar candidate of subjects/{subject.id}; edit one of "
                "the images GenerateAvatar or EditAvatar made for it, or its accepted avatar",
                reason="NOT_AN_AVATAR_CANDIDATE",
                metadata={
                    "subject": f"subjects/{subject.id}",
                    "asset": source,
                    "field": "source_asset",
                },
                precondition_violations=(
                    PreconditionViolation(
                        "AVATAR_CANDIDATE",
                        source,
                        f"not an avatar candidate of subjects/{subject.id}",
                    ),
                ),
            )
        rendered = await self.renderer.render(
            workspace_id,
            TemplateKind.AVATAR_EDIT,
            {
                **subject_values(subject),
                "current_avatar_prompt": previous_prompt or "",
                "edit_request": request.edit_request.strip(),
            },
        )
        return await self._submit(
            workspace_id,
            subject,
            request,
            rendered,
            kind=JobKind.AVATAR_EDIT,
            feature=Feature.AVATAR_EDIT,
            method="EditAvatar",
            source_asset=source,
        )

    async def accept(self, workspace_id: str, subject_name: str, asset_name: str) -> Subject:
        """Makes an image the subject's avatar. Any image of the workspace qualifies (an
        avatar candidate, or an uploaded picture); it is recorded as a candidate too. The
        previous avatar stays an asset and a candidate. Accepting the current avatar again
        changes nothing."""
        subject_id = parse_subject_name(subject_name, "subject")
        sha256 = parse_asset_name(asset_name, "asset")
        await self.subjects.get(workspace_id, subject_name, "subject")
        asset = await self.subjects.assets.get(workspace_id, asset_name, "asset")
        subject = await self.subjects.repository.accept_avatar(
            workspace_id,
            subject_id,
            sha256,
            prompt=asset.provenance.prompt,
            job_id=asset.provenance.job_id.removeprefix("jobs/"),
        )
        if subject is None:
            raise subject_not_found(subject_id, "subject")
        return subject

    # -- internals ---------------------------------------------------------------------

    async def _submit(
        self,
        workspace_id: str,
        subject: Subject,
        request: AvatarRequest,
        rendered: RenderedPrompt,
        *,
        kind: JobKind,
        feature: Feature,
        method: str,
        source_asset: str = "",
    ) -> Job:
        command = ImageCommand(
            prompt=rendered.text(),
            model=request.model,
            options=request.options,
            source_asset=source_asset,
        )
        planned = await self.images.prepare(workspace_id, command, feature)
        spec = AvatarSpec(
            image=planned.spec,
            subject_id=subject.id,
            template=TemplateUse(
                kind=rendered.kind.value,
                version=rendered.version,
                overridden=rendered.overridden,
            ),
        )
        job, _created = await self.engine.submit(
            NewJob(
                workspace_id=workspace_id,
                kind=kind,
                model_id=planned.model.model.id,
                provider_id=planned.model.model.provider,
                prompt=command.prompt,
                spec=spec,
                target=f"subjects/{subject.id}",
                request_id=request.request_id,
                # Retries compare what the client sent, not the rendered prompt.
                request_hash=request.fingerprint(method),
                warnings=planned.warnings,
                webhook=request.webhook,
            )
        )
        return job

    async def render(self, context: JobContext, spec: AvatarSpec) -> JobResult:
        """Runs an avatar job: the image, then its results recorded as candidates."""
        result = await self.images.render(context, spec.image)
        job = context.job
        recorded = await self.subjects.repository.add_candidates(
            job.workspace_id,
            spec.subject_id,
            [image.asset.removeprefix("assets/") for image in result.images],
            job_id=job.id,
            prompt=spec.image.prompt,
        )
        if not recorded:
            await context.warn(
                "SUBJECT_DELETED",
                f"subjects/{spec.subject_id} was deleted while the avatar was drawn; the "
                "images are kept as ordinary assets",
            )
        return result


def _check_text(value: str, field_name: str, *, required: bool) -> None:
    if required and not value.strip():
        raise InvalidArgument.field(field_name, "must not be empty", "REQUIRED")
    if len(value) > MAX_PROMPT_CHARS:
        raise InvalidArgument.field(
            field_name, f"is {len(value)} characters; at most {MAX_PROMPT_CHARS} are allowed"
        )
