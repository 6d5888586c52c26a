"""ResearchSubject building (pure): representation, change detection, transaction, answers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import unquote

import pytest

from service.engine.results import CriterionResult, StudyResult, Value
from service.fhir import research_subject as rs
from tests.support.fhir_testkit import hapi

AS_OF = date(2026, 11, 15)
WHEN = datetime(2026, 11, 15, 8, 30, tzinfo=UTC)


def _study(*criteria: CriterionResult, key: str = "pediatric-ln-cart") -> StudyResult:
    return StudyResult(study=key, title="CAR-T in children with lupus nephritis", criteria=criteria)


HB_LOW = CriterionResult(
    id="hemoglobin",
    result="not-met",
    reason="Haemoglobin 59 g/L on 2026-11-01 is below 60 g/L",
    value=Value(Decimal("59"), "g/L"),
    evidence=("Observation/9",),
)
ALT_OK = CriterionResult(
    id="alt",
    result="met",
    reason="ALT 40 U/L is <= 3.0 x ULN (ULN 25 U/L from the observation's reference range)",
    value=Value(Decimal("40.5"), "U/L"),
    evidence=("Observation/11", "Observation/12"),
    uln=Value(Decimal("25"), "U/L"),
    uln_source="observation",
)
CONSENT_UNKNOWN = CriterionResult(
    id="consent", result="unknown", kind="manual", reason="No active Consent for this study"
)


def _build(study: StudyResult, **kw) -> dict:
    args = {
        "patient_id": "pt-1",
        "as_of": AS_OF,
        "research_study": "ResearchStudy/st-1",
        "evaluated_at": WHEN,
    }
    args.update(kw)
    return rs.build_research_subject(study, **args)


def _criteria(resource: dict) -> dict[str, dict[str, list]]:
    """criterion id -> sub-extension name -> values, read back the way an EHR would."""
    out = {}
    for ext in resource["extension"]:
        if ext["url"] != rs.CRITERION_EXTENSION:
            continue
        parts: dict[str, list] = {}
        for part in ext["extension"]:
            value = next(v for k, v in part.items() if k.startswith("value"))
            parts.setdefault(part["url"], []).append(value)
        out[parts["id"][0]] = parts
    return out


def test_core_fields_follow_the_api_contract():
    resource = _build(_study(HB_LOW, ALT_OK))
    assert resource["resourceType"] == "ResearchSubject"
    assert resource["identifier"] == [
        {"system": "urn:trial-eligibility:research-subject", "value": "pediatric-ln-cart/pt-1"}
    ]
    assert resource["status"] == "ineligible"
    assert resource["study"]["reference"] == "ResearchStudy/st-1"
    assert resource["individual"] == {"reference": "Patient/pt-1"}
    assert "id" not in resource and "meta" not in resource
    rs.validate_research_subject(resource)
    json.dumps(resource)  # plain JSON


@pytest.mark.parametrize(
    ("criteria", "status"),
    [
        ((ALT_OK,), "eligible"),
        ((ALT_OK, CONSENT_UNKNOWN), "potential-candidate"),
        ((ALT_OK, CONSENT_UNKNOWN, HB_LOW), "ineligible"),
    ],
)
def test_status_is_the_studys_overall_status(criteria, status):
    assert _build(_study(*criteria))["status"] == status


def test_every_criterion_is_readable_from_the_resource_alone():
    resource = _build(_study(HB_LOW, ALT_OK, CONSENT_UNKNOWN))
    crit = _criteria(resource)
    assert list(crit) == ["hemoglobin", "alt", "consent"]  # study order
    assert crit["hemoglobin"]["result"] == ["not-met"]
    assert crit["hemoglobin"]["reason"] == [HB_LOW.reason]
    assert crit["hemoglobin"]["value"] == [{"value": 59, "unit": "g/L"}]
    assert crit["hemoglobin"]["evidence"] == [{"reference": "Observation/9"}]
    assert crit["alt"]["evidence"] == [
        {"reference": "Observation/11"},
        {"reference": "Observation/12"},
    ]
    assert crit["alt"]["value"] == [{"value": 40.5, "unit": "U/L"}]
    assert crit["alt"]["uln"] == [{"value": 25, "unit": "U/L"}]
    assert crit["alt"]["ulnSource"] == ["observation"]
    assert crit["consent"]["kind"] == ["manual"] and "evidence" not in crit["consent"]
    screening = next(e for e in resource["extension"] if e["url"] == rs.SCREENING_EXTENSION)
    assert {
        p["url"]: next(iter(v for k, v in p.items() if k != "url")) for p in screening["extension"]
    } == {
        "status": "ineligible",
        "asOf": "2026-11-15",
        "evaluated": "2026-11-15T08:30:00+00:00",
    }


def test_each_criterion_says_whether_it_is_an_inclusion_or_an_exclusion():
    hiv = CriterionResult(id="hiv", result="not-met", reason="Excluded: HIV infection recorded",
                          evidence=("Condition/3",), type="exclusion")
    resource = _build(_study(HB_LOW, hiv))
    crit = _criteria(resource)
    assert crit["hemoglobin"]["type"] == ["inclusion"]
    assert crit["hiv"]["type"] == ["exclusion"]
    # not-met: the exclusion applies (docs/writing-a-study.md, "Exclusions")
    assert crit["hiv"]["result"] == ["not-met"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Value(7), {"valueInteger": 7}),
        (Value(Decimal("1.25"), "10*9/L"), {"valueQuantity": {"value": 1.25, "unit": "10*9/L"}}),
        (Value("1:160"), {"valueString": "1:160"}),
        (Value("class IV", None), {"valueString": "class IV"}),
        (Value(12, "{score}"), {"valueQuantity": {"value": 12, "unit": "{score}"}}),
    ],
)
def test_value_types(value, expected):
    crit = CriterionResult(id="x", result="met", reason="r", value=value)
    part = next(p for p in rs.criterion_extension(crit)["extension"] if p["url"] == "value")
    assert {k: v for k, v in part.items() if k != "url"} == expected
    rs.validate_research_subject(_build(_study(crit)))


def test_narrative_escapes_reasons():
    crit = CriterionResult(id="x", result="not-met", reason="value <5 & falling </div><script>")
    resource = _build(_study(crit))
    div = resource["text"]["div"]
    assert "<script>" not in div and "&lt;5 &amp; falling" in div
    rs.validate_research_subject(resource)


def test_a_rescreen_with_the_same_result_is_unchanged_even_later_and_as_of_another_day():
    first = _build(_study(HB_LOW, ALT_OK))
    stored = {
        **first,
        "id": "77",
        "meta": {"versionId": "1", "lastUpdated": "2026-11-15T08:30:01Z"},
    }
    again = _build(
        _study(HB_LOW, ALT_OK),
        evaluated_at=WHEN + timedelta(days=2),
        as_of=AS_OF + timedelta(days=2),
        existing=stored,  # the screening always builds on the stored one (its history kept)
    )
    assert rs.unchanged(again, stored)


def test_any_change_of_status_result_reason_value_or_evidence_is_a_change():
    stored = {**_build(_study(HB_LOW, ALT_OK)), "id": "77"}
    variants = [
        _study(ALT_OK),
        _study(HB_LOW, CriterionResult(**{**ALT_OK.__dict__, "result": "unknown"})),
        _study(HB_LOW, CriterionResult(**{**ALT_OK.__dict__, "reason": "other words"})),
        _study(
            HB_LOW, CriterionResult(**{**ALT_OK.__dict__, "value": Value(Decimal("41"), "U/L")})
        ),
        _study(HB_LOW, CriterionResult(**{**ALT_OK.__dict__, "evidence": ("Observation/13",)})),
    ]
    for study in variants:
        assert not rs.unchanged(_build(study), stored)
    assert not rs.unchanged(_build(_study(HB_LOW, ALT_OK)), None)
    assert not rs.unchanged(
        _build(_study(HB_LOW, ALT_OK), research_study="ResearchStudy/other"), stored
    )


def test_fields_others_added_are_kept_and_ours_replaced():
    stored = {
        **_build(_study(HB_LOW)),
        "id": "77",
        "meta": {"versionId": "4"},
        "period": {"start": "2026-12-01"},
        "assignedArm": "cohort-1",
        "identifier": [
            {"system": rs.RESEARCH_SUBJECT_SYSTEM, "value": "pediatric-ln-cart/pt-1"},
            {"system": "urn:site:enrolment", "value": "E-17"},
        ],
    }
    stored["extension"] = [
        {"url": "urn:site:note", "valueString": "called family"},
        *stored["extension"],
    ]
    resource = _build(_study(ALT_OK), existing=stored)
    assert resource["period"] == {"start": "2026-12-01"} and resource["assignedArm"] == "cohort-1"
    assert {"system": "urn:site:enrolment", "value": "E-17"} in resource["identifier"]
    assert sum(i["system"] == rs.RESEARCH_SUBJECT_SYSTEM for i in resource["identifier"]) == 1
    assert {"url": "urn:site:note", "valueString": "called family"} in resource["extension"]
    assert list(_criteria(resource)) == ["alt"]
    assert "id" not in resource and "meta" not in resource
    assert resource["status"] == "eligible"
    assert stored["status"] == "ineligible"  # the stored copy is not mutated


def test_validation_rejects_what_fhir_would():
    good = _build(_study(ALT_OK))
    with pytest.raises(rs.WriteBackError):
        rs.validate_research_subject({**good, "status": "maybe"})
    with pytest.raises(rs.WriteBackError):
        rs.validate_research_subject({k: v for k, v in good.items() if k != "individual"})
    with pytest.raises(rs.WriteBackError):
        rs.build_research_subject(
            _study(ALT_OK),
            patient_id="p",
            as_of=AS_OF,
            research_study="Patient/1",
            evaluated_at=WHEN,
        )
    with pytest.raises(rs.WriteBackError):
        rs.build_research_subject(
            _study(ALT_OK),
            patient_id="p",
            as_of=AS_OF,
            research_study="ResearchStudy/1",
            evaluated_at=WHEN.replace(tzinfo=None),
        )


def test_write_transaction_is_conditional_updates_by_identifier():
    a = _build(_study(ALT_OK, key="pediatric-ln-cart"))
    b = _build(_study(HB_LOW, key="refractory-sle-cart"))
    bundle = rs.write_transaction(
        [("pediatric-ln-cart", "pt-1", a), ("refractory-sle-cart", "pt-1", b)]
    )
    assert bundle["type"] == "transaction"
    requests_ = [e["request"] for e in bundle["entry"]]
    assert [r["method"] for r in requests_] == ["PUT", "PUT"]
    assert [unquote(r["url"]) for r in requests_] == [
        "ResearchSubject?identifier=urn:trial-eligibility:research-subject|pediatric-ln-cart/pt-1",
        "ResearchSubject?identifier=urn:trial-eligibility:research-subject|refractory-sle-cart/pt-1",
    ]
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert all(u.startswith("urn:uuid:") for u in full_urls) and len(set(full_urls)) == 2
    assert full_urls == [
        e["fullUrl"]
        for e in rs.write_transaction(
            [("pediatric-ln-cart", "pt-1", a), ("refractory-sle-cart", "pt-1", b)]
        )["entry"]
    ]
    assert all("id" not in e["resource"] for e in bundle["entry"])
    with pytest.raises(rs.WriteBackError):
        rs.write_transaction([])


def test_hapi_transaction_response_gives_references_and_created_flags():
    written = rs.parse_write_response(hapi("transaction-response-research-subjects.json"), 2)
    assert [(w.reference, w.created, w.version) for w in written] == [
        ("ResearchSubject/1201", True, "1"),
        ("ResearchSubject/1187", False, "3"),
    ]


def test_absolute_locations_and_bad_answers():
    answer = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {
                "response": {
                    "status": "200",
                    "location": "http://x.test/fhir/ResearchSubject/5/_history/2",
                }
            }
        ],
    }
    assert rs.parse_write_response(answer, 1)[0].reference == "ResearchSubject/5"
    with pytest.raises(rs.WriteBackError):
        rs.parse_write_response(answer, 2)
    with pytest.raises(rs.WriteBackError):
        rs.parse_write_response({**answer, "type": "batch-response"}, 1)
    failed = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": "412 Precondition Failed"}}],
    }
    with pytest.raises(rs.WriteBackError):
        rs.parse_write_response(failed, 1)


def test_research_study_for_a_study_without_seed():
    study = rs.research_study_resource("k", "Title", "NCT00000001")
    assert study["identifier"] == [
        {"system": "urn:trial-eligibility:study", "value": "k"},
        {"system": "https://clinicaltrials.gov", "value": "NCT00000001"},
    ]
    assert study["status"] == "active"


def _screening_parts(resource: dict) -> dict:
    (ext,) = [x for x in resource["extension"] if x["url"] == rs.SCREENING_EXTENSION]
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value"))
        for p in ext["extension"]
    }


def test_the_computed_status_is_always_in_the_screening_extension():
    resource = _build(_study(HB_LOW, ALT_OK))
    assert _screening_parts(resource)["status"] == "ineligible"
    assert resource["status"] == "ineligible"  # no workflow status yet: status is the computed one
    assert rs.computed_status(resource) == "ineligible"
    assert rs.workflow_status(resource) is None


@pytest.mark.parametrize("workflow", rs.WORKFLOW_STATUSES)
def test_a_workflow_status_set_by_a_person_survives_a_rescreen(workflow):
    stored = {**_build(_study(HB_LOW)), "id": "77", "status": workflow}
    resource = _build(_study(ALT_OK), existing=stored)
    assert resource["status"] == workflow
    assert _screening_parts(resource)["status"] == "eligible"
    assert rs.computed_status(resource) == "eligible" and rs.workflow_status(resource) == workflow
    rs.validate_research_subject(resource)
    # the computed status changed: that is a change to write, but the workflow status stays
    assert not rs.unchanged(resource, stored)


def test_a_computed_status_on_the_stored_resource_is_replaced():
    stored = {**_build(_study(HB_LOW)), "id": "77"}
    resource = _build(_study(ALT_OK), existing=stored)
    assert resource["status"] == "eligible"


def test_a_resource_written_before_the_status_part_reads_its_computed_status_from_status():
    old = _build(_study(HB_LOW))
    for ext in old["extension"]:
        if ext["url"] == rs.SCREENING_EXTENSION:
            ext["extension"] = [p for p in ext["extension"] if p["url"] != "status"]
    assert rs.computed_status(old) == "ineligible"
    assert rs.computed_status({**old, "status": "on-study"}) is None
