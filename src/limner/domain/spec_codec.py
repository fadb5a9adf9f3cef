"""JSON round-trips for job specs, with their version.

A spec is stored with its job and read back by whichever server runs the job, possibly a
newer one after an upgrade. Each document carries ``"version"``; a document without one
was written before specs were typed (version 0: one flat dict per job, image fields at the
top level beside the kind's own keys) and is read into today's types here, so jobs stored
by an older server still resume, and their events still replay.

Explicit field lists rather than ``dataclasses.asdict``: a renamed attribute must not
silently rename a stored key.
"""

from __future__ import annotations

from typing import Any

from limner.domain.jobs import JobKind
from limner.domain.models import SceneMode
from limner.domain.specs import (
    AvatarSpec,
    DesignNotesSpec,
    ImageSpec,
    JobSpec,
    PromptMessage,
    PromptPart,
    SceneSpec,
    TemplateUse,
    WriterSpec,
)

SPEC_VERSION = 1

Json = dict[str, Any]


class UnknownSpecVersion(ValueError):
    """A spec written by a newer server than this one."""


# -- parts ------------------------------------------------------------------------------


def image_to_json(spec: ImageSpec) -> Json:
    return {
        "prompt": spec.prompt,
        "model_id": spec.model_id,
        "width": spec.width,
        "height": spec.height,
        "seed": spec.seed,
        "seed_supported": spec.seed_supported,
        "image_count": spec.image_count,
        "aspect_ratio": spec.aspect_ratio,
        "negative_prompt": spec.negative_prompt,
        "steps": spec.steps,
        "guidance_scale": spec.guidance_scale,
        "sampler": spec.sampler,
        "source_asset": spec.source_asset,
        "mask_asset": spec.mask_asset,
        "strength": spec.strength,
        "reference_assets": list(spec.reference_assets),
    }


def image_from_json(data: Json) -> ImageSpec:
    """Reads an ``image`` object (version 0 kept the same keys at its top level)."""
    return ImageSpec(
        prompt=data["prompt"],
        model_id=data["model_id"],
        width=data["width"],
        height=data["height"],
        seed=data["seed"],
        seed_supported=data["seed_supported"],
        image_count=data.get("image_count", 1),
        aspect_ratio=data.get("aspect_ratio", ""),
        negative_prompt=data.get("negative_prompt", ""),
        steps=data.get("steps"),
        guidance_scale=data.get("guidance_scale"),
        sampler=data.get("sampler", ""),
        source_asset=data.get("source_asset", ""),
        mask_asset=data.get("mask_asset", ""),
        strength=data.get("strength"),
        reference_assets=tuple(data.get("reference_assets", ())),
    )


def _template_to_json(template: TemplateUse) -> Json:
    return {"kind": template.kind, "version": template.version, "overridden": template.overridden}


def _template_from_json(data: Json) -> TemplateUse:
    return TemplateUse(
        kind=data["kind"], version=data["version"], overridden=data.get("overridden", False)
    )


def _messages_to_json(messages: tuple[PromptMessage, ...]) -> list[Json]:
    return [
        {
            "role": message.role,
            "parts": [
                {"slot": part.slot} if part.slot else {"text": part.text} for part in message.parts
            ],
        }
        for message in messages
    ]


def _messages_from_json(data: list[Json]) -> tuple[PromptMessage, ...]:
    return tuple(
        PromptMessage(
            message["role"],
            tuple(
                PromptPart(slot=part["slot"]) if "slot" in part else PromptPart(text=part["text"])
                for part in message["parts"]
            ),
        )
        for message in data
    )


def _slots_from_json(data: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(assets) for name, assets in data.items()}


def _writer_to_json(writer: WriterSpec) -> Json:
    return {
        "model_id": writer.model_id,
        "messages": _messages_to_json(writer.messages),
        "slots": {name: list(assets) for name, assets in writer.slots.items()},
    }


def _writer_from_json(data: Json) -> WriterSpec:
    return WriterSpec(
        model_id=data["model_id"],
        messages=_messages_from_json(data["messages"]),
        slots=_slots_from_json(data.get("slots", {})),
    )


# -- whole specs ------------------------------------------------------------------------


def spec_to_json(spec: JobSpec) -> Json:
    """The stored form of a spec (always the current version)."""
    match spec:
        case ImageSpec():
            return {"version": SPEC_VERSION, "image": image_to_json(spec)}
        case AvatarSpec():
            return {
                "version": SPEC_VERSION,
                "image": image_to_json(spec.image),
                "subject_id": spec.subject_id,
                "template": _template_to_json(spec.template),
            }
        case SceneSpec():
            return {
                "version": SPEC_VERSION,
                "image": image_to_json(spec.image),
                "scene_id": spec.scene_id,
                "chat_id": spec.chat_id,
                "message_id": spec.message_id,
                "attachment_id": spec.attachment_id,
                "mode": spec.mode.value,
                "given_prompt": spec.given_prompt,
                "directive": spec.directive,
                "writer": _writer_to_json(spec.writer) if spec.writer is not None else None,
                "reference_map": spec.reference_map,
                "template_version": spec.template_version,
                "approved_prompt": spec.approved_prompt,
            }
        case DesignNotesSpec():
            return {
                "version": SPEC_VERSION,
                "subject_id": spec.subject_id,
                "writer": _writer_to_json(spec.writer),
                "template": _template_to_json(spec.template),
                "save_on_completion": spec.save_on_completion,
            }
    raise TypeError(f"unknown job spec {spec!r}")


def spec_from_json(kind: JobKind, data: Json) -> JobSpec:
    """Reads a stored spec of a job of ``kind``, whichever version wrote it."""
    version = data.get("version", 0)
    if version == 0:
        data = _upgrade_version_0(kind, data)
    elif version != SPEC_VERSION:
        raise UnknownSpecVersion(
            f"a {kind.value} job spec of version {version} was written by a newer server "
            f"(this one reads versions 0 to {SPEC_VERSION})"
        )
    match kind:
        case JobKind.IMAGE_GENERATION | JobKind.IMAGE_EDIT:
            return image_from_json(data["image"])
        case JobKind.AVATAR_GENERATION | JobKind.AVATAR_EDIT:
            return AvatarSpec(
                image=image_from_json(data["image"]),
                subject_id=data["subject_id"],
                template=_template_from_json(data["template"]),
            )
        case JobKind.SCENE:
            writer = data.get("writer")
            return SceneSpec(
                image=image_from_json(data["image"]),
                scene_id=data["scene_id"],
                chat_id=data["chat_id"],
                message_id=data["message_id"],
                attachment_id=data["attachment_id"],
                mode=SceneMode(data["mode"]),
                given_prompt=data.get("given_prompt", ""),
                directive=data.get("directive", ""),
                writer=_writer_from_json(writer) if writer is not None else None,
                reference_map=data.get("reference_map", ""),
                template_version=data.get("template_version", ""),
                approved_prompt=data.get("approved_prompt", ""),
            )
        case JobKind.DESIGN_NOTES:
            return DesignNotesSpec(
                subject_id=data["subject_id"],
                writer=_writer_from_json(data["writer"]),
                template=_template_from_json(data["template"]),
                save_on_completion=data.get("save_on_completion", False),
            )
    raise ValueError(f"unknown job kind {kind!r}")


def _upgrade_version_0(kind: JobKind, data: Json) -> Json:
    """The untyped specs of servers before version 1 (one flat dict per job, the image
    fields at the top level) as a version 1 document."""
    image = {key: data[key] for key in _IMAGE_KEYS_V0 if key in data}
    match kind:
        case JobKind.IMAGE_GENERATION | JobKind.IMAGE_EDIT:
            return {"image": image}
        case JobKind.AVATAR_GENERATION | JobKind.AVATAR_EDIT:
            return {
                "image": image,
                "subject_id": data["subject_id"],
                "template": _template_v0(data, data.get("template", "")),
            }
        case JobKind.SCENE:
            writer_model = data.get("writer_model_id", "")
            writer = {
                "model_id": writer_model,
                "messages": data.get("writer_messages", []),
                "slots": data.get("writer_slots", {}),
            }
            return {
                **{key: data[key] for key in _SCENE_KEYS_V0 if key in data},
                "image": image,
                "writer": writer if writer_model else None,
            }
        case JobKind.DESIGN_NOTES:
            return {
                "subject_id": data["subject_id"],
                "writer": {
                    "model_id": data["model_id"],
                    "messages": data["messages"],
                    "slots": data.get("slots", {}),
                },
                "template": _template_v0(data, "design-reference-writer"),
                "save_on_completion": data.get("save_on_completion", False),
            }
    raise ValueError(f"unknown job kind {kind!r}")


_IMAGE_KEYS_V0 = (
    "prompt",
    "model_id",
    "width",
    "height",
    "seed",
    "seed_supported",
    "image_count",
    "aspect_ratio",
    "negative_prompt",
    "steps",
    "guidance_scale",
    "sampler",
    "source_asset",
    "mask_asset",
    "strength",
    "reference_assets",
)
_SCENE_KEYS_V0 = (
    "scene_id",
    "chat_id",
    "message_id",
    "attachment_id",
    "mode",
    "given_prompt",
    "directive",
    "reference_map",
    "template_version",
    "approved_prompt",
)


def _template_v0(data: Json, kind: str) -> Json:
    return {
        "kind": kind,
        "version": data.get("template_version", ""),
        "overridden": data.get("template_overridden", False),
    }
