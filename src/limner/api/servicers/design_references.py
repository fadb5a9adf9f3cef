"""DesignReferenceService: subjects, their reference images, and drafted design notes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from limner.api.context import current_workspace
from limner.api.convert import design_reference as design_reference_convert
from limner.api.convert.common import enum_from_pb
from limner.api.convert.job import webhook_from_pb
from limner.api.servicers.jobs import stream_events
from limner.errors import InvalidArgument
from limner.features.design_notes import DesignNotesFeature, DraftRequest
from limner.features.jobs import JobQueries
from limner.features.subjects import Subjects
from limner.v1 import design_reference_service_pb2 as pb
from limner.v1 import design_reference_service_pb2_grpc


class DesignReferenceServicer(design_reference_service_pb2_grpc.DesignReferenceServiceServicer):
    def __init__(
        self, *, subjects: Subjects, design_notes: DesignNotesFeature, jobs: JobQueries
    ) -> None:
        self.subjects = subjects
        self.design_notes = design_notes
        self.jobs = jobs

    async def CreateSubject(
        self, request: pb.CreateSubjectRequest, context: Any
    ) -> pb.CreateSubjectResponse:
        if not request.HasField("subject"):
            raise InvalidArgument.field("subject", "is required", "REQUIRED")
        subject = await self.subjects.create(
            current_workspace(),
            design_reference_convert.subject_from_pb(request.subject),
            request.request_id,
        )
        return pb.CreateSubjectResponse(subject=design_reference_convert.subject_to_pb(subject))

    async def GetSubject(
        self, request: pb.GetSubjectRequest, context: Any
    ) -> pb.GetSubjectResponse:
        subject = await self.subjects.get(current_workspace(), request.name)
        return pb.GetSubjectResponse(subject=design_reference_convert.subject_to_pb(subject))

    async def ListSubjects(
        self, request: pb.ListSubjectsRequest, context: Any
    ) -> pb.ListSubjectsResponse:
        kind = (
            enum_from_pb(design_reference_convert.SUBJECT_KINDS_FROM_PB, request.kind, "kind")
            if request.kind
            else None
        )
        subjects, token = await self.subjects.list_subjects(
            current_workspace(),
            kind=kind,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListSubjectsResponse(
            subjects=[design_reference_convert.subject_to_pb(s) for s in subjects],
            next_page_token=token,
        )

    async def UpdateSubject(
        self, request: pb.UpdateSubjectRequest, context: Any
    ) -> pb.UpdateSubjectResponse:
        if not request.HasField("subject"):
            raise InvalidArgument.field("subject", "is required", "REQUIRED")
        subject = await self.subjects.update(
            current_workspace(),
            request.subject.name,
            design_reference_convert.subject_from_pb(request.subject),
            list(request.update_mask.paths),
        )
        return pb.UpdateSubjectResponse(subject=design_reference_convert.subject_to_pb(subject))

    async def DeleteSubject(
        self, request: pb.DeleteSubjectRequest, context: Any
    ) -> pb.DeleteSubjectResponse:
        await self.subjects.delete(current_workspace(), request.name)
        return pb.DeleteSubjectResponse()

    async def AddReferenceImage(
        self, request: pb.AddReferenceImageRequest, context: Any
    ) -> pb.AddReferenceImageResponse:
        subject = await self.subjects.add_reference(
            current_workspace(), request.subject, _required(request.asset, "asset")
        )
        return pb.AddReferenceImageResponse(subject=design_reference_convert.subject_to_pb(subject))

    async def RemoveReferenceImage(
        self, request: pb.RemoveReferenceImageRequest, context: Any
    ) -> pb.RemoveReferenceImageResponse:
        subject = await self.subjects.remove_reference(
            current_workspace(), request.subject, _required(request.asset, "asset")
        )
        return pb.RemoveReferenceImageResponse(
            subject=design_reference_convert.subject_to_pb(subject)
        )

    async def DraftDesignNotes(
        self, request: pb.DraftDesignNotesRequest, context: Any
    ) -> AsyncIterator[pb.DraftDesignNotesResponse]:
        job = await self.design_notes.draft(
            current_workspace(),
            DraftRequest(
                subject=request.subject,
                model=request.model,
                save_on_completion=request.save_on_completion,
                request_id=request.request_id,
                webhook=webhook_from_pb(request.webhook, "webhook"),
            ),
        )
        async for event in stream_events(self.jobs, job.id):
            yield pb.DraftDesignNotesResponse(event=event)


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument.field(field, "is required: assets/{sha256}", "REQUIRED")
    return value
