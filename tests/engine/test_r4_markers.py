"""A resource recognisably STU3 or R5 is refused, saying which element shows it."""

from __future__ import annotations

import pytest

from service.engine.record import RecordError, check_r4

STU3_OR_R5 = [
    ({"resourceType": "Condition", "clinicalStatus": "active"},
     "Condition.clinicalStatus is a plain code (STU3); R4 uses a CodeableConcept"),
    ({"resourceType": "Condition", "verificationStatus": "confirmed"},
     "Condition.verificationStatus is a plain code (STU3); R4 uses a CodeableConcept"),
    ({"resourceType": "AllergyIntolerance", "verificationStatus": "confirmed"},
     "AllergyIntolerance.verificationStatus is a plain code (STU3); R4 uses a CodeableConcept"),
    ({"resourceType": "MedicationStatement", "taken": "y"},
     "MedicationStatement.taken exists only in STU3"),
    ({"resourceType": "MedicationStatement", "medication": {"concept": {}}},
     "MedicationStatement.medication is a CodeableReference (R5)"),
    ({"resourceType": "MedicationRequest", "medication": {"concept": {}}},
     "MedicationRequest.medication is a CodeableReference (R5)"),
    ({"resourceType": "Observation", "context": {}}, "Observation.context exists only in STU3"),
    ({"resourceType": "Procedure", "occurrenceDateTime": "2026-01-01"},
     "Procedure.occurrence[x] exists only in R5"),
    ({"resourceType": "ResearchSubject", "progress": []},
     "ResearchSubject.progress exists only in R5"),
]


@pytest.mark.parametrize(("resource", "why"), STU3_OR_R5,
                         ids=[f"{r['resourceType']}-{sorted(r)[0]}" for r, _ in STU3_OR_R5])
def test_a_resource_of_another_fhir_version_is_refused_saying_why(resource, why):
    with pytest.raises(RecordError) as refused:
        check_r4([{"resourceType": "Patient", "id": "p1"}, {**resource, "id": "x1"}])
    assert str(refused.value) == (f"{resource['resourceType']}/x1 is not FHIR R4 ({why}); "
                                  "this service reads R4 only")


@pytest.mark.parametrize("resource", [
    {"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]}},
    {"resourceType": "MedicationStatement", "medicationCodeableConcept": {}},
    {"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/m"}},
    {"resourceType": "Encounter", "context": {}, "progress": [], "taken": "y"},
    {"resourceType": "Immunization", "occurrenceDateTime": "2026-01-01"},
], ids=["condition", "statement", "request", "other-type", "immunization"])
def test_the_same_elements_in_their_r4_shape_or_on_other_types_are_accepted(resource):
    check_r4([resource])
