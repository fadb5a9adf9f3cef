"""Subjects (characters and personas): CRUD and their reference images.

Which images represent a subject is decided in one place, ``Subject.identity_anchors()``
(reference images, else the avatar); everything here keeps those anchors valid: reference
images are existing assets of the workspace, in order, at most ``MAX_REFERENCE_IMAGES``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from limner.domain.subjects import MAX_REFERENCE_IMAGES, Subject, SubjectKind
from limner.errors import FieldViolation, InvalidArgument, NotFound
from limner.features.assets import AssetLibrary, parse_asset_name

MAX_DISPLAY_NAME_CHARS = 256
MAX_TEXT_CHARS = 16_000  # description and design notes
MUTABLE_FIELDS = ("display_name", "description", "design_notes")
OUTPUT_ONLY_FIELDS = {
    "name": "is the subject's identifier and cannot change",
    "kind": "cannot change after creation; create a new subject instead",
    "avatar_asset": "is set with ImageService.AcceptAvatar",
    "reference_assets": "is changed with AddReferenceImage and RemoveReferenceImage",
    "create_time": "is output only",
    "update_time": "is output only",
}
SUBJECT_NAME = re.compile(r"^subjects/([A-Za-z0-9][A-Za-z0-9_-]{0,62})$")


class SubjectRepository(Protocol):
    async def create(
        self, subject: Subject, *, request_id: str, request_hash: str
    ) -> tuple[Subject | None, bool]: ...
    async def get(self, workspace_id: str, subject_id: str) -> Subject | None: ...
    async def list_subjects(
        self, workspace_id: str, *, kind: SubjectKind | None, page_size: int, page_token: str
    ) -> tuple[list[Subject], str]: ...
    async def update(
        self, workspace_id: str, subject_id: str, changes: dict[str, str]
    ) -> Subject | None: ...
    async def delete(self, workspace_id: str, subject_id: str) -> bool: ...
    async def add_reference(
        self, workspace_id: str, subject_id: str, sha256: str, *, limit: int
    ) -> Subject | None: ...
    async def remove_reference(
        self, workspace_id: str, subject_id: str, sha256: str
    ) -> tuple[Subject | None, bool]: ...
    async def add_candidates(
        self, workspace_id: str, subject_id: str, sha256s: list[str], *, job_id: str, prompt: str
    ) -> bool: ...
    async def candidate_prompt(
        self, workspace_id: str, subject_id: str, sha256: str
    ) -> str | None: ...
    async def candidates(self, workspace_id: str, subject_id: str) -> list[str]: ...
    async def accept_avatar(
        self, workspace_id: str, subject_id: str, sha256: str, *, prompt: str, job_id: str
    ) -> Subject | None: ...


@dataclass(frozen=True, kw_only=True)
class SubjectDraft:
    """The client's fields of a subject (create, or the values an update mask picks)."""

    kind: SubjectKind | None = None
    display_name: str = ""
    description: str = ""
    design_notes: str = ""


def parse_subject_name(name: str, field: str) -> str:
    """``subjects/{id}`` -> the id, or INVALID_ARGUMENT naming ``field``."""
    if not name:
        raise InvalidArgument.field(field, "is required: subjects/{subject}", "REQUIRED")
    match = SUBJECT_NAME.match(name)
    if match is None:
        raise InvalidArgument.field(
            field, f"{name!r} is not a subject name of the form subjects/{{subject}}"
        )
    return match.group(1)


def subject_not_found(subject_id: str, field: str = "") -> NotFound:
    metadata = {"subject": f"subjects/{subject_id}"}
    if field:
        metadata["field"] = field
    return NotFound(
        f"subjects/{subject_id} not found in this workspace; ListSubjects shows the subjects "
        "you can use",
        reason="SUBJECT_NOT_FOUND",
        metadata=metadata,
    )


class Subjects:
    def __init__(self, repository: SubjectRepository, assets: AssetLibrary) -> None:
        self.repository = repository
        self.assets = assets

    async def get(self, workspace_id: str, name: str, field: str = "name") -> Subject:
        subject_id = parse_subject_name(name, field)
        subject = await self.repository.get(workspace_id, subject_id)
        if subject is None:
            raise subject_not_found(subject_id, field)
        return subject

    async def create(self, workspace_id: str, draft: SubjectDraft, request_id: str) -> Subject:
        _validate(draft, ("kind", *MUTABLE_FIELDS), prefix="subject.")
        assert draft.kind is not None
        now = datetime.now(UTC)
        subject = Subject(
            id=uuid.uuid4().hex,
            workspace_id=workspace_id,
            kind=draft.kind,
            display_name=draft.display_name.strip(),
            description=draft.description,
            design_notes=draft.design_notes,
            create_time=now,
            update_time=now,
        )
        request_hash = hashlib.sha256(
            json.dumps(
                [draft.kind.value, subject.display_name, draft.description, draft.design_notes]
            ).encode()
        ).hexdigest()
        stored, _created = await self.repository.create(
            subject, request_id=request_id, request_hash=request_hash
        )
        if stored is None:
            raise NotFound(
                f"the subject request_id {request_id!r} created has been deleted since; use a "
                "new request_id to create it again",
                reason="SUBJECT_NOT_FOUND",
                metadata={"requestId": request_id},
            )
        return stored

    async def list_subjects(
        self, workspace_id: str, *, kind: SubjectKind | None, page_size: int, page_token: str
    ) -> tuple[list[Subject], str]:
        return await self.repository.list_subjects(
            workspace_id, kind=kind, page_size=page_size, page_token=page_token
        )

    async def update(
        self, workspace_id: str, name: str, draft: SubjectDraft, paths: list[str]
    ) -> Subject:
        """Applies the fields ``paths`` names (AIP-134): an empty mask means every mutable
        field the request filled in; ``*`` means all of them (empty ones clear)."""
        subject_id = parse_subject_name(name, "subject.name")
        fields = _mask_fields(draft, paths)
        _validate(draft, fields, prefix="subject.")
        changes = {path: getattr(draft, path) for path in fields}
        if "display_name" in changes:
            changes["display_name"] = changes["display_name"].strip()
        if not changes:
            subject = await self.repository.get(workspace_id, subject_id)
        else:
            subject = await self.repository.update(workspace_id, subject_id, changes)
        if subject is None:
            raise subject_not_found(subject_id, "subject.name")
        return subject

    async def delete(self, workspace_id: str, name: str) -> None:
        subject_id = parse_subject_name(name, "name")
        if not await self.repository.delete(workspace_id, subject_id):
            raise subject_not_found(subject_id, "name")

    async def add_reference(self, workspace_id: str, name: str, asset_name: str) -> Subject:
        subject_id = parse_subject_name(name, "subject")
        sha256 = parse_asset_name(asset_name, "asset")
        await self.get(workspace_id, name, "subject")
        await self.assets.get(workspace_id, asset_name, "asset")
        subject = await self.repository.add_reference(
            workspace_id, subject_id, sha256, limit=MAX_REFERENCE_IMAGES
        )
        if subject is None:
            raise subject_not_found(subject_id, "subject")
        return subject

    async def remove_reference(self, workspace_id: str, name: str, asset_name: str) -> Subject:
        subject_id = parse_subject_name(name, "subject")
        sha256 = parse_asset_name(asset_name, "asset")
        subject, removed = await self.repository.remove_reference(workspace_id, subject_id, sha256)
        if subject is None:
            raise subject_not_found(subject_id, "subject")
        if not removed:
            raise NotFound(
                f"{asset_name} is not a reference image of subjects/{subject_id}",
                reason="REFERENCE_IMAGE_NOT_FOUND",
                metadata={
                    "subject": f"subjects/{subject_id}",
                    "asset": asset_name,
                    "field": "asset",
                },
            )
        return subject

    async def save_design_notes(self, workspace_id: str, subject_id: str, notes: str) -> bool:
        """Stores drafted notes; ``False`` when the subject has been deleted meanwhile."""
        updated = await self.repository.update(
            workspace_id, subject_id, {"design_notes": notes[:MAX_TEXT_CHARS]}
        )
        return updated is not None


def _mask_fields(draft: SubjectDraft, paths: list[str]) -> tuple[str, ...]:
    cleaned = [path.strip().removeprefix("subject.") for path in paths]
    if not cleaned:
        return tuple(f for f in MUTABLE_FIELDS if getattr(draft, f))
    if cleaned == ["*"]:
        return MUTABLE_FIELDS
    violations = []
    for path in cleaned:
        if path in MUTABLE_FIELDS:
            continue
        if path in OUTPUT_ONLY_FIELDS:
            violations.append(
                FieldViolation("update_mask", f"{path!r} {OUTPUT_ONLY_FIELDS[path]}", "READ_ONLY")
            )
        else:
            violations.append(
                FieldViolation(
                    "update_mask",
                    f"{path!r} is not a field of Subject that UpdateSubject can change; "
                    f"changeable fields: {', '.join(MUTABLE_FIELDS)}",
                    "UNKNOWN_FIELD",
                )
            )
    if violations:
        raise _invalid(violations)
    return tuple(dict.fromkeys(cleaned))


def _validate(draft: SubjectDraft, fields: tuple[str, ...], *, prefix: str) -> None:
    violations = []
    if "kind" in fields and draft.kind is None:
        violations.append(
            FieldViolation(f"{prefix}kind", "is required: character or persona", "REQUIRED")
        )
    if "display_name" in fields:
        if not draft.display_name.strip():
            violations.append(
                FieldViolation(f"{prefix}display_name", "must not be empty", "REQUIRED")
            )
        elif len(draft.display_name) > MAX_DISPLAY_NAME_CHARS:
            violations.append(
                FieldViolation(
                    f"{prefix}display_name",
                    f"is {len(draft.display_name)} characters; at most "
                    f"{MAX_DISPLAY_NAME_CHARS} are allowed",
                )
            )
    for name in ("description", "design_notes"):
        value: str = getattr(draft, name)
        if name in fields and len(value) > MAX_TEXT_CHARS:
            violations.append(
                FieldViolation(
                    f"{prefix}{name}",
                    f"is {len(value)} characters; at most {MAX_TEXT_CHARS} are allowed",
                )
            )
    if violations:
        raise _invalid(violations)


def _invalid(violations: list[FieldViolation]) -> InvalidArgument:
    first = violations[0]
    more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
    return InvalidArgument(
        f"{first.field}: {first.description}{more}",
        metadata={"field": first.field},
        field_violations=tuple(violations),
    )
