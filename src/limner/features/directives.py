"""The scene directive a chat model may end its reply with: ``<img>a prompt</img>``.

Only a directive at the end of the reply counts (trailing whitespace allowed). The tags are
matched case-insensitively and tolerate spaces inside them (``< IMG >``, ``</ img >``);
the prompt may span lines. Besides ``</img>`` the reference app's closers ``[continue]``
and ``[/continue]`` are accepted, and a reply cut off before its closer still counts.
The directive is always removed from the text; its prompt is ``None`` when it is empty.
A tag in the middle of a reply (with more text after its closer) is left as it is.
"""

from __future__ import annotations

import re

_OPEN = re.compile(r"<\s*img\s*>", re.IGNORECASE)
_CLOSE = re.compile(r"(?:<\s*/\s*img\s*>|\[\s*/?\s*continue\s*\])\s*\Z", re.IGNORECASE)
_STRAY_CLOSE = re.compile(r"<\s*/\s*img\s*>|\[\s*/?\s*continue\s*\]", re.IGNORECASE)


def extract_directive(text: str) -> tuple[str, str | None]:
    """``(text without the directive, the directive's prompt or None)``."""
    openings = list(_OPEN.finditer(text))
    for opening in reversed(openings):
        rest = text[opening.end() :]
        closing = _CLOSE.search(rest)
        if closing is not None:
            inner = rest[: closing.start()]
        elif _STRAY_CLOSE.search(rest) is None:
            inner = rest  # cut off before its closer: still the last thing in the reply
        else:
            continue  # closed somewhere in the middle: not a trailing directive
        if _STRAY_CLOSE.search(inner) is not None or _OPEN.search(inner) is not None:
            continue
        prompt = " ".join(inner.split())
        return text[: opening.start()].rstrip(), prompt or None
    return text, None
