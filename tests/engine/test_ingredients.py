"""A medication resource's ingredient concepts and strength, read exactly: a Medication's
ingredient list (by code, by reference to a resource of the record or a contained one), its
strength as a Ratio (per unit, per mL, in g, without a denominator), product codes and names in
free text (found surviving by mutation testing: docs/mutation-testing.md)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from service.engine.dosing import Strength
from service.engine.ingredients import ingredient_concepts
from service.engine.record import build_record
from tests.support.builders import (
    RX_HCQ,
    RX_PREDNISONE,
    RX_PREDNISONE_20MG_TAB,
    RXNORM,
    cc,
    patient,
)

RX_MMF = "68149"
SUBSTANCE = {"resourceType": "Substance", "id": "s1", "code": cc(RX_PREDNISONE, RXNORM)}


def ratio(value: Any, unit: str | None = "mg", per: Any = None, per_unit: str | None = None,
          *, code_key: str = "code") -> dict[str, Any]:
    """A strength Ratio; `code_key` says whether units are written as `code` or `unit`."""
    numerator: dict[str, Any] = {"value": value}
    if unit is not None:
        numerator[code_key] = unit
    denominator: dict[str, Any] = {}
    if per is not None:
        denominator["value"] = per
    if per_unit is not None:
        denominator[code_key] = per_unit
    return {"numerator": numerator, "denominator": denominator}


def item(code: str = RX_PREDNISONE, strength: dict[str, Any] | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"itemCodeableConcept": cc(code, RXNORM)}
    if strength is not None:
        made["strength"] = strength
    return made


def statement(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "id": "ms1", "status": "completed",
            "subject": {"reference": "Patient/p1"}, **fields}


def with_medication(*ingredients: Any, code: dict[str, Any] | None = None,
                    **extra: Any) -> dict[str, Any]:
    """A statement whose contained Medication lists `ingredients`."""
    med: dict[str, Any] = {"resourceType": "Medication", "id": "m", "ingredient": list(ingredients),
                           **extra}
    if code is not None:
        med["code"] = code
    return statement(contained=[med], medicationReference={"reference": "#m"})


def read(mappings: Any, resource: dict[str, Any], *others: dict[str, Any]
         ) -> tuple[tuple[str, ...], Strength | None]:
    record = build_record([patient(pid="p1"), resource, *others], mappings)
    return ingredient_concepts(mappings, record, resource)


PRED = ("prednisone",)


@pytest.mark.parametrize(("resource", "expected"), [
    # A Ratio per tablet, per several units, per mL (and in other volume units), in g.
    (with_medication(item(strength=ratio(10, "mg", 1, "{tbl}"))), (PRED, Strength(Decimal(10)))),
    (with_medication(item(strength=ratio(10, "mg", 2, "{tbl}"))), (PRED, Strength(Decimal(5)))),
    (with_medication(item(strength=ratio(10, "mg"))), (PRED, Strength(Decimal(10)))),
    (with_medication(item(strength=ratio(10, "mg", 0, "{tbl}"))), (PRED, Strength(Decimal(10)))),
    (with_medication(item(strength=ratio(10, "mg", -1, "{tbl}"))), (PRED, None)),
    (with_medication(item(strength=ratio(None, "mg", 1, "{tbl}"))), (PRED, None)),
    (with_medication(item(strength=ratio(0.01, "g", 2, "{tbl}"))), (PRED, Strength(Decimal(5)))),
    (with_medication(item(strength=ratio(10, "mg", 2, "mL"))),
     (PRED, Strength(Decimal(5), per_ml=True))),
    (with_medication(item(strength=ratio(10, "mg", 1, "L"))),
     (PRED, Strength(Decimal("0.01"), per_ml=True))),
    (with_medication(item(strength=ratio(10, "mg", 2, "mL", code_key="unit"))),
     (PRED, Strength(Decimal(5), per_ml=True))),
    (with_medication(item(strength=ratio(0.01, "g", 2, "{tbl}", code_key="unit"))),
     (PRED, Strength(Decimal(5)))),
    (with_medication(item(strength=ratio(10, "mmHg", 1, "{tbl}"))), (PRED, None)),
    (with_medication(item(strength=ratio(10, None, 1, "{tbl}"))), (PRED, None)),
    (with_medication(item(strength="10 mg")), (PRED, None)),
], ids=["per-tablet", "per-two-tablets", "no-denominator", "zero-denominator",
        "negative-denominator", "no-amount", "grams", "per-ml", "per-litre", "units-as-unit",
        "grams-as-unit", "not-a-mass", "no-unit", "not-a-ratio"])
def test_the_strength_of_a_listed_ingredient(mappings, resource, expected):
    assert read(mappings, resource) == expected


def test_code_wins_over_unit_when_both_are_written(mappings):
    strength = ratio(10, "mg", 2, "mL")
    strength["numerator"]["unit"] = "g"           # a display unit that disagrees: code decides
    strength["denominator"]["unit"] = "tablet"
    resource = with_medication(item(strength=strength))
    assert read(mappings, resource) == (PRED, Strength(Decimal(5), per_ml=True))


def test_the_first_mapped_ingredient_gives_the_strength(mappings):
    unmapped = item("999999", ratio(500, "mg", 1, "{tbl}"))
    resource = with_medication(unmapped, item(strength=ratio(10, "mg", 1, "{tbl}")),
                               item(RX_MMF, ratio(250, "mg", 1, "{tbl}")))
    assert read(mappings, resource) == (("prednisone", "mycophenolate-mofetil"),
                                        Strength(Decimal(10)))


def test_a_mapped_ingredient_without_strength_leaves_it_to_the_next(mappings):
    resource = with_medication(item(), item(RX_MMF, ratio(250, "mg", 1, "{tbl}")))
    assert read(mappings, resource) == (("prednisone", "mycophenolate-mofetil"),
                                        Strength(Decimal(250)))


@pytest.mark.parametrize("junk", ["text", {"strength": ratio(1, "mg")},
                                  {"itemReference": {"reference": "Substance/none"}}],
                         ids=["not-an-object", "no-item", "dangling-reference"])
def test_an_unreadable_ingredient_does_not_hide_the_next(mappings, junk):
    resource = with_medication(junk, item(strength=ratio(10, "mg", 1, "{tbl}")))
    assert read(mappings, resource) == (PRED, Strength(Decimal(10)))


def test_an_ingredient_by_reference_to_a_substance_of_the_record(mappings):
    resource = with_medication({"itemReference": {"reference": "Substance/s1"},
                                "strength": ratio(10, "mg", 1, "{tbl}")})
    assert read(mappings, resource, SUBSTANCE) == (PRED, Strength(Decimal(10)))
    assert read(mappings, resource) == ((), None)   # the Substance is not in the record


def test_an_ingredient_by_reference_to_a_resource_contained_in_the_medication(mappings):
    medication = {"resourceType": "Medication", "id": "med1",
                  "contained": [{**SUBSTANCE, "id": "sub"}],
                  "ingredient": [{"itemReference": {"reference": "#sub"},
                                  "strength": ratio(10, "mg", 1, "{tbl}")}]}
    resource = statement(medicationReference={"reference": "Medication/med1"})
    assert read(mappings, resource, medication) == (PRED, Strength(Decimal(10)))


def test_an_ingredient_referencing_a_resource_without_code(mappings):
    resource = with_medication({"itemReference": {"reference": "Substance/s1"}},
                               item(RX_MMF))
    bare = {"resourceType": "Substance", "id": "s1"}
    assert read(mappings, resource, bare) == (("mycophenolate-mofetil",), None)


def test_the_medication_code_and_the_statement_code_add_their_concepts(mappings):
    resource = with_medication(item(strength=ratio(10, "mg", 1, "{tbl}")),
                               code=cc(RX_HCQ, RXNORM))
    assert read(mappings, resource) == (("prednisone", "hydroxychloroquine"),
                                        Strength(Decimal(10)))


@pytest.mark.parametrize(("code", "expected"), [
    (cc(RX_PREDNISONE_20MG_TAB, RXNORM), (PRED, Strength(Decimal(20)))),
    ({"coding": [{"system": RXNORM, "code": "979092"},
                 {"system": RXNORM, "code": RX_PREDNISONE_20MG_TAB}]},
     (("hydroxychloroquine", "prednisone"), Strength(Decimal(200)))),
    (cc(RX_PREDNISONE, RXNORM), (PRED, None)),
], ids=["product", "first-product-strength", "ingredient-code"])
def test_product_codes(mappings, code, expected):
    assert read(mappings, statement(medicationCodeableConcept=code)) == expected


def test_a_listed_strength_wins_over_a_product_strength(mappings):
    resource = with_medication(item(strength=ratio(5, "mg", 1, "{tbl}")),
                               code=cc(RX_PREDNISONE_20MG_TAB, RXNORM))
    assert read(mappings, resource) == (PRED, Strength(Decimal(5)))


@pytest.mark.parametrize(("text", "expected"), [
    ("Telitacicept 160 mg", ("telitacicept",)),
    ("telitacicept", ("telitacicept",)),
    ("prednisone", ()),                  # a concept with codes is not matched by its name
    ("lupus nephritis", ()),             # a condition's name is not a medication
    ("", ()),
], ids=["name-in-text", "name-alone", "coded-concept-name", "not-a-medication", "empty"])
def test_names_in_free_text(mappings, text, expected):
    resource = statement(medicationCodeableConcept={"text": text})
    assert read(mappings, resource) == (expected, None)


def test_a_name_in_a_display_counts_only_without_a_mapped_code(mappings):
    named = {"coding": [{"system": RXNORM, "code": "999999", "display": "Telitacicept"}]}
    assert read(mappings, statement(medicationCodeableConcept=named)) == (("telitacicept",), None)
    coded = {"coding": [{"system": RXNORM, "code": RX_HCQ, "display": "Telitacicept"}]}
    assert read(mappings, statement(medicationCodeableConcept=coded)) == (
        ("hydroxychloroquine",), None)


def test_a_name_is_found_in_one_text_never_across_the_text_and_a_display(mappings):
    # A site names telitacicept by its brand in two words (Tai'ai).
    brand = dataclasses.replace(mappings.concepts["telitacicept"], names=("tai ai",))
    site = dataclasses.replace(mappings, concepts={**mappings.concepts, "telitacicept": brand})
    unknown = {"system": RXNORM, "code": "999999"}
    whole = {"text": "Tai ai 160 mg", "coding": [{**unknown, "display": "Injection"}]}
    split = {"text": "Tai", "coding": [{**unknown, "display": "Ai 160 mg"}]}
    assert read(site, statement(medicationCodeableConcept=whole)) == (("telitacicept",), None)
    assert read(site, statement(medicationCodeableConcept=split)) == ((), None)
