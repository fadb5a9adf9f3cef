"""The schema. The SQLModel classes below only declare the tables (columns, keys,
indexes); the Alembic revisions in ``migrations/versions`` create and change them, so a
change here needs a new revision. Nothing instantiates these classes or opens a SQLModel
session: the repositories query the Core ``Table`` constants at the end of this module
with SQLAlchemy Core and read plain ``Row`` objects.

Persistence-only: the API contract is the proto, the logic's types are in
``limner.domain``. Every row that belongs to a user carries ``workspace_id``. Times are
microseconds since the Unix epoch (UTC) so SQLite and PostgreSQL order them the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Table, Text
from sqlmodel import Field, SQLModel


def _json_column() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_workspace_created", "workspace_id", "create_time_us", "id"),
        Index("ix_jobs_state", "state"),
    )

    id: str = Field(primary_key=True, max_length=32)
    workspace_id: str = Field(max_length=128)
    kind: str = Field(max_length=32)
    state: str = Field(max_length=32)
    model_id: str = Field(max_length=128)
    provider_id: str = Field(max_length=128)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    target: str = Field(default="", max_length=256)
    spec: dict[str, Any] = _json_column()
    progress: dict[str, Any] = _json_column()
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    warnings: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    last_sequence: int = Field(default=0, sa_type=BigInteger)
    attempt: int = 0
    create_time_us: int = Field(sa_type=BigInteger)
    update_time_us: int = Field(sa_type=BigInteger)
    start_time_us: int | None = Field(default=None, sa_type=BigInteger)
    end_time_us: int | None = Field(default=None, sa_type=BigInteger)
    # The process running the job and until when; an expired lease on an unfinished job
    # means its process is gone and any other may claim it (ARCHITECTURE §7).
    owner: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    lease_until_us: int = Field(
        default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"}
    )
    # A CancelJob that reached a process not running the job asks the owner through here.
    cancel_reason: str = Field(
        default="", sa_column=Column(Text, nullable=False, server_default="")
    )
    # The W3C trace context of the span that submitted the job (NULL: none, tracing off).
    trace_context: dict[str, str] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    # Where the job's events are posted ({"url", "events"}); NULL: nowhere.
    webhook: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class JobEventRow(SQLModel, table=True):
    __tablename__ = "job_events"

    job_id: str = Field(primary_key=True, max_length=32, foreign_key="jobs.id", ondelete="CASCADE")
    sequence: int = Field(primary_key=True, sa_type=BigInteger)
    workspace_id: str = Field(max_length=128)
    time_us: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = _json_column()


class RequestIdRow(SQLModel, table=True):
    """Idempotency keys (AIP-155): one per workspace, remembering what they created."""

    __tablename__ = "request_ids"

    workspace_id: str = Field(primary_key=True, max_length=128)
    request_id: str = Field(primary_key=True, max_length=128)
    method: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    resource_name: str = Field(max_length=256)
    create_time_us: int = Field(sa_type=BigInteger)


class AssetRow(SQLModel, table=True):
    __tablename__ = "assets"
    __table_args__ = (Index("ix_assets_workspace_created", "workspace_id", "create_time_us"),)

    workspace_id: str = Field(primary_key=True, max_length=128)
    sha256: str = Field(primary_key=True, max_length=64)
    mime_type: str = Field(max_length=64)
    width: int
    height: int
    size_bytes: int = Field(sa_type=BigInteger)
    source: str = Field(max_length=32)
    provenance: dict[str, Any] = _json_column()
    display_name: str = Field(default="", max_length=256)
    create_time_us: int = Field(sa_type=BigInteger)


class ModelRow(SQLModel, table=True):
    """Models created through the API (built-in and configured ones live in memory)."""

    __tablename__ = "models"

    workspace_id: str = Field(primary_key=True, max_length=128)
    model_id: str = Field(primary_key=True, max_length=63)
    provider: str = Field(max_length=128)
    provider_model_id: str = Field(max_length=256)
    display_name: str = Field(default="", max_length=256)
    input_modalities: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    output_modalities: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    profile: dict[str, Any] = _json_column()
    origin: str = Field(default="api", max_length=16)
    create_time_us: int = Field(sa_type=BigInteger)
    update_time_us: int = Field(sa_type=BigInteger)


class ImageSettingsRow(SQLModel, table=True):
    __tablename__ = "image_settings"

    workspace_id: str = Field(primary_key=True, max_length=128)
    image_model: str = Field(default="", max_length=63)
    avatar_model: str = Field(default="", max_length=63)
    scene_image_model: str = Field(default="", max_length=63)
    scene_writer_model: str = Field(default="", max_length=63)
    scene_mode: str = Field(default="ask_first", max_length=16)
    context_window_size: int = 3
    update_time_us: int = Field(sa_type=BigInteger)
    # The webhook of jobs created without one ({"url", "events"}); NULL: none.
    default_webhook: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )


class PromptTemplateRow(SQLModel, table=True):
    """A workspace's override of a shipped prompt template."""

    __tablename__ = "prompt_templates"

    workspace_id: str = Field(primary_key=True, max_length=128)
    kind: str = Field(primary_key=True, max_length=64)
    source: str = Field(sa_column=Column(Text, nullable=False))
    update_time_us: int = Field(sa_type=BigInteger)


class SubjectRow(SQLModel, table=True):
    __tablename__ = "subjects"
    __table_args__ = (Index("ix_subjects_workspace_created", "workspace_id", "create_time_us"),)

    id: str = Field(primary_key=True, max_length=32)
    workspace_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    display_name: str = Field(max_length=256)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    design_notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    avatar_sha256: str = Field(default="", max_length=64)
    create_time_us: int = Field(sa_type=BigInteger)
    update_time_us: int = Field(sa_type=BigInteger)


class SubjectReferenceRow(SQLModel, table=True):
    """A subject's reference images, in order."""

    __tablename__ = "subject_references"

    subject_id: str = Field(
        primary_key=True, max_length=32, foreign_key="subjects.id", ondelete="CASCADE"
    )
    sha256: str = Field(primary_key=True, max_length=64)
    workspace_id: str = Field(max_length=128)
    position: int
    create_time_us: int = Field(sa_type=BigInteger)


class AvatarCandidateRow(SQLModel, table=True):
    """Images generated or edited for a subject's avatar, accepted or not."""

    __tablename__ = "avatar_candidates"

    subject_id: str = Field(
        primary_key=True, max_length=32, foreign_key="subjects.id", ondelete="CASCADE"
    )
    sha256: str = Field(primary_key=True, max_length=64)
    workspace_id: str = Field(max_length=128)
    job_id: str = Field(default="", max_length=32)
    prompt: str = Field(default="", sa_column=Column(Text, nullable=False))
    create_time_us: int = Field(sa_type=BigInteger)


class ChatRow(SQLModel, table=True):
    __tablename__ = "chats"
    __table_args__ = (Index("ix_chats_workspace_created", "workspace_id", "create_time_us"),)

    id: str = Field(primary_key=True, max_length=32)
    workspace_id: str = Field(max_length=128)
    character_id: str = Field(max_length=32)
    persona_id: str = Field(default="", max_length=32)
    background_sha256: str = Field(default="", max_length=64)
    display_name: str = Field(default="", max_length=256)
    create_time_us: int = Field(sa_type=BigInteger)


class MessageRow(SQLModel, table=True):
    """A chat's messages; ``position`` orders them within the chat."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_chat_position", "chat_id", "position", unique=True),)

    id: str = Field(primary_key=True, max_length=32)
    chat_id: str = Field(max_length=32, foreign_key="chats.id", ondelete="CASCADE")
    workspace_id: str = Field(max_length=128)
    position: int = Field(sa_type=BigInteger)
    role: str = Field(max_length=16)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    create_time_us: int = Field(sa_type=BigInteger)


class AttachmentRow(SQLModel, table=True):
    """Images on a message, in ``position`` order. A placeholder has a job and no image."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_message", "message_id", "position"),)

    id: str = Field(primary_key=True, max_length=32)
    message_id: str = Field(max_length=32, foreign_key="messages.id", ondelete="CASCADE")
    workspace_id: str = Field(max_length=128)
    position: int = Field(sa_type=BigInteger)
    sha256: str = Field(default="", max_length=64)
    job_id: str = Field(default="", max_length=32)
    scene_id: str = Field(default="", max_length=32)
    placeholder: bool = False
    create_time_us: int = Field(sa_type=BigInteger)


class SceneRow(SQLModel, table=True):
    """A scene image for a message, with its provenance."""

    __tablename__ = "scenes"
    __table_args__ = (
        Index("ix_scenes_workspace_created", "workspace_id", "create_time_us", "id"),
        Index("ix_scenes_chat_created", "chat_id", "create_time_us", "id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    workspace_id: str = Field(max_length=128)
    chat_id: str = Field(max_length=32)
    message_id: str = Field(max_length=32)
    state: str = Field(max_length=32)
    job_id: str = Field(default="", max_length=32)
    context_messages: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    writer_model: str = Field(default="", max_length=63)
    drafted_prompt: str = Field(default="", sa_column=Column(Text, nullable=False))
    edited_prompt: str = Field(default="", sa_column=Column(Text, nullable=False))
    image_model: str = Field(default="", max_length=63)
    seed: int | None = Field(default=None, sa_type=BigInteger)
    reference_assets: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    template_version: str = Field(default="", max_length=64)
    result_sha256: str = Field(default="", max_length=64)
    attachment_id: str = Field(default="", max_length=32)
    create_time_us: int = Field(sa_type=BigInteger)
    update_time_us: int = Field(sa_type=BigInteger)


class WebhookDeliveryRow(SQLModel, table=True):
    """A job event to post to a webhook, queued in the transaction that logs the event, and
    its attempts (``limner.persistence.webhooks``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_job", "job_id", "sequence"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_us"),
    )

    id: str = Field(primary_key=True, max_length=64)
    workspace_id: str = Field(max_length=128)
    job_id: str = Field(max_length=32, foreign_key="jobs.id", ondelete="CASCADE")
    sequence: int = Field(sa_type=BigInteger)
    event_type: str = Field(max_length=32)
    url: str = Field(sa_column=Column(Text, nullable=False))
    # The JSON document posted, as sent (every attempt posts the same bytes).
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=16)
    attempts: int = 0
    # Due time while pending; a process posting it pushes it past the attempt's end, so
    # no other process takes it meanwhile (and it is taken again if that process dies).
    next_attempt_us: int = Field(sa_type=BigInteger)
    last_attempt_us: int | None = Field(default=None, sa_type=BigInteger)
    last_status: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))
    create_time_us: int = Field(sa_type=BigInteger)


# -- the tables the repositories query ---------------------------------------------------


def _table(row: type[SQLModel]) -> Table:
    """The Core ``Table`` behind a table class. SQLModel sets ``__table__`` on every
    ``table=True`` class but its type stubs do not declare it, so it is read here, once,
    with ``getattr`` and checked, rather than silencing mypy wherever a table is used."""
    table = getattr(row, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{row.__name__} is not a table class")
    return table


JOBS = _table(JobRow)
JOB_EVENTS = _table(JobEventRow)
REQUEST_IDS = _table(RequestIdRow)
ASSETS = _table(AssetRow)
MODELS = _table(ModelRow)
IMAGE_SETTINGS = _table(ImageSettingsRow)
PROMPT_TEMPLATES = _table(PromptTemplateRow)
SUBJECTS = _table(SubjectRow)
SUBJECT_REFERENCES = _table(SubjectReferenceRow)
AVATAR_CANDIDATES = _table(AvatarCandidateRow)
CHATS = _table(ChatRow)
MESSAGES = _table(MessageRow)
ATTACHMENTS = _table(AttachmentRow)
SCENES = _table(SceneRow)
WEBHOOK_DELIVERIES = _table(WebhookDeliveryRow)
