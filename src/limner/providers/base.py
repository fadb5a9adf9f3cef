"""The two small protocols every provider adapter implements (ARCHITECTURE §1.5).

Adapters import nothing from grpc, the database or the servicers. They receive what they
need (settings section, an ``httpx.AsyncClient``), raise ``limner.errors`` leaves for vendor
failures, and report progress through a ``ProgressSink``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from limner.domain.images import GeneratedImage, ProviderImageRequest, SourceImage
from limner.domain.jobs import Usage


class ProgressSink(Protocol):
    """How an adapter reports on a running request. Calls are cheap; previews are
    throttled by the sink, so ask ``preview_wanted`` before encoding one."""

    async def step(
        self, step: int, total: int, *, eta_s: float | None = None, message: str = ""
    ) -> None: ...

    def preview_wanted(self) -> bool: ...

    async def preview(self, image: bytes, step: int) -> None: ...

    async def warn(self, code: str, message: str, field: str = "") -> None: ...

    async def queued(self, position: int, message: str = "") -> None:
        """The request waits in the provider's own queue (fal), ``position`` 1 = next.
        Only adapters of providers that queue requests and say where call this."""
        ...

    async def usage(self, usage: Usage) -> None:
        """Records tokens/cost one provider call reported."""
        ...

    async def retrying(self, message: str) -> None:
        """Tells the job a call is being retried (pass as ``on_retry``)."""
        ...


class ImageGenerator(Protocol):
    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        """Renders ``request`` (an edit when ``request.source`` is set) and returns the
        images, as bytes or URLs. Cancellation of the calling task interrupts the call."""
        ...


@dataclass(frozen=True, kw_only=True)
class WriterMessage:
    """One message for a writer model. Either ``text`` then ``images``, or ``parts``: text
    and images interleaved exactly where a template placed them."""

    role: str
    text: str = ""
    images: tuple[SourceImage, ...] = ()
    parts: tuple[str | SourceImage, ...] = ()

    def content(self) -> list[str | SourceImage]:
        """The message's text and images in order (empty text dropped)."""
        if self.parts:
            return [p for p in self.parts if not (isinstance(p, str) and not p.strip())]
        return ([self.text] if self.text else []) + list(self.images)


@dataclass(frozen=True, kw_only=True)
class WriterRequest:
    job_id: str
    provider_model_id: str
    messages: tuple[WriterMessage, ...]
    max_output_tokens: int = 1024
    temperature: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


OnDelta = Callable[[str], Awaitable[None]]
OnRetry = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class WriterOutput:
    text: str
    usage: Usage | None = None
    # Images a chat model returned with its text (OpenRouter ``message.images``, Gemini
    # inline data), parsed by the same code the image adapters use.
    images: tuple[GeneratedImage, ...] = ()


class TextWriter(Protocol):
    async def write(
        self, request: WriterRequest, on_delta: OnDelta, *, on_retry: OnRetry | None = None
    ) -> WriterOutput:
        """Streams the model's text through ``on_delta`` as it arrives and returns the
        whole output. Cancellation of the calling task interrupts the call."""
        ...


class ModelLister(Protocol):
    async def list_models(self) -> list[DiscoveredModel]:
        """The provider's model listing, with the modalities it declares."""
        ...


@dataclass(frozen=True, kw_only=True)
class DiscoveredModel:
    provider_model_id: str
    display_name: str
    input_modalities: frozenset[str]
    output_modalities: frozenset[str]


@dataclass
class Provider:
    """A configured provider: what it can do, and how to close it."""

    id: str
    kind: str
    images: ImageGenerator | None = None
    writer: TextWriter | None = None
    lister: ModelLister | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Hosts result URLs may point at even when private (the provider's own host).
    trusted_hosts: frozenset[str] = frozenset()

    async def aclose(self) -> None:
        for close in self.closers:
            await close()
