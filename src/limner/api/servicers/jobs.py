"""JobService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from limner.api.context import current_workspace
from limner.api.convert import job as job_convert
from limner.api.convert.common import enum_from_pb
from limner.errors import InvalidArgument
from limner.features.jobs import JobQueries
from limner.features.webhooks import Webhooks
from limner.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc


def parse_job_name(name: str, field: str = "name") -> str:
    job_id = name.removeprefix("jobs/")
    if not name.startswith("jobs/") or not job_id or "/" in job_id:
        raise InvalidArgument.field(field, f"{name!r} is not a job name of the form jobs/{{job}}")
    return job_id


async def stream_events(
    jobs: JobQueries, job_id: str, after_sequence: int = 0
) -> AsyncIterator[job_pb2.JobEvent]:
    async for item in jobs.watch(current_workspace(), job_id, after_sequence):
        yield job_convert.event_to_pb(item)


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self, jobs: JobQueries, webhooks: Webhooks) -> None:
        self.jobs = jobs
        self.webhooks = webhooks

    async def GetJob(
        self, request: job_service_pb2.GetJobRequest, context: Any
    ) -> job_service_pb2.GetJobResponse:
        job = await self.jobs.get(current_workspace(), parse_job_name(request.name))
        return job_service_pb2.GetJobResponse(job=job_convert.job_to_pb(job))

    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: Any
    ) -> job_service_pb2.ListJobsResponse:
        states = [enum_from_pb(job_convert.JOB_STATES_FROM_PB, s, "states") for s in request.states]
        kinds = [enum_from_pb(job_convert.JOB_KINDS_FROM_PB, k, "kinds") for k in request.kinds]
        page = await self.jobs.list_jobs(
            current_workspace(),
            states=states,
            kinds=kinds,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return job_service_pb2.ListJobsResponse(
            jobs=[job_convert.job_to_pb(job) for job in page.jobs],
            next_page_token=page.next_page_token,
        )

    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: Any
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        job_id = parse_job_name(request.name)
        async for event in stream_events(self.jobs, job_id, request.after_sequence):
            yield job_service_pb2.WatchJobResponse(event=event)

    async def CancelJob(
        self, request: job_service_pb2.CancelJobRequest, context: Any
    ) -> job_service_pb2.CancelJobResponse:
        job = await self.jobs.cancel(current_workspace(), parse_job_name(request.name))
        return job_service_pb2.CancelJobResponse(job=job_convert.job_to_pb(job))

    async def ListWebhookDeliveries(
        self, request: job_service_pb2.ListWebhookDeliveriesRequest, context: Any
    ) -> job_service_pb2.ListWebhookDeliveriesResponse:
        deliveries, token = await self.webhooks.list_deliveries(
            current_workspace(),
            parse_job_name(request.parent, "parent"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return job_service_pb2.ListWebhookDeliveriesResponse(
            webhook_deliveries=[job_convert.webhook_delivery_to_pb(d) for d in deliveries],
            next_page_token=token,
        )
