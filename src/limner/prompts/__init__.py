"""Prompt templates: shipped defaults, per-workspace overrides, and one sandboxed renderer.

- ``api``: the contract the rest of Limner codes against (``PromptRenderer``,
  ``TemplateKind``, ``RenderedPrompt``; ``message()`` and ``image()`` inside templates).
- ``catalogue``: per kind, the default file, variables (required and optional, with
  defaults), allowed image slots and sample values.
- ``sandbox``: the process's one Jinja2 environment (sandboxed, strict, with a work budget).
- ``rendering``: checking and rendering one source, synchronously.
- ``service``: ``TemplateService``, the async ``PromptRenderer`` plus list/get/update/reset/
  preview; overrides are injected through ``TemplateOverrides``.

Nothing here imports gRPC, generated stubs, SQLAlchemy or httpx.
"""

from limner.prompts.api import (
    IMAGE_SLOTS,
    ImageSlot,
    PromptRenderer,
    RenderedMessage,
    RenderedPrompt,
    StoredTemplate,
    TemplateKind,
    TemplateOverrides,
)
from limner.prompts.catalogue import CATALOGUE, TemplateSpec, default_source, version_of
from limner.prompts.sandbox import environment
from limner.prompts.service import (
    TemplateInfo,
    TemplatePreview,
    TemplateService,
    describe,
    kind_from_name,
    template_name,
)

__all__ = [
    "CATALOGUE",
    "IMAGE_SLOTS",
    "ImageSlot",
    "PromptRenderer",
    "RenderedMessage",
    "RenderedPrompt",
    "StoredTemplate",
    "TemplateInfo",
    "TemplateKind",
    "TemplateOverrides",
    "TemplatePreview",
    "TemplateService",
    "TemplateSpec",
    "default_source",
    "describe",
    "environment",
    "kind_from_name",
    "template_name",
    "version_of",
]
