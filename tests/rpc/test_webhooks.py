"""Signed webhooks through the gRPC API, posted to a loopback receiver that checks every
delivery the way the README tells receivers to: the Standard Webhooks signature and the
timestamp, deduplicating by webhook-id.

Outcomes (completed, failed, cancelled, an ask-first scene waiting for approval) arrive
once each; 5xx is retried until it succeeds, 410 stops, Retry-After is honoured; a delivery
pending when the server stops is posted after it starts again; private targets are refused
unless allowed; a request's webhook overrides the workspace default; the event filter and
the progress throttle hold; ListWebhookDeliveries shows it all per job.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp import web
from google.protobuf import field_mask_pb2

from limner.errors import ContentFiltered
from limner.providers import Provider
from limner.providers.offline import OfflineSettings, OfflineWriter
from limner.settings import Settings
from limner.testing.fakes import fake_png
from limner.testing.providers import GatedImageGenerator
from limner.testing.streams import collect, kinds, status_details
from limner.v1 import design_reference_pb2 as dpb
from limner.v1 import design_reference_service_pb2 as dspb
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, model_pb2
from limner.v1 import job_service_pb2 as jpb
from limner.v1 import model_service_pb2 as mpb
from limner.v1 import scene_pb2 as cpb
from limner.v1 import scene_service_pb2 as spb
from limner.webhooks.signing import secret_key, signature

SECRET = "whsec_" + base64.b64encode(b"limner webhook test secret, 32 b").decode()
SMALL = ipb.ImageOptions(width=64, height=64)
COMPLETED = job_pb2.WEBHOOK_EVENT_COMPLETED
PROGRESS = job_pb2.WEBHOOK_EVENT_PROGRESS
DELIVERED = job_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
FAILED = job_pb2.WEBHOOK_DELIVERY_STATE_FAILED


def webhook_settings(**overrides: Any) -> dict[str, Any]:
    """Fast retries, a loopback receiver allowed, progress at most once a minute."""
    return {
        "secret": SECRET,
        "allow_private_addresses": True,
        "first_retry_s": 0.05,
        "max_retry_s": 0.2,
        "poll_interval_s": 0.2,
        "progress_interval_s": 60.0,
        "timeout_s": 2.0,
        **overrides,
    }


# -- the receiver ----------------------------------------------------------------------------


def verify(secret: str, headers: Any, body: bytes, tolerance_s: float = 300) -> dict[str, Any]:
    """What a receiver does (the README's snippet): check the timestamp and one of the
    signatures, then read the JSON."""
    message_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        raise ValueError("timestamp outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise ValueError("no valid signature")


@dataclass
class Post:
    path: str
    id: str
    timestamp: int
    body: bytes
    document: dict[str, Any]
    at: float


@dataclass
class Receiver:
    """A loopback webhook endpoint. ``answers[path]`` lists the statuses (or (status,
    headers)) to answer in turn; 200 once they run out."""

    port: int = 0
    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    answers: dict[str, list[Any]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            document = verify(SECRET, request.headers, body)
        except (KeyError, ValueError) as problem:
            self.problems.append(f"{request.path}: {problem}")
            return web.Response(status=400)
        if request.headers.get("content-type") != "application/json":
            self.problems.append(f"{request.path}: content-type {request.content_type}")
        self.posts.append(
            Post(
                request.path,
                request.headers["webhook-id"],
                int(request.headers["webhook-timestamp"]),
                body,
                document,
                time.monotonic(),
            )
        )
        self.changed.set()
        script = self.answers.get(request.path) or []
        answer = script.pop(0) if script else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)

    def unique(self, path: str | None = None) -> dict[str, dict[str, Any]]:
        """Each delivery once (deduplicated by webhook-id), in arrival order."""
        seen: dict[str, dict[str, Any]] = {}
        for post in self.posts:
            if path is None or post.path == path:
                seen.setdefault(post.id, post.document)
        return seen

    def events(self, path: str | None = None, job: str = "") -> list[str]:
        return [
            document["type"]
            for document in self.unique(path).values()
            if not job or document["data"]["job"] == job
        ]

    async def wait(self, ready: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not ready():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    found.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield found
    finally:
        await runner.cleanup()
    assert found.problems == [], "every delivery is signed and timely"


# -- helpers ---------------------------------------------------------------------------------


def hook(receiver: Receiver, path: str, *events: int) -> job_pb2.JobWebhook:
    return job_pb2.JobWebhook(url=receiver.url(path), events=list(events))


async def generate(server, webhook: job_pb2.JobWebhook | None = None, **fields) -> str:
    """Runs a GenerateImage to its end; returns the job's name."""
    request = ipb.GenerateImageRequest(prompt="a lighthouse", options=SMALL, **fields)
    if webhook is not None:
        request.webhook.CopyFrom(webhook)
    events = await collect(server.images.GenerateImage(request))
    assert kinds(events)[-1] in ("completed", "failed"), events[-1]
    return events[-1].job


async def deliveries(server, job: str) -> list[job_pb2.WebhookDelivery]:
    request = jpb.ListWebhookDeliveriesRequest(parent=job)
    return list((await server.jobs.ListWebhookDeliveries(request)).webhook_deliveries)


async def until_delivered(server, job: str, count: int = 1, timeout_s: float = 10.0) -> list:
    """The job's deliveries once ``count`` of them have ended (delivered or given up)."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = await deliveries(server, job)
            ended = [d for d in found if d.state in (DELIVERED, FAILED)]
            if len(ended) >= count:
                return found
            await asyncio.sleep(0.05)


async def update_settings(server, **fields) -> model_pb2.ImageSettings:
    response = await server.models.UpdateImageSettings(
        mpb.UpdateImageSettingsRequest(
            image_settings=model_pb2.ImageSettings(**fields),
            update_mask=field_mask_pb2.FieldMask(paths=list(fields)),
        )
    )
    return response.image_settings


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in status_details(error)["BadRequest"].field_violations]


async def chat_with_a_message(server) -> str:
    """A character, a chat and a short conversation; returns the last message's name."""
    subject = (
        await server.design_references.CreateSubject(
            dspb.CreateSubjectRequest(
                subject=dpb.Subject(kind=dpb.SUBJECT_KIND_CHARACTER, display_name="Mara Quill")
            )
        )
    ).subject
    chat = (
        await server.scenes.CreateChat(spb.CreateChatRequest(chat=cpb.Chat(character=subject.name)))
    ).chat
    message = None
    for role, text in (
        (cpb.MESSAGE_ROLE_USER, "The lamp went dark an hour ago."),
        (cpb.MESSAGE_ROLE_ASSISTANT, "Mara climbs the stairs with a lantern."),
    ):
        request = spb.CreateMessageRequest(
            parent=chat.name, message=cpb.Message(role=role, text=text)
        )
        message = (await server.scenes.CreateMessage(request)).message
    assert message is not None
    return message.name


# -- every outcome, once, signed ---------------------------------------------------------------


async def test_each_outcome_is_posted_once_and_signed(make_server, database_url, receiver):
    gated = GatedImageGenerator()
    gated.gate.set()
    # The gated images, and the offline writer for the scene.
    writer = OfflineWriter(OfflineSettings(step_delay_s=0.0))
    providers = {"offline": Provider(id="offline", kind="offline", images=gated, writer=writer)}
    async with make_server(
        database_url, providers=providers, webhooks=webhook_settings()
    ) as server:
        webhook = hook(receiver, "/hooks")

        # Completed.
        done = await generate(server, webhook)
        await receiver.wait(lambda: "job.completed" in receiver.events(job=done))

        # Failed.
        gated.fail_with = ContentFiltered("blocked by the test")
        failed = await generate(server, webhook)
        await receiver.wait(lambda: "job.failed" in receiver.events(job=failed))

        # Cancelled while rendering.
        gated.fail_with = None
        gated.gate.clear()
        gated.started.clear()
        request = ipb.GenerateImageRequest(prompt="a lighthouse", options=SMALL, webhook=webhook)
        stream = server.images.GenerateImage(request)
        cancelled = (await stream.read()).event.job
        await asyncio.wait_for(gated.started.wait(), 10)
        await server.jobs.CancelJob(jpb.CancelJobRequest(name=cancelled))
        stream.cancel()
        await receiver.wait(lambda: "job.cancelled" in receiver.events(job=cancelled))

        # An ask-first scene: waiting for approval, then rejected.
        message = await chat_with_a_message(server)
        scene_stream = server.scenes.GenerateScene(
            spb.GenerateSceneRequest(
                message=message, mode=model_pb2.SCENE_MODE_ASK_FIRST, webhook=webhook
            )
        )
        scene_job = (await scene_stream.read()).event.job
        scene_stream.cancel()
        await receiver.wait(
            lambda: "job.awaiting_approval" in receiver.events(job=scene_job), timeout_s=20
        )
        waiting = receiver.unique()
        approval = next(d for d in waiting.values() if d["type"] == "job.awaiting_approval")["data"]
        await server.scenes.RejectScene(spb.RejectSceneRequest(name=approval["approval"]["scene"]))
        await receiver.wait(lambda: "job.cancelled" in receiver.events(job=scene_job))

        await asyncio.sleep(0.3)  # anything more would arrive now (nothing should)
        assert receiver.events(job=done) == ["job.completed"]
        assert receiver.events(job=failed) == ["job.failed"]
        assert receiver.events(job=cancelled) == ["job.cancelled"]
        assert receiver.events(job=scene_job) == ["job.awaiting_approval", "job.cancelled"]
        assert len(receiver.posts) == len(receiver.unique()), "each posted once: all got 200"

        documents = {(d["data"]["job"], d["type"]): d for d in receiver.unique().values()}
        completed = documents[(done, "job.completed")]
        assert completed["timestamp"] == completed["data"]["time"]
        data = completed["data"]
        assert data["kind"] == "JOB_KIND_IMAGE_GENERATION"
        assert data["state"] == "JOB_STATE_SUCCEEDED"
        job = (await server.jobs.GetJob(jpb.GetJobRequest(name=done))).job
        assert data["sequence"] == job.last_sequence
        (image,) = data["result"]["images"]
        stored = job.result.images[0]
        assert (image["asset"], image["size_bytes"], image["width"], image["mime_type"]) == (
            stored.asset,
            stored.size_bytes,
            stored.width,
            stored.mime_type,
        )
        assert set(image) <= {"asset", "width", "height", "mime_type", "size_bytes", "seed"}
        error = documents[(failed, "job.failed")]["data"]["error"]
        assert (error["code"], error["status"], error["reason"]) == (
            9,
            "FAILED_PRECONDITION",
            "CONTENT_FILTERED",
        )
        assert documents[(failed, "job.failed")]["data"]["state"] == "JOB_STATE_FAILED"
        assert documents[(cancelled, "job.cancelled")]["data"]["reason"] == "cancelled by client"
        assert approval["state"] == "JOB_STATE_AWAITING_APPROVAL"
        assert approval["kind"] == "JOB_KIND_SCENE" and approval["approval"]["prompt"]
        assert documents[(scene_job, "job.cancelled")]["data"]["reason"] == "rejected"

        # Visible per job: what was posted, where, and how it went.
        (delivery,) = await deliveries(server, done)
        post = next(p for p in receiver.posts if p.document["data"]["job"] == done)
        assert delivery.id == post.id and delivery.body.encode() == post.body
        assert delivery.job == done and delivery.event == COMPLETED
        assert delivery.url == webhook.url and delivery.sequence == data["sequence"]
        assert (delivery.state, delivery.attempts, delivery.last_status_code) == (DELIVERED, 1, 200)
        assert not delivery.last_error and not delivery.HasField("next_attempt_time")
        assert delivery.HasField("last_attempt_time")
        assert job.webhook.url == webhook.url
        assert list(job.webhook.events) == [
            job_pb2.WEBHOOK_EVENT_COMPLETED,
            job_pb2.WEBHOOK_EVENT_FAILED,
            job_pb2.WEBHOOK_EVENT_CANCELLED,
            job_pb2.WEBHOOK_EVENT_AWAITING_APPROVAL,
        ], "an empty filter means every outcome and the pause"


async def test_every_creating_request_takes_a_webhook(make_server, receiver):
    async with make_server(webhooks=webhook_settings()) as server:
        subject = (
            await server.design_references.CreateSubject(
                dspb.CreateSubjectRequest(
                    subject=dpb.Subject(kind=dpb.SUBJECT_KIND_CHARACTER, display_name="Mara")
                )
            )
        ).subject
        asset = (
            await server.images.UploadImage(ipb.UploadImageRequest(content=fake_png(64, 64, 1)))
        ).asset.name
        await server.design_references.AddReferenceImage(
            dspb.AddReferenceImageRequest(subject=subject.name, asset=asset)
        )
        message = await chat_with_a_message(server)

        def webhook(path: str) -> job_pb2.JobWebhook:
            return hook(receiver, path, COMPLETED)

        streams = {
            "/generate": server.images.GenerateImage(
                ipb.GenerateImageRequest(prompt="x", options=SMALL, webhook=webhook("/generate"))
            ),
            "/edit": server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=asset, prompt="x", options=SMALL, webhook=webhook("/edit")
                )
            ),
            "/avatar": server.images.GenerateAvatar(
                ipb.GenerateAvatarRequest(
                    subject=subject.name, options=SMALL, webhook=webhook("/avatar")
                )
            ),
            "/notes": server.design_references.DraftDesignNotes(
                dspb.DraftDesignNotesRequest(subject=subject.name, webhook=webhook("/notes"))
            ),
            "/scene": server.scenes.GenerateScene(
                spb.GenerateSceneRequest(message=message, prompt="Mara", webhook=webhook("/scene"))
            ),
        }
        for path, stream in streams.items():
            events = await collect(stream)
            assert kinds(events)[-1] == "completed", (path, events[-1])
        for path in streams:
            await receiver.wait(lambda path=path: receiver.events(path) == ["job.completed"])
        avatar = next(iter(receiver.unique("/avatar").values()))["data"]
        candidate = avatar["result"]["images"][0]["asset"]
        events = await collect(
            server.images.EditAvatar(
                ipb.EditAvatarRequest(
                    subject=subject.name,
                    edit_request="smile",
                    source_asset=candidate,
                    options=SMALL,
                    webhook=webhook("/edit-avatar"),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        await receiver.wait(lambda: receiver.events("/edit-avatar") == ["job.completed"])
        kinds_seen = {
            path: next(iter(receiver.unique(path).values()))["data"]["kind"]
            for path in (*streams, "/edit-avatar")
        }
        assert kinds_seen == {
            "/generate": "JOB_KIND_IMAGE_GENERATION",
            "/edit": "JOB_KIND_IMAGE_EDIT",
            "/avatar": "JOB_KIND_AVATAR_GENERATION",
            "/notes": "JOB_KIND_DESIGN_NOTES",
            "/scene": "JOB_KIND_SCENE",
            "/edit-avatar": "JOB_KIND_AVATAR_EDIT",
        }


# -- retries -----------------------------------------------------------------------------------


async def test_server_errors_are_retried_until_delivered(make_server, receiver):
    receiver.answers["/flaky"] = [500, 502]
    async with make_server(webhooks=webhook_settings()) as server:
        job = await generate(server, hook(receiver, "/flaky"))
        (delivery,) = await until_delivered(server, job)
        assert (delivery.state, delivery.attempts, delivery.last_status_code) == (DELIVERED, 3, 200)
        assert delivery.last_error == ""
        posts = [p for p in receiver.posts if p.path == "/flaky"]
        assert len(posts) == 3 and {p.id for p in posts} == {delivery.id}
        assert {p.body for p in posts} == {delivery.body.encode()}, "the same bytes each time"
        assert receiver.events("/flaky") == ["job.completed"], "once, deduplicated by id"


async def test_gone_stops_at_once(make_server, receiver):
    receiver.answers["/gone"] = [410] * 10
    async with make_server(webhooks=webhook_settings()) as server:
        job = await generate(server, hook(receiver, "/gone"))
        (delivery,) = await until_delivered(server, job)
        await asyncio.sleep(0.5)  # several backoffs: no second attempt comes
        assert len([p for p in receiver.posts if p.path == "/gone"]) == 1
        (delivery,) = await deliveries(server, job)
        assert (delivery.state, delivery.attempts, delivery.last_status_code) == (FAILED, 1, 410)
        assert "410" in delivery.last_error


async def test_retry_after_is_honoured(make_server, receiver):
    receiver.answers["/busy"] = [(429, {"Retry-After": "1"})]
    async with make_server(webhooks=webhook_settings()) as server:
        job = await generate(server, hook(receiver, "/busy"))
        (delivery,) = await until_delivered(server, job)
        first, second = (p for p in receiver.posts if p.path == "/busy")
        assert second.at - first.at >= 0.9, "not before Retry-After"
        assert (delivery.state, delivery.attempts) == (DELIVERED, 2)


async def test_attempts_are_bounded(make_server, receiver):
    receiver.answers["/down"] = [500] * 10
    async with make_server(webhooks=webhook_settings(max_attempts=3)) as server:
        job = await generate(server, hook(receiver, "/down"))
        (delivery,) = await until_delivered(server, job)
        assert (delivery.state, delivery.attempts, delivery.last_status_code) == (FAILED, 3, 500)
        assert "gave up after 3 attempt(s)" in delivery.last_error
        await asyncio.sleep(0.4)
        assert len([p for p in receiver.posts if p.path == "/down"]) == 3


async def test_a_pending_delivery_is_posted_after_a_restart(make_server, database_url, receiver):
    receiver.answers["/later"] = [503] * 1000
    settings = webhook_settings(first_retry_s=0.2, max_retry_s=0.2)
    async with make_server(database_url, webhooks=settings) as server:
        job = await generate(server, hook(receiver, "/later"))
        await receiver.wait(lambda: len(receiver.posts) >= 1)
        (pending,) = await deliveries(server, job)
        assert pending.state == job_pb2.WEBHOOK_DELIVERY_STATE_PENDING
        assert pending.HasField("next_attempt_time") and pending.last_status_code == 503
    before = len(receiver.posts)
    receiver.answers["/later"] = []  # the receiver is back while the server is down
    async with make_server(database_url, webhooks=settings) as server:
        (delivery,) = await until_delivered(server, job)
        assert delivery.state == DELIVERED and delivery.attempts == before + 1
        assert delivery.id == pending.id
    assert {p.id for p in receiver.posts} == {pending.id}
    assert receiver.events("/later") == ["job.completed"]


# -- refusals ----------------------------------------------------------------------------------


async def test_private_targets_are_refused_unless_allowed(make_server, receiver):
    async with make_server(webhooks=webhook_settings(allow_private_addresses=False)) as server:
        for url in (receiver.url("/hooks"), "http://localhost:9/hooks", "http://10.0.0.1/x"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await generate(server, job_pb2.JobWebhook(url=url))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
            assert field_violations(caught.value) == ["webhook.url"]
            assert "non-public address" in caught.value.details()
        for url in ("ftp://example.com/x", "https://user:pw@example.com/x", "/relative"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await generate(server, job_pb2.JobWebhook(url=url))
            assert field_violations(caught.value) == ["webhook.url"], url
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await update_settings(server, default_webhook=hook(receiver, "/default"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(caught.value) == ["default_webhook.url"]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(server, job_pb2.JobWebhook(url=receiver.url("/x"), events=[99]))
        assert field_violations(caught.value) == ["webhook.events"]
        assert not (await server.jobs.ListJobs(jpb.ListJobsRequest())).jobs, "no job was made"
    assert receiver.posts == []


async def test_webhooks_are_off_without_a_secret(make_server, receiver):
    async with make_server() as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(server, hook(receiver, "/hooks"))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert status_details(caught.value)["ErrorInfo"].reason == "WEBHOOKS_NOT_CONFIGURED"
        # Jobs without one run as before, and list no deliveries.
        job = await generate(server)
        assert await deliveries(server, job) == []


def test_the_secret_is_checked_and_never_shown(tmp_path):
    with pytest.raises(Exception, match="whsec_"):
        Settings.load(None, data_dir=tmp_path, webhooks={"secret": "not-a-secret"})
    settings = Settings.load(None, data_dir=tmp_path, webhooks={"secret": SECRET})
    assert SECRET not in repr(settings) and SECRET not in settings.model_dump_json()


def test_signatures_match_the_standard_webhooks_example():
    # The example in the Standard Webhooks specification's reference libraries.
    key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert (
        signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


# -- choosing the webhook, and what is posted --------------------------------------------------


async def test_a_request_webhook_overrides_the_workspace_default(make_server, receiver):
    async with make_server(webhooks=webhook_settings()) as server:
        default = hook(receiver, "/default")
        saved = await update_settings(server, default_webhook=default)
        assert saved.default_webhook.url == default.url
        got = await server.models.GetImageSettings(mpb.GetImageSettingsRequest())
        assert got.image_settings.default_webhook.url == default.url

        by_default = await generate(server)
        own = await generate(server, hook(receiver, "/own"))
        await receiver.wait(lambda: bool(receiver.events("/default") and receiver.events("/own")))
        await asyncio.sleep(0.2)
        assert receiver.events("/default") == ["job.completed"]
        assert receiver.events("/default", job=by_default) == ["job.completed"]
        assert receiver.events("/own", job=own) == ["job.completed"]
        assert receiver.events("/default", job=own) == [], "the request's webhook wins"
        get = server.jobs.GetJob
        assert (await get(jpb.GetJobRequest(name=by_default))).job.webhook.url == default.url
        assert (await get(jpb.GetJobRequest(name=own))).job.webhook.url == receiver.url("/own")

        # Removing the default: later jobs post nowhere.
        cleared = await update_settings(server, default_webhook=job_pb2.JobWebhook())
        assert not cleared.HasField("default_webhook")
        quiet = await generate(server)
        assert not (await get(jpb.GetJobRequest(name=quiet))).job.HasField("webhook")
        assert await deliveries(server, quiet) == []


async def test_the_event_filter_and_the_progress_throttle(make_server, receiver):
    async with make_server(webhooks=webhook_settings()) as server:
        # Progress at most once per 60 s: the first report only, then the outcome.
        job = await generate(server, hook(receiver, "/progress", PROGRESS, COMPLETED))
        await receiver.wait(lambda: "job.completed" in receiver.events("/progress"))
        assert receiver.events("/progress") == ["job.progress", "job.completed"]
        progress = next(iter(receiver.unique("/progress").values()))["data"]
        assert progress["job"] == job and progress["progress"]["stage"] == "JOB_STAGE_QUEUED"
        events = [d.event for d in await deliveries(server, job)]
        assert events == [PROGRESS, COMPLETED]

        # Only failures: a job that succeeds posts nothing.
        quiet = await generate(server, hook(receiver, "/failures", job_pb2.WEBHOOK_EVENT_FAILED))
        await asyncio.sleep(0.3)
        assert receiver.events("/failures") == []
        assert await deliveries(server, quiet) == []

    async with make_server(webhooks=webhook_settings(progress_interval_s=0.0)) as server:
        job = await generate(server, hook(receiver, "/every", PROGRESS))
        await asyncio.sleep(0.3)
        logged = [
            e
            for e in await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=job)))
            if e.HasField("progress") and not e.transient
        ]
        await receiver.wait(lambda: len(receiver.events("/every")) == len(logged))
        assert set(receiver.events("/every")) == {"job.progress"}


async def test_listing_deliveries_of_an_unknown_job(make_server):
    async with make_server(webhooks=webhook_settings()) as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await deliveries(server, "jobs/" + "0" * 32)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await deliveries(server, "nope")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
