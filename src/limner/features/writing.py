"""Running a writer model inside a job: shared by design notes and scene drafting.

A writer job plans its rendered template as data (``planned_messages``: roles, text and
named image slots) plus the asset names per slot, never image bytes: a ``WriterSpec`` a
restarted server can run again. ``write`` loads the images, places them where the template
put its slots, streams the text deltas into the job and records usage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from limner.domain.images import SourceImage
from limner.domain.jobs import JobStage, Usage
from limner.domain.specs import PromptMessage, PromptPart, WriterSpec
from limner.features.assets import AssetLibrary
from limner.jobs import JobContext
from limner.prompts.api import ImageSlot, RenderedPrompt
from limner.providers.base import WriterMessage, WriterOutput, WriterRequest
from limner.registry import WriterModel


def planned_messages(rendered: RenderedPrompt) -> tuple[PromptMessage, ...]:
    """A rendered writer template as spec data: roles, text and named image slots."""
    return tuple(
        PromptMessage(
            message.role,
            tuple(
                PromptPart(slot=part.name) if isinstance(part, ImageSlot) else PromptPart(text=part)
                for part in message.parts
            ),
        )
        for message in rendered.messages
    )


def writer_message(
    message: PromptMessage, images: Mapping[str, list[SourceImage]]
) -> WriterMessage:
    """One planned message with its slots replaced by the loaded images, in place."""
    parts: list[str | SourceImage] = []
    for part in message.parts:
        if part.slot:
            parts.extend(images.get(part.slot, []))
        elif part.text:
            parts.append(part.text)
    return WriterMessage(role=message.role, parts=tuple(parts))


async def write(
    context: JobContext,
    *,
    writer: WriterModel,
    spec: WriterSpec,
    assets: AssetLibrary,
    max_output_tokens: int,
) -> WriterOutput:
    """Runs the writer for a job: text deltas become job events, retries become warnings,
    and the usage it reports is recorded."""
    workspace_id = context.job.workspace_id
    images: dict[str, list[SourceImage]] = {}
    for slot, names in spec.slots.items():
        images[slot] = [
            await assets.load(workspace_id, name, f"{slot}[{index}]")
            for index, name in enumerate(names)
        ]
    placed = tuple(writer_message(message, images) for message in spec.messages)
    model = writer.model
    await context.progress(JobStage.WRITING, message=f"models/{model.id} is writing")

    async def on_retry(message: str) -> None:
        await context.warn("PROVIDER_RETRY", message)

    output = await writer.writer.write(
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
