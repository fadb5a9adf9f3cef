"""Running a writer model inside a job: shared by design notes and scene drafting.

A writer job stores its rendered template as data (``messages_spec``: roles, text and
named image slots) plus the asset names per slot, never image bytes, so a restarted
server can run it again. ``write`` loads the images, places them where the template put
its slots, streams the text deltas into the job and records usage.
"""

from __future__ import annotations

import re
from typing import Any

from limner.domain.images import SourceImage
from limner.domain.jobs import JobStage, Usage
from limner.domain.models import ModelSpec
from limner.errors import InternalError
from limner.features.assets import AssetLibrary
from limner.jobs import JobContext
from limner.prompts.api import ImageSlot, RenderedPrompt
from limner.providers import Provider, TextWriter
from limner.providers.base import WriterMessage, WriterOutput, WriterRequest


def writer_of(providers: dict[str, Provider], model: ModelSpec) -> TextWriter:
    provider = providers.get(model.provider)
    if provider is None or provider.writer is None:
        raise InternalError(
            f"models/{model.id} names providers/{model.provider}, which has no writer adapter "
            "in this server; check the server configuration"
        )
    return provider.writer


def messages_spec(rendered: RenderedPrompt) -> list[dict[str, Any]]:
    """A rendered writer template as JSON-able data for the job's spec."""
    return [
        {
            "role": message.role,
            "parts": [
                {"slot": part.name} if isinstance(part, ImageSlot) else {"text": part}
                for part in message.parts
            ],
        }
        for message in rendered.messages
    ]


def writer_message(message: dict[str, Any], images: dict[str, list[SourceImage]]) -> WriterMessage:
    """One stored message with its slots replaced by the loaded images, in place."""
    parts: list[str | SourceImage] = []
    for part in message["parts"]:
        if "slot" in part:
            parts.extend(images.get(part["slot"], []))
        elif part["text"]:
            parts.append(part["text"])
    return WriterMessage(role=message["role"], parts=tuple(parts))


async def write(
    context: JobContext,
    *,
    model: ModelSpec,
    writer: TextWriter,
    assets: AssetLibrary,
    messages: list[dict[str, Any]],
    slots: dict[str, list[str]],
    max_output_tokens: int,
) -> WriterOutput:
    """Runs the writer for a job: text deltas become job events, retries become warnings,
    and the usage it reports is recorded."""
    workspace_id = context.job.workspace_id
    images: dict[str, list[SourceImage]] = {}
    for slot, names in slots.items():
        images[slot] = [
            await assets.load(workspace_id, name, f"{slot}[{index}]")
            for index, name in enumerate(names)
        ]
    placed = tuple(writer_message(message, images) for message in messages)
    await context.progress(JobStage.WRITING, message=f"models/{model.id} is writing")

    async def on_retry(message: str) -> None:
        await context.warn("PROVIDER_RETRY", message)

    output = await writer.write(
        WriterRequest(
            job_id=context.job.id,
            provider_model_id=model.provider_model_id,
            messages=tuple(m for m in placed if m.content()),
            max_output_tokens=max_output_tokens,
        ),
        context.text_delta,
        on_retry=on_retry,
    )
    await context.usage(output.usage or Usage(provider_calls=1))
    return output


_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_QUOTES = (
    ('"', '"'),
    ("'", "'"),
    ("\u201c", "\u201d"),  # curly double quotes
    ("\u2018", "\u2019"),  # curly single quotes
    ("\u00ab", "\u00bb"),  # guillemets
)


def clean_text(text: str) -> str:
    """Strips what writers wrap their answer in: code fences and surrounding quotes; and
    collapses runs of blank lines."""
    text = text.strip()
    for _ in range(3):
        before = text
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1).strip()
        for opening, closing in _QUOTES:
            if len(text) >= 2 and text.startswith(opening) and text.endswith(closing):
                text = text[len(opening) : -len(closing)].strip()
        if text == before:
            break
    return re.sub(r"\n{3,}", "\n\n", text)
