"""DesignReferenceService: declared now, implemented by the subjects release."""

from __future__ import annotations

from limner.api.servicers._coming import coming_stream, coming_unary
from limner.v1 import design_reference_service_pb2_grpc

_FEATURE = "subjects and design references"


class DesignReferenceServicer(design_reference_service_pb2_grpc.DesignReferenceServiceServicer):
    CreateSubject = coming_unary("CreateSubject", _FEATURE)
    GetSubject = coming_unary("GetSubject", _FEATURE)
    ListSubjects = coming_unary("ListSubjects", _FEATURE)
    UpdateSubject = coming_unary("UpdateSubject", _FEATURE)
    DeleteSubject = coming_unary("DeleteSubject", _FEATURE)
    AddReferenceImage = coming_unary("AddReferenceImage", _FEATURE)
    RemoveReferenceImage = coming_unary("RemoveReferenceImage", _FEATURE)
    DraftDesignNotes = coming_stream("DraftDesignNotes", "design notes drafting")
