"""The composition root: builds every part from settings, starts and stops the server.

Nothing is built at import time; tests and the benchmark build an ``App`` with their own
settings (and, for the benchmark, their own providers).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable
from pathlib import Path

import httpx

from limner.api import health
from limner.api.server import GrpcServer, Servicers
from limner.api.servicers import (
    DesignReferenceServicer,
    ImageServicer,
    JobServicer,
    ModelServicer,
    SceneServicer,
)
from limner.api.tls import server_tls
from limner.assets import BlobStore
from limner.assets.fetch import UrlFetcher, host_of
from limner.domain.jobs import JobKind
from limner.domain.models import (
    Modality,
    ModelOrigin,
    ModelProfile,
    ModelSpec,
    ProviderInfo,
)
from limner.domain.specs import AvatarSpec, DesignNotesSpec, ImageSpec, SceneSpec
from limner.features.assets import AssetLibrary
from limner.features.avatars import AvatarFeature
from limner.features.chats import Chats
from limner.features.design_notes import DesignNotesFeature
from limner.features.images import ImageFeature
from limner.features.jobs import JobQueries
from limner.features.messages import MessagePosting
from limner.features.models import ModelAdmin
from limner.features.scenes import SceneFeature
from limner.features.subjects import Subjects
from limner.features.uploads import Uploads
from limner.features.webhooks import WebhookJobs, Webhooks
from limner.jobs import JobHandler, JobRunner, RunnerSettings
from limner.jobs.eta import RunTimes
from limner.jobs.hub import EventHub
from limner.observability import tracing
from limner.observability.metrics import NO_METRICS, MetricsHooks, metrics_for
from limner.persistence import Database
from limner.persistence.assets import SqlAssetRepository
from limner.persistence.chats import SqlChatRepository
from limner.persistence.jobs import SqlJobStore
from limner.persistence.models import SqlImageSettingsRepository, SqlModelRepository
from limner.persistence.notify import JobEventListener
from limner.persistence.requests import SqlRequestLedger
from limner.persistence.scenes import SqlSceneRepository
from limner.persistence.subjects import SqlSubjectRepository
from limner.persistence.templates import SqlTemplateOverrides
from limner.persistence.webhooks import SqlWebhookStore, WebhookOutbox
from limner.prompts import TemplateService
from limner.providers import (
    BUILTIN_MODELS,
    OFFLINE_PROVIDER,
    PROVIDER_KINDS,
    Provider,
    ProviderContext,
)
from limner.registry import ModelCatalog
from limner.settings import HttpSettings, ProviderSettings, Settings
from limner.startup import check_address, migrate_database, prepare_data_dir
from limner.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger("limner")

# After the grace period, closing the job store, clients and database takes at most this
# long (a database that hangs must not hold up the exit past the orchestrator's limit).
CLOSE_BUDGET_S = 1.0


def http_client(settings: HttpSettings) -> httpx.AsyncClient:
    """The shared client; ``transport = "aiohttp"`` keeps the httpx API over aiohttp."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
    )
    transport: httpx.AsyncBaseTransport | None = None
    if settings.transport == "aiohttp":
        from limner.providers.http import aiohttp_transport

        transport = aiohttp_transport(limits)
    return httpx.AsyncClient(limits=limits, follow_redirects=False, transport=transport)


def configured_models(settings: Settings) -> list[ModelSpec]:
    models = list(BUILTIN_MODELS)
    for model in settings.models:
        profile = model.profile.model_dump()
        profile["supported_sizes"] = tuple(profile["supported_sizes"])
        models.append(
            ModelSpec(
                id=model.id,
                provider=model.provider,
                provider_model_id=model.provider_model_id,
                display_name=model.display_name,
                input_modalities=frozenset(Modality(m) for m in model.input_modalities),
                output_modalities=frozenset(Modality(m) for m in model.output_modalities),
                profile=ModelProfile(**profile),
                origin=ModelOrigin.CONFIG,
            )
        )
    return models


class App:
    def __init__(self, settings: Settings, *, providers: dict[str, Provider] | None = None) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir).absolute()
        self._provider_overrides = providers or {}
        self.port = 0
        self.database: Database | None = None
        self.listener: JobEventListener | None = None
        self.runner: JobRunner | None = None
        self.server: GrpcServer | None = None
        self.providers: dict[str, Provider] = {}
        self.http: httpx.AsyncClient | None = None
        self.download_http: httpx.AsyncClient | None = None
        self.webhook_dispatcher: WebhookDispatcher | None = None
        self.templates: TemplateService | None = None
        self.stop_times: dict[str, float] = {}
        self.metrics: MetricsHooks = NO_METRICS

    @property
    def address(self) -> str:
        host = self.settings.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def _provider_sections(self) -> dict[str, ProviderSettings]:
        sections = {
            OFFLINE_PROVIDER: ProviderSettings(
                kind="offline", max_concurrent_jobs=self.settings.jobs.default_provider_concurrency
            )
        }
        sections.update(self.settings.providers)
        return sections

    async def start(self) -> int:
        settings = self.settings
        data_dir = self.data_dir
        # TLS files first: a bad certificate or key stops the start before anything is built
        # (TlsConfigError, one line naming the file and the setting).
        tls = await asyncio.to_thread(server_tls, settings.tls)
        # Then the address, the data directory and the database, each failing with a
        # StartupError (one line, an exit code of its own) before anything is built.
        await asyncio.to_thread(check_address, settings.address)
        await asyncio.to_thread(prepare_data_dir, data_dir)
        # /metrics from here on (LIMNER_METRICS__ADDRESS); a taken port stops the start.
        self.metrics = metrics = metrics_for(
            settings.metrics.address,
            models=[model.id for model in configured_models(settings)],
            providers=self._provider_sections(),
        )
        await metrics.start()
        # Traces when OTEL_TRACES_EXPORTER names an exporter (limner.observability.tracing).
        traced = tracing.start()
        self.database = database = Database(settings.resolved_database_url(), carry_context=traced)
        await migrate_database(database)
        tracing.instrument_database(database.engine)

        # One connection pool for every provider call and result download.
        self.http = http = http_client(settings.http)
        tracing.instrument_http(http)
        # Shared by every provider: how many answers are read and parsed at once.
        answers = settings.http.max_answers_in_memory
        answer_gate = asyncio.Semaphore(answers) if answers > 0 else None
        sections = self._provider_sections()
        provider_infos = []
        for provider_id, section in sections.items():
            factory = PROVIDER_KINDS.get(section.kind)
            provider = self._provider_overrides.get(provider_id)
            if not section.enabled:
                provider = None
            elif provider is None and factory is not None:
                provider = factory(
                    ProviderContext(provider_id, section, settings, http, answer_gate, metrics)
                )
            if provider is not None:
                if section.base_url:
                    # Results may be hosted on the provider's own (possibly private) host.
                    provider.trusted_hosts |= {host_of(section.base_url)}
                self.providers[provider_id] = provider
            else:
                log.info("provider %s (%s) is disabled", provider_id, section.kind)
            provider_infos.append(
                ProviderInfo(
                    id=provider_id,
                    kind=section.kind,
                    base_url=section.base_url,
                    has_api_key=section.api_key is not None,
                    max_concurrent_jobs=section.max_concurrent_jobs,
                    available=provider is not None,
                )
            )

        catalog = ModelCatalog(
            fixed_models=configured_models(settings),
            providers=provider_infos,
            repository=SqlModelRepository(database),
            settings=SqlImageSettingsRepository(database),
            adapters=self.providers,
        )
        hub = EventHub()
        # Signed webhooks (README: Webhooks): deliveries are queued with the events they post,
        # then posted by the dispatcher, which runs only with a signing secret.
        outbox = WebhookOutbox(progress_interval_s=settings.webhooks.progress_interval_s)
        job_store = SqlJobStore(database, lease_s=settings.jobs.lease_s, webhooks=outbox)
        webhook_store = SqlWebhookStore(database)
        self.webhook_dispatcher = WebhookDispatcher.from_settings(settings.webhooks, webhook_store)
        if self.webhook_dispatcher is not None:
            outbox.on_queued = self.webhook_dispatcher.wake
            self.webhook_dispatcher.start()
        self.runner = runner = JobRunner(
            job_store,
            hub,
            RunnerSettings(
                heartbeat_interval_s=settings.jobs.heartbeat_interval_s,
                job_timeout_s=settings.jobs.timeout_s,
                max_attempts=settings.jobs.max_attempts,
                default_concurrency=settings.jobs.default_provider_concurrency,
                preview_interval_s=settings.jobs.preview_interval_s,
                queue_report_interval_s=settings.jobs.queue_report_interval_s,
                lease_s=settings.jobs.lease_s,
                claim_interval_s=settings.jobs.claim_interval_s,
                provider_concurrency={
                    name: section.max_concurrent_jobs for name, section in sections.items()
                },
            ),
            metrics=metrics,
        )
        webhooks = Webhooks(
            enabled=self.webhook_dispatcher is not None,
            allow_private_addresses=settings.webhooks.allow_private_addresses,
            deliveries=webhook_store,
            engine=runner,
        )
        # What use cases submit jobs to: each job gets its request's or the default webhook.
        engine = WebhookJobs(runner, webhooks, catalog)
        blobs = BlobStore(data_dir / "assets")
        # Made here, once: the health check (limner.assets) then tells when it vanishes.
        await asyncio.to_thread(blobs.root.mkdir, parents=True, exist_ok=True)
        assets = AssetLibrary(
            SqlAssetRepository(database),
            blobs,
            max_image_bytes=settings.assets.max_image_bytes,
            max_image_pixels=settings.assets.max_image_pixels,
        )
        ledger = SqlRequestLedger(database)
        # Downloads use httpx's own transport: it honours the sni_hostname extension the
        # fetcher needs to connect to a checked address (see limner.assets.fetch).
        self.download_http = download_http = httpx.AsyncClient(follow_redirects=False)
        tracing.instrument_http(download_http)
        fetcher = UrlFetcher(
            download_http,
            max_bytes=settings.assets.max_image_bytes,
            timeout_s=settings.assets.download_timeout_s,
        )
        images = ImageFeature(
            catalog=catalog,
            engine=engine,
            assets=assets,
            fetcher=fetcher,
            run_times=RunTimes(runner.store),
            estimate_interval_s=settings.jobs.estimate_interval_s,
        )
        jobs = JobQueries(runner, settings.jobs.heartbeat_interval_s)
        subjects = Subjects(SqlSubjectRepository(database), assets)
        self.templates = renderer = TemplateService(SqlTemplateOverrides(database))
        avatars = AvatarFeature(subjects=subjects, images=images, renderer=renderer, engine=engine)
        design_notes = DesignNotesFeature(
            catalog=catalog, engine=engine, subjects=subjects, renderer=renderer
        )
        chats = Chats(
            repository=SqlChatRepository(database),
            subjects=subjects,
            assets=assets,
            fetcher=fetcher,
        )
        scenes = SceneFeature(
            repository=SqlSceneRepository(database),
            catalog=catalog,
            engine=engine,
            chats=chats,
            images=images,
            renderer=renderer,
        )
        messages = MessagePosting(chats=chats, scenes=scenes, catalog=catalog)
        if not database.is_sqlite:
            self.listener = JobEventListener(database.url, job_store.owner, hub.poke)
            await self.listener.start()
        # Every job kind, the spec it is planned with and the handler that runs it.
        await runner.start(
            {
                JobKind.IMAGE_GENERATION: JobHandler(ImageSpec, images.render),
                JobKind.IMAGE_EDIT: JobHandler(ImageSpec, images.render),
                JobKind.AVATAR_GENERATION: JobHandler(AvatarSpec, avatars.render),
                JobKind.AVATAR_EDIT: JobHandler(AvatarSpec, avatars.render),
                JobKind.SCENE: JobHandler(SceneSpec, scenes.render),
                JobKind.DESIGN_NOTES: JobHandler(DesignNotesSpec, design_notes.render),
            }
        )
        metrics.observe_jobs({name: runner.slots(name) for name in sections}, hub.watching)

        servicers = Servicers(
            images=ImageServicer(
                images=images,
                jobs=jobs,
                assets=assets,
                uploads=Uploads(assets, ledger),
                chunk_bytes=settings.assets.chunk_bytes,
                avatars=avatars,
            ),
            scenes=SceneServicer(chats=chats, messages=messages, scenes=scenes, jobs=jobs),
            design_references=DesignReferenceServicer(
                subjects=subjects, design_notes=design_notes, jobs=jobs
            ),
            models=ModelServicer(ModelAdmin(catalog, ledger, self.providers, webhooks), renderer),
            jobs=JobServicer(jobs, webhooks),
        )
        self.server = GrpcServer(
            settings,
            servicers,
            tls,
            metrics,
            interceptors=tracing.grpc_interceptors(),
            health_checks={
                health.DATABASE: database.check,
                health.ASSETS: blobs.check,
                health.JOBS: runner.check,
            },
        )
        self.port = await self.server.start(settings.address)
        log.info("limner listening on %s (data in %s)", self.address, data_dir)
        return self.port

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: health goes NOT_SERVING for the drain, new jobs are refused,
        in-flight RPCs and jobs get ``grace_s`` (the runner's and the server's grace run
        at the same time); jobs still running are then interrupted and handed over
        (released, so another process or the next start resumes them), within 1 s. Closing
        the stores and clients takes at most ``CLOSE_BUDGET_S`` more.
        ``stop_times`` records how long each phase took."""
        grace = self.settings.shutdown.grace_s if grace_s is None else grace_s
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.server is not None:
            await self.server.enter_graceful_shutdown()
            if self.settings.shutdown.drain_s > 0:
                await asyncio.sleep(self.settings.shutdown.drain_s)
        drained = loop.time()
        tasks = []
        if self.runner is not None:
            tasks.append(self.runner.shutdown(grace))
        if self.server is not None:
            tasks.append(self.server.stop(grace))
        await asyncio.gather(*tasks)
        finished = loop.time()
        deadline = finished + CLOSE_BUDGET_S

        async def close(what: str, closing: Awaitable[object]) -> None:
            try:
                async with asyncio.timeout_at(deadline):
                    await closing
            except TimeoutError:
                log.warning("%s did not close within the shutdown budget; exiting anyway", what)

        if self.runner is not None:
            await close("the job store", self.runner.store.close())
        if self.webhook_dispatcher is not None:
            # In-flight attempts are released: posted again by the next start (at least once).
            await close("the webhook dispatcher", self.webhook_dispatcher.stop())
        if self.listener is not None:
            await close("the job event listener", self.listener.close())
        for provider_id, provider in self.providers.items():
            await close(f"provider {provider_id}", provider.aclose())
        if self.http is not None:
            await close("the HTTP client", self.http.aclose())
        if self.download_http is not None:
            await close("the download client", self.download_http.aclose())
        if self.templates is not None:
            self.templates.close()
        if self.database is not None:
            await close("the database", self.database.close())
        if tracing.enabled():
            await close("the trace exporter", asyncio.to_thread(tracing.flush))
        # Last: the endpoint answers scrapes for as long as anything else is running.
        await close("the metrics endpoint", self.metrics.stop())
        self.stop_times = {
            "drain_s": drained - started,
            "grace_s": finished - drained,
            "close_s": loop.time() - finished,
        }


async def serve(settings: Settings) -> None:
    """Runs until SIGTERM or SIGINT, then stops gracefully."""
    app = App(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "shutting down (drain %.1fs, grace %.1fs)",
        settings.shutdown.drain_s,
        settings.shutdown.grace_s,
    )
    await app.stop()
    times = app.stop_times
    log.info(
        "stopped (drain %.2fs, jobs and RPCs %.2fs, closing %.2fs)",
        times["drain_s"],
        times["grace_s"],
        times["close_s"],
        extra={f"shutdown_{key}": round(value, 3) for key, value in times.items()},
    )
