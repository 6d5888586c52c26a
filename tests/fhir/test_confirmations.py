"""What the pages write (pure builders): confirmations, consent, undo, workflow, SLEDAI-2K."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from service.fhir.confirmations import (
    Author,
    ConfirmationError,
    confirmation_observation,
    consent_resource,
    create_with_provenance,
    created_reference,
    entered_in_error,
    sledai_observation,
    workflow_update,
)

WHO = Author(name="casey", display="Casey Chen")
NOW = datetime(2026, 11, 15, 9, 30, tzinfo=UTC)
USER = {"identifier": {"system": "urn:trial-eligibility:user", "value": "casey"},
        "display": "Casey Chen"}


def test_a_per_study_confirmation_names_the_study_in_focus_and_the_user_as_performer():
    obs = confirmation_observation(
        patient_id="p1", criterion_id="contraception", criterion_text="Agrees ...", met=False,
        when=date(2026, 11, 14), author=WHO, note=" spoke to mother ",
        study=("ResearchStudy/s1", "Study one"))
    assert obs["code"]["coding"][0]["system"] == "urn:trial-eligibility:criterion"
    assert obs["code"]["coding"][0]["code"] == "contraception"
    assert obs["valueBoolean"] is False and obs["status"] == "final"
    assert obs["effectiveDateTime"] == "2026-11-14"
    assert obs["focus"] == [{"reference": "ResearchStudy/s1", "display": "Study one"}]
    assert obs["performer"] == [USER] and obs["note"][0]["text"] == "spoke to mother"
    per_patient = confirmation_observation(
        patient_id="p1", criterion_id="ecg", criterion_text="ECG", met=True,
        when=date(2026, 11, 14), author=WHO)
    assert "focus" not in per_patient and "note" not in per_patient


def test_the_transaction_carries_a_provenance_naming_the_user_and_the_target():
    consent = consent_resource(patient_id="p1", study_key="pediatric-ln-cart", signed=True,
                               when=date(2026, 11, 14), author=WHO)
    assert consent["policy"] == [{"uri": "urn:trial-eligibility:study:pediatric-ln-cart"}]
    bundle = create_with_provenance(consent, WHO, NOW)
    created, prov = (e["resource"] for e in bundle["entry"])
    assert bundle["type"] == "transaction" and created["status"] == "active"
    assert prov["target"] == [{"reference": bundle["entry"][0]["fullUrl"]}]
    assert prov["agent"][0]["who"] == USER and prov["recorded"] == "2026-11-15T09:30:00+00:00"
    with pytest.raises(ConfirmationError):
        create_with_provenance(consent, WHO, NOW.replace(tzinfo=None))


def test_undo_and_workflow_update_in_place_with_if_match():
    stored = {"resourceType": "Observation", "id": "o1", "meta": {"versionId": "3"},
              "status": "final"}
    bundle = entered_in_error(stored, WHO, NOW)
    request = bundle["entry"][0]["request"]
    assert request == {"method": "PUT", "url": "Observation/o1", "ifMatch": 'W/"3"'}
    assert bundle["entry"][0]["resource"]["status"] == "entered-in-error"
    assert bundle["entry"][1]["resource"]["activity"]["coding"][0]["code"] == "NULLIFY"
    with pytest.raises(ConfirmationError):
        entered_in_error({**stored, "status": "entered-in-error"}, WHO, NOW)
    subject = {"resourceType": "ResearchSubject", "id": "r1", "status": "eligible"}
    assert workflow_update(subject, "on-study", WHO, NOW)["entry"][0]["resource"]["status"] \
        == "on-study"


def test_a_sledai_score_has_the_total_one_component_per_descriptor_and_derived_from():
    scored = [("rash", "Rash", 2, True), ("fever", "Fever", 1, False),
              ("proteinuria", "Proteinuria", 4, True)]
    obs = sledai_observation(patient_id="p1", when=date(2026, 11, 15), author=WHO,
                             scored=scored, derived_from=["Observation/9", "Observation/9"])
    assert obs["code"]["coding"][0]["code"] == "sledai-2k" and obs["valueInteger"] == 6
    assert [c["valueInteger"] for c in obs["component"]] == [2, 0, 4]
    assert obs["derivedFrom"] == [{"reference": "Observation/9"}]


def test_created_reference_reads_the_location():
    answer = {"entry": [{"response": {"location": "Observation/abc/_history/1"}}]}
    assert created_reference(answer) == "Observation/abc"
    with pytest.raises(ConfirmationError):
        created_reference({"entry": []})
