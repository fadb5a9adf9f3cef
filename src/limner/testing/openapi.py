"""Checks request bodies against a provider's official OpenAPI (3.1) spec.

Used by the provider tests: what an adapter sent to a fake must be a valid request body for
that path in the vendor's own spec. Specs are large, so each is parsed once per process.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SPECS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "specs"
SPEC_FILES = {
    "openai": "openai-openapi.yaml",
    "openrouter": "openrouter-openapi.yaml",
    "nanogpt": "nanogpt-openapi.json",
}


def spec_path(name: str) -> Path:
    return SPECS_DIR / SPEC_FILES[name]


def spec_available(name: str) -> bool:
    return spec_path(name).is_file()


@functools.cache
def load_spec(name: str) -> dict[str, Any]:
    path = spec_path(name)
    if path.suffix == ".json":
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as handle:
        data: dict[str, Any] = yaml.load(handle, Loader=loader)
    return data


def request_schema(name: str, path: str, method: str, content_type: str) -> dict[str, Any]:
    spec = load_spec(name)
    operation = spec["paths"][path][method.lower()]
    schema: dict[str, Any] = operation["requestBody"]["content"][content_type]["schema"]
    return schema


def validate_request(
    name: str, path: str, body: Any, *, method: str = "post", content_type: str = "application/json"
) -> None:
    """Raises ``jsonschema.ValidationError`` when ``body`` is not a valid request body."""
    import jsonschema

    spec = load_spec(name)
    schema = request_schema(name, path, method, content_type)
    # Validate against the whole document so "#/components/..." references resolve.
    document = {k: v for k, v in spec.items() if k != "paths"}
    document["x-limner-target"] = schema
    validator = jsonschema.Draft202012Validator({**document, "$ref": "#/x-limner-target"})
    validator.validate(body)
