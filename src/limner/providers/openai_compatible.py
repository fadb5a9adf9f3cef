"""Kind ``openai-compatible``: any server that copies OpenAI's APIs (vLLM / vLLM-Omni,
LocalAI, llama.cpp, LM Studio, NVIDIA NIMs, resellers) at a required ``base_url``.

- Writer: ``/chat/completions`` (``OpenAIChatWriter``).
- Images: ``/images/generations`` (JSON) and ``/images/edits`` (multipart), through the
  OpenAI adapter's ``ImagesEndpoint``: the same request encoding, partial-image stream and
  answer parsing (``b64_json`` or URLs; URLs are downloaded later through the guarded
  fetcher). Only a provider with a ``base_url`` gets images.

Compatible servers differ in what they accept, and several (vLLM-Omni, Dynamo) answer an
unknown field with HTTP 400, so nothing is sent that the configuration does not allow
(``[providers.<id>.images]``, per model under ``models."<provider_model_id>"``;
``settings.CompatibleImageOptions``):

- always: ``model``, ``prompt``; for edits the input images (source, then references)
  as ``image_part`` parts and the mask (when the model's profile lets one through);
- ``fields`` (default ``n``, ``size``): ``n``, ``size`` (``WxH``), ``seed``,
  ``negative_prompt``, ``num_inference_steps`` (``options.steps``), ``guidance_scale``.
  A value the job carries for a field that is not listed is not sent and becomes a
  ``PARAMETER_IGNORED`` warning (``size`` included: the server renders its own default).
  Without ``n``, an N-image job makes N requests (seed, seed + 1, ... when ``seed`` is
  sent). The seed is always chosen by Limner, so its absence is not warned about;
- ``response_format`` (default ``b64_json``; ``""`` sends none), and ``quality``,
  ``output_format``, ``background`` as configured;
- ``stream`` (default off): one-image requests that want a preview send ``stream: true``
  and ``partial_images``; each partial image becomes a step and a preview.

Never sent (warned when the job has them): ``sampler``, ``aspect_ratio``, ``strength``.
Auth: ``api_key`` as ``Authorization: Bearer <key>``; ``auth_header`` / ``auth_scheme``
change the header and its scheme (``auth_header = "api-key"`` sends the bare key, as
Azure OpenAI wants); without ``api_key`` no header is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from limner.domain.images import GeneratedImage, ProviderImageRequest
from limner.providers.base import ProgressSink, Provider
from limner.providers.openai import ImagesEndpoint
from limner.providers.openai_chat import OpenAIChatWriter, compatible_base_url
from limner.settings import CompatibleImageOptions, CompatibleImageSettings

if TYPE_CHECKING:
    from limner.providers import ProviderContext


@dataclass(frozen=True, kw_only=True)
class ImageRequestProfile:
    """What one model on a compatible server takes (the resolved settings)."""

    fields: frozenset[str] = frozenset({"n", "size"})
    response_format: str = "b64_json"
    quality: str = ""
    output_format: str = ""
    background: str = ""
    image_part: str = "image"
    stream: bool = False

    def constants(self) -> dict[str, str]:
        """The configured values sent as they are."""
        values = {
            "response_format": self.response_format,
            "quality": self.quality,
            "output_format": self.output_format,
            "background": self.background,
        }
        return {name: value for name, value in values.items() if value}


def _apply(profile: ImageRequestProfile, options: CompatibleImageOptions) -> ImageRequestProfile:
    changes: dict[str, Any] = options.model_dump(exclude_none=True, exclude={"models"})
    if "fields" in changes:
        changes["fields"] = frozenset(changes["fields"])
    return replace(profile, **changes)


def request_profiles(
    settings: CompatibleImageSettings | None,
) -> tuple[ImageRequestProfile, dict[str, ImageRequestProfile]]:
    """The provider's profile, and each configured model's (model over provider over
    the defaults)."""
    default = ImageRequestProfile()
    if settings is None:
        return default, {}
    provider = _apply(default, settings)
    return provider, {model: _apply(provider, o) for model, o in settings.models.items()}


# (field sent, the job option it comes from, the ``ProviderImageRequest`` attribute)
_VALUED_FIELDS = (
    ("negative_prompt", "options.negative_prompt", "negative_prompt"),
    ("num_inference_steps", "options.steps", "steps"),
    ("guidance_scale", "options.guidance_scale", "guidance_scale"),
)
# Job options no compatible request carries: (job option, what it is, attribute).
_NEVER_SENT = (
    ("options.sampler", "samplers", "sampler"),
    ("options.aspect_ratio", "aspect ratios", "aspect_ratio"),
    ("strength", "an edit strength", "strength"),
)


def _value(request: ProviderImageRequest, attribute: str) -> Any:
    """The request's value, ``None`` when unset (``""`` counts as unset)."""
    value = getattr(request, attribute)
    return None if value == "" else value


class CompatibleImages:
    """An ``ImageGenerator`` for an OpenAI-compatible Images API (see the module doc)."""

    def __init__(
        self,
        endpoint: ImagesEndpoint,
        provider_id: str,
        settings: CompatibleImageSettings | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.provider_id = provider_id
        self.default, self.models = request_profiles(settings)

    def profile(self, provider_model_id: str) -> ImageRequestProfile:
        return self.models.get(provider_model_id, self.default)

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        profile = self.profile(request.provider_model_id)
        fields = await self._fields(request, profile, progress)
        inputs = [i for i in (request.source, *request.references) if i is not None]
        if request.mask is not None and not inputs:
            await progress.warn("PARAMETER_IGNORED", "a mask needs a source image", "mask_asset")
        # Without ``n`` every image is a request of its own.
        calls = 1 if "n" in profile.fields else request.image_count
        if "n" in profile.fields:
            fields["n"] = request.image_count
        images: list[GeneratedImage] = []
        for index in range(calls):
            seeded = "seed" in profile.fields
            if seeded:
                fields["seed"] = request.seed + index
            stream = (
                profile.stream
                and (calls > 1 or request.image_count == 1)
                and progress.preview_wanted()
            )
            found = await self.endpoint.call(
                dict(fields),
                progress,
                inputs=inputs,
                mask=request.mask if inputs else None,
                image_part=profile.image_part,
                stream=stream,
            )
            if seeded and len(found) == 1:
                found = [replace(found[0], seed=fields["seed"])]
            images.extend(found)
            if calls > 1 and not stream:
                await progress.step(index + 1, calls, message=f"image {index + 1} of {calls}")
        return images

    async def _fields(
        self, request: ProviderImageRequest, profile: ImageRequestProfile, progress: ProgressSink
    ) -> dict[str, Any]:
        """``model``, ``prompt`` and what the profile lets through; a job value that cannot
        be sent is warned about."""
        where = f"providers/{self.provider_id} ({request.provider_model_id})"
        fields: dict[str, Any] = {"model": request.provider_model_id, "prompt": request.prompt}
        if "size" in profile.fields:
            fields["size"] = f"{request.width}x{request.height}"
        else:
            await progress.warn(
                "PARAMETER_IGNORED",
                f"{where} takes no size; {request.width}x{request.height} not sent, the "
                "server renders its default size",
                "options.width",
            )
        for name, option, attribute in _VALUED_FIELDS:
            value = _value(request, attribute)
            if value is None:
                continue
            if name in profile.fields:
                fields[name] = value
            else:
                await progress.warn(
                    "PARAMETER_IGNORED",
                    f"{where} is not configured to take {name}; not sent",
                    option,
                )
        for option, what, attribute in _NEVER_SENT:
            if _value(request, attribute) is not None:
                await progress.warn(
                    "PARAMETER_IGNORED", f"{where} takes no {what}; not sent", option
                )
        fields |= profile.constants()
        return fields


def auth_headers(key: str, header: str | None, scheme: str | None) -> dict[str, str] | None:
    """``Authorization: Bearer <key>`` unless configured otherwise; no key, no header."""
    if not key:
        return None
    name = header or "Authorization"
    if scheme is None:
        scheme = "Bearer" if name.lower() == "authorization" else ""
    return {name: f"{scheme} {key}" if scheme else key}


def create(context: ProviderContext) -> Provider:
    """A writer, and (with a ``base_url``) images. Without a ``base_url`` the writer
    refuses to run and there is no image generator."""
    section = context.section
    http = context.http(
        default_base_url="",
        auth_headers=auth_headers(context.api_key(), section.auth_header, section.auth_scheme),
    )
    http.base_url = compatible_base_url(http.base_url) if http.base_url else ""
    images = None
    if http.base_url:
        endpoint = ImagesEndpoint(http, context.id, prefix="")
        images = CompatibleImages(endpoint, context.id, section.images)
    return Provider(
        id=context.id,
        kind="openai-compatible",
        images=images,
        writer=OpenAIChatWriter(http, context.id),
    )


__all__ = [
    "CompatibleImages",
    "ImageRequestProfile",
    "auth_headers",
    "create",
    "request_profiles",
]
