"""Screening orchestration with a stub engine: what is read, what is written, and when not."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import responses

from service.engine.results import CriterionResult, PatientEvaluation, StudyResult
from service.fhir import research_subject as rs
from service.fhir.errors import FhirConflict, FhirNotFound, FhirTemporaryError
from service.usecases.screening import PatientLocks, screen_patient
from tests.support.fhir_testkit import BASE, hapi

REPO = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 15)
WHEN = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)
STUDY_REFS = {
    "refractory-sle-cart": "ResearchStudy/st-sle",
    "pediatric-ln-cart": "ResearchStudy/st-ln",
}
FHIR_JSON = "application/fhir+json"


def candidate(patient_id: str = "pt-1") -> tuple[CriterionResult, ...]:
    """A candidate's results: the studies' declared diagnosis criterion is met."""
    return (
        CriterionResult(id="age", result="met", reason="Age 12",
                        evidence=("Patient/" + patient_id,)),
        CriterionResult(id="sle-diagnosis", result="met", reason="SLE",
                        evidence=("Condition/c1",)),
    )


@pytest.fixture
def engine(monkeypatch):
    """Replace the engine by a stub whose per-study results the test sets."""
    state = {"results": {}, "calls": []}

    def evaluate_patient(resources, mappings, as_of, studies=None, *, patient_id=None, **_):
        state["calls"].append([r["resourceType"] for r in resources])
        keys = list(studies or mappings.studies)
        met = candidate(patient_id)
        return PatientEvaluation(
            patient_id=patient_id,
            as_of=as_of,
            studies=tuple(
                StudyResult(
                    study=k,
                    title=mappings.studies[k].title,
                    criteria=state["results"].get(k, met),
                )
                for k in keys
            ),
        )

    monkeypatch.setattr("service.engine.evaluate.evaluate_patient", evaluate_patient)
    return state


class Server:
    """A HAPI-like server for one patient: answers the read batch and records transactions."""

    def __init__(self, stored_subjects=(), transaction_status=200):
        self.stored = list(stored_subjects)
        self.batches: list[list[str]] = []
        self.transactions: list[dict] = []
        self.transaction_status = transaction_status

    def __call__(self, request):
        bundle = json.loads(request.body)
        if bundle["type"] == "batch":
            urls = [e["request"]["url"] for e in bundle["entry"]]
            self.batches.append(urls)
            entries = []
            for url in urls:
                if url.startswith("Patient/"):
                    entries.append(
                        {"response": {"status": "200 OK"}, "resource": hapi("patient-read.json")}
                    )
                elif url.startswith("ResearchSubject?"):
                    found = {
                        "resourceType": "Bundle",
                        "type": "searchset",
                        "total": len(self.stored),
                        "entry": [
                            {"resource": r, "search": {"mode": "match"}} for r in self.stored
                        ],
                    }
                    entries.append({"response": {"status": "200 OK"}, "resource": found})
                else:
                    entries.append(
                        {"response": {"status": "200 OK"}, "resource": hapi("searchset-empty.json")}
                    )
            return (
                200,
                {"Content-Type": FHIR_JSON},
                json.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
            )
        self.transactions.append(bundle)
        if self.transaction_status != 200:
            return (
                self.transaction_status,
                {"Content-Type": FHIR_JSON},
                json.dumps(hapi("outcome-412-multiple-matches.json")),
            )
        entries = [
            {
                "response": {
                    "status": "201 Created",
                    "location": f"ResearchSubject/new-{i}/_history/1",
                }
            }
            for i, _ in enumerate(bundle["entry"])
        ]
        return (
            200,
            {"Content-Type": FHIR_JSON},
            json.dumps(
                {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
            ),
        )


def _stored(study_key: str, evaluation_study: StudyResult, rid: str) -> dict:
    resource = rs.build_research_subject(
        evaluation_study,
        patient_id="pt-1",
        as_of=AS_OF,
        research_study=STUDY_REFS[study_key],
        evaluated_at=WHEN,
    )
    return {**resource, "id": rid, "meta": {"versionId": "2"}}


@responses.activate
def test_write_creates_all_studies_in_one_transaction_of_conditional_updates(
    fhir, mappings, engine
):
    server = Server()
    responses.add_callback(responses.POST, BASE, callback=server)

    outcome = screen_patient(
        fhir,
        mappings,
        "Patient/pt-1",
        as_of=AS_OF,
        write=True,
        research_studies=STUDY_REFS,
        evaluated_at=WHEN,
    )

    assert fhir.request_count == 2 and len(server.batches) == 1 and len(server.transactions) == 1
    (batch,) = server.batches
    # The stored write-back state, by identifier (the patient's ResearchSubjects in every study
    # are read too, by patient, for criteria on enrolment elsewhere).
    subject_search = next(u for u in batch if u.startswith("ResearchSubject?identifier="))
    assert parse_qs(urlsplit(subject_search).query)["identifier"][0].split(",") == [
        f"urn:trial-eligibility:research-subject|{k}/pt-1" for k in mappings.studies
    ]
    assert not any(u.startswith("ResearchStudy?") for u in batch)  # references were given
    entries = server.transactions[0]["entry"]
    assert [unquote(e["request"]["url"]) for e in entries] == [
        f"ResearchSubject?identifier=urn:trial-eligibility:research-subject|{k}/pt-1"
        for k in mappings.studies
    ]
    assert outcome.research_subjects == {
        k: f"ResearchSubject/new-{i}" for i, k in enumerate(mappings.studies)
    }
    assert set(outcome.write_back.values()) == {"created"}
    body = outcome.to_json()
    assert [s["researchSubject"] for s in body["studies"]] == [
        f"ResearchSubject/new-{i}" for i in range(2)
    ]
    assert [s["researchStudy"] for s in body["studies"]] == [
        STUDY_REFS[k] for k in mappings.studies
    ]
    # the engine saw the clinical record only, not the write-back state
    assert engine["calls"] == [["Patient"]]


@responses.activate
def test_only_changed_studies_are_written(fhir, mappings, engine):
    met = candidate()
    sle = StudyResult(
        study="refractory-sle-cart",
        title=mappings.studies["refractory-sle-cart"].title,
        criteria=met,
    )
    ln = StudyResult(
        study="pediatric-ln-cart",
        title=mappings.studies["pediatric-ln-cart"].title,
        criteria=met,
    )
    server = Server(
        [_stored("refractory-sle-cart", sle, "rs-sle"), _stored("pediatric-ln-cart", ln, "rs-ln")]
    )
    responses.add_callback(responses.POST, BASE, callback=server)
    engine["results"]["pediatric-ln-cart"] = (
        CriterionResult(id="age", result="not-met", reason="Age 19"),
    )

    outcome = screen_patient(
        fhir, mappings, "pt-1", as_of=AS_OF, write=True, research_studies=STUDY_REFS
    )

    (transaction,) = server.transactions
    assert [e["resource"]["status"] for e in transaction["entry"]] == ["ineligible"]
    assert outcome.write_back == {
        "refractory-sle-cart": "unchanged",
        "pediatric-ln-cart": "created",
    }
    assert outcome.research_subjects["refractory-sle-cart"] == "ResearchSubject/rs-sle"


@responses.activate
def test_nothing_changed_means_no_transaction(fhir, mappings, engine):
    stored = [
        _stored(
            k, StudyResult(study=k, title=mappings.studies[k].title, criteria=candidate()),
            f"rs-{i}",
        )
        for i, k in enumerate(mappings.studies)
    ]
    server = Server(stored)
    responses.add_callback(responses.POST, BASE, callback=server)

    outcome = screen_patient(
        fhir, mappings, "pt-1", as_of=AS_OF, write=True, research_studies=STUDY_REFS
    )

    assert server.transactions == [] and fhir.request_count == 1
    assert set(outcome.write_back.values()) == {"unchanged"}


@responses.activate
def test_write_false_reads_once_and_never_writes(fhir, mappings, engine):
    server = Server()
    responses.add_callback(responses.POST, BASE, callback=server)

    outcome = screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=False)

    assert fhir.request_count == 1 and server.transactions == []
    assert not any(u.startswith("ResearchSubject?identifier=") for u in server.batches[0])
    assert any(u.startswith("ResearchStudy?") for u in server.batches[0])
    assert outcome.research_subjects == {} and outcome.write_back == {}


@responses.activate
def test_duplicate_stored_subjects_stop_the_write(fhir, mappings, engine):
    met = CriterionResult(id="age", result="met", reason="Age 12")
    study = StudyResult(study="pediatric-ln-cart", title="t", criteria=(met,))
    server = Server(
        [_stored("pediatric-ln-cart", study, "a"), _stored("pediatric-ln-cart", study, "b")]
    )
    responses.add_callback(responses.POST, BASE, callback=server)

    with pytest.raises(FhirConflict) as caught:
        screen_patient(
            fhir, mappings, "pt-1", as_of=AS_OF, write=True, research_studies=STUDY_REFS
        )
    assert "ResearchSubject/a" in str(caught.value) and "ResearchSubject/b" in str(caught.value)
    assert server.transactions == []


@responses.activate
def test_a_412_from_the_transaction_is_a_conflict(fhir, mappings, engine):
    responses.add_callback(responses.POST, BASE, callback=Server(transaction_status=412))
    with pytest.raises(FhirConflict) as caught:
        screen_patient(
            fhir, mappings, "pt-1", as_of=AS_OF, write=True, research_studies=STUDY_REFS
        )
    assert "matched 2 resources" in str(caught.value)


@responses.activate
def test_a_read_failure_writes_nothing_and_does_not_evaluate(fhir, mappings, engine, settings):
    for _ in range(settings.fhir_max_retries + 1):
        responses.post(BASE, status=503, body="")
    with pytest.raises(FhirTemporaryError):
        screen_patient(
            fhir, mappings, "pt-1", as_of=AS_OF, write=True, research_studies=STUDY_REFS
        )
    assert all(json.loads(c.request.body)["type"] == "batch" for c in responses.calls)
    assert engine["calls"] == []


@responses.activate
def test_unknown_patient(fhir, mappings, engine):
    def answer(request):
        urls = [e["request"]["url"] for e in json.loads(request.body)["entry"]]
        entries = [
            hapi("batch-response-entry-404.json")
            if u.startswith("Patient/")
            else {"response": {"status": "200 OK"}, "resource": hapi("searchset-empty.json")}
            for u in urls
        ]
        return (
            200,
            {},
            json.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
        )

    responses.add_callback(responses.POST, BASE, callback=answer)
    with pytest.raises(FhirNotFound):
        screen_patient(
            fhir, mappings, "pt-missing", as_of=AS_OF, write=True, research_studies=STUDY_REFS
        )
    assert len(responses.calls) == 1


def test_bad_input_fails_before_any_request(fhir, mappings, engine):
    with pytest.raises(ValueError):
        screen_patient(fhir, mappings, "pt-1&_id=x", as_of=AS_OF, write=True)
    with pytest.raises(ValueError):
        screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=True, studies=["no-such-study"])
    assert fhir.request_count == 0


@responses.activate
def test_missing_research_studies_are_created_from_the_seed_files(fhir, mappings, engine):
    server = Server()
    created = []

    def answer(request):
        bundle = json.loads(request.body)
        if (
            bundle["type"] == "transaction"
            and bundle["entry"][0]["resource"]["resourceType"] == "ResearchStudy"
        ):
            created.append(bundle)
            return (
                200,
                {},
                json.dumps(
                    {
                        "resourceType": "Bundle",
                        "type": "transaction-response",
                        "entry": [
                            {
                                "response": {
                                    "status": "201 Created",
                                    "location": f"ResearchStudy/made-{i}/_history/1",
                                }
                            }
                            for i, _ in enumerate(bundle["entry"])
                        ],
                    }
                ),
            )
        return server(request)

    responses.add_callback(responses.POST, BASE, callback=answer)
    outcome = screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=True)

    (study_tx,) = created
    seeds = {
        k: json.loads((REPO / "seeds" / "studies" / f"{k}.json").read_text())
        for k in mappings.studies
    }
    for key, entry in zip(mappings.studies, study_tx["entry"], strict=True):
        assert entry["request"]["method"] == "POST" and entry["request"]["url"] == "ResearchStudy"
        assert (
            unquote(entry["request"]["ifNoneExist"])
            == f"identifier=urn:trial-eligibility:study|{key}"
        )
        assert entry["resource"]["title"] == seeds[key]["title"]
    assert outcome.research_studies == {
        k: f"ResearchStudy/made-{i}" for i, k in enumerate(mappings.studies)
    }
    subjects = server.transactions[0]["entry"]
    assert [e["resource"]["study"]["reference"] for e in subjects] == [
        "ResearchStudy/made-0",
        "ResearchStudy/made-1",
    ]


def test_patient_locks_serialise_one_patient_and_are_freed():
    locks = PatientLocks()
    inside = []
    overlap = []

    def work(pid):
        with locks.hold(pid):
            inside.append(pid)
            if inside.count(pid) > 1:
                overlap.append(pid)
            time.sleep(0.01)
            inside.remove(pid)

    threads = [threading.Thread(target=work, args=("p",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == [] and len(locks) == 0


def test_patient_locks_do_not_serialise_different_patients():
    locks = PatientLocks()
    with locks.hold("a"):
        acquired = threading.Event()

        def other():
            with locks.hold("b"):
                acquired.set()

        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=5)
        assert acquired.is_set()
        assert len(locks) == 1


@responses.activate
def test_two_research_studies_with_one_key_are_a_conflict(fhir, mappings):
    from service.usecases.screening import ensure_research_studies

    def study(rid):
        return {
            "resourceType": "ResearchStudy",
            "id": rid,
            "status": "active",
            "identifier": [{"system": rs.STUDY_SYSTEM, "value": "pediatric-ln-cart"}],
        }

    found = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 2,
        "entry": [{"resource": study(r), "search": {"mode": "match"}} for r in ("s1", "s2")],
    }
    responses.get(f"{BASE}/ResearchStudy", json=found, content_type=FHIR_JSON)
    with pytest.raises(FhirConflict) as caught:
        ensure_research_studies(fhir, mappings, REPO / "seeds")
    assert "ResearchStudy/s1" in str(caught.value) and "ResearchStudy/s2" in str(caught.value)
    assert len(responses.calls) == 1  # nothing created


# ---------------------------------------------------------------- who gets a ResearchSubject


def _not_a_candidate(patient_id: str = "pt-1") -> tuple[CriterionResult, ...]:
    return (
        CriterionResult(id="age", result="met", reason="Age 12",
                        evidence=("Patient/" + patient_id,)),
        CriterionResult(id="sle-diagnosis", result="not-met", reason="No SLE diagnosis"),
    )


@responses.activate
def test_a_non_candidate_costs_one_read_and_no_write(fhir, mappings, engine):
    """api.md "Who gets a ResearchSubject": no candidate diagnosis, none of ours -> nothing is
    written (not even a ResearchStudy), and every study says `not-a-candidate`."""
    server = Server()
    responses.add_callback(responses.POST, BASE, callback=server)
    for key in mappings.studies:
        engine["results"][key] = _not_a_candidate()

    outcome = screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=True)

    assert fhir.request_count == 1 and server.transactions == []
    assert outcome.write_back == {k: "not-a-candidate" for k in mappings.studies}
    assert outcome.research_subjects == {}
    body = outcome.to_json()
    assert [s["writeBack"] for s in body["studies"]] == ["not-a-candidate"] * 2
    assert all("researchSubject" not in s for s in body["studies"])


@pytest.mark.parametrize("diagnosis", ["met", "unknown"])
@responses.activate
def test_a_candidate_diagnosis_met_or_unknown_is_written(fhir, mappings, engine, diagnosis):
    server = Server()
    responses.add_callback(responses.POST, BASE, callback=server)
    for key in mappings.studies:
        engine["results"][key] = (
            CriterionResult(id="age", result="not-met", reason="Age 30"),
            CriterionResult(id="sle-diagnosis", result=diagnosis, reason="SLE"),
        )

    outcome = screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=True,
                             research_studies=STUDY_REFS)

    (transaction,) = server.transactions
    assert len(transaction["entry"]) == 2
    assert set(outcome.write_back.values()) == {"created"}


@responses.activate
def test_an_existing_subject_is_updated_although_the_diagnosis_is_gone(fhir, mappings, engine):
    """One of ours exists: the result that no longer holds is written, never left stale; the
    other study (none of ours) writes nothing."""
    stored = _stored("pediatric-ln-cart", StudyResult(
        study="pediatric-ln-cart", title="t", criteria=candidate()), "rs-ln")
    server = Server([stored])
    responses.add_callback(responses.POST, BASE, callback=server)
    for key in mappings.studies:
        engine["results"][key] = _not_a_candidate()

    outcome = screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=True,
                             research_studies=STUDY_REFS)

    (transaction,) = server.transactions
    assert [e["resource"]["status"] for e in transaction["entry"]] == ["ineligible"]
    assert outcome.write_back["refractory-sle-cart"] == "not-a-candidate"
    assert outcome.write_back["pediatric-ln-cart"] in ("created", "updated")


@responses.activate
def test_every_patient_writes_for_a_non_candidate(fhir, mappings, engine):
    server = Server()
    responses.add_callback(responses.POST, BASE, callback=server)
    for key in mappings.studies:
        engine["results"][key] = _not_a_candidate()

    outcome = screen_patient(fhir, mappings, "pt-1", as_of=AS_OF, write=True,
                             research_studies=STUDY_REFS, every_patient=True)

    assert len(server.transactions) == 1
    assert set(outcome.write_back.values()) == {"created"}
