"""A medication resource's ingredient concepts and strength (codes, Medication, product table)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from service.engine import units
from service.engine.dosing import Strength
from service.engine.model import Mappings, normalise_token
from service.engine.numbers import to_decimal
from service.engine.record import (
    PatientRecord,
    as_dict,
    as_list,
    codings,
    concept_texts,
    reference_of,
)


def ingredient_concepts(
    mappings: Mappings, record: PatientRecord, resource: dict[str, Any]
) -> tuple[tuple[str, ...], Strength | None]:
    """Ingredient concepts of a medication and, when known, the strength in mg per unit."""
    sources: list[dict[str, Any]] = []
    code = resource.get("medicationCodeableConcept")
    if isinstance(code, dict):
        sources.append(code)
    found: list[str] = []
    strength: Strength | None = None
    medication = record.resolve(reference_of(resource.get("medicationReference")), resource)
    if medication is not None:
        if isinstance(medication.get("code"), dict):
            sources.append(medication["code"])
        found, strength = _listed_ingredients(mappings, record, medication)
    for source in sources:
        found.extend(_codes_to_concepts(mappings, source))
        for product in _products(mappings, source):
            found.append(product.ingredient)
            if strength is None and product.strength_mg is not None:
                strength = Strength(product.strength_mg)
    if not found:
        found = _named_medications(mappings, [t for s in sources for t in concept_texts(s)])
    return tuple(dict.fromkeys(found)), strength


def _listed_ingredients(mappings: Mappings, record: PatientRecord, medication: dict[str, Any]
                        ) -> tuple[list[str], Strength | None]:
    """Concepts of a Medication's `ingredient` list and the first mapped one's strength."""
    found: list[str] = []
    strength: Strength | None = None
    for ingredient in as_list(medication.get("ingredient")):
        if not isinstance(ingredient, dict):
            continue
        item = ingredient.get("itemCodeableConcept")
        if not isinstance(item, dict):
            linked = record.resolve(reference_of(ingredient.get("itemReference")), medication)
            item = linked.get("code") if linked else None
        if not isinstance(item, dict):
            continue
        names = _codes_to_concepts(mappings, item)
        if names and strength is None:
            strength = _strength_mg(ingredient.get("strength"))
        found.extend(names)
    return found, strength


def _products(mappings: Mappings, code: dict[str, Any]) -> list[Any]:
    """Product-level codes of a CodeableConcept resolved by the mapping's product table."""
    out = []
    for coding in codings(code):
        product = mappings.products.get(
            normalise_token(coding.get("system"), coding.get("code")) or "")
        if product is not None:
            out.append(product)
    return out


def _named_medications(mappings: Mappings, texts: list[str]) -> list[str]:
    """Medication concepts named in one of the free texts (only for concepts with `names`)."""
    return [concept.name for concept in mappings.concepts.values()
            if concept.kind == "medication"
            and any(n in t for t in texts for n in concept.names)]


def _codes_to_concepts(mappings: Mappings, code: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for coding in codings(code):
        for name in mappings.concepts_for(coding.get("system"), coding.get("code")):
            if mappings.concepts[name].kind == "medication":
                out.append(name)
    return out


def _strength_mg(strength: Any) -> Strength | None:
    """A Ratio strength as mg per mL (denominator a volume) or mg per unit (a tablet...)."""
    if not isinstance(strength, dict):
        return None
    numerator = as_dict(strength.get("numerator"))
    denominator = as_dict(strength.get("denominator"))
    value = to_decimal(numerator.get("value"))
    per = to_decimal(denominator.get("value")) or Decimal(1)
    unit = numerator.get("code") or numerator.get("unit")
    per_unit = denominator.get("code") or denominator.get("unit")
    if value is None or per <= 0:
        return None
    try:
        mg = units.convert(value, unit, "mg")
        if isinstance(per_unit, str) and units.convertible(per_unit, "mL", None):
            return Strength(mg / units.convert(per, per_unit, "mL"), per_ml=True)
        return Strength(mg / per)
    except units.UnitError:
        return None
