"""Vendor the parts of the providers' OpenAPI specs that the provider tests validate against.

The upstream files are large (OpenAI's is about 3 MB), so only what ``tests/providers``
uses is kept: the operations listed in ``SPECS`` below, each whole, plus every
``#/components/...`` entry they reference, transitively, copied verbatim. Everything the
validation reads is therefore the upstream schema, value for value; tags, webhooks and
vendor ``x-`` extensions at the top level are dropped. The results are written as compact JSON to
``tests/providers/specs/`` together with a README recording where each came from.

    .venv/bin/python scripts/vendor_provider_specs.py [SOURCE_DIR] [--date YYYY-MM-DD]

SOURCE_DIR holds the upstream files under their upstream names (default: ../shared/specs,
beside this checkout). ``tests/providers/specs`` is only ever written by this script: to
validate against another operation, add it to ``SPECS`` and run the script again.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "specs"
DEFAULT_OUT = ROOT / "tests" / "providers" / "specs"

# Top-level keys kept besides ``paths`` and ``components``: enough for the result to stay a
# readable OpenAPI document. None of them takes part in validation.
KEPT_TOP_LEVEL = ("openapi", "info", "jsonSchemaDialect", "servers", "security")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


@dataclass(frozen=True)
class Spec:
    name: str  # the name the tests use: spec_check("openai", ...)
    source: str  # upstream file name in SOURCE_DIR
    upstream: str  # where the upstream file is published (Markdown)
    operations: dict[str, tuple[str, ...]]  # path -> methods kept
    used_for: str  # what the tests check against it (Markdown)


SPECS = (
    Spec(
        name="openai",
        source="openai-openapi.yaml",
        upstream=(
            "OpenAI's [openai/openai-openapi](https://github.com/openai/openai-openapi) "
            "repository, `openapi.yaml` (commit `f85dbe223d40` per the project's provider "
            "notes; the file itself carries no commit or URL)"
        ),
        operations={
            "/images/generations": ("post",),
            "/images/edits": ("post",),
            "/chat/completions": ("post",),
        },
        used_for=(
            "request bodies in `test_openai.py` (JSON generations, multipart edits, chat "
            "writer) and `test_openai_chat_writer.py` (chat completions)"
        ),
    ),
    Spec(
        name="openrouter",
        source="openrouter-openapi.yaml",
        upstream=(
            "OpenRouter's published OpenAPI, "
            "[OpenRouterTeam/docs](https://github.com/OpenRouterTeam/docs) "
            "`openapi/openapi.yaml` (commit `c26125a5fa92` per the project's provider notes; "
            "the file itself carries no commit or URL)"
        ),
        operations={
            "/chat/completions": ("post",),
            "/models": ("get",),
        },
        used_for=(
            "chat-completion request bodies in `test_openrouter.py`, and the fake's model "
            "listing against the `GET /models` 200 response schema"
        ),
    ),
    Spec(
        name="nanogpt",
        source="nanogpt-openapi.json",
        upstream=(
            "NanoGPT's published OpenAPI, "
            "[Nano-GPT-com/docs](https://github.com/Nano-GPT-com/docs) "
            "`api-reference/openapi.json` (commit `f0b5f521ec8f` per the project's provider "
            "notes; the file itself carries no commit or URL)"
        ),
        operations={
            "/v1/images/generations": ("post",),
            "/v1/chat/completions": ("post",),
        },
        used_for="image and chat request bodies in `test_nanogpt.py`",
    ),
)


def vendored_name(spec: Spec) -> str:
    return f"{spec.name}-openapi.json"


def load(path: Path) -> dict[str, Any]:
    """Parses the upstream file the way the tests used to (PyYAML's safe loader)."""
    if path.suffix == ".json":
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=loader)
    return loaded


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "$ref" and isinstance(value, str):
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def component_of(ref: str) -> tuple[str, str]:
    """``#/components/schemas/Foo[/...]`` -> ``("schemas", "Foo")``; anything else is an
    error, since the trimmed document keeps components only."""
    if not ref.startswith("#/"):
        raise ValueError(f"non-local $ref {ref!r}: vendor that document too")
    parts = [unquote(p).replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
    if len(parts) < 3 or parts[0] != "components":
        raise ValueError(f"$ref {ref!r} points outside #/components")
    return parts[1], parts[2]


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref[2:].split("/"):
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def trim(spec: Spec, source: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in spec.operations.items():
        item = source["paths"][path]
        # Path-level fields (servers, parameters, summary) stay; other methods go.
        kept = {k: v for k, v in item.items() if k not in HTTP_METHODS}
        for method in methods:
            kept[method] = item[method]
        paths[path] = kept

    wanted: set[tuple[str, str]] = set()
    pending = refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        section, name = component_of(ref)
        if (section, name) not in wanted:
            wanted.add((section, name))
            pending |= refs(source["components"][section][name])

    components: dict[str, Any] = {}
    for section, entries in source.get("components", {}).items():
        if section == "securitySchemes":
            components[section] = entries  # small, and named by ``security``
            continue
        kept_entries = {k: v for k, v in entries.items() if (section, k) in wanted}
        if kept_entries:
            components[section] = kept_entries

    trimmed = {k: source[k] for k in KEPT_TOP_LEVEL if k in source}
    trimmed["paths"] = paths
    trimmed["components"] = components
    return trimmed


def check(document: dict[str, Any]) -> None:
    """Every $ref in the trimmed document resolves inside it."""
    for ref in refs(document):
        try:
            resolve(document, ref)
        except (KeyError, IndexError, ValueError) as error:
            raise SystemExit(f"unresolved $ref {ref!r} after trimming") from error


def readme(date: str, rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Vendored provider OpenAPI specs",
        "",
        "Trimmed copies of the providers' official OpenAPI documents. The provider tests",
        "(`tests/providers/conftest.py`, `spec_check`) validate the request bodies Limner's",
        "adapters send to the loopback fakes against these, so a clean checkout runs every",
        "provider test without anything from outside the repository.",
        "",
        "Each file keeps only the operations listed below, each operation whole, plus every",
        "`#/components/...` entry they reference, transitively, copied verbatim; top-level",
        "tags, webhooks and `x-` extensions are dropped. Validation is unchanged: the schemas",
        "checked are exactly the upstream ones. An `x-limner-vendored` block in each file",
        "repeats the provenance below.",
        "",
        f"Vendored on {date}. Do not edit these files by hand.",
        "",
    ]
    for row in rows:
        info = row["info"]
        lines += [
            f"## `{row['file']}`",
            "",
            f"- Source: {row['upstream']}.",
            f'- `info`: title "{info.get("title", "")}", version `{info.get("version", "")}`'
            f" (OpenAPI `{row['openapi']}`).",
            f"- Upstream file: `{row['source']}`, {row['source_bytes']:,} bytes, sha256",
            f"  `{row['sha256']}`.",
            f"- Vendored: {row['vendored_bytes']:,} bytes, {date}.",
            "- Kept operations: " + ", ".join(f"`{op}`" for op in row["operations"]) + ".",
            "- Kept components: "
            + ", ".join(f"{section}: {count}" for section, count in row["components"].items())
            + ".",
            f"- Used for: {row['used_for']}.",
            "",
        ]
    lines += [
        "## Refreshing",
        "",
        "Download the upstream files (names as above) into one directory and run",
        "",
        "```sh",
        ".venv/bin/python scripts/vendor_provider_specs.py SOURCE_DIR",
        "```",
        "",
        "(see `--help` for the default SOURCE_DIR). The script rewrites this folder, README",
        "included, with today's date and the new checksums. To validate against another",
        "operation, add it to `SPECS` in the script and run it again. Then run",
        "`.venv/bin/pytest tests/providers`: an upstream change that the adapters do not",
        "follow shows up there as a failed `spec_check`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"directory holding the upstream files (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--date",
        default=datetime.datetime.now(datetime.UTC).date().isoformat(),
        help="vendoring date recorded in the README (default: today, UTC)",
    )
    args = parser.parse_args(argv)

    missing = [spec.source for spec in SPECS if not (args.source / spec.source).is_file()]
    if missing:
        parser.error(
            f"{args.source} lacks {', '.join(missing)}: pass the upstream files' directory"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for spec in SPECS:
        source_path = args.source / spec.source
        raw = source_path.read_bytes()
        sha256 = hashlib.sha256(raw).hexdigest()
        trimmed = trim(spec, load(source_path))
        operations = [f"{m.upper()} {p}" for p, methods in spec.operations.items() for m in methods]
        trimmed["x-limner-vendored"] = {
            "source": spec.source,
            "sha256": sha256,
            "date": args.date,
            "operations": operations,
        }
        check(trimmed)
        # No ``default=`` and no NaN: a value JSON cannot carry (a YAML date, say) fails here
        # rather than being silently turned into something else.
        text = json.dumps(trimmed, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        target = args.out / vendored_name(spec)
        target.write_text(text + "\n", encoding="utf-8")
        if json.loads(target.read_text(encoding="utf-8")) != trimmed:
            raise SystemExit(f"{target} does not read back as written")
        rows.append(
            {
                "file": target.name,
                "upstream": spec.upstream,
                "info": trimmed.get("info", {}),
                "openapi": trimmed.get("openapi", ""),
                "source": spec.source,
                "source_bytes": len(raw),
                "sha256": sha256,
                "vendored_bytes": target.stat().st_size,
                "operations": operations,
                "components": {k: len(v) for k, v in trimmed["components"].items()},
                "used_for": spec.used_for,
            }
        )
        print(f"{source_path} ({len(raw):,} B) -> {target} ({target.stat().st_size:,} B)")
    (args.out / "README.md").write_text(readme(args.date, rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
