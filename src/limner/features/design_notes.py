"""Drafting design notes: a writer model reads a subject's images and current notes and
writes concise, artist-facing visual notes, streamed as text deltas.

Everything that can be checked is checked before the job exists (the subject, a writer
model with text+image input and text output, at least one image). The job's spec holds the
rendered template (text and image-slot markers), the asset names that fill each slot, the
model and the flags: never image bytes. A restarted server runs it again from that spec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from limner.domain.jobs import Job, JobKind, JobResult, JobStage, JobWarning
from limner.domain.models import Feature
from limner.domain.specs import DesignNotesSpec, TemplateUse, WriterSpec
from limner.domain.subjects import Subject
from limner.domain.webhooks import WebhookSubscription
from limner.errors import (
    FailedPrecondition,
    PreconditionViolation,
    Unavailable,
)
from limner.features import writing
from limner.features.avatars import subject_values
from limner.features.subjects import Subjects
from limner.jobs import JobContext, JobEngine, NewJob
from limner.prompts.api import PromptRenderer, TemplateKind
from limner.registry import ModelCatalog

MAX_OUTPUT_TOKENS = 1024


@dataclass(frozen=True, kw_only=True)
class DraftRequest:
    subject: str
    model: str = ""
    save_on_completion: bool = False
    request_id: str = ""
    webhook: WebhookSubscription | None = None

    def fingerprint(self) -> str:
        data: list[object] = [
            self.subject,
            self.model.removeprefix("models/"),
            self.save_on_completion,
        ]
        if self.webhook is not None:
            data.append(self.webhook.to_json())
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def slot_images(subject: Subject) -> dict[str, list[str]]:
    """Which images fill the design-reference template's slots: ``avatar`` is the avatar,
    ``references`` the reference images (the avatar is not sent twice)."""
    avatar = [subject.avatar_asset] if subject.avatar_asset else []
    references = [name for name in subject.reference_assets if name not in avatar]
    return {"avatar": avatar, "references": references}


class DesignNotesFeature:
    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        engine: JobEngine,
        subjects: Subjects,
        renderer: PromptRenderer,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.subjects = subjects
        self.renderer = renderer

    async def draft(self, workspace_id: str, request: DraftRequest) -> Job:
        subject = await self.subjects.get(workspace_id, request.subject, "subject")
        writer, _caveats = await self.catalog.resolve_writer(
            workspace_id, Feature.DESIGN_REFERENCE_WRITER, request.model, field="model"
        )
        model = writer.model
        anchors = subject.identity_anchors()
        if not anchors:
            raise FailedPrecondition(
                f"subjects/{subject.id} has no image to describe: accept an avatar "
                "(GenerateAvatar, then AcceptAvatar) or add a reference image "
                "(UploadImage, then AddReferenceImage) first",
                reason="SUBJECT_HAS_NO_IMAGES",
                metadata={"subject": f"subjects/{subject.id}"},
                precondition_violations=(
                    PreconditionViolation(
                        "SUBJECT_IMAGES",
                        f"subjects/{subject.id}",
                        "the subject has neither an avatar nor reference images",
                    ),
                ),
            )
        slots = slot_images(subject)
        for slot, names in slots.items():
            for index, name in enumerate(names):
                # A deleted asset fails here, before the job exists, not halfway through it.
                await self.subjects.assets.get(workspace_id, name, f"{slot}[{index}]")
        rendered = await self.renderer.render(
            workspace_id,
            TemplateKind.DESIGN_REFERENCE_WRITER,
            {**subject_values(subject), "current_notes": subject.design_notes},
        )
        warnings: list[JobWarning] = []
        if not subject.reference_assets:
            # identity_anchors() fell back to the avatar: say so on the job.
            warnings.append(
                JobWarning(
                    "AVATAR_FALLBACK",
                    f"subjects/{subject.id} has no reference images; the writer describes "
                    "its avatar alone (add reference images for sturdier notes)",
                )
            )
        placed = set(rendered.image_slots())
        unplaced = [name for name, assets in slots.items() if assets and name not in placed]
        if unplaced:
            warnings.append(
                JobWarning(
                    "IMAGE_SLOT_MISSING",
                    f"the design-reference-writer template places no {', '.join(unplaced)} "
                    "image slot, so those images are not sent",
                )
            )
        if not any(slots[name] for name in placed if name in slots):
            raise FailedPrecondition(
                "the design-reference-writer template places none of the subject's images "
                "(image slots avatar and references); reset the template or add "
                "{{ image('avatar') }}",
                reason="TEMPLATE_HAS_NO_IMAGE_SLOT",
                metadata={"template": f"promptTemplates/{TemplateKind.DESIGN_REFERENCE_WRITER}"},
            )
        spec = DesignNotesSpec(
            subject_id=subject.id,
            writer=WriterSpec(
                model_id=model.id,
                messages=writing.planned_messages(rendered),
                slots={name: tuple(slots[name]) for name in sorted(placed) if name in slots},
            ),
            template=TemplateUse(
                kind=rendered.kind.value, version=rendered.version, overridden=rendered.overridden
            ),
            save_on_completion=request.save_on_completion,
        )
        job, _created = await self.engine.submit(
            NewJob(
                workspace_id=workspace_id,
                kind=JobKind.DESIGN_NOTES,
                model_id=model.id,
                provider_id=model.provider,
                prompt=rendered.text(),
                spec=spec,
                target=f"subjects/{subject.id}",
                request_id=request.request_id,
                request_hash=request.fingerprint(),
                warnings=tuple(warnings),
                webhook=request.webhook,
            )
        )
        return job

    async def render(self, context: JobContext, spec: DesignNotesSpec) -> JobResult:
        """Runs a design-notes job: the writer reads the images, the notes are cleaned and,
        if asked for, saved on the subject."""
        workspace_id = context.job.workspace_id
        writer = await self.catalog.writer_model(workspace_id, spec.writer.model_id)
        model = writer.model
        output = await writing.write(
            context,
            writer=writer,
            spec=spec.writer,
            assets=self.subjects.assets,
            max_output_tokens=MAX_OUTPUT_TOKENS,
        )
        text = writing.clean_text(output.text)
        if not text:
            raise Unavailable(
                f"models/{model.id} answered with no design notes; try again or pick another "
                "writer model",
                reason="WRITER_RETURNED_NO_TEXT",
                metadata={"model": f"models/{model.id}"},
            )
        if spec.save_on_completion:
            await context.progress(JobStage.STORING, message="saving the notes on the subject")
            saved = await self.subjects.save_design_notes(workspace_id, spec.subject_id, text)
            if not saved:
                await context.warn(
                    "SUBJECT_DELETED",
                    f"subjects/{spec.subject_id} was deleted meanwhile; the notes were not saved",
                )
        return JobResult(text=text)
