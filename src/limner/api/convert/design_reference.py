"""``limner/v1/design_reference.proto``: subjects (characters and personas)."""

from __future__ import annotations

from limner.api.convert.common import enum_from_pb, timestamp_to_pb
from limner.domain.subjects import Subject, SubjectKind
from limner.features.subjects import SubjectDraft
from limner.v1 import design_reference_pb2

SUBJECT_KINDS = {
    SubjectKind.CHARACTER: design_reference_pb2.SUBJECT_KIND_CHARACTER,
    SubjectKind.PERSONA: design_reference_pb2.SUBJECT_KIND_PERSONA,
}
SUBJECT_KINDS_FROM_PB = {value: key for key, value in SUBJECT_KINDS.items()}


def subject_to_pb(subject: Subject) -> design_reference_pb2.Subject:
    return design_reference_pb2.Subject(
        name=f"subjects/{subject.id}",
        kind=SUBJECT_KINDS[subject.kind],
        display_name=subject.display_name,
        description=subject.description,
        avatar_asset=subject.avatar_asset,
        design_notes=subject.design_notes,
        reference_assets=list(subject.reference_assets),
        create_time=timestamp_to_pb(subject.create_time),
        update_time=timestamp_to_pb(subject.update_time),
    )


def subject_from_pb(subject: design_reference_pb2.Subject) -> SubjectDraft:
    """The client's fields; an unset kind stays ``None`` (the use case says if it is needed)."""
    kind: SubjectKind | None = None
    if subject.kind:
        kind = enum_from_pb(SUBJECT_KINDS_FROM_PB, subject.kind, "subject.kind")
    return SubjectDraft(
        kind=kind,
        display_name=subject.display_name,
        description=subject.description,
        design_notes=subject.design_notes,
    )
