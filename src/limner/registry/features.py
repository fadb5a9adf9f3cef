"""What each feature needs from a model (ARCHITECTURE §3), as data."""

from __future__ import annotations

from dataclasses import dataclass

from limner.domain.models import Feature, ImageSettings, Modality, ModelSpec


@dataclass(frozen=True)
class FeatureRule:
    feature: Feature
    required_inputs: frozenset[Modality]
    required_outputs: frozenset[Modality]
    preferred_inputs: frozenset[Modality]
    settings_field: str
    # The words used in "no <role>: add a model with <needs>".
    role: str
    needs: str

    def missing(self, model: ModelSpec) -> list[str]:
        """Capabilities ``model`` lacks for this feature, as readable names."""
        missing = [
            f"{m.value} input" for m in sorted(self.required_inputs - model.input_modalities)
        ]
        missing += [
            f"{m.value} output" for m in sorted(self.required_outputs - model.output_modalities)
        ]
        return missing

    def requirements(self) -> list[str]:
        inputs = [f"{m.value} input" for m in sorted(self.required_inputs)]
        return inputs + [f"{m.value} output" for m in sorted(self.required_outputs)]

    def caveats(self, model: ModelSpec) -> list[str]:
        lacking = sorted(self.preferred_inputs - model.input_modalities)
        if not lacking:
            return []
        return [
            f"models/{model.id} has no {m.value} input: it cannot see the source image, so "
            f"{self.feature.value} will redraw from the prompt alone"
            for m in lacking
        ]

    def chosen(self, settings: ImageSettings) -> str:
        value: str = getattr(settings, self.settings_field)
        return value


_IMAGE_OUT = frozenset({Modality.IMAGE})
_TEXT_OUT = frozenset({Modality.TEXT})
_TEXT_AND_IMAGE = frozenset({Modality.TEXT, Modality.IMAGE})
_NONE: frozenset[Modality] = frozenset()

FEATURE_RULES: dict[Feature, FeatureRule] = {
    rule.feature: rule
    for rule in (
        FeatureRule(
            Feature.IMAGE_GENERATION,
            _NONE,
            _IMAGE_OUT,
            _NONE,
            "image_model",
            "image model",
            "image output",
        ),
        FeatureRule(
            Feature.IMAGE_EDIT,
            _NONE,
            _IMAGE_OUT,
            frozenset({Modality.IMAGE}),
            "image_model",
            "image model",
            "image output (and ideally image input)",
        ),
        FeatureRule(
            Feature.AVATAR_GENERATION,
            _NONE,
            _IMAGE_OUT,
            _NONE,
            "avatar_model",
            "avatar model",
            "image output",
        ),
        FeatureRule(
            Feature.AVATAR_EDIT,
            _NONE,
            _IMAGE_OUT,
            frozenset({Modality.IMAGE}),
            "avatar_model",
            "avatar model",
            "image output (and ideally image input)",
        ),
        FeatureRule(
            Feature.SCENE_IMAGE,
            _NONE,
            _IMAGE_OUT,
            _NONE,
            "scene_image_model",
            "scene image model",
            "image output",
        ),
        FeatureRule(
            Feature.SCENE_WRITER,
            _TEXT_AND_IMAGE,
            _TEXT_OUT,
            _NONE,
            "scene_writer_model",
            "scene writer model",
            "text+image input and text output",
        ),
        FeatureRule(
            Feature.DESIGN_REFERENCE_WRITER,
            _TEXT_AND_IMAGE,
            _TEXT_OUT,
            _NONE,
            "scene_writer_model",
            "design reference writer model",
            "text+image input and text output",
        ),
    )
}
