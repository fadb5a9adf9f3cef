"""Chats and their messages: the context a scene writer reads.

A message is stored with the images a chat model returned, as assets attached to it.
Handling an assistant reply's scene directive is ``features.messages``, which composes
chats and scenes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from limner.assets.fetch import UrlFetcher
from limner.domain.assets import AssetSource, Provenance
from limner.domain.chats import Attachment, Chat, Message, MessageRole
from limner.errors import FieldViolation, InvalidArgument, NotFound
from limner.features.assets import AssetLibrary, parse_asset_name
from limner.features.subjects import Subjects, parse_subject_name

MAX_TEXT_CHARS = 100_000
MAX_DISPLAY_NAME_CHARS = 256
MAX_RETURNED_IMAGES = 8
_ID = r"([A-Za-z0-9][A-Za-z0-9_-]{0,62})"
CHAT_NAME = re.compile(rf"^chats/{_ID}$")
MESSAGE_NAME = re.compile(rf"^chats/{_ID}/messages/{_ID}$")


class ChatRepository(Protocol):
    async def create_chat(
        self, chat: Chat, *, request_id: str, request_hash: str
    ) -> tuple[Chat | None, bool]: ...
    async def get_chat(self, workspace_id: str, chat_id: str) -> Chat | None: ...
    async def list_chats(
        self, workspace_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[Chat], str]: ...
    async def delete_chat(self, workspace_id: str, chat_id: str) -> bool: ...
    async def create_message(
        self, message: Message, *, request_id: str, request_hash: str
    ) -> tuple[Message | None, bool]: ...
    async def find_message_request(
        self, workspace_id: str, request_id: str, request_hash: str
    ) -> str | None: ...
    async def get_message(
        self, workspace_id: str, chat_id: str, message_id: str
    ) -> Message | None: ...
    async def list_messages(
        self, workspace_id: str, chat_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[Message], str]: ...
    async def context_window(
        self, workspace_id: str, chat_id: str, message_id: str, size: int
    ) -> list[Message]: ...
    async def put_attachment(
        self, workspace_id: str, message_id: str, attachment: Attachment, *, overwrite: bool
    ) -> bool: ...
    async def remove_placeholder(self, workspace_id: str, attachment_id: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ChatDraft:
    character: str
    persona: str = ""
    background_asset: str = ""
    display_name: str = ""


@dataclass(frozen=True, kw_only=True)
class ReturnedImage:
    """An image a chat model returned: exactly one of the three is set."""

    content: bytes = b""
    data_url: str = ""
    url: str = ""

    def digest(self) -> str:
        if self.content:
            return "content:" + hashlib.sha256(self.content).hexdigest()
        if self.data_url:
            return "data:" + hashlib.sha256(self.data_url.encode()).hexdigest()
        return "url:" + self.url


@dataclass(frozen=True, kw_only=True)
class MessageDraft:
    chat: str
    role: MessageRole | None
    text: str = ""
    returned_images: tuple[ReturnedImage, ...] = ()
    request_id: str = ""

    def fingerprint(self) -> str:
        data = [
            self.chat,
            self.role.value if self.role else "",
            self.text,
            [image.digest() for image in self.returned_images],
        ]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def parse_chat_name(name: str, field_name: str) -> str:
    if not name:
        raise InvalidArgument.field(field_name, "is required: chats/{chat}", "REQUIRED")
    match = CHAT_NAME.match(name)
    if match is None:
        raise InvalidArgument.field(
            field_name, f"{name!r} is not a chat name of the form chats/{{chat}}"
        )
    return match.group(1)


def parse_message_name(name: str, field_name: str) -> tuple[str, str]:
    if not name:
        raise InvalidArgument.field(
            field_name, "is required: chats/{chat}/messages/{message}", "REQUIRED"
        )
    match = MESSAGE_NAME.match(name)
    if match is None:
        raise InvalidArgument.field(
            field_name,
            f"{name!r} is not a message name of the form chats/{{chat}}/messages/{{message}}",
        )
    return match.group(1), match.group(2)


def chat_not_found(chat_id: str, field_name: str) -> NotFound:
    return NotFound(
        f"chats/{chat_id} not found in this workspace; ListChats shows the chats you can use",
        reason="CHAT_NOT_FOUND",
        metadata={"chat": f"chats/{chat_id}", "field": field_name},
    )


def message_not_found(name: str, field_name: str) -> NotFound:
    return NotFound(
        f"{name} not found in this workspace; ListMessages shows a chat's messages",
        reason="MESSAGE_NOT_FOUND",
        metadata={"message": name, "field": field_name},
    )


class Chats:
    def __init__(
        self,
        *,
        repository: ChatRepository,
        subjects: Subjects,
        assets: AssetLibrary,
        fetcher: UrlFetcher,
    ) -> None:
        self.repository = repository
        self.subjects = subjects
        self.assets = assets
        self.fetcher = fetcher

    # -- chats -------------------------------------------------------------------------

    async def create_chat(self, workspace_id: str, draft: ChatDraft, request_id: str) -> Chat:
        character_id = parse_subject_name(draft.character, "chat.character")
        persona_id = parse_subject_name(draft.persona, "chat.persona") if draft.persona else ""
        if draft.background_asset:
            parse_asset_name(draft.background_asset, "chat.background_asset")
        if len(draft.display_name) > MAX_DISPLAY_NAME_CHARS:
            raise InvalidArgument.field(
                "chat.display_name", f"must be at most {MAX_DISPLAY_NAME_CHARS} characters"
            )
        await self.subjects.get(workspace_id, draft.character, "chat.character")
        if draft.persona:
            await self.subjects.get(workspace_id, draft.persona, "chat.persona")
        if draft.background_asset:
            await self.assets.get(workspace_id, draft.background_asset, "chat.background_asset")
        chat = Chat(
            id=uuid.uuid4().hex,
            workspace_id=workspace_id,
            character_id=character_id,
            persona_id=persona_id,
            background_asset=draft.background_asset,
            display_name=draft.display_name.strip(),
            create_time=datetime.now(UTC),
        )
        request_hash = hashlib.sha256(
            json.dumps(
                [character_id, persona_id, draft.background_asset, chat.display_name]
            ).encode()
        ).hexdigest()
        stored, _created = await self.repository.create_chat(
            chat, request_id=request_id, request_hash=request_hash
        )
        if stored is None:
            raise NotFound(
                f"the chat request_id {request_id!r} created has been deleted since; use a "
                "new request_id to create it again",
                reason="CHAT_NOT_FOUND",
                metadata={"requestId": request_id},
            )
        return stored

    async def get_chat(self, workspace_id: str, name: str, field_name: str = "name") -> Chat:
        chat_id = parse_chat_name(name, field_name)
        chat = await self.repository.get_chat(workspace_id, chat_id)
        if chat is None:
            raise chat_not_found(chat_id, field_name)
        return chat

    async def list_chats(
        self, workspace_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[Chat], str]:
        return await self.repository.list_chats(
            workspace_id, page_size=page_size, page_token=page_token
        )

    async def delete_chat(self, workspace_id: str, name: str) -> None:
        chat_id = parse_chat_name(name, "name")
        if not await self.repository.delete_chat(workspace_id, chat_id):
            raise chat_not_found(chat_id, "name")

    # -- messages ----------------------------------------------------------------------

    async def get_message(self, workspace_id: str, name: str, field_name: str) -> Message:
        chat_id, message_id = parse_message_name(name, field_name)
        message = await self.repository.get_message(workspace_id, chat_id, message_id)
        if message is None:
            raise message_not_found(name, field_name)
        return message

    async def list_messages(
        self, workspace_id: str, chat_name: str, *, page_size: int, page_token: str
    ) -> tuple[list[Message], str]:
        chat = await self.get_chat(workspace_id, chat_name, "parent")
        return await self.repository.list_messages(
            workspace_id, chat.id, page_size=page_size, page_token=page_token
        )

    async def earlier_message(self, workspace_id: str, draft: MessageDraft) -> Message | None:
        """The message an earlier request with the same ``request_id`` created, if any
        (a different request under that id raises ``RequestIdConflict``)."""
        if not draft.request_id:
            return None
        earlier = await self.repository.find_message_request(
            workspace_id, draft.request_id, draft.fingerprint()
        )
        return None if earlier is None else await self._earlier(workspace_id, earlier, draft)

    async def store_message(
        self, workspace_id: str, chat: Chat, draft: MessageDraft, text: str
    ) -> tuple[Message, bool]:
        """Stores the images a chat model returned as assets, then the message with them
        attached; ``False`` when a concurrent request with the same ``request_id`` stored
        it first (that message is returned)."""
        assert draft.role is not None
        attachments = [
            Attachment(id=uuid.uuid4().hex, asset=await self._store(workspace_id, image, index))
            for index, image in enumerate(draft.returned_images)
        ]
        message = Message(
            id=uuid.uuid4().hex,
            chat_id=chat.id,
            workspace_id=workspace_id,
            role=draft.role,
            text=text,
            create_time=datetime.now(UTC),
            attachments=tuple(attachments),
        )
        stored, created = await self.repository.create_message(
            message, request_id=draft.request_id, request_hash=draft.fingerprint()
        )
        if stored is None:
            if created:
                raise chat_not_found(chat.id, "parent")
            raise message_not_found(f"the message request_id {draft.request_id!r} made", "parent")
        if not created:
            return await self._earlier(workspace_id, stored.name, draft), False
        return stored, True

    async def _earlier(self, workspace_id: str, name: str, draft: MessageDraft) -> Message:
        chat_id, message_id = name.split("/")[1], name.split("/")[3]
        message = await self.repository.get_message(workspace_id, chat_id, message_id)
        if message is None:
            raise NotFound(
                f"the message request_id {draft.request_id!r} created has been deleted since; "
                "use a new request_id to create it again",
                reason="MESSAGE_NOT_FOUND",
                metadata={"requestId": draft.request_id},
            )
        return message

    async def _store(self, workspace_id: str, image: ReturnedImage, index: int) -> str:
        """Stores one returned image (source CHAT) and returns its asset name. Hosted URLs
        are downloaded here, with the fetcher's address, size and time guards."""
        field_name = f"returned_images[{index}]"
        if image.content:
            data, field_name = image.content, f"{field_name}.content"
        elif image.data_url:
            data, field_name = _decode_data_url(image.data_url, f"{field_name}.data_url")
        else:
            data, field_name = await self.fetcher.fetch(image.url), f"{field_name}.url"
        asset, _new = await self.assets.store(
            workspace_id, data, Provenance(source=AssetSource.CHAT), field=field_name
        )
        return f"assets/{asset.sha256}"


def _decode_data_url(value: str, field_name: str) -> tuple[bytes, str]:
    header, comma, body = value.partition(",")
    if not header.startswith("data:") or not comma or not header.endswith(";base64"):
        raise InvalidArgument.field(
            field_name, "must be a base64 data URL: data:image/<type>;base64,<data>"
        )
    try:
        return base64.b64decode(body, validate=True), field_name
    except (binascii.Error, ValueError):
        raise InvalidArgument.field(field_name, "is not valid base64") from None


def validate_message(draft: MessageDraft) -> None:
    violations: list[FieldViolation] = []
    if draft.role is None:
        violations.append(
            FieldViolation(
                "message.role", "is required: user, assistant, system or scene", "REQUIRED"
            )
        )
    if len(draft.text) > MAX_TEXT_CHARS:
        violations.append(
            FieldViolation("message.text", f"must be at most {MAX_TEXT_CHARS} characters")
        )
    if len(draft.returned_images) > MAX_RETURNED_IMAGES:
        violations.append(
            FieldViolation("returned_images", f"at most {MAX_RETURNED_IMAGES} images per message")
        )
    for index, image in enumerate(draft.returned_images):
        if not (image.content or image.data_url or image.url):
            violations.append(
                FieldViolation(
                    f"returned_images[{index}]", "set one of content, data_url or url", "REQUIRED"
                )
            )
        elif image.url and not image.url.startswith(("http://", "https://")):
            violations.append(
                FieldViolation(f"returned_images[{index}].url", "must be an http(s) URL")
            )
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise InvalidArgument(
            f"{first.field}: {first.description}{more}",
            metadata={"field": first.field},
            field_violations=tuple(violations),
        )
