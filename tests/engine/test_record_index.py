"""How the record dates, orders and resolves what it indexes: an Observation's effective[x],
results of one day by the time written (not by arrival or id), references as servers write them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from service.engine.model import normalise_token
from service.engine.record import RecordError, build_record, parse_date, ref_key, status_of
from tests.support.builders import (
    ALT,
    LOINC,
    SCT_KIDNEY_BIOPSY,
    SCT_SLE,
    SNOMED,
    cc,
    diagnostic_report,
    patient,
)

CVX = "http://hl7.org/fhir/sid/cvx"
# (resource type, code element, coding, date element)
SHAPES = [
    ("Observation", "code", (ALT, LOINC), "effectiveDateTime"),
    ("Observation", "code", (ALT, LOINC), "effectiveInstant"),
    ("Observation", "code", (ALT, LOINC), "issued"),
    ("Condition", "code", (SCT_SLE, SNOMED), "onsetDateTime"),
    ("Condition", "code", (SCT_SLE, SNOMED), "recordedDate"),
    ("Procedure", "code", (SCT_KIDNEY_BIOPSY, SNOMED), "performedDateTime"),
    ("Immunization", "vaccineCode", ("03", CVX), "occurrenceDateTime"),
]


def made(rtype: str, code_key: str, coding: tuple[str, str], rid: str, **fields: Any
         ) -> dict[str, Any]:
    subject = "patient" if rtype == "Immunization" else "subject"
    return {"resourceType": rtype, "id": rid, "status": "final" if rtype == "Observation"
            else "completed", subject: {"reference": "Patient/p1"},
            code_key: cc(*coding), **fields}


def concept_of(mappings: Any, coding: tuple[str, str]) -> str:
    return mappings.concepts_for(coding[1], coding[0])[0]


@pytest.mark.parametrize(("rtype", "code_key", "coding", "element"), SHAPES,
                         ids=[f"{s[0]}-{s[3]}" for s in SHAPES])
def test_results_of_one_day_are_newest_first_by_the_time_written(every_study_mappings, rtype,
                                                                 code_key, coding, element):
    # id "a" sorts before "b", and arrives last: only the time written puts it first.
    morning = made(rtype, code_key, coding, "b", **{element: "2026-11-10T08:00:00Z"})
    evening = made(rtype, code_key, coding, "a", **{element: "2026-11-10T20:00:00Z"})
    record = build_record([patient(), morning, evening], every_study_mappings, "p1")
    entries = record.entries(concept_of(every_study_mappings, coding))
    assert [e.resource["id"] for e in entries] == ["a", "b"]
    assert all(e.when is not None and e.when.day == date(2026, 11, 10) for e in entries)


def test_results_of_one_day_dated_by_periods_are_newest_first_by_their_start(
        every_study_mappings):
    morning = made("Observation", "code", (ALT, LOINC), "b",
                   effectivePeriod={"start": "2026-11-10T08:00:00Z"})
    evening = made("Observation", "code", (ALT, LOINC), "a",
                   effectivePeriod={"start": "2026-11-10T20:00:00Z"})
    record = build_record([patient(), morning, evening], every_study_mappings, "p1")
    assert [e.resource["id"] for e in record.entries("alt")] == ["a", "b"]


def test_a_result_coded_twice_for_one_concept_is_indexed_once(every_study_mappings):
    twice = made("Observation", "code", (ALT, LOINC), "o1", effectiveDateTime="2026-11-10")
    twice["code"]["coding"].append(dict(twice["code"]["coding"][0]))
    [entry] = build_record([patient(), twice], every_study_mappings, "p1").entries("alt")
    assert entry.concepts == ("alt",)


def test_an_undated_result_takes_the_date_of_the_report_that_lists_it(every_study_mappings):
    undated = made("Observation", "code", (ALT, LOINC), "o1")
    report = diagnostic_report("24325-3", "2026-11-02", results=["Observation/o1"])
    [entry] = build_record([patient(), undated, report], every_study_mappings,
                           "p1").entries("alt")
    assert entry.when is not None and entry.when.day == date(2026, 11, 2)


def test_a_result_dated_by_its_report_is_ordered_by_that_date(every_study_mappings):
    older = made("Observation", "code", (ALT, LOINC), "a", effectiveDateTime="2026-11-01")
    undated = made("Observation", "code", (ALT, LOINC), "b")
    report = diagnostic_report("24325-3", "2026-11-05", results=["Observation/b"])
    record = build_record([patient(), older, undated, report], every_study_mappings, "p1")
    assert [e.resource["id"] for e in record.entries("alt")] == ["b", "a"]


def test_a_report_entered_in_error_dates_nothing(every_study_mappings):
    undated = made("Observation", "code", (ALT, LOINC), "o1")
    wrong = diagnostic_report("24325-3", "2026-10-01", results=["Observation/o1"],
                              status="entered-in-error", rid="r1")
    right = diagnostic_report("24325-3", "2026-11-02", results=["Observation/o1"], rid="r2")
    [entry] = build_record([patient(), undated, wrong, right], every_study_mappings,
                           "p1").entries("alt")
    assert entry.when is not None and entry.when.day == date(2026, 11, 2)


@pytest.mark.parametrize(("patient_id", "message"), [
    (None, "no Patient in the record"), ("p9", "no Patient/p9 in the record"),
])
def test_a_record_without_its_patient_is_refused_in_these_words(every_study_mappings,
                                                                patient_id, message):
    with pytest.raises(RecordError) as refused:
        build_record([made("Observation", "code", (ALT, LOINC), "o1")], every_study_mappings,
                     patient_id)
    assert str(refused.value) == message


def test_a_result_whose_subject_is_the_patients_absolute_url_is_the_patients(every_study_mappings):
    result = made("Observation", "code", (ALT, LOINC), "o1", effectiveDateTime="2026-11-10")
    result["subject"] = {"reference": "https://hospital.example/fhir/Patient/p1"}
    record = build_record([patient(), result], every_study_mappings, "p1")
    assert [e.resource["id"] for e in record.entries("alt")] == ["o1"]


def test_a_patient_without_a_readable_id_claims_no_result(every_study_mappings):
    result = made("Observation", "code", (ALT, LOINC), "o1", effectiveDateTime="2026-11-10")
    result["subject"] = {"reference": "Patient/5"}
    record = build_record([{"resourceType": "Patient", "id": 5}, result], every_study_mappings)
    assert record.patient_id == "" and record.entries("alt") == []


def test_the_small_readers_of_a_resource():
    year = parse_date("2014")
    assert year is not None and (year.day, year.precision) == (date(2014, 1, 1), "year")
    assert status_of({"status": 5}) is None and status_of({"status": "final"}) == "final"
    assert ref_key({"resourceType": "Observation", "id": 5}) == "Observation/?"
    # a coding needs both a system and a code to be looked up
    assert normalise_token("", "1742-6") is None and normalise_token("http://loinc.org", "") is None


def test_a_result_with_a_time_comes_before_one_with_none_on_the_same_day(every_study_mappings):
    timed = made("Observation", "code", (ALT, LOINC), "a", effectiveDateTime="2026-11-10T08:00Z")
    untimed = made("Observation", "code", (ALT, LOINC), "b",
                   effectivePeriod={"end": "2026-11-10"})
    record = build_record([patient(), untimed, timed], every_study_mappings, "p1")
    assert [e.resource["id"] for e in record.entries("alt")] == ["a", "b"]


@pytest.mark.parametrize(("fields", "day"), [
    ({"effectiveInstant": "2026-11-09T10:00:00Z"}, date(2026, 11, 9)),
    ({"effectivePeriod": {"start": "2026-11-01", "end": "2026-11-03"}}, date(2026, 11, 1)),
    ({"effectivePeriod": {"end": "2026-11-03"}}, date(2026, 11, 3)),
    ({"effectivePeriod": {"start": "2026-11-01"}, "issued": "2026-11-05T00:00:00Z"},
     date(2026, 11, 1)),
], ids=["instant", "period by its start", "period by its end", "period before issued"])
def test_an_observation_is_dated_by_its_effective_time(every_study_mappings, fields, day):
    result = made("Observation", "code", (ALT, LOINC), "o1", **fields)
    [entry] = build_record([patient(), result], every_study_mappings, "p1").entries("alt")
    assert entry.when is not None and entry.when.day == day


MED = {"resourceType": "Medication", "id": "m1", "code": {"text": "one"}}
OTHER = {"resourceType": "Medication", "id": "m2X", "code": {"text": "two"}}


@pytest.mark.parametrize(("reference", "found"), [
    ("Medication/m1", "m1"),
    ("http://hospital.example/fhir/Medication/m1", "m1"),
    ("http://hospital.example/fhir/Medication/m1/", "m1"),
    ("http://hospital.example/fhir/Medication/m2X", "m2X"),
    ("http://hospital.example/fhir/Medication/m3", None),
    ("m1", None),
    ("#c2", "c2"),
    ("#c3", None),
], ids=["relative", "absolute", "absolute with a slash", "absolute id ending in X",
        "absolute unknown", "bare id",
        "contained", "contained unknown"])
def test_a_reference_resolves_as_servers_write_it(every_study_mappings, reference, found):
    record = build_record([patient(), MED, OTHER], every_study_mappings, "p1")
    container = {"contained": [{"resourceType": "Medication", "id": "c1"},
                               {"resourceType": "Medication", "id": "c2"}]}
    resolved = record.resolve(reference, container)
    assert (resolved or {}).get("id") == found
