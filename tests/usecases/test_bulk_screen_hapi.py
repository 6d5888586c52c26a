"""`screen --all --bulk` against real HAPI (hapi/, bulk export on): the same candidates and
results as the search-based `screen --all`, then an incremental run after one change."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import pytest

from service.core.settings import REPO_ROOT, Settings
from service.fhir import candidates
from service.fhir.bulk_export import BulkExport, ExportRequest, read_ndjson
from service.fhir.client import FhirClient
from service.fhir.export_state import last_transaction_time
from service.usecases.bulk_screen import BulkScreening
from service.usecases.screener import Screener

pytestmark = pytest.mark.hapi

EXPECTED = json.loads((REPO_ROOT / "seeds" / "expected.json").read_text(encoding="utf-8"))
AS_OF = date.fromisoformat(EXPECTED["asOf"])


def _wait(seconds: float) -> None:
    # HAPI runs the export as a batch job and asks to be polled again (Retry-After); the test
    # looks again soon instead of waiting as long as a nightly run would.
    time.sleep(min(seconds, 0.5))


def _run(settings: Settings, since: str | None = None) -> tuple[BulkScreening, dict[str, Any]]:
    run = BulkScreening(Screener(settings), as_of=AS_OF, studies=None, write=True,
                        since=since, sleep=_wait)
    run.prepare()
    rows = {row.patient: row for row in run.rows() if row.screened}
    assert not [r.error for r in rows.values() if r.error]
    return run, rows


def _statuses(result: dict[str, Any]) -> dict[str, str]:
    return {s["study"]: s["status"] for s in result["studies"]}


# HAPI starts an export job at a batch maintenance pass: once a minute as shipped, every second
# in the test tier (-Dhapi.maintenance_every_ms, tests/support/hapi_server.py).
@pytest.mark.timeout(600)
def test_bulk_on_hapi_screens_the_search_s_candidates_then_what_changed(hapi_seeded):
    settings = Settings().with_overrides(fhir_base_url=hapi_seeded["base_url"],
                                         queue_url="memory://", fhir_timeout=300)
    screener = Screener(settings)
    other = "bulk-hapi-other"  # a child without lupus: not a candidate, until the change
    with FhirClient(settings) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": {"resourceType": "Patient", "id": other, "gender": "female",
                         "birthDate": "2014-03-01"},
            "request": {"method": "PUT", "url": f"Patient/{other}"}}]})
        searched = candidates.candidate_ids(client, screener.mappings)
    started = time.monotonic()
    run, rows = _run(settings)
    print(f"bulk run on HAPI: {time.monotonic() - started:.1f} s")
    assert sorted(rows) == searched  # the export finds whom the population search finds
    for pid, expected in EXPECTED["patients"].items():
        if pid in rows:  # the seeds' expected results, from records assembled from NDJSON
            want = {key: study["status"] for key, study in expected["studies"].items()}
            assert _statuses(rows[pid].result) == want, pid
    assert run.figures.requests["download"] >= 3
    # HAPI's Jetty refuses the GET with the mapped codes (414); the POST kick-off keeps them.
    assert run.figures.posted_kick_off and not run.figures.type_filter_refused
    assert run.figures.requests["kick-off"] == 2
    with FhirClient(settings) as client:
        kept = last_transaction_time(client, None)
    assert kept == run.figures.transaction_time

    assert other not in rows
    # One change: the child without lupus is diagnosed. The incremental run reads only it.
    with FhirClient(settings) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": {"resourceType": "Condition", "subject": {"reference": f"Patient/{other}"},
                         "clinicalStatus": {"coding": [{
                             "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                             "code": "active"}]},
                         "code": {"coding": [{"system": "http://snomed.info/sct",
                                              "code": "55464009"}]}},
            "request": {"method": "POST", "url": "Condition"}}]})
    started = time.monotonic()
    later, changed = _run(settings, since="last")
    print(f"incremental bulk run on HAPI: {time.monotonic() - started:.1f} s")
    assert list(changed) == [other]
    assert later.figures.requests["record read"] == 1
    with FhirClient(settings) as client:
        assert last_transaction_time(client, None) == later.figures.transaction_time > kept


@pytest.mark.timeout(300)
def test_hapi_applies_the_type_filter_of_a_posted_kick_off(hapi_seeded, tmp_path):
    # A filter list too long for a URL: HAPI answers the GET with 414, the POST is taken, and
    # only Observations of the one real code come back (the other filters match nothing).
    settings = Settings().with_overrides(fhir_base_url=hapi_seeded["base_url"],
                                         queue_url="memory://", fhir_timeout=300)
    haemoglobin = "http://loinc.org|718-7"
    filters = (f"Observation?code={haemoglobin}",
               *(f"Observation?code=urn:example:none|code-{i:04}" for i in range(600)))
    with FhirClient(settings) as client:
        export = BulkExport(client, sleep=_wait)
        export.kick_off(ExportRequest(("Observation",), filters))
        manifest = export.wait()
        codes = [{f"{c.get('system')}|{c.get('code')}" for c in o["code"]["coding"]}
                 for item in manifest.output
                 for o in read_ndjson(export.download(item, manifest, tmp_path))]
    assert export.posted_kick_off and not export.type_filter_refused
    assert codes and all(haemoglobin in c for c in codes), codes
