"""Chats, their messages and attachments (scenes: ``limner.persistence.scenes``).

Each public method is one transaction. A message and its idempotency key are written
together, and its position in the chat is taken inside the same transaction (with the chat
row locked on PostgreSQL), so concurrent appends to one chat get distinct, gap-free places.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from limner.domain.chats import Attachment, Chat, Message, MessageRole
from limner.persistence.database import Database
from limner.persistence.keyset import keyset_page
from limner.persistence.requests import find_request, remember_request
from limner.persistence.tables import ATTACHMENTS, CHATS, MESSAGES, SCENES
from limner.persistence.timeutil import from_us, to_us

# Only to delete a chat's scenes with it, in the same transaction.

T = TypeVar("T")
CREATE_CHAT = "CreateChat"
CREATE_MESSAGE = "CreateMessage"


def _now_us() -> int:
    return to_us(datetime.now(UTC))


class SqlChatRepository:
    def __init__(self, database: Database) -> None:
        self.db = database

    # -- chats -------------------------------------------------------------------------

    async def create_chat(
        self, chat: Chat, *, request_id: str, request_hash: str
    ) -> tuple[Chat | None, bool]:
        def create(connection: Connection) -> tuple[Chat | None, bool]:
            if request_id:
                earlier = find_request(
                    connection,
                    workspace_id=chat.workspace_id,
                    request_id=request_id,
                    method=CREATE_CHAT,
                    request_hash=request_hash,
                )
                if earlier is not None:
                    found = _chat(connection, chat.workspace_id, earlier.removeprefix("chats/"))
                    return found, False
            connection.execute(
                insert(CHATS).values(
                    id=chat.id,
                    workspace_id=chat.workspace_id,
                    character_id=chat.character_id,
                    persona_id=chat.persona_id,
                    background_sha256=chat.background_asset.removeprefix("assets/"),
                    display_name=chat.display_name,
                    create_time_us=to_us(chat.create_time),
                )
            )
            if request_id:
                remember_request(
                    connection,
                    workspace_id=chat.workspace_id,
                    request_id=request_id,
                    method=CREATE_CHAT,
                    request_hash=request_hash,
                    resource_name=chat.name,
                    now_us=to_us(chat.create_time),
                )
            return chat, True

        return await self._idempotent(create, request_id)

    async def get_chat(self, workspace_id: str, chat_id: str) -> Chat | None:
        return await self.db.run(lambda c: _chat(c, workspace_id, chat_id))

    async def list_chats(
        self, workspace_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[Chat], str]:
        page = keyset_page(
            select(CHATS).where(CHATS.c.workspace_id == workspace_id),
            order=(CHATS.c.create_time_us, CHATS.c.id),
            shape=(int, str),
            descending=True,
            query={"list": "chats"},
            page_size=page_size,
            page_token=page_token,
        )
        rows, token = await self.db.run(page)
        return [_chat_from_row(row) for row in rows], token

    async def delete_chat(self, workspace_id: str, chat_id: str) -> bool:
        """Deletes the chat, its messages, their attachments and its scenes (the images
        stay as assets)."""

        def remove(connection: Connection) -> bool:
            if _chat(connection, workspace_id, chat_id) is None:
                return False
            messages = select(MESSAGES.c.id).where(MESSAGES.c.chat_id == chat_id)
            connection.execute(delete(ATTACHMENTS).where(ATTACHMENTS.c.message_id.in_(messages)))
            connection.execute(delete(MESSAGES).where(MESSAGES.c.chat_id == chat_id))
            connection.execute(delete(SCENES).where(SCENES.c.chat_id == chat_id))
            connection.execute(delete(CHATS).where(CHATS.c.id == chat_id))
            return True

        return await self.db.run(remove, write=True)

    # -- messages ----------------------------------------------------------------------

    async def create_message(
        self, message: Message, *, request_id: str, request_hash: str
    ) -> tuple[Message | None, bool]:
        """Appends ``message`` (with its attachments) at the end of its chat, or returns
        the message an earlier request with the same ``request_id`` made (``False``;
        ``None`` if it was deleted since). ``None, True`` when the chat is gone."""
        workspace_id = message.workspace_id

        def create(connection: Connection) -> tuple[Message | None, bool]:
            if request_id:
                earlier = find_request(
                    connection,
                    workspace_id=workspace_id,
                    request_id=request_id,
                    method=CREATE_MESSAGE,
                    request_hash=request_hash,
                )
                if earlier is not None:
                    _, chat_id, _, message_id = earlier.split("/")
                    return _message(connection, workspace_id, chat_id, message_id), False
            chat = _chat_row(connection, workspace_id, message.chat_id, lock=True)
            if chat is None:
                return None, True
            position = connection.execute(
                select(func.coalesce(func.max(MESSAGES.c.position), -1)).where(
                    MESSAGES.c.chat_id == message.chat_id
                )
            ).scalar_one()
            created_us = to_us(message.create_time)
            connection.execute(
                insert(MESSAGES).values(
                    id=message.id,
                    chat_id=message.chat_id,
                    workspace_id=workspace_id,
                    position=int(position) + 1,
                    role=message.role.value,
                    text=message.text,
                    create_time_us=created_us,
                )
            )
            for index, attachment in enumerate(message.attachments):
                connection.execute(
                    insert(ATTACHMENTS).values(
                        **_attachment_values(attachment, message.id, workspace_id),
                        position=index,
                        create_time_us=created_us,
                    )
                )
            if request_id:
                remember_request(
                    connection,
                    workspace_id=workspace_id,
                    request_id=request_id,
                    method=CREATE_MESSAGE,
                    request_hash=request_hash,
                    resource_name=message.name,
                    now_us=created_us,
                )
            return message, True

        return await self._idempotent(create, request_id)

    async def find_message_request(
        self, workspace_id: str, request_id: str, request_hash: str
    ) -> str | None:
        """The message an earlier CreateMessage with this key made (its name), or ``None``;
        raises ``RequestIdConflict`` for a key used for something else."""
        return await self.db.run(
            lambda c: find_request(
                c,
                workspace_id=workspace_id,
                request_id=request_id,
                method=CREATE_MESSAGE,
                request_hash=request_hash,
            )
        )

    async def get_message(self, workspace_id: str, chat_id: str, message_id: str) -> Message | None:
        return await self.db.run(lambda c: _message(c, workspace_id, chat_id, message_id))

    async def list_messages(
        self, workspace_id: str, chat_id: str, *, page_size: int, page_token: str
    ) -> tuple[list[Message], str]:
        # Oldest first: a chat reads top to bottom.
        page = keyset_page(
            select(MESSAGES).where(
                MESSAGES.c.workspace_id == workspace_id, MESSAGES.c.chat_id == chat_id
            ),
            order=(MESSAGES.c.position,),
            shape=(int,),
            descending=False,
            query={"list": "messages", "chat": chat_id},
            page_size=page_size,
            page_token=page_token,
        )

        def read(connection: Connection) -> tuple[list[Message], str]:
            rows, token = page(connection)
            return _messages_from_rows(connection, rows), token

        return await self.db.run(read)

    async def context_window(
        self, workspace_id: str, chat_id: str, message_id: str, size: int
    ) -> list[Message]:
        """The message and the ones before it that a writer reads, oldest first: at most
        ``size`` messages, system messages and empty ones skipped (the target itself is
        always included)."""

        def read(connection: Connection) -> list[Message]:
            target = connection.execute(
                select(MESSAGES.c.position).where(
                    MESSAGES.c.workspace_id == workspace_id,
                    MESSAGES.c.chat_id == chat_id,
                    MESSAGES.c.id == message_id,
                )
            ).one_or_none()
            if target is None:
                return []
            rows = connection.execute(
                select(MESSAGES)
                .where(
                    MESSAGES.c.chat_id == chat_id,
                    MESSAGES.c.position <= target.position,
                    or_(
                        MESSAGES.c.id == message_id,
                        and_(
                            MESSAGES.c.role != MessageRole.SYSTEM.value,
                            MESSAGES.c.text != "",
                        ),
                    ),
                )
                .order_by(MESSAGES.c.position.desc())
                .limit(size)
            ).all()
            return list(reversed(_messages_from_rows(connection, rows)))

        return await self.db.run(read)

    # -- attachments -------------------------------------------------------------------

    async def put_attachment(
        self, workspace_id: str, message_id: str, attachment: Attachment, *, overwrite: bool
    ) -> bool:
        """Adds an attachment at the end of the message, or (``overwrite``) replaces the
        one with the same id in place. Without ``overwrite`` an existing one is kept (a
        late placeholder never hides a finished image). ``False`` if the message is gone."""

        def put(connection: Connection) -> bool:
            exists = connection.execute(
                select(MESSAGES.c.id).where(
                    MESSAGES.c.workspace_id == workspace_id, MESSAGES.c.id == message_id
                )
            ).one_or_none()
            if exists is None:
                return False
            current = connection.execute(
                select(ATTACHMENTS.c.id).where(ATTACHMENTS.c.id == attachment.id)
            ).one_or_none()
            values = _attachment_values(attachment, message_id, workspace_id)
            if current is not None:
                if overwrite:
                    connection.execute(
                        update(ATTACHMENTS).where(ATTACHMENTS.c.id == attachment.id).values(values)
                    )
                return True
            position = connection.execute(
                select(func.coalesce(func.max(ATTACHMENTS.c.position), -1)).where(
                    ATTACHMENTS.c.message_id == message_id
                )
            ).scalar_one()
            connection.execute(
                insert(ATTACHMENTS).values(
                    **values, position=int(position) + 1, create_time_us=_now_us()
                )
            )
            return True

        try:
            return await self.db.run(put, write=True)
        except IntegrityError:
            # A concurrent put of the same attachment won; apply ours on top if asked to.
            return await self.db.run(put, write=True)

    async def remove_placeholder(self, workspace_id: str, attachment_id: str) -> None:
        """Removes the attachment if it is still a placeholder."""
        statement = delete(ATTACHMENTS).where(
            ATTACHMENTS.c.workspace_id == workspace_id,
            ATTACHMENTS.c.id == attachment_id,
            ATTACHMENTS.c.placeholder.is_(True),
        )
        await self.db.run(lambda c: c.execute(statement), write=True)

    # -- helpers -----------------------------------------------------------------------

    async def _idempotent(self, work: Callable[[Connection], T], request_id: str) -> T:
        try:
            return await self.db.run(work, write=True)
        except IntegrityError:
            if not request_id:
                raise
            # A concurrent request with the same key won; return what it made.
            return await self.db.run(work, write=True)


def _chat_row(
    connection: Connection, workspace_id: str, chat_id: str, *, lock: bool = False
) -> Row[Any] | None:
    statement = select(CHATS).where(CHATS.c.workspace_id == workspace_id, CHATS.c.id == chat_id)
    if lock:
        statement = statement.with_for_update()
    return connection.execute(statement).one_or_none()


def _chat(connection: Connection, workspace_id: str, chat_id: str) -> Chat | None:
    row = _chat_row(connection, workspace_id, chat_id)
    return None if row is None else _chat_from_row(row)


def _chat_from_row(row: Row[Any]) -> Chat:
    return Chat(
        id=row.id,
        workspace_id=row.workspace_id,
        character_id=row.character_id,
        persona_id=row.persona_id,
        background_asset=f"assets/{row.background_sha256}" if row.background_sha256 else "",
        display_name=row.display_name,
        create_time=from_us(row.create_time_us),
    )


def _message(
    connection: Connection, workspace_id: str, chat_id: str, message_id: str
) -> Message | None:
    row = connection.execute(
        select(MESSAGES).where(
            MESSAGES.c.workspace_id == workspace_id,
            MESSAGES.c.chat_id == chat_id,
            MESSAGES.c.id == message_id,
        )
    ).one_or_none()
    if row is None:
        return None
    return _messages_from_rows(connection, [row])[0]


def _messages_from_rows(connection: Connection, rows: Sequence[Row[Any]]) -> list[Message]:
    attachments: dict[str, list[Attachment]] = {}
    if rows:
        found = connection.execute(
            select(ATTACHMENTS)
            .where(ATTACHMENTS.c.message_id.in_([row.id for row in rows]))
            .order_by(ATTACHMENTS.c.message_id, ATTACHMENTS.c.position, ATTACHMENTS.c.id)
        ).all()
        for item in found:
            attachments.setdefault(item.message_id, []).append(
                Attachment(
                    id=item.id,
                    asset=f"assets/{item.sha256}" if item.sha256 else "",
                    job_id=item.job_id,
                    scene_id=item.scene_id,
                    placeholder=bool(item.placeholder),
                )
            )
    return [
        Message(
            id=row.id,
            chat_id=row.chat_id,
            workspace_id=row.workspace_id,
            role=MessageRole(row.role),
            text=row.text,
            create_time=from_us(row.create_time_us),
            attachments=tuple(attachments.get(row.id, [])),
        )
        for row in rows
    ]


def _attachment_values(
    attachment: Attachment, message_id: str, workspace_id: str
) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "message_id": message_id,
        "workspace_id": workspace_id,
        "sha256": attachment.asset.removeprefix("assets/"),
        "job_id": attachment.job_id,
        "scene_id": attachment.scene_id,
        "placeholder": attachment.placeholder,
    }
