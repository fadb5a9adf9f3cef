"""Image generation and editing: validate, check capabilities, run as a job."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from limner.assets.fetch import UrlFetcher
from limner.domain.assets import AssetSource, Provenance
from limner.domain.images import (
    MAX_IMAGE_COUNT,
    MAX_PROMPT_CHARS,
    MAX_SIDE,
    MIN_SIDE,
    GeneratedImage,
    ImageOptions,
    ProviderImageRequest,
)
from limner.domain.jobs import (
    ImageOutput,
    Job,
    JobKind,
    JobResult,
    JobStage,
    JobWarning,
    Progress,
    Usage,
)
from limner.domain.models import Feature, ModelSpec
from limner.domain.specs import ImageSpec
from limner.domain.webhooks import WebhookSubscription
from limner.errors import (
    FieldViolation,
    InternalError,
    InvalidArgument,
    LimnerError,
    NoImageReturned,
    ReferenceLimit,
    Unavailable,
)
from limner.features.assets import AssetLibrary, parse_asset_name
from limner.jobs import JobContext, JobEngine, NewJob
from limner.jobs.eta import RunTimes
from limner.providers import ImageGenerator
from limner.registry import ImageModel, ModelCatalog

NO_IMAGE_RETRIES = 2


@dataclass(frozen=True, kw_only=True)
class ImageCommand:
    """A generate (no ``source_asset``) or edit request, as the client sent it."""

    prompt: str
    model: str = ""
    options: ImageOptions = field(default_factory=ImageOptions)
    reference_assets: tuple[str, ...] = ()
    source_asset: str = ""
    mask_asset: str = ""
    strength: float | None = None
    request_id: str = ""
    webhook: WebhookSubscription | None = None

    @property
    def is_edit(self) -> bool:
        return bool(self.source_asset)

    def fingerprint(self) -> str:
        data = asdict(self)
        data.pop("request_id")
        # "models/x" and "x" name the same model: a retry may spell it either way.
        data["model"] = self.model.removeprefix("models/")
        if data["webhook"] is None:
            del data["webhook"]  # requests without one keep the fingerprint they had
        encoded = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class PlannedImage:
    """An image request checked against its model: the spec to run, and the warnings for
    what the model cannot honour."""

    model: ImageModel
    spec: ImageSpec
    warnings: tuple[JobWarning, ...]


class ImageFeature:
    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        engine: JobEngine,
        assets: AssetLibrary,
        fetcher: UrlFetcher,
        run_times: RunTimes,
        estimate_interval_s: float = 1.0,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.assets = assets
        self.fetcher = fetcher
        self.run_times = run_times
        self.estimate_interval_s = estimate_interval_s

    async def submit(self, workspace_id: str, command: ImageCommand) -> Job:
        """Validates the request, checks the model's capabilities, and starts a job (or
        returns the job an earlier request with the same ``request_id`` started)."""
        feature = Feature.IMAGE_EDIT if command.is_edit else Feature.IMAGE_GENERATION
        planned = await self.prepare(workspace_id, command, feature)
        job, _created = await self.engine.submit(
            NewJob(
                workspace_id=workspace_id,
                kind=JobKind.IMAGE_EDIT if command.is_edit else JobKind.IMAGE_GENERATION,
                model_id=planned.model.model.id,
                provider_id=planned.model.model.provider,
                prompt=command.prompt,
                spec=planned.spec,
                request_id=command.request_id,
                request_hash=command.fingerprint(),
                warnings=planned.warnings,
                webhook=command.webhook,
            )
        )
        return job

    async def prepare(
        self, workspace_id: str, command: ImageCommand, feature: Feature
    ) -> PlannedImage:
        """Validates ``command``, resolves the model that serves ``feature`` and plans the
        request for it (also the first step of avatar jobs)."""
        _validate(command)
        model, caveats = await self.catalog.resolve_image(workspace_id, feature, command.model)
        spec, warnings = await self.plan(workspace_id, command, model.model)
        caveat_warnings = tuple(JobWarning("MODEL_CANNOT_SEE_SOURCE", c, "model") for c in caveats)
        return PlannedImage(model, spec, caveat_warnings + warnings)

    async def plan(
        self, workspace_id: str, command: ImageCommand, model: ModelSpec
    ) -> tuple[ImageSpec, tuple[JobWarning, ...]]:
        """Resolves defaults and turns what the model cannot honour into warnings. The spec
        is everything a restarted server needs to run the request again."""
        warnings: list[JobWarning] = []
        profile = model.profile
        options = command.options
        if command.is_edit:
            source = await self.assets.get(workspace_id, command.source_asset, "source_asset")
            default_width, default_height = source.width, source.height
            if not profile.supports_edit:
                warnings.append(
                    JobWarning(
                        "EDIT_UNSUPPORTED",
                        f"models/{model.id} has no edit mode; the source image is sent as a "
                        "reference and the image is redrawn",
                        "source_asset",
                    )
                )
            if command.mask_asset:
                await self.assets.get(workspace_id, command.mask_asset, "mask_asset")
                if not profile.supports_mask:
                    warnings.append(_ignored("mask_asset", model, "masks"))
        else:
            default_width, default_height = profile.default_dimensions()
        width = options.width or default_width
        height = options.height or default_height
        size = f"{width}x{height}"
        if profile.supported_sizes and size not in profile.supported_sizes:
            warnings.append(
                JobWarning(
                    "SIZE_ADJUSTED",
                    f"models/{model.id} does not render {size}; using {profile.default_size} "
                    f"(supported: {', '.join(profile.supported_sizes)})",
                    "options.width",
                )
            )
            width, height = profile.default_dimensions()
        for index, name in enumerate(command.reference_assets):
            await self.assets.get(workspace_id, name, f"reference_assets[{index}]")
        if len(command.reference_assets) > profile.max_reference_images:
            raise ReferenceLimit(
                f"models/{model.id} accepts at most {profile.max_reference_images} reference "
                f"image(s); {len(command.reference_assets)} were given",
                metadata={
                    "model": f"models/{model.id}",
                    "limit": str(profile.max_reference_images),
                },
                field_violations=(
                    FieldViolation(
                        "reference_assets",
                        f"at most {profile.max_reference_images} for models/{model.id}",
                    ),
                ),
            )
        image_count = options.image_count or 1
        if image_count > profile.max_images_per_request:
            raise InvalidArgument.field(
                "options.image_count",
                f"models/{model.id} produces at most {profile.max_images_per_request} "
                "image(s) per request",
            )
        if options.seed is not None and not profile.supports_seed:
            warnings.append(_ignored("options.seed", model, "seeds"))
        if options.negative_prompt and not profile.supports_negative_prompt:
            warnings.append(_ignored("options.negative_prompt", model, "negative prompts"))
        if options.aspect_ratio and not profile.supports_aspect_ratio:
            warnings.append(_ignored("options.aspect_ratio", model, "aspect ratios"))
        sampling = [
            name
            for name, value in (
                ("options.steps", options.steps),
                ("options.guidance_scale", options.guidance_scale),
                ("options.sampler", options.sampler or None),
            )
            if value is not None
        ]
        if sampling and not profile.supports_sampling_parameters:
            for name in sampling:
                warnings.append(_ignored(name, model, "sampling parameters"))
        # A seed is always chosen here, so a resumed job renders the same image.
        seed = options.seed if options.seed is not None else random.randrange(2**31)
        spec = ImageSpec(
            prompt=command.prompt,
            model_id=model.id,
            width=width,
            height=height,
            seed=seed,
            seed_supported=profile.supports_seed,
            image_count=image_count,
            # Fields the profile says the model ignores were warned about above and are not
            # passed on, so adapters only see what the model honours.
            aspect_ratio=options.aspect_ratio if profile.supports_aspect_ratio else "",
            negative_prompt=options.negative_prompt if profile.supports_negative_prompt else "",
            steps=options.steps if profile.supports_sampling_parameters else None,
            guidance_scale=(
                options.guidance_scale if profile.supports_sampling_parameters else None
            ),
            sampler=options.sampler if profile.supports_sampling_parameters else "",
            source_asset=command.source_asset,
            mask_asset=command.mask_asset if profile.supports_mask else "",
            strength=command.strength,
            reference_assets=tuple(command.reference_assets),
        )
        return spec, tuple(warnings)

    async def render(self, context: JobContext, spec: ImageSpec) -> JobResult:
        """Runs an image request from its spec: the handler of image jobs, and the last step
        of avatar and scene jobs."""
        job = context.job
        workspace_id = job.workspace_id
        bound = await self.catalog.image_model(workspace_id, spec.model_id)
        model = bound.model
        source = mask = None
        if spec.source_asset:
            source = await self.assets.load(workspace_id, spec.source_asset, "source_asset")
        if spec.mask_asset:
            mask = await self.assets.load(workspace_id, spec.mask_asset, "mask_asset")
        references = tuple(
            [
                await self.assets.load(workspace_id, name, f"reference_assets[{index}]")
                for index, name in enumerate(spec.reference_assets)
            ]
        )
        request = ProviderImageRequest(
            job_id=job.id,
            provider_model_id=model.provider_model_id,
            prompt=spec.prompt,
            width=spec.width,
            height=spec.height,
            seed=spec.seed,
            image_count=spec.image_count,
            aspect_ratio=spec.aspect_ratio,
            negative_prompt=spec.negative_prompt,
            steps=spec.steps,
            guidance_scale=spec.guidance_scale,
            sampler=spec.sampler,
            source=source,
            mask=mask,
            strength=spec.strength,
            references=references,
        )
        provenance = Provenance(
            source=AssetSource.GENERATED,
            job_id=f"jobs/{job.id}",
            model_id=f"models/{model.id}",
            prompt=spec.prompt,
            reference_assets=tuple(
                name
                for name in (spec.source_asset, spec.mask_asset, *spec.reference_assets)
                if name
            ),
        )
        sink = JobProgressSink(context, self.assets, provenance)
        expected_s = await self.run_times.expected_s(model.id)
        started = time.monotonic()
        with sink.estimating(expected_s, self.estimate_interval_s):
            results = await _generate_with_retries(
                bound.generator, request, sink, context, expected_s
            )
        self.run_times.record(model.id, time.monotonic() - started)
        contents = await self._download(context, bound, results)
        await context.progress(JobStage.STORING, message=f"storing {len(results)} image(s)")
        outputs = []
        for index, (image, data) in enumerate(zip(results, contents, strict=True)):
            seed = image.seed if spec.seed_supported else None
            try:
                asset, _ = await self.assets.store(
                    workspace_id,
                    data,
                    Provenance(**{**asdict(provenance), "seed": seed}),
                    field=f"result[{index}]",
                )
            except InvalidArgument as rejected:
                # The provider's answer, not the client's request, is at fault.
                raise Unavailable(
                    f"providers/{model.provider} returned an unusable image: {rejected.message}",
                    reason="PROVIDER_BAD_RESPONSE",
                    metadata={"provider": model.provider, **rejected.metadata},
                ) from None
            outputs.append(
                ImageOutput(
                    asset=f"assets/{asset.sha256}",
                    width=asset.width,
                    height=asset.height,
                    mime_type=asset.mime_type,
                    size_bytes=asset.size_bytes,
                    seed=seed,
                )
            )
        return JobResult(images=tuple(outputs))

    async def _download(
        self, context: JobContext, model: ImageModel, results: list[GeneratedImage]
    ) -> list[bytes]:
        """Bytes for every result, fetching hosted URLs (with the SSRF and size guards)
        before anything is stored, so a failed download stores nothing."""
        provider = model.provider
        urls = [image for image in results if not image.data]
        if urls:
            await context.progress(
                JobStage.DOWNLOADING, message=f"downloading {len(urls)} image(s)"
            )
        contents = []
        for image in results:
            if image.data:
                contents.append(image.data)
            elif image.url:
                contents.append(
                    await self.fetcher.fetch(image.url, extra_trusted=provider.trusted_hosts)
                )
            else:
                raise InternalError("the provider adapter returned an empty image")
        return contents


class JobProgressSink:
    """Turns an adapter's step and preview reports into job events."""

    def __init__(self, context: JobContext, assets: AssetLibrary, provenance: Provenance) -> None:
        self.context = context
        self.assets = assets
        self.provenance = provenance
        self._estimator: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def estimating(self, expected_s: float | None, interval_s: float) -> Iterator[None]:
        """While the provider works, publish the learnt ETA every ``interval_s`` (until the
        adapter reports real steps; see ``step``)."""
        if expected_s and interval_s > 0:
            self._estimator = asyncio.create_task(self._estimate(expected_s, interval_s))
        try:
            yield
        finally:
            self._stop_estimating()

    async def _estimate(self, expected_s: float, interval_s: float) -> None:
        started = time.monotonic()
        while True:
            await asyncio.sleep(interval_s)
            elapsed = time.monotonic() - started
            left = max(expected_s - elapsed, 0.0)
            self.context.estimate(
                Progress(
                    stage=JobStage.GENERATING,
                    # Never 1.0 on a guess: only the provider's answer finishes the bar.
                    fraction=min(elapsed / expected_s, 0.95),
                    eta_s=left,
                    message=f"rendering, about {left:.0f} s left (estimated)"
                    if left >= 1
                    else "rendering, taking longer than usual",
                )
            )

    def _stop_estimating(self) -> None:
        if self._estimator is not None:
            self._estimator.cancel()
            self._estimator = None

    async def step(
        self, step: int, total: int, *, eta_s: float | None = None, message: str = ""
    ) -> None:
        self._stop_estimating()  # real progress beats a guess
        await self.context.progress(
            JobStage.GENERATING,
            fraction=step / total if total else None,
            step=step,
            total_steps=total,
            eta_s=eta_s,
            message=message,
        )

    def preview_wanted(self) -> bool:
        return self.context.preview_due()

    async def preview(self, image: bytes, step: int) -> None:
        provenance = Provenance(**{**asdict(self.provenance), "source": AssetSource.PREVIEW})
        try:
            asset, _ = await self.assets.store(
                self.context.job.workspace_id, image, provenance, field="preview"
            )
        except InvalidArgument:
            return  # a broken preview is not worth failing the job for
        await self.context.preview(f"assets/{asset.sha256}", step)

    async def warn(self, code: str, message: str, field: str = "") -> None:
        await self.context.warn(code, message, field)

    async def queued(self, position: int, message: str = "") -> None:
        # A place in the provider's own queue is state, like a slot position: published,
        # not logged. It beats a learnt ETA, which cannot know the provider's queue.
        self._stop_estimating()
        self.context.estimate(
            Progress(
                stage=JobStage.QUEUED,
                queue_position=position,
                message=message or f"waiting in the provider's queue, position {position}",
            )
        )

    async def usage(self, usage: Usage) -> None:
        await self.context.usage(usage)

    async def retrying(self, message: str) -> None:
        await self.context.warn("PROVIDER_RETRY", message)


async def _generate_with_retries(
    images: ImageGenerator,
    request: ProviderImageRequest,
    sink: JobProgressSink,
    context: JobContext,
    expected_s: float | None = None,
) -> list[GeneratedImage]:
    """A provider that answers without an image is asked again, a bounded number of times.
    Content filtering and other errors are not retried here."""
    if expected_s:
        await context.progress(
            JobStage.GENERATING,
            fraction=0.0,
            eta_s=expected_s,
            message=(
                f"rendering, usually about {expected_s:.0f} s"
                if expected_s >= 1
                else "rendering, usually under a second"
            ),
        )
    else:
        await context.progress(JobStage.GENERATING, message="rendering")
    for attempt in range(NO_IMAGE_RETRIES + 1):
        try:
            results = await images.generate(request, sink)
            if not results:
                raise NoImageReturned("the provider answered without an image")
            return results
        except NoImageReturned as error:
            if attempt == NO_IMAGE_RETRIES:
                raise
            await context.warn(
                "NO_IMAGE_RETRY",
                f"the provider returned no image ({error.message}); asking again "
                f"(retry {attempt + 1} of {NO_IMAGE_RETRIES})",
            )
    raise AssertionError("unreachable")


def _ignored(field_name: str, model: ModelSpec, what: str) -> JobWarning:
    return JobWarning(
        "PARAMETER_IGNORED", f"models/{model.id} does not support {what}; ignored", field_name
    )


def _validate(command: ImageCommand) -> None:
    violations: list[FieldViolation] = []
    prompt_field = "prompt"
    if not command.prompt.strip():
        violations.append(FieldViolation(prompt_field, "must not be empty", "REQUIRED"))
    elif len(command.prompt) > MAX_PROMPT_CHARS:
        violations.append(
            FieldViolation(prompt_field, f"must be at most {MAX_PROMPT_CHARS} characters")
        )
    options = command.options
    for name, value in (("options.width", options.width), ("options.height", options.height)):
        if value is not None and not MIN_SIDE <= value <= MAX_SIDE:
            violations.append(
                FieldViolation(name, f"is {value}; must be from {MIN_SIDE} to {MAX_SIDE} pixels")
            )
    if (options.width is None) != (options.height is None):
        violations.append(
            FieldViolation("options.width", "set width and height together, or neither")
        )
    if options.image_count is not None and not 1 <= options.image_count <= MAX_IMAGE_COUNT:
        violations.append(
            FieldViolation("options.image_count", f"must be from 1 to {MAX_IMAGE_COUNT}")
        )
    if options.steps is not None and not 1 <= options.steps <= 500:
        violations.append(FieldViolation("options.steps", "must be from 1 to 500"))
    if command.strength is not None and not 0.0 <= command.strength <= 1.0:
        violations.append(FieldViolation("strength", "must be from 0 to 1"))
    for index, name in enumerate(command.reference_assets):
        try:
            parse_asset_name(name, f"reference_assets[{index}]")
        except LimnerError as error:
            violations.extend(error.field_violations)
    for field_name, asset_name in (
        ("source_asset", command.source_asset),
        ("mask_asset", command.mask_asset),
    ):
        if asset_name:
            try:
                parse_asset_name(asset_name, field_name)
            except LimnerError as error:
                violations.extend(error.field_violations)
    if violations:
        first = violations[0]
        raise InvalidArgument(
            f"{first.field}: {first.description}"
            + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
            metadata={"field": first.field},
            field_violations=tuple(violations),
        )
