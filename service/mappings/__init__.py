"""Reading the mapping files (TOML) into the engine's model, validating every key."""

from __future__ import annotations

from service.engine.model import (
    Concept,
    CriterionMapping,
    Mappings,
    Product,
    StudyMapping,
    UlnRow,
    normalise_token,
)
from service.mappings.errors import MappingError
from service.mappings.loader import load_mappings

__all__ = [
    "Concept", "CriterionMapping", "MappingError", "Mappings", "Product", "StudyMapping",
    "UlnRow", "load_mappings", "normalise_token",
]
