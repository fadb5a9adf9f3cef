"""Chats, their messages and attachments, and scenes (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    SCENE = "scene"


class SceneState(StrEnum):
    DRAFTING = "drafting"
    AWAITING_APPROVAL = "awaiting_approval"
    RENDERING = "rendering"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
class Chat:
    id: str
    workspace_id: str
    character_id: str
    persona_id: str = ""
    background_asset: str = ""  # "assets/{sha256}" or ""
    display_name: str = ""
    create_time: datetime

    @property
    def name(self) -> str:
        return f"chats/{self.id}"


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """An image on a message. A placeholder has a job and no asset yet."""

    id: str
    asset: str = ""  # "assets/{sha256}" or ""
    job_id: str = ""
    scene_id: str = ""
    placeholder: bool = False


@dataclass(frozen=True, kw_only=True)
class Message:
    id: str
    chat_id: str
    workspace_id: str
    role: MessageRole
    text: str
    create_time: datetime
    attachments: tuple[Attachment, ...] = ()

    @property
    def name(self) -> str:
        return f"chats/{self.chat_id}/messages/{self.id}"


@dataclass(frozen=True, kw_only=True)
class Scene:
    """A scene image for a message, with its provenance. ``state`` is the phase the scene
    itself recorded; the public state also depends on its job (see ``features.scenes``)."""

    id: str
    workspace_id: str
    chat_id: str
    message_id: str
    state: SceneState
    job_id: str = ""
    context_messages: tuple[str, ...] = ()
    writer_model: str = ""  # model id, "" when the prompt was given
    drafted_prompt: str = ""
    edited_prompt: str = ""
    image_model: str = ""
    seed: int | None = None
    reference_assets: tuple[str, ...] = ()
    template_version: str = ""
    result_asset: str = ""
    attachment_id: str = ""
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        return f"scenes/{self.id}"

    @property
    def message_name(self) -> str:
        return f"chats/{self.chat_id}/messages/{self.message_id}"
