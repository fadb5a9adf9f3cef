"""What the rest of Limner sees of prompt templates (implemented in ``limner.prompts``).

A template renders to one or more messages. Text comes from Jinja2; two functions available
inside every template place structure that plain text cannot carry:

- ``{{ message("system") }}`` / ``{{ message("user") }}`` starts a new message with that
  role (text before the first call belongs to a ``user`` message);
- ``{{ image("avatar") }}`` places an image slot (``avatar``, ``references``, ``character``,
  ``persona``, ``background``) at that point, so a multimodal writer receives the images
  exactly where the template puts them.

Image-model templates (avatar generation/edit, scene render) use neither and are read with
``RenderedPrompt.text()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

IMAGE_SLOTS = ("avatar", "references", "character", "persona", "background")


class TemplateKind(StrEnum):
    """Also the template's resource id: ``promptTemplates/{kind}``."""

    AVATAR_GENERATION = "avatar-generation"
    AVATAR_EDIT = "avatar-edit"
    SCENE_WRITER = "scene-writer"
    SCENE_RENDER = "scene-render"
    DESIGN_REFERENCE_WRITER = "design-reference-writer"


@dataclass(frozen=True)
class ImageSlot:
    name: str


@dataclass(frozen=True)
class RenderedMessage:
    role: str  # "system" or "user"
    parts: tuple[str | ImageSlot, ...]

    def text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str)).strip()


@dataclass(frozen=True)
class RenderedPrompt:
    kind: TemplateKind
    messages: tuple[RenderedMessage, ...]
    version: str  # content hash of the template source used
    overridden: bool

    def text(self) -> str:
        """All text, messages separated by blank lines (for image-model prompts)."""
        return "\n\n".join(m.text() for m in self.messages if m.text())

    def image_slots(self) -> list[str]:
        return [p.name for m in self.messages for p in m.parts if isinstance(p, ImageSlot)]


class PromptRenderer(Protocol):
    async def render(
        self, workspace_id: str, kind: TemplateKind, values: Mapping[str, Any]
    ) -> RenderedPrompt:
        """Renders the workspace's template (its override, else the shipped default) with
        ``values``. Raises ``InvalidArgument`` naming a missing variable, never a Jinja
        traceback."""
        ...


@dataclass(frozen=True)
class StoredTemplate:
    """A workspace's override as stored."""

    source: str
    update_time: datetime


class TemplateOverrides(Protocol):
    """Where workspace overrides live (``limner.persistence.templates`` implements it)."""

    async def get(self, workspace_id: str, kind: TemplateKind) -> StoredTemplate | None: ...

    async def list(self, workspace_id: str) -> dict[TemplateKind, StoredTemplate]: ...

    async def put(self, workspace_id: str, kind: TemplateKind, source: str) -> StoredTemplate: ...

    async def delete(self, workspace_id: str, kind: TemplateKind) -> bool: ...
