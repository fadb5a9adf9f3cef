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


@dataclass(frozen=True)
class AssetUse:
    """Something in a workspace that shows an asset: ``resource`` (``subjects/{id}``,
    ``chats/{id}``, ``chats/{id}/messages/{id}``) and the role the image plays there."""

    resource: str
    role: str


@dataclass(frozen=True)
class AssetDeletion:
    """What DeleteAsset did: nothing if the workspace had no such asset or it is in use
    (then ``in_use`` says where), else the row is gone and ``remaining`` workspaces still
    hold the bytes."""

    existed: bool
    remaining: int = 0
    in_use: tuple[AssetUse, ...] = ()
