"""`screen --all --bulk` against the local FHIR server refusing population searches (as many
EHRs do): candidates from the export, records from the export, written as `screen --all`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from localfhir import LocalFhirError, LocalServer, NodeNotFoundError, start_local_server
from service.core.settings import Settings
from service.fhir import candidates
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.fhir.export_state import last_transaction_time
from service.usecases.bulk_screen import BulkScreening
from service.usecases.screener import Screener
from tests.support.candidate_population import SNOMED, condition, load_candidate_population, put

AS_OF = date(2026, 11, 15)
CANDIDATES = ["p0", "p1", "p2", "p4"]
# p4 holds one of ours and no diagnosis: only that one is written (api.md "Who gets a
# ResearchSubject").
WRITTEN = {**{p: 2 for p in CANDIDATES}, "p4": 1}

pytestmark = pytest.mark.integration


def _server(**env: str) -> LocalServer:
    try:
        return start_local_server(env=env)
    except NodeNotFoundError as exc:
        pytest.skip(f"local FHIR server unavailable: {exc}")
    except LocalFhirError as exc:
        pytest.fail(str(exc), pytrace=False)


def _settings(server: LocalServer, tmp_path: Path) -> Settings:
    return Settings().with_overrides(
        fhir_base_url=server.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        users_db=tmp_path / "users.sqlite")


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[Settings]:
    """A server refusing population searches, exporting at once (no status poll in progress)."""
    server = _server(LOCAL_FHIR_REQUIRE_PATIENT="1", LOCAL_FHIR_EXPORT_POLLS="0")
    settings = _settings(server, tmp_path)
    load_candidate_population(settings)
    yield settings
    server.stop()


def _subjects_by_patient(settings: Settings) -> dict[str, int]:
    out: dict[str, int] = {}
    with FhirClient(settings) as client:
        for subject in client.search_population(
                "ResearchSubject", {"identifier": f"{rs.RESEARCH_SUBJECT_SYSTEM}|"}):
            patient = candidates.patient_id_of(subject["individual"])
            out[patient] = out.get(patient, 0) + 1
    return out


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from service.cli import main as cli

    monkeypatch.setenv("FHIR_BASE_URL", settings.fhir_base_url)
    monkeypatch.setenv("QUEUE_URL", settings.queue_url)
    return cli.main(["screen", *args, "--as-of", AS_OF.isoformat()])


def _patients(csv_out: str) -> list[str]:
    return sorted({line.split(",")[0] for line in csv_out.splitlines()[1:] if line})


def test_without_bulk_a_refused_population_search_says_to_use_bulk(refusing, monkeypatch,
                                                                    capsys):
    assert _cli(refusing, monkeypatch, "--all", "--csv") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused a population search" in err[0] and "--bulk" in err[0]
    assert _subjects_by_patient(refusing) == {"p4": 1}  # nothing written


def test_bulk_screens_the_candidates_from_the_export_then_only_what_changed(
        refusing, monkeypatch, capsys):
    assert _cli(refusing, monkeypatch, "--all", "--bulk", "--csv") == 0
    captured = capsys.readouterr()
    assert "4 candidate(s)" in captured.err
    assert _patients(captured.out) == CANDIDATES
    assert _subjects_by_patient(refusing) == WRITTEN
    with FhirClient(refusing) as client:
        kept = last_transaction_time(client, None)
    assert kept is not None

    # One change: p7 is diagnosed. The next run exports what changed since and screens p7.
    with FhirClient(refusing) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction",
                            "entry": [condition("c7", "Patient/p7", SNOMED, "55464009")]})
    assert _cli(refusing, monkeypatch, "--all", "--bulk", "--since", "last", "--csv") == 0
    captured = capsys.readouterr()
    assert _patients(captured.out) == ["p7"]
    assert _subjects_by_patient(refusing) == {**WRITTEN, "p7": 2}
    with FhirClient(refusing) as client:
        assert last_transaction_time(client, None) > kept



def test_polls_honour_retry_after_and_show_progress_without_sleeping(tmp_path):
    server = _server(LOCAL_FHIR_REQUIRE_PATIENT="1", LOCAL_FHIR_EXPORT_POLLS="2")
    try:
        settings = _settings(server, tmp_path)
        load_candidate_population(settings)
        slept: list[float] = []
        shown: list[str | None] = []
        run = BulkScreening(Screener(settings), as_of=AS_OF, studies=None, write=False,
                            sleep=slept.append, on_progress=shown.append)
        assert run.prepare() == 4
        rows = list(run.rows())
        assert _subjects_by_patient(settings) == {"p4": 1}  # --no-write: nothing written
    finally:
        server.stop()
    assert slept == [1.0, 1.0]  # the server's Retry-After, twice, never a real sleep
    assert shown == ["0% exported", "50% exported", "complete"]
    assert sorted(r.patient for r in rows) == CANDIDATES and not any(r.error for r in rows)
    # Patient, Condition and ResearchSubject: the types holding something
    assert run.figures.requests == {"kick-off": 1, "status": 3, "download": 3}


def test_without_typefilter_the_whole_types_are_filtered_while_reading(tmp_path, monkeypatch,
                                                                       capsys):
    server = _server(LOCAL_FHIR_REQUIRE_PATIENT="1", LOCAL_FHIR_EXPORT_POLLS="0",
                     LOCAL_FHIR_TYPEFILTER="0")
    try:
        settings = _settings(server, tmp_path)
        load_candidate_population(settings)
        with FhirClient(settings) as client:  # an Observation no mapping reads
            client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [put(
                {"resourceType": "Observation", "id": "o-other", "status": "final",
                 "subject": {"reference": "Patient/p0"},
                 "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}})]})
        run = BulkScreening(Screener(settings), as_of=AS_OF, studies=None, write=True,
                            sleep=lambda s: None)
        assert run.prepare() == 4
        rows = list(run.rows())
        assert _subjects_by_patient(settings) == WRITTEN
    finally:
        server.stop()
    assert run.figures.type_filter_refused
    assert run.figures.requests["kick-off"] == 2
    assert sorted(r.patient for r in rows) == CANDIDATES and not any(r.error for r in rows)


def test_a_server_without_export_gets_one_clear_line(tmp_path, monkeypatch, capsys):
    server = _server(LOCAL_FHIR_EXPORT="0")
    try:
        settings = _settings(server, tmp_path)
        assert _cli(settings, monkeypatch, "--all", "--bulk") == 1
    finally:
        server.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["eligibility: --bulk: the FHIR server's CapabilityStatement offers no $export: "
                   "it cannot export in bulk (screen --all without --bulk searches instead)"]


def test_since_last_without_a_previous_run_is_refused(refusing, monkeypatch, capsys):
    assert _cli(refusing, monkeypatch, "--all", "--bulk", "--since", "last") == 1
    assert "no successful bulk run is recorded yet" in capsys.readouterr().err
    assert _subjects_by_patient(refusing) == {"p4": 1}


def _our_subject(settings: Settings, patient: str) -> dict:
    with FhirClient(settings) as client:
        value = f"{rs.RESEARCH_SUBJECT_SYSTEM}|pediatric-ln-cart/{patient}"
        (found,) = list(client.search("ResearchSubject", {"identifier": value}))
    return found


def test_a_decision_made_after_the_export_is_never_overwritten(refusing):
    """The export is a snapshot: a coordinator's change since makes the write a conflict
    (If-Match), and the patient is read again and screened on what is stored."""
    screener = Screener(refusing)
    first = BulkScreening(screener, as_of=AS_OF, studies=None, write=True, sleep=lambda s: None)
    first.prepare()
    assert not any(r.error for r in first.rows())
    later = BulkScreening(screener, as_of=date(2026, 12, 15), studies=None, write=True,
                          sleep=lambda s: None)
    later.prepare()
    # After the export, a coordinator records a decision on p0's ResearchSubject.
    decided = _our_subject(refusing, "p0")
    decided["status"] = "on-study"
    with FhirClient(refusing) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": decided, "request": {"method": "PUT",
                                              "url": f"ResearchSubject/{decided['id']}"}}]})
    rows = {r.patient: r for r in later.rows()}
    assert not any(r.error for r in rows.values())
    assert later.figures.requests["conflict re-read"] == 1
    stored = _our_subject(refusing, "p0")
    assert stored["status"] == "on-study"  # the decision stands
    screening = next(x for x in stored["extension"] if x["url"] == rs.SCREENING_EXTENSION)
    assert {"url": "asOf", "valueDate": "2026-12-15"} in screening["extension"]


def test_a_failed_download_fails_the_run_writes_nothing_and_cancels(refusing, monkeypatch,
                                                                     capsys):
    import service.fhir.client as client_module

    real_send = client_module.FhirClient.send
    methods: list[str] = []

    def send(self, method, url, **kwargs):
        methods.append(method)
        if "/bulkfiles/" in url and url.endswith("Condition.ndjson"):
            raise requests.ConnectionError("reset")
        return real_send(self, method, url, **kwargs)

    monkeypatch.setattr(client_module.FhirClient, "send", send)
    monkeypatch.setenv("FHIR_MAX_RETRIES", "0")  # no backoff to sleep through
    assert _cli(refusing, monkeypatch, "--all", "--bulk") == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("eligibility: --bulk: bulk export: the Condition file failed to "
                           "download"), last
    assert methods[-1] == "DELETE"
    assert _subjects_by_patient(refusing) == {"p4": 1}
    with FhirClient(refusing) as client:
        assert last_transaction_time(client, None) is None


def test_records_assembled_from_the_export_give_the_seeds_expected_results(tmp_path):
    """Whole types exported (_typeFilter refused) and filtered while reading: every seed
    candidate gets the result seeds/expected.json gives (the per-patient read's)."""
    import json

    from service.core.settings import REPO_ROOT
    from service.mappings import load_mappings
    from service.usecases.seeding import load_seeds

    expected = json.loads((REPO_ROOT / "seeds" / "expected.json").read_text(encoding="utf-8"))
    server = _server(LOCAL_FHIR_REQUIRE_PATIENT="1", LOCAL_FHIR_EXPORT_POLLS="0",
                     LOCAL_FHIR_TYPEFILTER="0")
    try:
        settings = _settings(server, tmp_path)
        with FhirClient(settings) as client:
            load_seeds(client, REPO_ROOT / "seeds",
                       mappings=load_mappings(settings.mappings_dir))
        run = BulkScreening(Screener(settings), as_of=date.fromisoformat(expected["asOf"]),
                            studies=None, write=False, sleep=lambda s: None)
        run.prepare()
        rows = {row.patient: row for row in run.rows()}
    finally:
        server.stop()
    assert run.figures.type_filter_refused
    assert len(rows) >= 10 and set(rows) <= set(expected["patients"])
    for pid, row in rows.items():
        assert not row.error, (pid, row.error)
        got = {s["study"]: s["status"] for s in row.result["studies"]}
        want = {k: v["status"] for k, v in expected["patients"][pid]["studies"].items()}
        assert got == want, pid


def test_a_group_export_screens_the_group_s_candidates_only(refusing, monkeypatch, capsys):
    with FhirClient(refusing) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [put(
            {"resourceType": "Group", "id": "rheum", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/p{i}"}} for i in (0, 1, 3, 5)]})]})
    assert _cli(refusing, monkeypatch, "--all", "--bulk", "--group", "rheum", "--csv") == 0
    captured = capsys.readouterr()
    assert _patients(captured.out) == ["p0", "p1"]  # p2 and p4 are candidates outside it
    assert _subjects_by_patient(refusing) == {"p0": 2, "p1": 2, "p4": 1}
    with FhirClient(refusing) as client:
        assert last_transaction_time(client, "rheum") is not None
        assert last_transaction_time(client, None) is None  # each scope keeps its own
