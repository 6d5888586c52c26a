"""The age/sex table of upper limits (CALIPER) when a result has no reference range: why it
gives none, word for word, and a table row converted with the concept's unit aliases."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from service.engine.evaluate import evaluate_patient
from service.engine.model import UlnRow
from tests.engine.test_measurement_rules import lab
from tests.support.builders import ALT, AS_OF, birth_for, patient

NONE = "ALT 50 U/L on 2026-11-14 has no upper limit of normal: no reference range on the result"
CASES = [
    ("no birth date", patient(None, "female"), f"{NONE} and no birth date for the age/sex table."),
    ("a birth month only", patient(birth_for(15)[:7], "female"),
     f"{NONE} and the birth date is too partial for the age/sex table."),
    ("no sex where the rows differ by sex", patient(birth_for(15), None),
     f"{NONE} and the age/sex table needs the sex."),
    ("a sex the table has no rows for", patient(birth_for(15), "other"),
     f"{NONE} and the age/sex table needs the sex."),
    ("no row for the age, no sex", patient(birth_for(30), None),
     f"{NONE} and the age/sex table has no row for age 29 years."),
]


@pytest.mark.parametrize(("person", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_why_the_age_and_sex_table_gives_no_upper_limit(rule_check, person, reason):
    found = rule_check("normal-limit", {"concept": "alt", "limit": "high", "operator": "<="},
                       [person, {**lab(ALT, 50, "U/L"), "id": "r1"}])
    assert (found.result, found.reason, found.evidence) == ("unknown", reason, ("Observation/r1",))


def test_a_concept_without_a_table_says_so(rule_check):
    # neutrophils have a unit but no CALIPER analyte (mappings/concepts.toml)
    found = rule_check("normal-limit", {"concept": "neutrophils", "limit": "high",
                                        "operator": "<="},
                       [patient(birth_for(12)), {**lab("751-8", 5, "10*9/L"), "id": "r1"}])
    assert found.reason == ("Neutrophils 5 10*9/L on 2026-11-14 has no upper limit of normal: "
                            "no reference range on the result and no age/sex table for it.")


def test_a_table_row_in_a_spelling_the_concept_aliases_is_converted(every_study_mappings):
    # A site's table written in "IU/L": the ALT concept's unit_aliases read it as U/L.
    mappings = every_study_mappings
    row = UlnRow("ALT (no P5P)", "IU/L", "MF", 1, 13, "year", Decimal(25))
    site = dataclasses.replace(mappings, uln_rows=(row,))
    evaluation = evaluate_patient([patient(birth_for(12)), {**lab(ALT, 50, "U/L"), "id": "r1"}],
                                  site, AS_OF, ["refractory-sle-cart"], strict=True)
    reasons = [c.reason for s in evaluation.studies for c in s.criteria]
    assert any("(ULN 25 U/L from CALIPER pediatric table (ALT (no P5P), both sexes, age 1 to <13 "
               "years: 25 IU/L))" in r for r in reasons), reasons
