"""A database written by the previous main (7665685, before job specs were typed: every
stored spec is a "version 0" flat dict) still works under today's code.

The fixture, ``tests/fixtures/v0-database``, was made by ``make_v0_database.py`` (beside
it) running the old server: ``limner.sql`` is its SQLite database as SQL text, ``assets/``
its blobs, ``manifest.json`` the jobs it left and what the old server answered for them.
Each test rebuilds the data directory in ``tmp_path`` and starts today's server over it
(the migrations run at start-up), with a fast offline provider.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from limner.testing import RunningServer
from limner.testing.streams import collect, kinds
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2
from limner.v1 import job_service_pb2 as jpb
from limner.v1 import scene_pb2 as cpb
from limner.v1 import scene_service_pb2 as pb

pytestmark = pytest.mark.timeout(60)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v0-database"
MANIFEST: dict[str, Any] = json.loads((FIXTURE / "manifest.json").read_text(encoding="utf-8"))
JOBS: dict[str, dict[str, Any]] = {job["label"]: job for job in MANIFEST["jobs"]}
FINISHED = [label for label, job in JOBS.items() if "job" in job]
IN_FLIGHT = ["image_in_flight", "scene_in_flight"]
TERMINAL = {"completed", "failed", "cancelled"}


def restore(data_dir: Path) -> None:
    """The old server's data directory: its database from the SQL dump, and its blobs."""
    data_dir.mkdir(parents=True)
    connection = sqlite3.connect(data_dir / "limner.db")
    try:
        connection.executescript((FIXTURE / "limner.sql").read_text(encoding="utf-8"))
    finally:
        connection.close()
    shutil.copytree(FIXTURE / "assets", data_dir / "assets")


@pytest.fixture
async def server(make_server, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """Today's server over the old data (``make_server`` keeps its data in tmp_path/data)."""
    data_dir = tmp_path / "data"
    restore(data_dir)
    async with make_server(f"sqlite:///{data_dir / 'limner.db'}") as running:
        yield running


async def get_job(server: RunningServer, name: str) -> job_pb2.Job:
    return (await server.jobs.GetJob(jpb.GetJobRequest(name=name))).job


async def get_scene(server: RunningServer, name: str) -> cpb.Scene:
    return (await server.scenes.GetScene(pb.GetSceneRequest(name=name))).scene


async def replay(server: RunningServer, name: str) -> list[job_pb2.JobEvent]:
    return await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name, after_sequence=0)))


async def read(server: RunningServer, asset: str) -> bytes:
    chunks = server.images.ReadAssetContent(ipb.ReadAssetContentRequest(name=asset))
    return b"".join([chunk.data async for chunk in chunks])


async def assert_readable(server: RunningServer, asset: str) -> None:
    data = await read(server, asset)
    assert asset == f"assets/{hashlib.sha256(data).hexdigest()}"


def warning_codes(events: list[job_pb2.JobEvent]) -> list[str]:
    return [e.warning.code for e in events if e.HasField("warning")]


def test_the_fixture_holds_old_specs_of_every_kind():
    """Guards the fixture itself: version-0 specs, and every case the tests below need."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.executescript((FIXTURE / "limner.sql").read_text(encoding="utf-8"))
        rows = connection.execute("SELECT kind, state, spec FROM jobs").fetchall()
    finally:
        connection.close()
    assert rows and all("version" not in json.loads(spec) for _, _, spec in rows)
    assert {kind for kind, _, _ in rows} == {
        "image_generation",
        "image_edit",
        "avatar_generation",
        "avatar_edit",
        "design_notes",
        "scene",
    }
    assert {JOBS[label]["state"] for label in FINISHED} == {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
    }
    assert [JOBS[label]["state"] for label in IN_FLIGHT] == ["JOB_STATE_RUNNING"] * 2
    assert JOBS["scene_ask_first"]["state"] == "JOB_STATE_AWAITING_APPROVAL"


async def test_finished_jobs_replay_their_stored_events_and_results(server):
    for label in FINISHED:
        stored = JOBS[label]
        events = await replay(server, stored["name"])
        snapshot, *rest = events
        assert snapshot.HasField("snapshot") and snapshot.transient, label
        assert MessageToDict(snapshot.snapshot) == stored["job"], label
        # Exactly the stored log: numbered 1..n without gaps, and nothing else.
        assert not any(e.transient for e in rest), label
        assert [e.sequence for e in rest] == list(range(1, len(stored["events"]) + 1)), label
        assert kinds(rest) == stored["events"], label
        assert rest[-1].sequence == int(stored["job"]["lastSequence"]), label
        terminal = kinds(rest)[-1]
        assert terminal in TERMINAL, label
        if terminal == "completed":
            assert MessageToDict(rest[-1].completed) == stored["job"]["result"], label
        if terminal == "failed":
            assert MessageToDict(rest[-1].failed) == stored["job"]["error"], label

        job = await get_job(server, stored["name"])
        assert MessageToDict(job) == stored["job"], label
        for image in job.result.images:
            await assert_readable(server, image.asset)

    listed = (await server.jobs.ListJobs(jpb.ListJobsRequest(page_size=100))).jobs
    assert sorted(job.name for job in listed) == sorted(job["name"] for job in JOBS.values())
    by_name = {job.name: job for job in listed}
    for label in FINISHED:
        assert MessageToDict(by_name[JOBS[label]["name"]]) == JOBS[label]["job"], label

    for label in ("scene_auto", "scene_given_prompt", "scene_rejected"):
        stored_scene = MANIFEST["scenes"][label]
        assert MessageToDict(await get_scene(server, stored_scene["name"])) == stored_scene
    assert (await get_scene(server, MANIFEST["scenes"]["scene_auto"]["name"])).state == (
        cpb.SCENE_STATE_SUCCEEDED
    )


async def test_interrupted_jobs_are_resumed_and_complete(server):
    for label in IN_FLIGHT:
        stored = JOBS[label]
        events = await replay(server, stored["name"])
        log = [e for e in events if not e.transient]
        assert [e.sequence for e in log] == list(range(1, len(log) + 1)), label
        before, after = log[: stored["last_sequence"]], log[stored["last_sequence"] :]
        assert "JOB_INTERRUPTED" in warning_codes(before), label
        assert warning_codes(after)[:1] == ["JOB_RESUMED"], label
        assert kinds(log)[-1] == "completed", (label, events[-1])
        # The request the old server planned, seed included, is what was rendered.
        (image,) = log[-1].completed.images
        assert (image.width, image.height, image.seed) == (*stored["size"], stored["seed"])
        await assert_readable(server, image.asset)
        asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=image.asset))).asset
        assert asset.provenance.job == stored["name"], label
        assert list(asset.provenance.reference_assets) == stored["reference_assets"], label

        job = await get_job(server, stored["name"])
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED, label
        assert job.attempt == stored["attempt"] + 1, label
        assert (job.prompt, job.model) == (stored["prompt"], stored["model"]), label
        assert list(job.result.images) == [image], label

    planned = MANIFEST["scenes"]["scene_in_flight"]
    scene = await get_scene(server, planned["name"])
    assert scene.state == cpb.SCENE_STATE_SUCCEEDED
    assert scene.drafted_prompt and scene.seed == JOBS["scene_in_flight"]["seed"]
    resumed = MessageToDict(scene)
    for field in (
        "job",
        "message",
        "contextMessages",
        "writerModel",
        "imageModel",
        "referenceAssets",
        "templateVersion",
        "createTime",
    ):
        assert resumed[field] == planned[field], field
    done = await get_job(server, scene.job)
    assert scene.result_asset == done.result.images[0].asset
    messages = (
        await server.scenes.ListMessages(pb.ListMessagesRequest(parent=MANIFEST["chat"]))
    ).messages
    attachments = [a for m in messages for a in m.attachments if a.scene == scene.name]
    assert [(a.asset, a.placeholder) for a in attachments] == [(scene.result_asset, False)]


async def test_the_ask_first_scene_is_approved_with_an_edited_prompt(server):
    stored = JOBS["scene_ask_first"]
    waiting = await get_scene(server, stored["scene"])
    assert waiting.state == cpb.SCENE_STATE_AWAITING_APPROVAL
    assert waiting.drafted_prompt == stored["drafted_prompt"]
    job = await get_job(server, stored["name"])
    assert job.state == job_pb2.JOB_STATE_AWAITING_APPROVAL
    assert job.last_sequence == stored["last_sequence"]

    edited = "Tomas knotting the rope at the gallery rail, rain, wide shot"
    events = await collect(
        server.scenes.ApproveScene(pb.ApproveSceneRequest(name=waiting.name, prompt=edited))
    )
    assert kinds(events)[-1] == "completed", events[-1]
    (image,) = events[-1].completed.images
    await assert_readable(server, image.asset)
    log = [e for e in await replay(server, stored["name"]) if not e.transient]
    assert [e.sequence for e in log] == list(range(1, len(log) + 1))
    assert len(log) > stored["last_sequence"]

    done = await get_scene(server, waiting.name)
    assert done.state == cpb.SCENE_STATE_SUCCEEDED
    assert (done.drafted_prompt, done.edited_prompt) == (stored["drafted_prompt"], edited)
    assert done.result_asset == image.asset
    asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=image.asset))).asset
    assert edited in asset.provenance.prompt
    assert (await get_job(server, stored["name"])).state == job_pb2.JOB_STATE_SUCCEEDED
