"""The ``<img>…</img>`` scene directive parser."""

from __future__ import annotations

import pytest

from limner.features.directives import extract_directive


@pytest.mark.parametrize(
    ("reply", "text", "prompt"),
    [
        ("She smiles. <img>Mara at the lamp</img>", "She smiles.", "Mara at the lamp"),
        ("She smiles.<IMG>Mara at the lamp</IMG>", "She smiles.", "Mara at the lamp"),
        (
            "She smiles.\n< img >  Mara at\n the lamp  </ Img >\n\n",
            "She smiles.",
            "Mara at the lamp",
        ),
        ("Hi.\n<img>\nMara, storm light\n</img>   ", "Hi.", "Mara, storm light"),
        ("Hi. <img>Mara climbs[continue]", "Hi.", "Mara climbs"),
        ("Hi. <img>Mara climbs [/Continue]", "Hi.", "Mara climbs"),
        ("Hi. <img>Mara climbs the stairs", "Hi.", "Mara climbs the stairs"),
        ("<img>only a prompt</img>", "", "only a prompt"),
        ("Hi. <img>   </img>", "Hi.", None),
        ("Hi. <img></img>", "Hi.", None),
        ("No directive here.", "No directive here.", None),
        ("", "", None),
    ],
)
def test_directives(reply: str, text: str, prompt: str | None) -> None:
    assert extract_directive(reply) == (text, prompt)


def test_a_tag_in_the_middle_is_not_a_directive() -> None:
    reply = "Look: <img>a lamp</img> and then we climbed."
    assert extract_directive(reply) == (reply, None)


def test_the_last_directive_wins_and_earlier_tags_stay() -> None:
    reply = "A <img>first</img> b. <img>second</img>"
    assert extract_directive(reply) == ("A <img>first</img> b.", "second")


def test_the_stored_text_never_contains_the_directive() -> None:
    for reply in ("x <img>p</img>", "x <IMG >p</img >", "x <img>p"):
        text, prompt = extract_directive(reply)
        assert "img" not in text.lower() and prompt == "p"
