"""The benchmark at tiny scale, so it keeps working: it runs and produces every figure.

No timing is asserted (shared machines are noisy); the figures themselves are printed by
`python -m tests.benchmarks.run` and described in docs/performance.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from localfhir import LocalFhirError, LocalServer, NodeNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[2]

from service.core.settings import Settings  # noqa: E402
from service.mappings import load_mappings  # noqa: E402
from tests.benchmarks import hapi_column, report, run, synthetic  # noqa: E402
from tests.benchmarks.fhir_server import CountingSession, start_server  # noqa: E402
from tests.benchmarks.roundtrips import naive_requests  # noqa: E402
from tests.support.ci import unavailable  # noqa: E402


def _server_or_skip() -> LocalServer:
    try:
        return start_server()
    except NodeNotFoundError as exc:
        unavailable(f"local FHIR server unavailable: {exc}")
    except LocalFhirError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.integration
@pytest.mark.slow
def test_quick_benchmark_writes_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    out = tmp_path / "bench.json"
    code = run.main([
        "--quick", "--out", str(out), "--patients", "8", "--small", "4", "--workers", "1,2",
        "--latency-seconds", "0.5", "--notifications", "6", "--trigger-patients", "3",
        "--coalesce-seconds", "0.5", "--prevalence-patients", "60",
        "--worklist-small", "4", "--worklist-large", "10", "--worklist-reps", "1",
    ])
    printed = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out.read_text())
    assert report.missing_keys(figures) == []
    # The table shows every section.
    for heading in ("1 Round trips", "2 Evaluate", "3 Population", "4 GET eligibility",
                    "5 6 webhooks", "6 Population 60 at 0.2% prevalence",
                    "7 Worklist GET / (refractory-sle-cart), 4 / 10 subjects a study"):
        assert heading in printed
    # Counts that are facts about the run, not timings.
    assert figures["population"]["patients"] == 8
    assert figures["population"]["warm"]["w2"]["cli"]["errors"] == 0
    assert figures["population"]["cold"]["w2"]["cli"]["patients"] == 8
    assert figures["roundtrips"]["naive"]["reads"] > figures["roundtrips"]["ours"]["reads"]
    assert figures["checks"]["mismatches"] == []
    # Candidates x studies only (the trigger patients without lupus get none).
    triggers = figures["triggers"]
    assert triggers["research_subjects_written"] == triggers["research_subjects_expected"] > 0
    assert figures["latency"]["eligibility"]["errors"] == 0
    prevalence = figures["prevalence"]
    assert prevalence["candidates"]["non_candidates_written"] == 0
    assert prevalence["candidates"]["patients"] == prevalence["lupus_patients"] == 1
    assert prevalence["every_patient"]["patients"] == 60
    worklist = figures["worklist"]
    for size, subjects in (("small", 4), ("large", 10)):
        assert worklist[size]["counted"] == subjects  # the page's "All (n)"
        assert worklist[size]["errors"] == 0
        assert sum(worklist[size]["computed"].values()) == subjects * worklist["studies"]
        # The first view reads the whole list; later ones ask only for what changed.
        assert worklist[size]["fhir_requests"]["cold"] >= 1
        assert worklist[size]["fhir_requests"]["later"] == 1


@pytest.mark.hapi
def test_hapi_column_produces_every_figure(hapi_server, hapi_seeded) -> None:
    """The `--hapi` column at its smallest (one seed copy, a one-year heavy record, one
    repetition) on the session's HAPI: every figure is there and the table prints them."""
    from service.fhir.client import FhirClient

    mappings = load_mappings(Settings().mappings_dir)
    client = FhirClient(run.bench_fhir.settings_for(hapi_server.base_url, fhir_timeout=300))
    seed = synthetic.seed_records()[0]
    _, ids = run.bench_fhir.load_population(
        client, [synthetic.lupus_patient("bench-hapi-smoke", 0, [seed])])
    figures = {"hapi": hapi_column.measure(hapi_server.base_url, mappings, ids, heavy_years=1,
                                           reps=1, log=lambda _: None)}
    figures["hapi"].update(start_seconds=hapi_server.ready_seconds, java_opts="test tier")
    assert report.missing_keys(figures, keys=(), hapi=True) == []
    hapi = figures["hapi"]
    # Counts that are facts about HAPI, not timings: the read budget holds there too.
    assert (hapi["ours"]["reads"], hapi["ours"]["rescreen_writes"]) == (1, 0)
    assert hapi["naive"]["reads"] > hapi["ours"]["reads"]
    assert hapi["heavy"]["reads"] >= 1 and hapi["latency"]["patients"] == 1
    printed = hapi_column.rows(figures)
    assert printed[0][0].startswith("8 On HAPI 8.4.0")
    assert all(value and "None" not in value for _, value in printed[1:])


@pytest.mark.integration
def test_population_loads_with_the_patient_ids_the_server_gave() -> None:
    """load_population returns the new Patients' ids, and each record hangs off its Patient."""
    from service.fhir.client import FhirClient

    server = _server_or_skip()
    try:
        client = FhirClient(run.bench_fhir.settings_for(server.base_url))
        records = list(synthetic.population(6))
        total, ids = run.bench_fhir.load_population(client, records)
        assert total == sum(len(r) for r in records)
        assert sorted(ids) == sorted(run.bench_fhir.patient_ids(client))
        everything = list(client.search("Observation", {"_count": "1000"}))
        found: list[str] = []
        for pid in ids:
            by_patient = list(client.search("Observation", {"patient": pid, "_count": "1000"}))
            expected = [o for o in everything
                        if o.get("subject", {}).get("reference") == f"Patient/{pid}"]
            assert sorted(o["id"] for o in by_patient) == sorted(o["id"] for o in expected)
            found += [o["id"] for o in by_patient]
        # Every loaded Observation belongs to one of the returned Patients.
        assert sorted(found) == sorted(o["id"] for o in everything) != []
    finally:
        server.stop()


@responses.activate
def test_counting_session_tells_reads_from_writes() -> None:
    responses.add(responses.GET, "http://fhir.test/fhir/Patient/1", json={})
    responses.add(responses.POST, "http://fhir.test/fhir", json={})
    session = CountingSession()
    batch = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"request": {"method": "GET", "url": "Patient/1"}}]}
    transaction = {"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"request": {"method": "PUT", "url": "Patient/1"}}]}
    mixed = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"request": {"method": "GET", "url": "Patient/1"}},
                       {"request": {"method": "DELETE", "url": "Patient/2"}}]}
    session.get("http://fhir.test/fhir/Patient/1")
    for bundle in (batch, transaction, mixed):
        body = json.dumps(bundle, separators=(",", ":")).encode()
        session.post("http://fhir.test/fhir", data=body)
    assert session.take() == {"read": 2, "write": 2}
    assert session.take() == {"read": 0, "write": 0}


def test_naive_plan_is_one_request_per_criterion_per_study() -> None:
    mappings = load_mappings(Settings().mappings_dir)
    plan = naive_requests(mappings, "p1", 500)
    criteria = sum(len(s.criteria) for s in mappings.studies.values())
    assert len(plan) == len(mappings.studies) + criteria
    for target, params in plan:
        if params is None:
            assert target == "Patient/p1"
        else:
            assert ("patient", "p1") in params


def test_bulk_grouping_gives_both_engines_the_same_groups(tmp_path: Path) -> None:
    from tests.benchmarks import bulk_grouping

    count, size = bulk_grouping.write_export(tmp_path, 60)
    assert count > 60 and size > 0
    on_disk = bulk_grouping.group("sqlite", tmp_path)
    in_memory = bulk_grouping.group("memory", tmp_path)
    assert on_disk["candidates"] == in_memory["candidates"] == 6
    assert on_disk["resources"] == in_memory["resources"] > 6


@pytest.mark.integration
@pytest.mark.slow
def test_bulk_benchmark_produces_every_figure_on_the_local_server() -> None:
    from tests.benchmarks import bulk

    figures = bulk.run_bulk(200, hapi=False, log=lambda line: None)
    local = figures["local"]
    for key in ("search", "bulk", "every_patient", "incremental"):
        assert local[key]["exit_code"] == 0, local[key]
        assert {"requests", "wall_seconds", "rss_mb"} <= set(local[key])
    assert local["bulk"]["candidates"] == local["search"]["candidates"]
    assert local["bulk"]["bytes_downloaded"] > 0 and local["bulk"]["requests_by_kind"]["download"]
    assert local["every_patient"]["patients_screened"] == 200
    assert "Population screening" in bulk.table(figures)
