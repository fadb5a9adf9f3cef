"""Stored images (ARCHITECTURE §1.6): content-addressed, probed, with provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AssetSource(StrEnum):
    UPLOAD = "upload"
    GENERATED = "generated"
    PREVIEW = "preview"
    CHAT = "chat"


@dataclass(frozen=True, kw_only=True)
class Provenance:
    source: AssetSource
    job_id: str = ""
    model_id: str = ""
    prompt: str = ""
    seed: int | None = None
    reference_assets: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Asset:
    sha256: str
    mime_type: str
    width: int
    height: int
    size_bytes: int
    provenance: Provenance
    create_time: datetime
    display_name: str = ""
    workspace_id: str = field(default="", compare=False)
