"""How a Consent is tied to a study: our policy uri, the study key or registry number anywhere,
or a research consent that names no study; a consent for another study does not count."""

import pytest

from tests.support.builders import day, patient

LN, SLE = "pediatric-ln-cart", "refractory-sle-cart"
P = patient("2012-01-01")
RESEARCH = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "research"}]}


def consent(**fields):
    base = {"resourceType": "Consent", "id": fields.pop("cid", "c1"), "status": "active",
            "patient": {"reference": "Patient/p1"}, "dateTime": day(3), "scope": RESEARCH}
    base.update(fields)
    return base


@pytest.mark.parametrize("fields,expected", [
    ({"policy": [{"uri": "urn:trial-eligibility:study:pediatric-ln-cart"}]}, "met"),
    ({"policy": [{"uri": "https://clinicaltrials.gov/study/NCT06904729"}]}, "met"),
    ({"provision": {"data": [{"meaning": "related", "reference": {
        "reference": "ResearchStudy/x", "display": "pediatric-ln-cart"}}]}}, "met"),
    ({}, "met"),  # research consent naming no study
    ({"policy": [{"uri": "urn:trial-eligibility:study:refractory-sle-cart"}]}, "unknown"),
    ({"scope": {"coding": [{"code": "patient-privacy"}]}}, "unknown"),
    ({"status": "proposed"}, "unknown"),
    ({"dateTime": day(-2)}, "unknown"),  # signed after the as-of date
])
def test_consent_linkage(crit, fields, expected):
    r = crit([P, consent(**fields)], LN, "consent")
    assert r.result == expected, r.reason
    if expected == "met":
        assert r.evidence == ("Consent/c1",)


def test_generic_consent_reason_asks_to_check(crit):
    r = crit([P, consent()], LN, "consent")
    assert "check that it covers this study" in r.reason


def test_study_specific_consent_wins_over_generic(crit):
    generic = consent(cid="g", dateTime=day(1))
    withdrawn = consent(cid="w", status="inactive", dateTime=day(2),
                        policy=[{"uri": "urn:trial-eligibility:study:refractory-sle-cart"}])
    r = crit([P, generic, withdrawn], SLE, "consent")
    assert r.result == "unknown"
    assert r.evidence == ("Consent/w",)
