"""The capability-checked model registry and feature -> model resolution."""

from limner.registry.catalog import ModelCatalog, ModelRepository, SettingsRepository
from limner.registry.features import FEATURE_RULES, FeatureRule

__all__ = ["FEATURE_RULES", "FeatureRule", "ModelCatalog", "ModelRepository", "SettingsRepository"]
