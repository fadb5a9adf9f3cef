"""Prompt templates for the rest of Limner: rendering (the ``PromptRenderer``) and the
per-workspace overrides behind the template RPCs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from limner.errors import FieldViolation, InvalidArgument, NotFound
from limner.prompts.api import (
    ImageSlot,
    RenderedPrompt,
    StoredTemplate,
    TemplateKind,
    TemplateOverrides,
)
from limner.prompts.catalogue import CATALOGUE, TemplateSpec, default_source, spec, version_of
from limner.prompts.rendering import TemplateFailed, TemplateProblem, check_source, render_source
from limner.prompts.sandbox import RENDER_DEADLINE_S

T = TypeVar("T")

NAME_PREFIX = "promptTemplates/"
SOURCE_FIELD = "prompt_template.source"
RENDER_TIMEOUT_S = 1.0
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True)
class TemplateInfo:
    """A template as a workspace sees it: its override, else the shipped default."""

    kind: TemplateKind
    source: str
    required_variables: tuple[str, ...]
    variables: tuple[str, ...]
    image_slots: tuple[str, ...]
    overridden: bool
    version: str
    update_time: datetime | None

    @property
    def name(self) -> str:
        return template_name(self.kind)


@dataclass(frozen=True)
class TemplatePreview:
    prompt: RenderedPrompt
    text: str  # what the model would read, image slots shown as ``[image: slot]``
    image_slots: tuple[str, ...]


def template_name(kind: TemplateKind) -> str:
    return f"{NAME_PREFIX}{kind.value}"


def kind_from_name(name: str, field: str = "name") -> TemplateKind:
    """``promptTemplates/{kind}`` → the kind; ``NotFound`` for anything else."""
    if not name:
        raise InvalidArgument.field(field, "is required: give promptTemplates/{kind}")
    kind = name.removeprefix(NAME_PREFIX) if name.startswith(NAME_PREFIX) else ""
    try:
        return TemplateKind(kind)
    except ValueError:
        error = NotFound.resource("prompt template", name)
        error.metadata["known"] = ", ".join(template_name(k) for k in TemplateKind)
        raise error from None


def describe(prompt: RenderedPrompt, *, roles: bool = True) -> str:
    """A stable text dump of a rendered prompt: role headers (when ``roles``), text, and
    image slots as ``[image: slot]``."""
    blocks = []
    for message in prompt.messages:
        parts = [
            f"[image: {part.name}]" if isinstance(part, ImageSlot) else part
            for part in message.parts
        ]
        body = "\n\n".join(parts)
        blocks.append(f"[{message.role}]\n{body}" if roles else body)
    return "\n\n".join(blocks)


class TemplateService:
    """Implements ``PromptRenderer`` and the template admin operations.

    Every render runs on a small dedicated thread pool under ``asyncio.wait_for``, so a
    slow template never blocks the event loop. A Python thread cannot be killed, so the
    timeout alone would leave a runaway render burning a worker; the sandbox's budget
    (``limner.prompts.sandbox``: capped ``range``, a step limit checked on every loop
    iteration, call, filter and operator, a deadline, size caps checked *before* big
    values are built) makes every render stop by itself shortly after the deadline. The
    timeout is the second line: the caller gets its answer on time even then.
    """

    def __init__(
        self,
        overrides: TemplateOverrides,
        *,
        timeout_s: float = RENDER_TIMEOUT_S,
        workers: int = 4,
    ) -> None:
        self.overrides = overrides
        self.timeout_s = timeout_s
        self._deadline_s = min(RENDER_DEADLINE_S, timeout_s * 0.75)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="limner-prompt")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- PromptRenderer ----------------------------------------------------------------

    async def render(
        self, workspace_id: str, kind: TemplateKind, values: Mapping[str, Any]
    ) -> RenderedPrompt:
        template = spec(kind)
        missing = [v for v in template.required if v not in values]
        if missing:
            raise InvalidArgument(
                f"prompt template {template_name(kind)} needs "
                + ", ".join(repr(v) for v in missing),
                reason="PROMPT_TEMPLATE_VALUE_MISSING",
                metadata={"prompt_template": template_name(kind), "variables": ",".join(missing)},
                field_violations=[
                    FieldViolation(f"values.{v}", "is required by the template", "MISSING_VALUE")
                    for v in missing
                ],
            )
        stored = await self.overrides.get(workspace_id, kind)
        source = stored.source if stored else default_source(kind)
        version = version_of(source)
        full = template.with_defaults(values)
        try:
            return await self._off_loop(
                lambda: render_source(
                    template,
                    source,
                    full,
                    version=version,
                    overridden=stored is not None,
                    deadline_s=self._deadline_s,
                )
            )
        except TemplateFailed as failed:
            where = "the workspace's override of" if stored else "the default"
            raise _invalid(
                failed.problems,
                f"{where} prompt template {template_name(kind)} failed to render",
                "PROMPT_TEMPLATE_RENDER_FAILED",
                "prompt_template",
                {"prompt_template": template_name(kind), "version": version},
            ) from None

    # -- administration ----------------------------------------------------------------

    async def list_templates(self, workspace_id: str) -> list[TemplateInfo]:
        stored = await self.overrides.list(workspace_id)
        return [_info(kind, stored.get(kind)) for kind in TemplateKind]

    async def get(self, workspace_id: str, kind: TemplateKind) -> TemplateInfo:
        return _info(kind, await self.overrides.get(workspace_id, kind))

    async def update(
        self, workspace_id: str, kind: TemplateKind, source: str, *, field: str = SOURCE_FIELD
    ) -> TemplateInfo:
        """Checks ``source`` (syntax, required variables, image slots, a sample render) and
        stores it as the workspace's override; stores nothing when any check fails."""
        await self.validate(kind, source, field=field)
        stored = await self.overrides.put(workspace_id, kind, source)
        return _info(kind, stored)

    async def reset(self, workspace_id: str, kind: TemplateKind) -> TemplateInfo:
        await self.overrides.delete(workspace_id, kind)
        return _info(kind, None)

    async def validate(self, kind: TemplateKind, source: str, *, field: str = SOURCE_FIELD) -> None:
        template = spec(kind)
        try:
            problems = await self._off_loop(
                lambda: _check_and_try(template, source, self._deadline_s)
            )
        except TemplateFailed as failed:  # the timeout
            problems = failed.problems
        if problems:
            raise _invalid(
                problems,
                f"the source for {template_name(kind)} is not a valid template",
                "PROMPT_TEMPLATE_INVALID",
                field,
                {"prompt_template": template_name(kind)},
            )

    async def preview(
        self,
        workspace_id: str,
        kind: TemplateKind,
        *,
        source: str = "",
        values: Mapping[str, str] | None = None,
        source_field: str = "source",
        values_field: str = "values",
    ) -> TemplatePreview:
        """Renders ``source`` (else the workspace's template) with ``values`` laid over the
        sample values."""
        template = spec(kind)
        given = _coerce(template, values or {}, values_field)
        if source:
            await self.validate(kind, source, field=source_field)
            overridden = True
        else:
            stored = await self.overrides.get(workspace_id, kind)
            source = stored.source if stored else default_source(kind)
            overridden = stored is not None
        version = version_of(source)
        sample = template.sample_values(given)
        try:
            prompt = await self._off_loop(
                lambda: render_source(
                    template,
                    source,
                    sample,
                    version=version,
                    overridden=overridden,
                    deadline_s=self._deadline_s,
                )
            )
        except TemplateFailed as failed:
            raise _invalid(
                failed.problems,
                f"{template_name(kind)} failed to render with these values",
                "PROMPT_TEMPLATE_RENDER_FAILED",
                values_field,
                {"prompt_template": template_name(kind), "version": version},
            ) from None
        return TemplatePreview(
            prompt=prompt,
            text=describe(prompt, roles=template.messages),
            image_slots=tuple(prompt.image_slots()),
        )

    async def _off_loop(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, work), timeout=self.timeout_s
            )
        except TimeoutError:
            # The render keeps its worker until its own budget stops it (see class doc).
            raise TemplateFailed(
                [
                    TemplateProblem(
                        "BUDGET_EXCEEDED",
                        f"the template takes longer than {self.timeout_s:g} s to render",
                    )
                ]
            ) from None


def _check_and_try(template: TemplateSpec, source: str, deadline_s: float) -> list[TemplateProblem]:
    problems = check_source(template, source)
    if problems:
        return problems
    try:
        render_source(
            template,
            source,
            template.sample_values(),
            version=version_of(source),
            overridden=True,
            deadline_s=deadline_s,
        )
    except TemplateFailed as failed:
        return failed.problems
    return []


def _info(kind: TemplateKind, stored: StoredTemplate | None) -> TemplateInfo:
    template = CATALOGUE[kind]
    source = stored.source if stored else default_source(kind)
    return TemplateInfo(
        kind=kind,
        source=source,
        required_variables=template.required,
        variables=template.variables,
        image_slots=template.image_slots,
        overridden=stored is not None,
        version=version_of(source),
        update_time=stored.update_time if stored else None,
    )


def _coerce(template: TemplateSpec, values: Mapping[str, str], field: str) -> dict[str, Any]:
    coerced: dict[str, Any] = {}
    violations = []
    for key, value in values.items():
        if key not in template.variables:
            violations.append(
                FieldViolation(
                    f"{field}.{key}",
                    f"is not a variable of this template (it has: {', '.join(template.variables)})",
                    "UNKNOWN_VARIABLE",
                )
            )
        elif isinstance(template.optional.get(key), bool):
            if value.strip().lower() in _TRUE | _FALSE:
                coerced[key] = value.strip().lower() in _TRUE
            else:
                violations.append(
                    FieldViolation(f"{field}.{key}", "must be true or false", "NOT_A_BOOLEAN")
                )
        else:
            coerced[key] = value
    if violations:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in violations),
            metadata={"field": field},
            field_violations=violations,
        )
    return coerced


def _invalid(
    problems: list[TemplateProblem],
    summary: str,
    reason: str,
    field: str,
    metadata: dict[str, str],
) -> InvalidArgument:
    return InvalidArgument(
        f"{summary}: " + "; ".join(p.text() for p in problems),
        reason=reason,
        metadata={**metadata, "field": field},
        field_violations=[FieldViolation(field, p.text(), p.reason) for p in problems],
    )
