"""ModelService.DiscoverModels imports a provider's listing with its modalities."""

from __future__ import annotations

import grpc
import pytest

from limner.providers import Provider
from limner.providers.base import DiscoveredModel
from limner.providers.offline import OfflineImageGenerator, OfflineSettings
from limner.testing.streams import status_details
from limner.v1 import model_pb2
from limner.v1 import model_service_pb2 as mpb


class Listing:
    def __init__(self) -> None:
        self.models = [
            DiscoveredModel(
                provider_model_id="acme/painter-XL 2",
                display_name="Painter XL",
                input_modalities=frozenset({"text", "image"}),
                output_modalities=frozenset({"image"}),
            ),
            DiscoveredModel(
                provider_model_id="acme/chatty",
                display_name="Chatty",
                input_modalities=frozenset({"text", "image", "audio"}),
                output_modalities=frozenset({"text"}),
            ),
            DiscoveredModel(
                provider_model_id="acme/embedder",
                display_name="Embedder",
                input_modalities=frozenset({"text"}),
                output_modalities=frozenset({"embeddings"}),
            ),
        ]

    async def list_models(self) -> list[DiscoveredModel]:
        return list(self.models)


def providers(listing: Listing) -> dict[str, Provider]:
    return {
        "offline": Provider(
            id="offline",
            kind="offline",
            images=OfflineImageGenerator(OfflineSettings(step_delay_s=0)),
            lister=listing,
        )
    }


async def test_discovery_imports_modalities_and_refreshes(make_server):
    listing = Listing()
    async with make_server(providers=providers(listing)) as server:
        found = await server.models.DiscoverModels(
            mpb.DiscoverModelsRequest(provider="providers/offline")
        )
        by_id = {m.provider_model_id: m for m in found.models}
        assert set(by_id) == {"acme/painter-XL 2", "acme/chatty"}, "unusable outputs skipped"
        painter = by_id["acme/painter-XL 2"]
        assert painter.name == "models/offline-acme-painter-xl-2"
        assert painter.origin == model_pb2.MODEL_ORIGIN_DISCOVERED
        assert list(painter.output_modalities) == [model_pb2.MODALITY_IMAGE]
        chatty = by_id["acme/chatty"]
        assert set(chatty.input_modalities) == {model_pb2.MODALITY_TEXT, model_pb2.MODALITY_IMAGE}

        ready = await server.models.CheckFeature(
            mpb.CheckFeatureRequest(
                feature=model_pb2.FEATURE_SCENE_WRITER, model="models/offline-acme-chatty"
            )
        )
        assert ready.check.ready

        listing.models[0] = DiscoveredModel(
            provider_model_id="acme/painter-XL 2",
            display_name="Painter XL v2",
            input_modalities=frozenset({"text"}),
            output_modalities=frozenset({"image"}),
        )
        images_only = await server.models.DiscoverModels(
            mpb.DiscoverModelsRequest(provider="providers/offline", image_output_only=True)
        )
        assert [m.display_name for m in images_only.models] == ["Painter XL v2"]
        listed = await server.models.ListModels(mpb.ListModelsRequest(page_size=100))
        names = [m.name for m in listed.models]
        assert names.count("models/offline-acme-painter-xl-2") == 1
        refreshed = await server.models.GetModel(
            mpb.GetModelRequest(name="models/offline-acme-painter-xl-2")
        )
        assert list(refreshed.model.input_modalities) == [model_pb2.MODALITY_TEXT]


async def test_discovery_errors_name_the_problem(server):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await server.models.DiscoverModels(mpb.DiscoverModelsRequest(provider="providers/nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await server.models.DiscoverModels(mpb.DiscoverModelsRequest(provider="providers/offline"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status_details(raised.value)["ErrorInfo"].reason == "DISCOVERY_UNSUPPORTED"
