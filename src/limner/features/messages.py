"""CreateMessage: store a chat message, then handle its scene directive.

An assistant reply that ends in an ``<img>`` directive (``features.directives``) is handled
by the workspace's scene mode: AUTO drafts and renders a scene, ASK_FIRST drafts and waits,
MANUAL only strips the tag. Everything that can fail is checked before the message is
stored: a bad image, a refused download, or (auto / ask first) a workspace whose models
cannot draft and render a scene. So a failed CreateMessage stored nothing and can simply be
retried.
"""

from __future__ import annotations

from dataclasses import dataclass

from limner.domain.chats import Message, MessageRole
from limner.domain.models import SceneMode
from limner.features.chats import Chats, MessageDraft, validate_message
from limner.features.directives import extract_directive
from limner.features.scenes import SceneFeature
from limner.registry import ModelCatalog


@dataclass(frozen=True)
class CreatedMessage:
    message: Message
    scene: str = ""  # "scenes/{id}" when the directive started one


class MessagePosting:
    def __init__(self, *, chats: Chats, scenes: SceneFeature, catalog: ModelCatalog) -> None:
        self.chats = chats
        self.scenes = scenes
        self.catalog = catalog

    async def create_message(self, workspace_id: str, draft: MessageDraft) -> CreatedMessage:
        validate_message(draft)
        chat = await self.chats.get_chat(workspace_id, draft.chat, "parent")
        earlier = await self.chats.earlier_message(workspace_id, draft)
        if earlier is not None:
            return await self._created(workspace_id, earlier)
        text, prompt = draft.text, None
        if draft.role is MessageRole.ASSISTANT:
            text, prompt = extract_directive(draft.text)
        mode = SceneMode.MANUAL
        if prompt is not None:
            mode = (await self.catalog.image_settings(workspace_id)).scene_mode
            if mode is not SceneMode.MANUAL:
                await self.scenes.check_ready(workspace_id, chat)
        stored, created = await self.chats.store_message(workspace_id, chat, draft, text)
        if not created:
            return await self._created(workspace_id, stored)
        if prompt is None or mode is SceneMode.MANUAL:
            return CreatedMessage(stored)
        scene = await self.scenes.start_for_directive(workspace_id, chat, stored, prompt, mode)
        # The scene put its placeholder attachment on the message.
        refreshed = await self.chats.repository.get_message(workspace_id, chat.id, stored.id)
        return CreatedMessage(refreshed or stored, scene.name)

    async def _created(self, workspace_id: str, message: Message) -> CreatedMessage:
        """A retried request: the message it made, and the scene that message started."""
        return CreatedMessage(message, await self.scenes.first_of(workspace_id, message.id))
