"""The one Jinja2 environment of the process: a sandbox with a render budget.

Shipped defaults and workspace overrides both render here (defaults are trusted, but one
path is simpler to reason about than two). The stock ``SandboxedEnvironment`` already
refuses private and internal attributes (``''.__class__``, ``cycler.__init__.__globals__``)
with ``SecurityError``. It does not bound *work*, so this module adds a budget:

- ``range()`` yields at most ``MAX_RANGE_ITEMS`` items;
- every loop iteration, call, filter, operator and item lookup costs one step; a render
  may take ``MAX_STEPS`` steps and must finish before its deadline (checked on every step);
- no single value a template builds (call, filter, ``+``, ``*``, ``~``, ``%``) may exceed
  ``MAX_VALUE_CHARS``, all of them together ``MAX_BUILT_CHARS``, and the output
  ``MAX_OUTPUT_CHARS``; numbers passed to calls and filters are capped too, so a width of
  ``10**9`` is refused *before* anything allocates it.

Loops and ``~`` are guarded by rewriting the parsed template: each ``{% for %}`` iterable
is wrapped in a counting iterator and each concatenation in a size check. Constant folding
is off (``optimized=False``), so nothing a template says is evaluated at compile time.

A budget is bound to the render through a ``ContextVar``, so one environment serves many
threads at once.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_SOURCE_CHARS = 32 * 1024
MAX_RANGE_ITEMS = 1000
MAX_STEPS = 200_000
MAX_VALUE_CHARS = 128 * 1024
MAX_BUILT_CHARS = 8 * 1024 * 1024
MAX_OUTPUT_CHARS = 128 * 1024
MAX_NUMBER = MAX_VALUE_CHARS
MAX_INT_BITS = 4096
RENDER_DEADLINE_S = 0.75

LOOP_GUARD = "__limner_loop"
SIZE_GUARD = "__limner_size"

# printf-style widths/precisions of five digits or more, or taken from the arguments (``*``).
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(\*|\d{5,})|%[-#0 +]*\d*\.(\*|\d{5,})")


class TemplateBudgetExceeded(Exception):
    """A render did too much work, built too much text or took too long."""


class RenderBudget:
    __slots__ = ("built", "deadline", "steps")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.steps = 0
        self.built = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateBudgetExceeded(
                f"the template does too much work (more than {MAX_STEPS} steps)"
            )
        if time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded("the template takes too long to render")

    def add(self, size: int) -> None:
        self.built += size
        if self.built > MAX_BUILT_CHARS:
            raise TemplateBudgetExceeded(
                f"the template builds too much text (more than {MAX_BUILT_CHARS} characters)"
            )


_budget: ContextVar[RenderBudget | None] = ContextVar("limner_template_budget", default=None)


@contextmanager
def render_budget(seconds: float = RENDER_DEADLINE_S) -> Iterator[RenderBudget]:
    """Binds a fresh budget to the renders in this context (thread)."""
    budget = RenderBudget(seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()


def approximate_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """Roughly how many characters ``str(value)`` would take; stops counting past
    ``limit`` so measuring a huge structure stays cheap."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 8
    return total


def _check_size(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        size = approximate_size(value)
        _check_length(size)
        budget = _budget.get()
        if budget is not None:
            budget.add(size)
    return value


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        raise TemplateBudgetExceeded(
            f"the number {value} is too large for a template argument (limit {MAX_NUMBER})"
        )


def _check_arguments(args: Iterable[Any], kwargs: Iterable[Any]) -> None:
    for value in (*args, *kwargs):
        _check_number(value)
        if isinstance(value, str) and _WIDE_FORMAT.search(value):
            raise TemplateBudgetExceeded("format widths of 10000 or more are not allowed")


def capped_range(*args: int) -> range:
    for value in args:
        _check_number(value)
    items = range(*args)
    if len(items) > MAX_RANGE_ITEMS:
        raise TemplateBudgetExceeded(
            f"range() is limited to {MAX_RANGE_ITEMS} items in templates (got {len(items)})"
        )
    return items


def _guarded_loop(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


def _guarded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps ``jinja_pass_arg`` (pass_context and friends)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        # The filtered value itself is args[0] (or args[1] after a passed context); only
        # the extra arguments are limited, except for ``format`` whose value is the pattern.
        _check_arguments(args[1:], kwargs.values())
        if function.__name__ == "do_format":
            _check_arguments(args[:1], ())
        return _check_size(function(*args, **kwargs))

    return guarded


class _GuardWork(NodeTransformer):
    """Rewrites a parsed template so loops and ``~`` report to the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.Name(LOOP_GUARD, "load"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.Name(SIZE_GUARD, "load"), [node], [], None, None, lineno=node.lineno
        )


class BudgetedSandbox(SandboxedEnvironment):
    """``SandboxedEnvironment`` plus the work budget described in the module docstring."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = capped_range
        self.globals.pop("lipsum", None)  # generates text; prompts have no use for it
        self.globals[LOOP_GUARD] = _guarded_loop
        self.globals[SIZE_GUARD] = _check_size
        self.filters = {name: _guarded_filter(f) for name, f in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        template = super()._parse(source, name, filename)
        result = _GuardWork().visit(template)
        assert isinstance(result, nodes.Template)
        return result

    def call(
        __self,  # the stock signature
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _tick()
        if __obj is _check_size:  # the ``~`` guard: measures, builds nothing new
            return _check_size(*args)
        _check_arguments(args, kwargs.values())
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
            if _is_int(left) and _is_int(right):
                _check_bits(abs(left).bit_length() + abs(right).bit_length())
        elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise TemplateBudgetExceeded("format widths of 10000 or more are not allowed")
        elif operator == "+" and _is_sequence(left) and _is_sequence(right):
            _check_length(approximate_size(left) + approximate_size(right))
        return _check_size(super().call_binop(context, operator, left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        # str.format can pad to any width from inside its pattern (the stock sandbox only
        # guards what it can reach); |format is the checked way to format.
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _too_large() -> TemplateBudgetExceeded:
    return TemplateBudgetExceeded(
        f"the template builds a value that is too large (over {MAX_VALUE_CHARS} characters)"
    )


def _check_length(size: int) -> None:
    if size > MAX_VALUE_CHARS:
        raise _too_large()


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateBudgetExceeded("the template computes a number that is too large")


def _check_power(base: Any, exponent: Any) -> None:
    if _is_int(base) and _is_int(exponent) and abs(base) > 1:
        _check_bits(exponent * abs(base).bit_length())


def _check_repeat(sequence: Any, times: Any) -> None:
    if _is_sequence(sequence) and _is_int(times):
        _check_length(approximate_size(sequence) * max(times, 0))
        if not isinstance(sequence, str) and len(sequence) * max(times, 0) > MAX_RANGE_ITEMS:
            raise _too_large()


def _finalize(value: Any) -> Any:
    """Runs on every ``{{ ... }}`` before it becomes text: refuses to stringify a huge
    structure (``[x] * 1000`` of long strings) instead of building it first."""
    if not isinstance(value, str):
        _check_size(value)
    return value


@functools.cache
def environment() -> BudgetedSandbox:
    """The process's one template environment (built on first use)."""
    return BudgetedSandbox(
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        optimized=False,
        finalize=_finalize,
        # Templates compile through the renderer's own cache, keyed by source hash.
        cache_size=0,
    )


__all__ = [
    "LOOP_GUARD",
    "MAX_OUTPUT_CHARS",
    "MAX_SOURCE_CHARS",
    "RENDER_DEADLINE_S",
    "SIZE_GUARD",
    "BudgetedSandbox",
    "RenderBudget",
    "SecurityError",
    "TemplateBudgetExceeded",
    "environment",
    "render_budget",
]
