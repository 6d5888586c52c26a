"""The write path's R4 JSON Schema check: HL7's schema, as strict as the model, never skipped."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine.results import CriterionResult, StudyResult, Value
from service.fhir import research_subject as rs
from service.fhir import resource_schema
from tests.support.ci import unavailable
from tests.support.research_subject_schema import FULL_SCHEMA, extract

AS_OF = date(2026, 11, 15)
WHEN = datetime(2026, 11, 15, 8, 30, tzinfo=UTC)
CRITERIA = (
    CriterionResult(id="hemoglobin", result="not-met", reason="Haemoglobin 59 g/L is below 60",
                    value=Value(Decimal("59"), "g/L"), evidence=("Observation/9",)),
    CriterionResult(id="alt", result="met", reason="ALT <= 3.0 x ULN",
                    value=Value(Decimal("40.5"), "U/L"), uln=Value(Decimal("25"), "U/L"),
                    uln_source="caliper", evidence=("Observation/11", "Observation/12")),
    CriterionResult(id="ana", result="met", reason="ANA 1:160", value=Value("1:160")),
    CriterionResult(id="ecog", result="met", reason="ECOG 1", value=Value(1)),
    CriterionResult(id="consent", result="unknown", kind="manual", reason="No Consent"),
)


def _good(existing: dict[str, Any] | None = None) -> dict[str, Any]:
    study = StudyResult(study="pediatric-ln-cart", title="CAR-T in children", criteria=CRITERIA)
    return rs.build_research_subject(study, patient_id="pt-1", as_of=AS_OF,
                                     research_study="ResearchStudy/st-1", evaluated_at=WHEN,
                                     existing=existing)


def _model_refuses(resource: Any) -> bool:
    try:
        rs.validate_with_model(resource)
    except rs.WriteBackError:
        return True
    return False


def _schema_refuses(resource: Any) -> bool:
    try:
        rs.validate_research_subject(resource)
    except rs.WriteBackError:
        return True
    return False


def test_the_committed_schema_is_hl7s_r4_research_subject():
    if not FULL_SCHEMA.is_file():
        unavailable("the local FHIR server's npm packages (with the full R4 schema) are missing")
    full = json.loads(FULL_SCHEMA.read_text(encoding="utf-8"))
    committed = json.loads(rs.resource_schema.RESEARCH_SUBJECT_SCHEMA.read_text(encoding="utf-8"))
    assert committed == extract(full)
    assert committed["definitions"]["ResearchSubject"]["required"] == [
        "study", "individual", "resourceType"]


def test_what_we_build_passes_both_the_schema_and_the_model():
    stored = {"resourceType": "ResearchSubject", "id": "rs-1", "period": {"start": "2026-12-01"},
              "assignedArm": "cohort-1", "consent": {"reference": "Consent/c-1"},
              "identifier": [{"system": "urn:site:enrolment", "value": "E-17"}],
              "extension": [{"url": "urn:site:note", "valueString": "called family"}]}
    for resource in (_good(), _good(existing=stored)):
        rs.validate_research_subject(resource)
        rs.validate_with_model(resource)


def _part(resource: dict[str, Any], index: int, url: str) -> dict[str, Any]:
    """The sub-extension `url` of the resource's extension number `index` (found by name, so
    a part added to the criterion extension does not shift what a mutation touches)."""
    ours = [e for e in resource["extension"] if e["url"] != PROGRESS_EXTENSION]  # history first
    return next(p for p in ours[index]["extension"] if p["url"] == url)


PROGRESS_EXTENSION = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchSubject.progress")
INVALID = {
    "unknown status": lambda r: r.update(status="maybe"),
    "no individual": lambda r: r.pop("individual"),
    "no study": lambda r: r.pop("study"),
    "unknown element": lambda r: r.update(colour="blue"),
    "empty reference": lambda r: r["study"].update(reference=""),
    "identifier not a list": lambda r: r.update(identifier=r["identifier"][0]),
    "number as string": lambda r: _part(r, 1, "value")["valueQuantity"].update(value="59"),
    "code with a space at the end": lambda r: _part(r, 1, "result").update(valueCode="met "),
    "date that is no date": lambda r: _part(r, 0, "asOf").update(valueDate="15.11.2026"),
    "dateTime without zone": lambda r: _part(r, 0, "evaluated").update(
        valueDateTime="2026-11-15T08:30:00"),
    "two values in one extension": lambda r: r["extension"][1]["extension"][0].update(
        valueString="x"),
    "extension without url": lambda r: r["extension"][1]["extension"][0].pop("url"),
    "integer that is a float": lambda r: _part(r, 4, "value").update(valueInteger=1.5),
    "boolean as string": lambda r: r["extension"][1]["extension"].append(
        {"url": "flag", "valueBoolean": "true"}),
    "null element": lambda r: r.update(assignedArm=None),
    "period start not a dateTime": lambda r: r.update(period={"start": "soon"}),
}


# The model coerces these (pydantic's lax mode); FHIR JSON does not allow them.
# The model does not check ResearchSubject.status's value set nor refuse nulls.
MODEL_IS_LAXER = {"boolean as string", "number as string", "unknown status", "null element"}


@pytest.mark.parametrize("mutation", sorted(INVALID))
def test_an_invalid_research_subject_is_refused(mutation):
    resource = copy.deepcopy(_good())
    INVALID[mutation](resource)
    assert _schema_refuses(resource)
    assert _model_refuses(resource) is (mutation not in MODEL_IS_LAXER)


def test_a_contained_resource_gets_the_full_model():
    resource = {**_good(), "contained": [{"resourceType": "Patient", "birthDate": "soon"}]}
    assert _schema_refuses(resource)  # the model refuses the contained Patient's birth date


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
    | st.sampled_from(["", " ", "x", "met", "2026-11-15", "Patient/1", "urn:x", "1.5"]),
    lambda children: st.lists(children, max_size=2)
    | st.dictionaries(st.sampled_from(["url", "value", "valueCode", "reference", "x"]),
                      children, max_size=2),
    max_leaves=4,
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*path, index))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whatever_the_model_refuses_the_schema_refuses_too(data):
    resource = copy.deepcopy(_good())
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(_paths(resource)[1:]))
        parent = resource
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            parent.pop(path[-1])
        elif action == "add" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["value", "valueString", "extension", "id", "y"]))] \
                = data.draw(_JSON)
        else:
            parent[path[-1]] = data.draw(_JSON)
    if _model_refuses(resource):
        assert _schema_refuses(resource), resource


def test_compiled_once():
    assert resource_schema.research_subject_check() is resource_schema.research_subject_check()


@pytest.mark.integration
def test_an_invalid_research_subject_is_never_written(fhir_settings, monkeypatch):
    """A bug that builds an invalid resource stops the screening before the transaction."""
    from pathlib import Path

    from service.fhir.client import FhirClient
    from service.mappings import load_mappings
    from service.usecases.screening import ensure_research_studies, screen_patient

    repo = Path(__file__).resolve().parents[2]
    mappings = load_mappings(repo / "mappings")
    seed = "seed-ln-eligible"
    patient = f"{seed}-{uuid.uuid4().hex[:8]}"
    text = (repo / "seeds" / "patients" / f"{seed}.json").read_text(encoding="utf-8")
    built = rs.criterion_extension

    def broken(criterion):  # a code with an inner double space is no FHIR code
        extension = built(criterion)
        extension["extension"][2] = {"url": "result", "valueCode": "not  met"}
        return extension

    with FhirClient(fhir_settings) as client:
        client.transaction(json.loads(text.replace(seed, patient)))
        studies = ensure_research_studies(client, mappings, repo / "seeds")
        monkeypatch.setattr(rs, "criterion_extension", broken)
        transactions_before = client.request_count
        with pytest.raises(rs.WriteBackError, match="valueCode"):
            screen_patient(client, mappings, patient, as_of=AS_OF, write=True,
                           research_studies=studies)
        assert client.request_count == transactions_before + 1  # the read batch only
        monkeypatch.undo()
        found = client.search("ResearchSubject", {"patient": patient})
        assert list(found) == []
