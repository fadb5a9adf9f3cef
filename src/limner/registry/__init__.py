"""The capability-checked model registry and feature -> model resolution."""

from limner.registry.catalog import (
    ImageModel,
    ModelCatalog,
    ModelRepository,
    SettingsRepository,
    WriterModel,
)
from limner.registry.features import FEATURE_RULES, FeatureRule

__all__ = [
    "FEATURE_RULES",
    "FeatureRule",
    "ImageModel",
    "ModelCatalog",
    "ModelRepository",
    "SettingsRepository",
    "WriterModel",
]
