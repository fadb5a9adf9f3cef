"""Prompt templates through the public API: list, get, update, reset, preview, rejections."""

from __future__ import annotations

import hashlib
import time

import grpc
import pytest

from limner.testing.streams import status_details
from limner.v1 import model_pb2 as m
from limner.v1 import model_service_pb2 as mpb

KINDS = {
    "promptTemplates/avatar-generation": m.TEMPLATE_KIND_AVATAR_GENERATION,
    "promptTemplates/avatar-edit": m.TEMPLATE_KIND_AVATAR_EDIT,
    "promptTemplates/scene-writer": m.TEMPLATE_KIND_SCENE_WRITER,
    "promptTemplates/scene-render": m.TEMPLATE_KIND_SCENE_RENDER,
    "promptTemplates/design-reference-writer": m.TEMPLATE_KIND_DESIGN_REFERENCE_WRITER,
}
GEN = "promptTemplates/avatar-generation"
KEYS = {"api_keys": [{"key": "k1", "workspace": "a"}, {"key": "k2", "workspace": "b"}]}
K1 = (("authorization", "Bearer k1"),)
K2 = (("authorization", "Bearer k2"),)


def version(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert "Traceback" not in (error.details() or "")
    return error


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str, str]]:
    return [
        (v.field, v.reason, v.description)
        for v in status_details(error)["BadRequest"].field_violations
    ]


async def get(server, name: str, metadata=()) -> m.PromptTemplate:
    response = await server.models.GetPromptTemplate(
        mpb.GetPromptTemplateRequest(name=name), metadata=metadata
    )
    return response.prompt_template


async def update(server, name: str, source: str, metadata=()) -> m.PromptTemplate:
    response = await server.models.UpdatePromptTemplate(
        mpb.UpdatePromptTemplateRequest(prompt_template=m.PromptTemplate(name=name, source=source)),
        metadata=metadata,
    )
    return response.prompt_template


async def test_list_shows_the_five_defaults(server):
    response = await server.models.ListPromptTemplates(mpb.ListPromptTemplatesRequest())
    templates = {t.name: t for t in response.prompt_templates}

    assert set(templates) == set(KINDS)
    for name, template in templates.items():
        assert template.kind == KINDS[name]
        assert not template.overridden
        assert not template.HasField("update_time")
        assert template.version == version(template.source)
        assert template.required_variables
        for variable in template.required_variables:
            assert variable in template.source
    assert list(templates[GEN].required_variables) == ["avatar_request"]
    assert list(templates[GEN].image_slots) == []
    writer = templates["promptTemplates/scene-writer"]
    assert list(writer.required_variables) == ["recent_messages", "scene_request"]
    assert list(writer.image_slots) == ["character", "persona", "background"]
    design = templates["promptTemplates/design-reference-writer"]
    assert list(design.image_slots) == ["avatar", "references"]


async def test_get_returns_the_default(server):
    template = await get(server, "promptTemplates/scene-render")
    assert template.name == "promptTemplates/scene-render"
    assert template.kind == m.TEMPLATE_KIND_SCENE_RENDER
    assert "{{ prompt }}" in template.source
    assert list(template.required_variables) == ["prompt"]


async def test_overrides_are_per_workspace_and_reset_restores_the_default(
    make_server, database_url
):
    async with make_server(database_url, auth=KEYS) as server:
        default = await get(server, GEN, K1)
        source = "A portrait of {{ subject_name }}. {{ avatar_request }} Return only the image."

        updated = await update(server, GEN, source, K1)
        assert updated.overridden and updated.source == source
        assert updated.version == version(source) != default.version
        assert updated.HasField("update_time")

        mine = await get(server, GEN, K1)
        assert mine.overridden and mine.source == source and mine.version == updated.version
        theirs = await get(server, GEN, K2)
        assert not theirs.overridden and theirs.source == default.source

        listed = await server.models.ListPromptTemplates(
            mpb.ListPromptTemplatesRequest(), metadata=K1
        )
        assert [t.name for t in listed.prompt_templates if t.overridden] == [GEN]

        reset = await server.models.ResetPromptTemplate(
            mpb.ResetPromptTemplateRequest(name=GEN), metadata=K1
        )
        assert not reset.prompt_template.overridden
        assert reset.prompt_template.source == default.source
        assert (await get(server, GEN, K1)).version == default.version


async def test_overrides_survive_a_restart(make_server, database_url):
    source = "{{ prompt }} (house style)"
    async with make_server(database_url) as server:
        await update(server, "promptTemplates/scene-render", source)
        source = "{{ prompt }} (house style, second edit)"
        await update(server, "promptTemplates/scene-render", source)
    async with make_server(database_url) as server:
        template = await get(server, "promptTemplates/scene-render")
        assert template.overridden and template.source == source


async def test_preview_renders_samples_and_given_values(server):
    response = await server.models.PreviewPromptTemplate(
        mpb.PreviewPromptTemplateRequest(
            name="promptTemplates/design-reference-writer", values={"subject_name": "Ines Vale"}
        )
    )
    assert list(response.image_slots) == ["avatar", "references"]
    assert response.rendered.startswith("[system]\n")
    assert "Ines Vale" in response.rendered
    assert response.rendered.index("[image: avatar]") < response.rendered.index(
        "[image: references]"
    )

    plain = await server.models.PreviewPromptTemplate(
        mpb.PreviewPromptTemplateRequest(name=GEN, values={"avatar_request": "wearing a hat"})
    )
    assert "wearing a hat" in plain.rendered and "[user]" not in plain.rendered
    assert list(plain.image_slots) == []


async def test_preview_of_a_given_source_and_of_the_override(server):
    source = "{{ image('background') }}{{ recent_messages }}|{{ scene_request }}"
    response = await server.models.PreviewPromptTemplate(
        mpb.PreviewPromptTemplateRequest(
            name="promptTemplates/scene-writer",
            source=source,
            values={"recent_messages": "hi", "scene_request": "go"},
        )
    )
    assert response.rendered == "[user]\n[image: background]\n\nhi|go"
    assert list(response.image_slots) == ["background"]
    assert not (await get(server, "promptTemplates/scene-writer")).overridden, (
        "preview stores nothing"
    )

    await update(server, GEN, "Custom: {{ avatar_request }}")
    response = await server.models.PreviewPromptTemplate(
        mpb.PreviewPromptTemplateRequest(name=GEN, values={"avatar_request": "x"})
    )
    assert response.rendered == "Custom: x"


async def test_preview_of_an_invalid_source_is_invalid_argument(server):
    error = await rpc_error(
        server.models.PreviewPromptTemplate(
            mpb.PreviewPromptTemplateRequest(name=GEN, source="{{ avatar_request ")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, reason, description)] = violations(error)
    assert (field, reason) == ("source", "SYNTAX_ERROR")
    assert description.startswith("line 1:")

    error = await rpc_error(
        server.models.PreviewPromptTemplate(
            mpb.PreviewPromptTemplateRequest(name=GEN, values={"nonsense": "1"})
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error)[0][:2] == ("values.nonsense", "UNKNOWN_VARIABLE")


@pytest.mark.parametrize(
    ("source", "reason", "words"),
    [
        ("A portrait of {{ subject_name }}.", "MISSING_VARIABLE", "avatar_request"),
        ("line one\n{% if avatar_request %}\n{{ avatar_request }}", "SYNTAX_ERROR", "line 3"),
        ("{{ ''.__class__ }}{{ avatar_request }}", "UNSAFE_ACCESS", "__class__"),
        ("{{ cycler.__init__.__globals__ }}{{ avatar_request }}", "UNSAFE_ACCESS", "__globals__"),
        ("{{ image('avatar') }}{{ avatar_request }}", "UNKNOWN_IMAGE_SLOT", "avatar"),
        ("{{ avatar_request }}{{ avatar_requets }}", "UNKNOWN_VARIABLE", "avatar_requets"),
        ("", "EMPTY", "required"),
    ],
)
async def test_bad_updates_are_rejected_and_store_nothing(server, source, reason, words):
    error = await rpc_error(update(server, GEN, source))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = status_details(error)["ErrorInfo"]
    assert info.domain == "limner.dev" and info.reason == "PROMPT_TEMPLATE_INVALID"
    found = violations(error)
    assert {field for field, _, _ in found} == {"prompt_template.source"}
    assert found[0][1] == reason
    assert any(words in description for _, _, description in found)
    assert not (await get(server, GEN)).overridden


async def test_a_huge_loop_fails_fast(server):
    source = "{% for i in range(10**9) %}x{% endfor %}{{ avatar_request }}"
    started = time.monotonic()
    error = await rpc_error(update(server, GEN, source))
    assert time.monotonic() - started < 2
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error)[0][:2] == ("prompt_template.source", "BUDGET_EXCEEDED")

    nested = (
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
        "{% endfor %}{% endfor %}{% endfor %}{{ avatar_request }}"
    )
    started = time.monotonic()
    error = await rpc_error(update(server, GEN, nested))
    assert time.monotonic() - started < 2
    assert violations(error)[0][1] == "BUDGET_EXCEEDED"
    assert not (await get(server, GEN)).overridden


@pytest.mark.parametrize(
    "call",
    [
        lambda s, n: s.models.GetPromptTemplate(mpb.GetPromptTemplateRequest(name=n)),
        lambda s, n: s.models.ResetPromptTemplate(mpb.ResetPromptTemplateRequest(name=n)),
        lambda s, n: s.models.PreviewPromptTemplate(mpb.PreviewPromptTemplateRequest(name=n)),
        lambda s, n: update(s, n, "{{ avatar_request }}"),
    ],
)
@pytest.mark.parametrize("name", ["promptTemplates/no-such-template", "models/offline-image"])
async def test_unknown_template_names_are_not_found(server, call, name):
    error = await rpc_error(call(server, name))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert status_details(error)["ErrorInfo"].reason == "PROMPT_TEMPLATE_NOT_FOUND"


async def test_a_missing_name_is_invalid_argument(server):
    error = await rpc_error(server.models.GetPromptTemplate(mpb.GetPromptTemplateRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error)[0][0] == "name"
    error = await rpc_error(server.models.UpdatePromptTemplate(mpb.UpdatePromptTemplateRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error)[0][0] == "prompt_template"
