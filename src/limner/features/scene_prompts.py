"""A scene's prompts, as pure functions: the writer template's values, the reference
images in their fixed order with the numbered map that says which is whom, and cleaning
the writer's answer down to exactly one prompt."""

from __future__ import annotations

import re
from typing import Any

from limner.domain.chats import Chat, Message, MessageRole
from limner.domain.models import ModelSpec
from limner.domain.subjects import Subject
from limner.features import writing

# -- writer input --------------------------------------------------------------------------


def _label(message: Message, character: Subject, persona: Subject | None) -> str:
    if message.role is MessageRole.ASSISTANT:
        return character.display_name
    if message.role is MessageRole.USER:
        return persona.display_name if persona else "User"
    if message.role is MessageRole.SCENE:
        return "Scene"
    return "Narrator"


def writer_values(
    character: Subject,
    persona: Subject | None,
    chat: Chat,
    window: list[Message],
    directive: str,
) -> dict[str, Any]:
    recent = "\n\n".join(f"{_label(m, character, persona)}: {m.text.strip()}" for m in window)
    names = character.display_name + (f" and {persona.display_name}" if persona else "")
    request = "Write one polished scene prompt for the latest moment"
    request += f", keeping {names} visually distinct." if persona else "."
    if directive:
        request = (
            f"The chat model asked for this picture: {directive}\n"
            f"{request} Follow its idea, but take every look from the references above."
        )
    return {
        "character_name": character.display_name,
        "character_description": character.description,
        "character_notes": character.design_notes,
        "persona_name": persona.display_name if persona else "",
        "persona_description": persona.description if persona else "",
        "persona_notes": persona.design_notes if persona else "",
        "recent_messages": recent,
        "scene_request": request,
        "has_background": bool(chat.background_asset),
    }


# -- render references ---------------------------------------------------------------------


def render_references(
    character: Subject, persona: Subject | None, chat: Chat, model: ModelSpec
) -> tuple[list[str], str, list[str]]:
    """The reference images in their fixed order (character, persona, background last),
    trimmed to what the model accepts, and the numbered map that says which is whom.
    Trimming drops the background first, then the longer subject list's last image, so
    each subject keeps an anchor as long as there is room."""
    limit = max(model.profile.max_reference_images, 0)
    ours = list(dict.fromkeys(character.identity_anchors()))
    theirs = [
        a for a in dict.fromkeys(persona.identity_anchors() if persona else []) if a not in ours
    ]
    background = [chat.background_asset] if chat.background_asset else []
    background = [a for a in background if a not in ours and a not in theirs]
    trimmed: list[str] = []
    if len(ours) + len(theirs) + len(background) > limit:
        trimmed += background
        background = []
    while len(ours) + len(theirs) > limit:
        longer = theirs if len(theirs) >= len(ours) and theirs else ours
        trimmed.insert(0, longer.pop())
    lines = []
    number = 1
    for subject, role, anchors in (
        (character, "character", ours),
        (persona, "persona", theirs),
    ):
        if subject is None:
            continue
        what = "design reference" if subject.reference_assets else "avatar"
        for _ in anchors:
            lines.append(f"Image {number}: {subject.display_name} ({role}), {what}")
            number += 1
    for _ in background:
        lines.append(
            f"Image {number}: the background: setting, light and palette only; it is not an "
            "identity source"
        )
        number += 1
    if lines and persona is not None and (not ours) != (not theirs):
        missing = persona.display_name if not theirs else character.display_name
        lines.append(f"No image shows {missing}; do not invent them from the other references.")
    return [*ours, *theirs, *background], "\n".join(lines), trimmed


# -- cleaning the writer's answer ----------------------------------------------------------

_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly)[,!.]?\s*)?"
    r"(?:here(?:'s| is)\s+(?:the|your|a|my)\s+(?:final\s+|polished\s+|scene\s+|image\s+)*prompt"
    r"|(?:final\s+|scene\s+|image\s+)*prompt)\s*[:\-\u2013\u2014]\s*",
    re.IGNORECASE,
)
_IMG_TAG = re.compile(r"<\s*/?\s*img\s*>", re.IGNORECASE)
_EXPLANATION = re.compile(
    r"^(?:this prompt|the prompt|note|explanation|why this works)\b", re.IGNORECASE
)


def clean_scene_prompt(text: str) -> str:
    """Exactly one prompt from what a writer returned: no code fences, no surrounding
    quotes, no "Here is the prompt:" preamble, no trailing explanation, no ``<img>`` tags."""
    text = writing.clean_text(_IMG_TAG.sub(" ", text))
    for _ in range(3):
        before = text
        text = writing.clean_text(_PREAMBLE.sub("", text, count=1))
        if text == before:
            break
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    while len(paragraphs) > 1 and _EXPLANATION.match(paragraphs[-1]):
        paragraphs.pop()
    paragraphs = [" ".join(p.split()) for p in paragraphs]
    return "\n\n".join(paragraphs)
