"""The use cases wired as the composition root (``limner.app``) wires them, over a real
SQLite database, asset library, model catalogue and template service, but with a
recording job engine instead of the runner: planning tests read what each use case hands
the engine (``World.engine.submitted``) without running a job or a gRPC server.

Models (all served by the offline provider's adapters, plus the built-in ones):

- ``studio``: honours everything; sizes 512x512 and 768x512 only; 2 references, 4 images.
- ``painter``: edits (no masks), any size (default 640x448), 1 reference, 1 image.
- ``sketch``: text in, image out, honours nothing else (no image input: cannot see a source).
- ``scribe``: a writer (text+image in, text out).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from limner.assets import BlobStore
from limner.assets.fetch import UrlFetcher
from limner.domain.jobs import (
    Job,
    JobKind,
    JobStage,
    JobState,
    JobWarning,
    Progress,
    WatchItem,
)
from limner.domain.models import (
    ImageSettings,
    Modality,
    ModelOrigin,
    ModelProfile,
    ModelSpec,
    ProviderInfo,
)
from limner.domain.specs import Approval
from limner.domain.subjects import Subject, SubjectKind
from limner.features.assets import AssetLibrary, upload_provenance
from limner.features.avatars import AvatarFeature
from limner.features.chats import Chats
from limner.features.design_notes import DesignNotesFeature
from limner.features.images import ImageFeature
from limner.features.scenes import SceneFeature
from limner.features.subjects import SubjectDraft, Subjects
from limner.jobs import HandlerTable, NewJob
from limner.jobs.eta import RunTimes
from limner.jobs.store import JobPage
from limner.persistence import Database
from limner.persistence.assets import SqlAssetRepository
from limner.persistence.chats import SqlChatRepository
from limner.persistence.jobs import SqlJobStore
from limner.persistence.models import SqlImageSettingsRepository, SqlModelRepository
from limner.persistence.scenes import SqlSceneRepository
from limner.persistence.subjects import SqlSubjectRepository
from limner.persistence.templates import SqlTemplateOverrides
from limner.prompts import TemplateService
from limner.providers import BUILTIN_MODELS, OFFLINE_PROVIDER, Provider
from limner.providers.offline import OfflineImageGenerator, OfflineSettings, OfflineWriter
from limner.registry import ModelCatalog
from limner.testing.fakes import fake_png

WORKSPACE = "w1"
# What tests make ``random.randrange`` answer when planning picks a seed.
CHOSEN_SEED = 424242
_IMAGE_IN = frozenset({Modality.TEXT, Modality.IMAGE})


def _model(
    model_id: str,
    profile: ModelProfile,
    *,
    inputs: frozenset[Modality] = _IMAGE_IN,
    outputs: frozenset[Modality] = frozenset({Modality.IMAGE}),
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=OFFLINE_PROVIDER,
        provider_model_id=f"{model_id}-v1",
        input_modalities=inputs,
        output_modalities=outputs,
        profile=profile,
        origin=ModelOrigin.CONFIG,
    )


STUDIO = _model(
    "studio",
    ModelProfile(
        max_reference_images=2,
        supported_sizes=("512x512", "768x512"),
        default_size="512x512",
        supports_seed=True,
        supports_negative_prompt=True,
        supports_edit=True,
        supports_mask=True,
        supports_sampling_parameters=True,
        supports_aspect_ratio=True,
        max_images_per_request=4,
    ),
)
PAINTER = _model(
    "painter",
    ModelProfile(
        max_reference_images=1, default_size="640x448", supports_edit=True, supports_seed=True
    ),
)
SKETCH = _model("sketch", ModelProfile(default_size="320x256"), inputs=frozenset({Modality.TEXT}))
SCRIBE = _model("scribe", ModelProfile(), outputs=frozenset({Modality.TEXT}))
MODELS = (*BUILTIN_MODELS, STUDIO, PAINTER, SKETCH, SCRIBE)


def ignored(field: str, model: str, what: str) -> JobWarning:
    """The warning for a request field the model does not honour."""
    return JobWarning(
        "PARAMETER_IGNORED", f"models/{model} does not support {what}; ignored", field
    )


class RecordingEngine:
    """The part of the ``JobEngine`` port planning uses: ``submit`` records the ``NewJob``
    and answers with a queued job; ``get_job`` reads those jobs back."""

    def __init__(self) -> None:
        self.submitted: list[NewJob] = []
        self.jobs: dict[str, Job] = {}

    async def submit(self, new: NewJob) -> tuple[Job, bool]:
        self.submitted.append(new)
        now = datetime.now(UTC)
        job = Job(
            id=uuid.uuid4().hex,
            workspace_id=new.workspace_id,
            kind=new.kind,
            state=JobState.QUEUED,
            progress=Progress(stage=JobStage.QUEUED),
            model_id=new.model_id,
            provider_id=new.provider_id,
            prompt=new.prompt,
            spec=new.spec,
            create_time=now,
            update_time=now,
            warnings=list(new.warnings),
            target=new.target,
        )
        self.jobs[job.id] = job
        return job, True

    async def get_job(self, workspace_id: str, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.workspace_id == workspace_id else None

    @property
    def only(self) -> NewJob:
        """The one job submitted so far."""
        assert len(self.submitted) == 1, f"{len(self.submitted)} jobs were submitted"
        return self.submitted[0]

    # Not used by planning.

    async def start(self, handlers: HandlerTable) -> None:
        raise NotImplementedError

    async def shutdown(self, grace_s: float) -> None:
        raise NotImplementedError

    async def cancel(self, workspace_id: str, job_id: str, reason: str) -> Job:
        raise NotImplementedError

    async def resume(self, workspace_id: str, job_id: str, approval: Approval) -> Job:
        raise NotImplementedError

    async def list_jobs(
        self,
        workspace_id: str,
        *,
        states: Sequence[JobState],
        kinds: Sequence[JobKind],
        page_size: int,
        page_token: str,
    ) -> JobPage:
        raise NotImplementedError

    def watch(
        self, workspace_id: str, job_id: str, *, after_sequence: int, heartbeat_interval_s: float
    ) -> AsyncIterator[WatchItem]:
        raise NotImplementedError


@dataclass
class World:
    database: Database
    engine: RecordingEngine
    assets: AssetLibrary
    catalog: ModelCatalog
    subjects: Subjects
    renderer: TemplateService
    images: ImageFeature
    avatars: AvatarFeature
    design_notes: DesignNotesFeature
    chats: Chats
    scenes: SceneFeature
    fetcher: UrlFetcher

    async def upload(self, width: int = 64, height: int = 64, seed: int = 0) -> str:
        """Stores a small PNG (its colour picked by ``seed``) and returns its asset name."""
        asset, _ = await self.assets.store(
            WORKSPACE, fake_png(width, height, seed), upload_provenance()
        )
        return f"assets/{asset.sha256}"

    async def subject(
        self,
        display_name: str = "Mira",
        *,
        kind: SubjectKind = SubjectKind.CHARACTER,
        description: str = "",
        references: Sequence[str] = (),
        avatar: str = "",
    ) -> Subject:
        subject = await self.subjects.create(
            WORKSPACE,
            SubjectDraft(kind=kind, display_name=display_name, description=description),
            request_id="",
        )
        for name in references:
            subject = await self.subjects.add_reference(WORKSPACE, f"subjects/{subject.id}", name)
        if avatar:
            subject = await self.avatars.accept(WORKSPACE, f"subjects/{subject.id}", avatar)
        return subject

    async def choose_models(self, **chosen: Any) -> None:
        """Sets the workspace's image settings (``scene_image_model="studio"``, ...)."""
        await self.catalog.update_image_settings(WORKSPACE, ImageSettings(**chosen), set(chosen))


def _no_download(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"planning downloaded {request.url}")


def migrated_template(directory: Path) -> Path:
    """A migrated SQLite file to copy per test: a fresh migration costs ~0.2 s, migrating
    a copy (nothing left to do) ~0.03 s. Call once per session, outside the event loop."""
    path = directory / "template.sqlite"

    async def build() -> None:
        database = Database(f"sqlite:///{path}")
        await database.migrate()
        await database.close()

    asyncio.run(build())
    return path


@asynccontextmanager
async def planning_world(tmp_path: Path, template: Path) -> AsyncIterator[World]:
    """Everything over a copy of ``template`` (see ``migrated_template``)."""
    path = tmp_path / "db.sqlite"
    shutil.copyfile(template, path)
    database = Database(f"sqlite:///{path}")
    await database.migrate()
    offline = OfflineSettings(steps=1, step_delay_s=0)
    provider = Provider(
        id=OFFLINE_PROVIDER,
        kind="offline",
        images=OfflineImageGenerator(offline),
        writer=OfflineWriter(offline),
    )
    catalog = ModelCatalog(
        fixed_models=MODELS,
        providers=[ProviderInfo(OFFLINE_PROVIDER, "offline", "", False, 2, True)],
        repository=SqlModelRepository(database),
        settings=SqlImageSettingsRepository(database),
        adapters={OFFLINE_PROVIDER: provider},
    )
    engine = RecordingEngine()
    assets = AssetLibrary(
        SqlAssetRepository(database),
        BlobStore(tmp_path / "assets"),
        max_image_bytes=1024 * 1024,
        max_image_pixels=4096 * 4096,
    )
    job_store = SqlJobStore(database)
    # Planning downloads nothing; the transport says so if it ever tries (and skips the
    # SSL context a real client would build for every test).
    http = httpx.AsyncClient(follow_redirects=False, transport=httpx.MockTransport(_no_download))
    fetcher = UrlFetcher(http, max_bytes=1024 * 1024)
    images = ImageFeature(
        catalog=catalog,
        engine=engine,
        assets=assets,
        fetcher=fetcher,
        run_times=RunTimes(job_store),
    )
    subjects = Subjects(SqlSubjectRepository(database), assets)
    renderer = TemplateService(SqlTemplateOverrides(database))
    chats = Chats(
        repository=SqlChatRepository(database), subjects=subjects, assets=assets, fetcher=fetcher
    )
    try:
        yield World(
            database=database,
            engine=engine,
            assets=assets,
            catalog=catalog,
            subjects=subjects,
            renderer=renderer,
            images=images,
            avatars=AvatarFeature(
                subjects=subjects, images=images, renderer=renderer, engine=engine
            ),
            design_notes=DesignNotesFeature(
                catalog=catalog, engine=engine, subjects=subjects, renderer=renderer
            ),
            chats=chats,
            scenes=SceneFeature(
                repository=SqlSceneRepository(database),
                catalog=catalog,
                engine=engine,
                chats=chats,
                images=images,
                renderer=renderer,
            ),
            fetcher=fetcher,
        )
    finally:
        renderer.close()
        await http.aclose()
        await job_store.close()
        await database.close()
