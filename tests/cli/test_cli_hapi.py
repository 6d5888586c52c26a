"""`eligibility screen --all` against real HAPI (hapi/) screens the candidates only (docs/getting-
started.md, "The command line"): patients found by a Condition search for a study's diagnosis,
plus those already holding a ResearchSubject of ours. With the seeds and patients without lupus
loaded, nobody else is read or gets a ResearchSubject, every candidate gets one per study, and
every seed patient screened gets the result seeds/expected.json gives."""

from __future__ import annotations

import json
import random
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from service.cli import main as cli
from service.core.settings import REPO_ROOT, Settings
from service.fhir import candidates
from service.fhir.client import FhirClient
from service.fhir.research_subject import RESEARCH_SUBJECT_SYSTEM
from service.mappings import load_mappings
from tests.benchmarks import synthetic
from tests.benchmarks.fhir_server import load_population

pytestmark = pytest.mark.hapi

EXPECTED = json.loads((REPO_ROOT / "seeds" / "expected.json").read_text(encoding="utf-8"))
AS_OF = EXPECTED["asOf"]
STUDIES = ("refractory-sle-cart", "pediatric-ln-cart")
OTHERS = 12  # patients without lupus: the every-patient listing would screen and write them
_FOUND = re.compile(r"^(\d+) candidate\(s\) found", re.M)
_SENT = re.compile(r"^(\d+) FHIR request\(s\) sent", re.M)


def _patient_id(reference: str) -> str:
    return reference.rsplit("Patient/", 1)[1]


def _our_subjects(client: FhirClient) -> dict[str, list[str]]:
    """patient id -> the study keys of its ResearchSubjects of ours (one entry per resource)."""
    out: dict[str, list[str]] = {}
    for subject in client.search_population(
            "ResearchSubject", {"identifier": f"{RESEARCH_SUBJECT_SYSTEM}|", "_count": "500"}):
        value = next(i["value"] for i in subject["identifier"]
                     if i.get("system") == RESEARCH_SUBJECT_SYSTEM)
        study, _, pid = value.partition("/")
        assert pid == _patient_id(subject["individual"]["reference"])
        out.setdefault(pid, []).append(study)
    return out


def _any_subjects(client: FhirClient, pid: str) -> list[dict[str, Any]]:
    """Every ResearchSubject of the patient, whoever wrote it."""
    return list(client.search("ResearchSubject", {"individual": f"Patient/{pid}"}))


@pytest.fixture(scope="module")
def population(hapi_seeded) -> dict[str, Any]:
    """Beside the seeds: patients without lupus and seed copies with it (server-assigned ids)."""
    settings = Settings().with_overrides(fhir_base_url=hapi_seeded["base_url"],
                                         queue_url="memory://", fhir_timeout=300)
    seeds = synthetic.seed_records()
    rng = random.Random(15)
    others = [synthetic.other_patient(f"cli-other-{i}", rng) for i in range(OTHERS)]
    assert not any(synthetic.is_lupus(r) for r in others)
    lupus = [synthetic.lupus_patient(f"cli-lupus-{i}", i, [s])
             for i, s in enumerate(s for s in seeds if synthetic.is_lupus(s))][:3]
    with FhirClient(settings) as client:
        # Patients with lupus that other tests of the session left on the shared HAPI.
        earlier = set(candidates.candidate_ids(client, load_mappings(settings.mappings_dir)))
        _, other_ids = load_population(client, others)
        _, lupus_ids = load_population(client, lupus)
        before = _our_subjects(client)
    seed_ids = {next(r["id"] for r in s if r["resourceType"] == "Patient"): s for s in seeds}
    return {"settings": settings, "others": other_ids, "lupus": lupus_ids, "before": before,
            "earlier": earlier,
            "seeds_with_lupus": {pid for pid, s in seed_ids.items() if synthetic.is_lupus(s)},
            "seeds_without": {pid for pid, s in seed_ids.items() if not synthetic.is_lupus(s)}}


@pytest.fixture
def requests_sent(monkeypatch) -> list[tuple[str, str]]:
    """(method, url) of every HTTP request the CLI sends, from any of its threads."""
    sent: list[tuple[str, str]] = []
    lock = threading.Lock()
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, *args: Any,
                  **kwargs: Any) -> requests.Response:
        with lock:
            sent.append((method.upper(), url))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    return sent


def test_population_screen_on_hapi_writes_for_the_candidates_only(
        population, requests_sent, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FHIR_BASE_URL", population["settings"].fhir_base_url)
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path / 'q.sqlite'}")
    checkpoint = tmp_path / "done.txt"
    code = cli.main(["screen", "--all", "--json", "--as-of", AS_OF, "--workers", "4",
                     "--checkpoint", str(checkpoint)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    rows = json.loads(captured.out)
    screened = {_patient_id(row["patient"]): row for row in rows}
    assert all("error" not in row for row in rows), [r for r in rows if "error" in r][:2]
    assert set(checkpoint.read_text().split()) == set(screened)

    # Whom it screened: every patient with lupus, nobody without it unless already ours.
    with_lupus = population["seeds_with_lupus"] | set(population["lupus"])
    assert with_lupus <= set(screened)
    assert not set(population["others"]) & set(screened), "patients without lupus screened"
    assert set(screened) - with_lupus <= set(population["before"]) | population["earlier"]

    # How it found them: a Condition search, never the listing of every Patient; the CLI says
    # how many candidates it found and its requests follow them (a read and at most a write
    # each, plus the searches and ResearchStudy lookups), not the number of Patients.
    paths = [(method, urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
             for method, url in requests_sent]
    assert ("GET", "Condition") in paths
    assert ("GET", "Patient") not in paths
    found, sent = _FOUND.search(captured.err), _SENT.search(captured.err)
    assert found and int(found.group(1)) == len(screened), captured.err[-1000:]
    assert sent and int(sent.group(1)) <= 2 * len(screened) + 12, captured.err[-1000:]

    with FhirClient(population["settings"]) as client:
        after = _our_subjects(client)
        # Every candidate holds exactly one ResearchSubject per study it is a candidate of;
        # one the Condition search found whose diagnosis the studies do not count (drug-
        # induced lupus) is screened and written nothing (`not-a-candidate`) ...
        for pid, row in screened.items():
            wanted = sorted(s["study"] for s in row["result"]["studies"]
                            if s.get("writeBack") != "not-a-candidate")
            assert sorted(after.get(pid, [])) == wanted, pid
        assert {pid for pid, row in screened.items() if pid not in after} <= {
            "seed-drug-induced"}
        # ... and nobody else got one: not the patients without lupus, not the seeds without
        # it that held none before.
        untouched = set(population["others"]) | (population["seeds_without"]
                                                 - set(population["before"]))
        assert untouched and not untouched & set(after)
        for pid in population["others"]:
            assert _any_subjects(client, pid) == [], pid

    # Every seed patient screened gets its expected result.
    for pid in set(screened) & set(EXPECTED["patients"]):
        got = {s["study"]: s["status"] for s in screened[pid]["result"]["studies"]}
        want = {k: s["status"] for k, s in EXPECTED["patients"][pid]["studies"].items()}
        assert got == want, pid
