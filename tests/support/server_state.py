"""What the FHIR server holds after a screening: ResearchSubjects, every version of them, and
the assertion that each was written once from complete data."""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import requests

from service.core.settings import Settings
from service.fhir.client import FhirClient
from service.fhir.research_subject import RESEARCH_SUBJECT_SYSTEM
from tests.support import polling
from tests.support.seed_population import AS_OF, mappings, written_oracle


def subjects(base_url: str, pid: str) -> list[dict[str, Any]]:
    """Every ResearchSubject of a patient on the server (read directly, never via the proxy)."""
    tokens = ",".join(f"{RESEARCH_SUBJECT_SYSTEM}|{key}/{pid}" for key in mappings().studies)
    settings = Settings().with_overrides(fhir_base_url=base_url)
    with FhirClient(settings) as client:
        return list(client.search("ResearchSubject", {"identifier": tokens, "_count": "50"}))


def history(base_url: str, resource_id: str) -> list[dict[str, Any]]:
    """Every stored version of one ResearchSubject."""
    answer = requests.get(f"{base_url}/ResearchSubject/{resource_id}/_history", timeout=30)
    answer.raise_for_status()
    return [entry["resource"] for entry in answer.json().get("entry") or ()]


def study_key(subject: dict[str, Any]) -> str:
    """The study key out of our identifier `{study-key}/{patient-id}`."""
    for ident in subject.get("identifier") or ():
        if ident.get("system") == RESEARCH_SUBJECT_SYSTEM:
            return ident["value"].split("/", 1)[0]
    raise AssertionError("a ResearchSubject without our identifier")


def assert_written_once_from_complete_data(
    base_url: str, pid: str, bundle: dict[str, Any], as_of: date = AS_OF
) -> dict[str, str]:
    """One ResearchSubject per study, and every version of it carries the status the complete
    record gives: nothing was ever written from partial data (and none for a study the patient
    is no candidate of). Returns study -> id."""
    expected = written_oracle(bundle, as_of)
    found = subjects(base_url, pid)
    keys = sorted(study_key(s) for s in found)
    assert keys == sorted(expected), f"Patient/{pid}: ResearchSubjects for {keys}"
    ids = {}
    for subject in found:
        key = study_key(subject)
        versions = history(base_url, subject["id"])
        assert versions, f"ResearchSubject/{subject['id']} has no history"
        statuses = {v["status"] for v in versions}
        assert statuses == {expected[key]}, (pid, key, statuses)
        ids[key] = subject["id"]
    return ids


# The reliability tests wait on real servers and workers recovering: a longer deadline.
wait_until = functools.partial(polling.wait_until, timeout=60.0)
