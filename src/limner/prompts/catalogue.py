"""What each template kind is: its shipped default, its variables and its image slots.

Every variable a kind declares is passed to its template on every render; optional ones
fall back to their default (mostly the empty string, so ``{% if subject_description %}``
reads naturally), required ones must be supplied by the caller and must appear in any
override. An undeclared name is still an error (``StrictUndefined``), which catches typos.

Variables are strings unless their default says otherwise (``has_background`` is a bool).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from limner.prompts.api import TemplateKind


@dataclass(frozen=True)
class TemplateSpec:
    kind: TemplateKind
    file: str  # under limner/prompts/templates/
    title: str
    # Every variable the template receives, with the value used when the caller gives none
    # (required variables have no default: the caller must give them).
    optional: Mapping[str, Any]
    required: tuple[str, ...]
    image_slots: tuple[str, ...]
    # Fixed example values for previews, validation renders and golden tests.
    samples: Mapping[str, Any] = field(default_factory=dict)
    # Image-model prompts are plain text; writer prompts are role-tagged messages.
    messages: bool = False

    @property
    def variables(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)

    def with_defaults(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.optional, **values}

    def sample_values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {**self.optional, **self.samples, **(overrides or {})}


def _frozen(values: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(values)


_SUBJECT = {
    "subject_name": "Mara Quill",
    "subject_description": (
        "A lighthouse keeper in her forties: weathered face, grey-streaked auburn braid, "
        "oilskin coat over a knitted sweater, brass spyglass on a cord."
    ),
}

_RECENT = (
    "Mara: The lamp went dark an hour ago. Hand me the lantern.\n"
    "Tomas: Here. The stairs are slick, mind your step.\n"
    "Mara: Then hold the rope. We climb together."
)

CATALOGUE: Mapping[TemplateKind, TemplateSpec] = MappingProxyType(
    {
        TemplateKind.AVATAR_GENERATION: TemplateSpec(
            kind=TemplateKind.AVATAR_GENERATION,
            file="avatar_generation.default.j2",
            title="Avatar generation",
            optional=_frozen({"subject_name": "", "subject_description": ""}),
            required=("avatar_request",),
            image_slots=(),
            samples=_frozen(
                {**_SUBJECT, "avatar_request": "Calm half-smile, storm light from the left."}
            ),
        ),
        TemplateKind.AVATAR_EDIT: TemplateSpec(
            kind=TemplateKind.AVATAR_EDIT,
            file="avatar_edit.default.j2",
            title="Avatar edit",
            optional=_frozen(
                {"subject_name": "", "subject_description": "", "current_avatar_prompt": ""}
            ),
            required=("edit_request",),
            image_slots=(),
            samples=_frozen(
                {
                    **_SUBJECT,
                    "current_avatar_prompt": "Mara Quill, head and shoulders, storm light.",
                    "edit_request": "Add a red wool scarf; keep everything else.",
                }
            ),
        ),
        TemplateKind.SCENE_WRITER: TemplateSpec(
            kind=TemplateKind.SCENE_WRITER,
            file="scene_writer.default.j2",
            title="Scene writer",
            optional=_frozen(
                {
                    "character_name": "",
                    "character_description": "",
                    "character_notes": "",
                    "persona_name": "",
                    "persona_description": "",
                    "persona_notes": "",
                    "has_background": False,
                }
            ),
            required=("recent_messages", "scene_request"),
            image_slots=("character", "persona", "background"),
            samples=_frozen(
                {
                    "character_name": "Mara Quill",
                    "character_description": _SUBJECT["subject_description"],
                    "character_notes": (
                        "Lean, wind-worn build; auburn braid with grey streaks; dark green "
                        "oilskin, cream cable-knit sweater; brass spyglass. Never clean-cut."
                    ),
                    "persona_name": "Tomas",
                    "persona_description": "A young fisherman who rows supplies out to the light.",
                    "persona_notes": "Stocky; black curls; yellow rain jacket; bare hands.",
                    "recent_messages": _RECENT,
                    "scene_request": (
                        "Write one polished scene prompt for the latest moment, keeping Mara "
                        "Quill and Tomas visually distinct."
                    ),
                    "has_background": True,
                }
            ),
            messages=True,
        ),
        TemplateKind.SCENE_RENDER: TemplateSpec(
            kind=TemplateKind.SCENE_RENDER,
            file="scene_render.default.j2",
            title="Scene render",
            optional=_frozen({"reference_map": ""}),
            required=("prompt",),
            image_slots=(),
            samples=_frozen(
                {
                    "prompt": (
                        "Cinematic photograph of Mara Quill and Tomas climbing the spiral "
                        "stairs of a dark lighthouse, lantern light on wet stone."
                    ),
                    "reference_map": (
                        "1. Mara Quill (character)\n2. Tomas (persona)\n3. Background"
                    ),
                }
            ),
        ),
        TemplateKind.DESIGN_REFERENCE_WRITER: TemplateSpec(
            kind=TemplateKind.DESIGN_REFERENCE_WRITER,
            file="design_reference_writer.default.j2",
            title="Design reference writer",
            optional=_frozen({"subject_description": "", "current_notes": ""}),
            required=("subject_name",),
            image_slots=("avatar", "references"),
            samples=_frozen(
                {
                    **_SUBJECT,
                    "current_notes": "Auburn braid, green oilskin coat.",
                }
            ),
            messages=True,
        ),
    }
)


def spec(kind: TemplateKind) -> TemplateSpec:
    return CATALOGUE[kind]


@cache
def default_source(kind: TemplateKind) -> str:
    """The shipped default, read from package data (works from a wheel or a zip too)."""
    path = resources.files("limner.prompts").joinpath("templates", CATALOGUE[kind].file)
    return path.read_text(encoding="utf-8")


def version_of(source: str) -> str:
    """The template's version: the first 16 hex digits of the source's SHA-256."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
