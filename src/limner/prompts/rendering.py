"""Checking and rendering one template source: synchronous, no I/O (the service runs it on
a worker thread).

Problems come back as ``TemplateProblem`` (a reason code, a description with the template
line where known, and the variable involved, if any); ``limner.prompts.service`` turns
them into ``InvalidArgument`` field violations. No Jinja exception or traceback escapes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError

from limner.prompts.api import IMAGE_SLOTS, ImageSlot, RenderedMessage, RenderedPrompt
from limner.prompts.catalogue import TemplateSpec
from limner.prompts.sandbox import (
    MAX_OUTPUT_CHARS,
    MAX_SOURCE_CHARS,
    RENDER_DEADLINE_S,
    TemplateBudgetExceeded,
    environment,
    render_budget,
)

ROLES = ("system", "user")
TEMPLATE_FUNCTIONS = ("message", "image")
_FILENAME = "<template>"


@dataclass(frozen=True)
class TemplateProblem:
    """One thing wrong with a template. ``reason`` is a stable code:

    ``EMPTY``, ``TOO_LONG``, ``SYNTAX_ERROR``, ``UNSAFE_ACCESS``, ``MISSING_VARIABLE``,
    ``UNKNOWN_VARIABLE``, ``UNDEFINED_VARIABLE``, ``UNKNOWN_IMAGE_SLOT``, ``UNKNOWN_ROLE``,
    ``BUDGET_EXCEEDED``, ``RENDER_FAILED``.
    """

    reason: str
    description: str
    line: int | None = None
    variable: str = ""

    def text(self) -> str:
        return f"line {self.line}: {self.description}" if self.line else self.description


class TemplateFailed(Exception):
    """Checking or rendering found problems (at least one)."""

    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(p.text() for p in problems))
        self.problems = problems


@lru_cache(maxsize=256)
def compile_source(source: str) -> Template:
    """Compiles (and caches) a source; raises ``TemplateSyntaxError``. Templates are
    immutable and safe to render from several threads at once."""
    return environment().from_string(source)


def check_source(spec: TemplateSpec, source: str) -> list[TemplateProblem]:
    """Static checks: size, syntax, private attributes, required and unknown variables,
    image slots named in ``image("...")`` calls. Does not render."""
    if not source.strip():
        return [TemplateProblem("EMPTY", "is required: give the template's Jinja2 source")]
    if len(source) > MAX_SOURCE_CHARS:
        return [
            TemplateProblem(
                "TOO_LONG", f"is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}"
            )
        ]
    env = environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem("SYNTAX_ERROR", f"syntax error: {exc.message}", exc.lineno)]

    problems: list[TemplateProblem] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            name = _const_str(node.arg)
        if name is not None and name.startswith("_"):
            problems.append(
                TemplateProblem(
                    "UNSAFE_ACCESS",
                    f"access to the private attribute {name!r} is not allowed",
                    node.lineno,
                )
            )
    used = meta.find_undeclared_variables(tree)
    for variable in spec.required:
        if variable not in used:
            problems.append(
                TemplateProblem(
                    "MISSING_VARIABLE",
                    f"must use the required variable {{{{ {variable} }}}}",
                    variable=variable,
                )
            )
    known = set(spec.variables) | set(env.globals) | set(TEMPLATE_FUNCTIONS)
    for variable in sorted(used - known):
        problems.append(
            TemplateProblem(
                "UNKNOWN_VARIABLE",
                f"{variable!r} is not a variable of this template "
                f"(it has: {', '.join(spec.variables)})",
                _first_use(tree, variable),
                variable,
            )
        )
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "image" and call.args:
            slot = _const_str(call.args[0])
            if slot is not None and slot not in spec.image_slots:
                problems.append(_unknown_slot(spec, slot, call.lineno))
    return problems


def render_source(
    spec: TemplateSpec,
    source: str,
    values: Mapping[str, Any],
    *,
    version: str,
    overridden: bool,
    deadline_s: float = RENDER_DEADLINE_S,
) -> RenderedPrompt:
    """Renders ``source`` with ``values`` (already completed with defaults) under a fresh
    budget. Raises ``TemplateFailed``, never a Jinja exception."""
    try:
        template = compile_source(source)
    except TemplateSyntaxError as exc:
        raise TemplateFailed(
            [TemplateProblem("SYNTAX_ERROR", f"syntax error: {exc.message}", exc.lineno)]
        ) from None
    # Structure markers carry a per-render nonce, so no value can forge one.
    nonce = secrets.token_hex(8)
    marker = re.compile(f"\x00{nonce}:(message|image):([a-z]*)\x00")

    def message(role: str) -> str:
        if role not in ROLES:
            raise _Refused(
                TemplateProblem(
                    "UNKNOWN_ROLE", f"message() takes {' or '.join(map(repr, ROLES))}, not {role!r}"
                )
            )
        return f"\x00{nonce}:message:{role}\x00"

    def image(slot: str) -> str:
        if slot not in spec.image_slots:
            raise _Refused(_unknown_slot(spec, slot))
        return f"\x00{nonce}:image:{slot}\x00"

    context = {**values, "message": message, "image": image}
    try:
        with render_budget(deadline_s):
            chunks: list[str] = []
            size = 0
            for chunk in template.generate(context):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateBudgetExceeded(
                        f"the rendered prompt is longer than {MAX_OUTPUT_CHARS} characters"
                    )
                chunks.append(chunk)
    except Exception as exc:  # anything a user template does wrong is the user's problem
        raise TemplateFailed([_problem_from(exc)]) from None
    return RenderedPrompt(
        kind=spec.kind,
        messages=_split("".join(chunks), marker),
        version=version,
        overridden=overridden,
    )


class _Refused(Exception):
    def __init__(self, problem: TemplateProblem) -> None:
        super().__init__(problem.description)
        self.problem = problem


def _split(text: str, marker: re.Pattern[str]) -> tuple[RenderedMessage, ...]:
    messages: list[RenderedMessage] = []
    role = "user"
    parts: list[str | ImageSlot] = []
    position = 0

    def flush() -> None:
        cleaned = _clean(parts)
        if cleaned:
            messages.append(RenderedMessage(role, cleaned))
        parts.clear()

    for match in marker.finditer(text):
        parts.append(text[position : match.start()])
        if match[1] == "message":
            flush()
            role = match[2]
        else:
            parts.append(ImageSlot(match[2]))
        position = match.end()
    parts.append(text[position:])
    flush()
    return tuple(messages)


_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _clean(parts: list[str | ImageSlot]) -> tuple[str | ImageSlot, ...]:
    """Merges neighbouring text, collapses 3+ newlines, strips each text part and drops
    empty ones. Image slots stay, even when the caller will have no image for them."""
    merged: list[str | ImageSlot] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    cleaned: list[str | ImageSlot] = []
    for part in merged:
        if isinstance(part, str):
            part = _BLANK_RUNS.sub("\n\n", _TRAILING_SPACE.sub("\n", part.replace("\x00", "")))
            part = part.strip()
            if not part:
                continue
        cleaned.append(part)
    return tuple(cleaned)


def _problem_from(exc: BaseException) -> TemplateProblem:
    line = _template_line(exc.__traceback__)
    if isinstance(exc, _Refused):
        return TemplateProblem(exc.problem.reason, exc.problem.description, line)
    if isinstance(exc, SecurityError):
        return TemplateProblem("UNSAFE_ACCESS", f"not allowed in a template: {exc}", line)
    if isinstance(exc, UndefinedError):
        variable = _quoted(exc.message or "")
        return TemplateProblem("UNDEFINED_VARIABLE", exc.message or str(exc), line, variable)
    if isinstance(exc, TemplateBudgetExceeded):
        return TemplateProblem("BUDGET_EXCEEDED", str(exc), line)
    if isinstance(exc, RecursionError | MemoryError):
        return TemplateProblem("BUDGET_EXCEEDED", "the template recurses or nests too deeply", line)
    if isinstance(exc, TemplateSyntaxError):
        return TemplateProblem("SYNTAX_ERROR", f"syntax error: {exc.message}", exc.lineno)
    return TemplateProblem("RENDER_FAILED", f"{type(exc).__name__}: {exc}", line)


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line of the innermost template frame (Jinja rewrites tracebacks so
    template frames carry template line numbers)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _quoted(message: str) -> str:
    found = re.match(r"'([^']*)' is undefined", message)
    return found[1] if found else ""


def _const_str(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    return None


def _first_use(tree: nodes.Template, variable: str) -> int | None:
    for name in tree.find_all(nodes.Name):
        if name.name == variable:
            return name.lineno
    return None


def _unknown_slot(spec: TemplateSpec, slot: str, line: int | None = None) -> TemplateProblem:
    allowed = ", ".join(spec.image_slots) or "none"
    known = "" if slot in IMAGE_SLOTS else " (not an image slot)"
    return TemplateProblem(
        "UNKNOWN_IMAGE_SLOT",
        f"image slot {slot!r}{known} is not available in this template (allowed: {allowed})",
        line,
    )
