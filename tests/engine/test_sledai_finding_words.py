"""The words of a SLEDAI-2K lab finding, exactly: the value as read (a range, a comparator, a
number written as text), converted into the unit of the limit and written as reasons write it,
the side of the result's own range, a laboratory's flag; which result's words a finding takes
(the newest), how many results showed nothing, and which results never show a finding (an
implausible value, a qualified value that cannot decide, a coded negative whatever its flag)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from service.engine import sledai_labs
from service.engine.record import build_record
from service.engine.sledai_labs import Finding, LabTest
from service.mappings import Mappings
from tests.engine.test_sledai import C3, DSDNA, PLT, TEMP, URBC, flagged
from tests.support.builders import (
    AS_OF,
    PID,
    SNOMED,
    UPCR,
    cc,
    day,
    obs,
    patient,
)

YESTERDAY = day(1)  # the builders' default date of a result


def lab_findings(mappings: Mappings, *resources: dict[str, Any]) -> dict[str, Finding]:
    return sledai_labs.lab_findings(build_record([patient(), *resources], mappings, PID), AS_OF)


def found(key: str, words: str, *refs: str, on: str = YESTERDAY) -> Finding:
    return Finding(key, True, f"{words} on {on}", refs)


def value_range(oid: str, code: str, low: float, high: float, unit: str) -> dict[str, Any]:
    made = obs(code, oid=oid)
    made["valueRange"] = {"low": {"value": low, "unit": unit, "code": unit},
                          "high": {"value": high, "unit": unit, "code": unit}}
    return made


def bounded(resource: dict[str, Any], side: str, value: float, unit: str | None = None
            ) -> dict[str, Any]:
    bound: dict[str, Any] = {"value": value}
    if unit:
        bound["unit"] = unit
    resource["referenceRange"] = [{side: bound}]
    return resource


def no_value(oid: str, code: str) -> dict[str, Any]:
    return obs(code, oid=oid)  # no value[x] at all


def c3_text(text: str) -> dict[str, Any]:
    return obs(C3, value_string=text, oid="c3")


# (id, resources, descriptor, the finding's words or None when it is not present)
WORDS = [
    # fixed limits: the value converted into the limit's unit, written as reasons write it
    ("a value in the limit's unit", [obs(TEMP, 38.5, "Cel", oid="t")], "fever",
     "body temperature 38.5 °C"),
    ("a value converted, in the limit's unit", [obs(TEMP, 102.2, "[degF]", oid="t")], "fever",
     "body temperature 39 °C"),
    ("a comparator kept", [obs(TEMP, 38, "Cel", comparator=">", oid="t")], "fever",
     "body temperature >38 °C"),
    ("a comparator decides: '>38' is above 38, 38 is not", [obs(TEMP, 38, "Cel", oid="t")],
     "fever", None),
    ("a range whose both ends are above", [value_range("t", TEMP, 38.5, 39, "Cel")], "fever",
     "body temperature 38.5-39 °C"),
    ("a range across the limit cannot decide", [value_range("t", TEMP, 37.5, 39, "Cel")],
     "fever", None),
    # the concept's plausible range (mappings/concepts.toml: 25-45 Cel, 0-3000 x 10^9/L)
    ("the plausible top itself is plausible", [obs(TEMP, 45, "Cel", oid="t")], "fever",
     "body temperature 45 °C"),
    ("above the plausible top: a typing slip", [obs(TEMP, 46, "Cel", oid="t")], "fever", None),
    ("a range reaching past the plausible top", [value_range("t", TEMP, 38.5, 60, "Cel")],
     "fever", None),
    ("the plausible bottom itself is plausible", [obs(PLT, 0, "10*9/L", oid="p")],
     "thrombocytopenia", "platelets 0 x 10^9/L"),
    ("a qualified value is never implausible", [obs(TEMP, 46, "Cel", comparator=">", oid="t")],
     "fever", "body temperature >46 °C"),
    # a spot ratio in mg/mmol is g/g through creatinine's molar mass (113.0966 g/mol):
    # 100 mg/mmol = 100 / 113.0966 g/g
    ("a ratio converted with the concept's molar mass", [obs(UPCR, 100, "mg/mmol", oid="u")],
     "proteinuria", "urine protein/creatinine ratio 0.884 g/g"),
    ("both ends of a range converted with it", [value_range("u", UPCR, 100, 120, "mg/mmol")],
     "proteinuria", "urine protein/creatinine ratio 0.884-1.061 g/g"),
    ("a unit nothing converts", [obs(URBC, 50, "mg", oid="r")], "hematuria", None),
    ("a value without a unit against a fixed limit", [obs(URBC, 50, None, oid="r")],
     "hematuria", None),
    ("a flag never stands for a value against a fixed limit",
     [flagged(no_value("r", URBC), "H")], "hematuria", None),
    # the result's own range: the side and the value as written
    ("the upper side", [bounded(obs(DSDNA, 300, "[IU]/mL", oid="d"), "high", 200)],
     "increased-dna-binding", "anti-dsDNA 300 [IU]/mL (upper limit 200)"),
    ("a range below the lower bound", [bounded(value_range("c3", C3, 60, 80, "mg/dL"), "low", 90)],
     "low-complement", "C3 60-80 mg/dL (lower limit 90)"),
    ("a range across the lower bound",
     [bounded(value_range("c3", C3, 80, 100, "mg/dL"), "low", 90)], "low-complement", None),
    ("'>80' may be above the lower bound 90",
     [bounded(obs(C3, 80, "mg/dL", comparator=">", oid="c3"), "low", 90)], "low-complement",
     None),
    ("'<80' is below the lower bound 90",
     [bounded(obs(C3, 80, "mg/dL", comparator="<", oid="c3"), "low", 90)], "low-complement",
     "C3 <80 mg/dL (lower limit 90)"),
    ("a number as text takes the unit of its range",
     [bounded(c3_text("0.8"), "low", 0.9, "g/L")], "low-complement",
     "C3 0.8 g/L (lower limit 0.9)"),
    ("a number as text, its range without a unit: the usual unit",
     [bounded(c3_text("80"), "low", 90)], "low-complement", "C3 80 mg/dL (lower limit 90)"),
    # no range: the laboratory's flag, or nothing
    ("a flag without a range, no unit", [flagged(obs(C3, 80, None, oid="c3"), "L")],
     "low-complement", "C3 80 flagged by the laboratory"),
    ("no flag and no range", [obs(C3, 80, "mg/dL", oid="c3")], "low-complement", None),
    ("no value, flagged low", [flagged(no_value("c3", C3), "L")], "low-complement",
     "C3 flagged low"),
    ("no value, flagged high", [flagged(no_value("d", DSDNA), "H")], "increased-dna-binding",
     "anti-dsDNA flagged high"),
    ("no value, flagged the other way", [flagged(no_value("c3", C3), "H")], "low-complement",
     None),
    # C3 and C4 are not read for a coded answer: its flag decides, not the words of the code
    ("a coded answer without a number, flagged low",
     [flagged(obs(C3, value_concept=cc("260385009"), oid="c3"), "L")], "low-complement",
     "C3 flagged low"),
    ("a coded positive without a number or a flag",
     [obs(C3, value_concept=cc("10828004"), oid="c3")], "low-complement", None),
    ("a coded positive", [obs(DSDNA, value_concept=cc("10828004"), oid="d")],
     "increased-dna-binding", "anti-dsDNA positive"),
    ("a coded negative whatever its flag",
     [flagged(obs(DSDNA, value_concept=cc("260385009"), oid="d"), "H")],
     "increased-dna-binding", None),
]


@pytest.mark.parametrize(("resources", "key", "words"), [w[1:] for w in WORDS],
                         ids=[w[0] for w in WORDS])
def test_a_findings_words(mappings, resources, key, words):
    finding = lab_findings(mappings, *resources)[key]
    if words is None:
        assert finding == Finding(key, False, "not shown by 1 result(s) in the window")
    else:
        assert finding == found(key, words, f"Observation/{resources[0]['id']}")


def test_the_newest_result_words_the_finding_and_every_one_is_evidence(mappings):
    # ids in the opposite order of the days, so that neither the id nor the words decide
    older = obs(TEMP, 39.5, "Cel", day(3), oid="z-older")
    newer = obs(TEMP, 38.5, "Cel", day(2), oid="a-newer")
    for order in ([older, newer], [newer, older]):
        assert lab_findings(mappings, *order)["fever"] == found(
            "fever", "body temperature 38.5 °C", "Observation/a-newer", "Observation/z-older",
            on=day(2))


def test_results_that_show_nothing_are_counted(mappings):
    normal = [obs(TEMP, 37, "Cel", day(n), oid=f"t{n}") for n in (1, 2, 3)]
    assert lab_findings(mappings, *normal)["fever"] == Finding(
        "fever", False, "not shown by 3 result(s) in the window")
    assert lab_findings(mappings)["fever"] == Finding("fever", False, "no result in the window")


def _site(mappings: Mappings, **concepts: Any) -> Mappings:
    return dataclasses.replace(mappings, concepts={**mappings.concepts, **concepts})


def findings(mappings: Mappings, tests: dict[str, tuple[LabTest, ...]], *resources: Any,
             window_days: int = 30) -> dict[str, Finding]:
    record = build_record([patient(), *resources], mappings, PID)
    return sledai_labs.findings_of(record, tests, AS_OF, window_days)


def test_with_no_window_the_words_say_on_record_not_in_the_window(mappings):
    tests = {"fever": (LabTest("body-temperature", ">", Decimal(38), ("Cel",)),)}
    normal = obs(TEMP, 37, "Cel", day(400), oid="t")
    assert findings(mappings, tests, normal, window_days=0)["fever"] == Finding(
        "fever", False, "not shown by 1 result(s)")
    assert findings(mappings, tests, window_days=0)["fever"] == Finding(
        "fever", False, "no result on record")


def test_an_item_reads_past_a_concept_the_site_does_not_map(mappings):
    tests = {"fever": (LabTest("not-mapped", ">", Decimal(1), ("Cel",)),
                       LabTest("body-temperature", ">", Decimal(38), ("Cel",)))}
    fever = obs(TEMP, 39, "Cel", oid="t")
    assert findings(mappings, tests, fever)["fever"] == found(
        "fever", "body temperature 39 °C", "Observation/t")


def test_one_result_shown_by_two_tests_is_worded_by_the_first(mappings):
    # Same day, same result: the order of the item's tests decides, not the words (the second
    # test's words, "C3 80 mg/dL (lower limit 90)", sort after the first's).
    tests = {"low-c3": (LabTest("c3", "<", Decimal(100), ("mg/dL",)), LabTest("c3", "<", None))}
    low = bounded(obs(C3, 80, "mg/dL", oid="c3"), "low", 90, "mg/dL")
    assert findings(mappings, tests, low)["low-c3"] == found("low-c3", "C3 80 mg/dL",
                                                             "Observation/c3")


def test_a_limit_in_a_unit_without_its_own_wording_is_written_as_its_code(mappings):
    tests = {"low-c3": (LabTest("c3", "<", Decimal(1), ("g/L",)),)}
    low = obs(C3, 80, "mg/dL", oid="c3")
    assert findings(mappings, tests, low)["low-c3"] == found("low-c3", "C3 0.8 g/L",
                                                             "Observation/c3")


def test_a_coded_answer_the_concept_gives_a_number_is_read_as_that_number(mappings):
    # A site mapping answers for C3 (concepts.toml `answers`): the number has no unit, so it
    # is compared with a bound without one.
    site = _site(mappings, c3=dataclasses.replace(
        mappings.concepts["c3"], answers={f"{SNOMED}|62482003": Decimal(80)}))
    coded = bounded(obs(C3, value_concept=cc("62482003"), oid="c3"), "low", 90)
    record = build_record([patient(), coded], site, PID)
    assert sledai_labs.lab_findings(record, AS_OF)["low-complement"] == found(
        "low-complement", "C3 80 (lower limit 90)", "Observation/c3")
