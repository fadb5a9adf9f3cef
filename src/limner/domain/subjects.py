"""Subjects (characters and personas) and their identity anchors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MAX_REFERENCE_IMAGES = 8


class SubjectKind(StrEnum):
    CHARACTER = "character"
    PERSONA = "persona"


@dataclass(kw_only=True)
class Subject:
    id: str
    workspace_id: str
    kind: SubjectKind
    display_name: str
    description: str = ""
    design_notes: str = ""
    avatar_asset: str = ""  # "assets/{sha256}" or ""
    reference_assets: list[str] = field(default_factory=list)  # ordered
    create_time: datetime
    update_time: datetime

    def identity_anchors(self) -> list[str]:
        """The images that represent this subject: its reference images, else its avatar
        (the fallback), else none. Every feature that sends a subject's look to a model
        asks this one function."""
        if self.reference_assets:
            return list(self.reference_assets)
        return [self.avatar_asset] if self.avatar_asset else []
