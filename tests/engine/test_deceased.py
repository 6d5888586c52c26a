"""The deceased rule (api.md "Who gets a ResearchSubject", criteria.md): a patient who died on
or before the as-of date is ineligible for every study, reason "deceased on <date>"."""

from __future__ import annotations

from datetime import date

import pytest

from service.engine.deceased import deceased_on
from service.engine.evaluate import evaluate_patient
from tests.support.builders import AS_OF, eligible_ln_patient, eligible_sle_patient


@pytest.mark.parametrize(("fields", "as_of", "expected"), [
    ({}, AS_OF, None),
    ({"deceasedBoolean": False}, AS_OF, None),
    ({"deceasedBoolean": True}, AS_OF, "deceased"),
    ({"deceasedBoolean": "true"}, AS_OF, None),                  # not a FHIR boolean
    ({"deceasedDateTime": "2026-11-15"}, AS_OF, "deceased on 2026-11-15"),   # on the day
    ({"deceasedDateTime": "2026-11-14T23:10:00+08:00"}, AS_OF, "deceased on 2026-11-14"),
    ({"deceasedDateTime": "2026-11-16"}, AS_OF, None),          # after the as-of date
    ({"deceasedDateTime": "2026-11-16"}, date(2026, 11, 16), "deceased on 2026-11-16"),
    ({"deceasedDateTime": "2026-11"}, AS_OF, "deceased on 2026-11"),  # month: from its 1st
    ({"deceasedDateTime": "2026"}, AS_OF, "deceased on 2026"),
    ({"deceasedDateTime": "2027"}, AS_OF, None),
    ({"deceasedDateTime": "yesterday"}, AS_OF, "deceased (the date of death cannot be read)"),
    # Written at the precision it was recorded, whatever text follows the date.
    ({"deceasedDateTime": "2026 (approximately)"}, AS_OF, "deceased on 2026"),
    ({"deceasedDateTime": " 2026-03 approx"}, AS_OF, "deceased on 2026-03"),
    ({"deceasedDateTime": "2026-03-14T08:00:00Z"}, AS_OF, "deceased on 2026-03-14"),
])
def test_when_the_record_says_the_patient_died(fields, as_of, expected):
    assert deceased_on({"resourceType": "Patient", "id": "p1", **fields}, as_of) == expected


@pytest.mark.parametrize(("fields", "reason"), [
    ({"deceasedDateTime": "2026-10-01"}, "Excluded: deceased on 2026-10-01."),
    ({"deceasedBoolean": True}, "Excluded: deceased."),
])
@pytest.mark.parametrize("record", [eligible_sle_patient, eligible_ln_patient])
def test_an_eligible_patient_who_died_is_ineligible_for_every_study(mappings, record, fields,
                                                                      reason):
    resources = record()
    resources[0] = {**resources[0], **fields}
    assert resources[0]["resourceType"] == "Patient"
    evaluation = evaluate_patient(resources, mappings, AS_OF, strict=True)
    assert evaluation.deceased
    for study in evaluation.studies:
        assert study.status == "ineligible"
        first = study.criteria[0]
        assert (first.id, first.result, first.reason, first.type, first.kind) == (
            "deceased", "not-met", reason, "exclusion", "automatic")
        assert first.evidence == (f"Patient/{resources[0]['id']}",)


def test_a_living_patient_has_no_deceased_result(mappings):
    evaluation = evaluate_patient(eligible_ln_patient(), mappings, AS_OF, strict=True)
    assert not evaluation.deceased
    assert all(c.id != "deceased" for s in evaluation.studies for c in s.criteria)
    assert any(s.status == "eligible" for s in evaluation.studies)
