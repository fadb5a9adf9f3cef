"""The vendored OpenAPI specs are complete: every ``$ref`` in them resolves, so a request
check never depends on a component that trimming left out (see specs/README.md)."""

from __future__ import annotations

from typing import Any

import pytest
from provider_helpers import SPEC_FILES, load_spec


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for k, v in node.items() if k != "$ref"))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


@pytest.mark.parametrize("name", sorted(SPEC_FILES))
def test_every_ref_resolves_inside_the_vendored_file(name):
    spec = load_spec(name)
    found = refs(spec)
    assert found, "the operations kept reference components"
    for ref in sorted(found):
        assert ref.startswith("#/components/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]
