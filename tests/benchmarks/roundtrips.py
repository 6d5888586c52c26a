"""Round-trip figure: FHIR requests per screening, ours vs a naive one-search-per-criterion one."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from service.fhir.client import FhirClient
from service.fhir.queries import code_token, record_queries
from service.mappings import CriterionMapping, Mappings
from service.usecases.screening import ensure_research_studies, screen_patient
from tests.benchmarks import fhir_server as bench_fhir
from tests.benchmarks import synthetic

_KIND_TYPES = {
    "observation": "Observation",
    "condition": "Condition",
    "medication": "MedicationRequest",
    "procedure": "Procedure",
}
# Criteria whose rule names no concept: what a naive client would search for them.
_RULE_CONCEPTS = {"egfr": ("egfr", "creatinine", "body-height")}
NAIVE_SYSTEM = "urn:trial-eligibility:benchmark-naive"


def _criterion_concepts(mappings: Mappings, crit: CriterionMapping) -> list[str]:
    names: list[str] = list(_RULE_CONCEPTS.get(crit.rule, ()))
    for value in crit.params.values():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, str) and item in mappings.concepts:
                names.append(item)
            elif isinstance(item, dict):
                names += [c for c in item.get("concepts", ()) if c in mappings.concepts]
            elif hasattr(item, "concepts"):
                names += [c for c in item.concepts if c in mappings.concepts]
    return list(dict.fromkeys(names))


# (type, search params), or ("Patient/<id>", None) for a read
NaiveRequest = tuple[str, list[tuple[str, str]] | None]


def naive_requests(mappings: Mappings, patient_id: str, page_size: int) -> list[NaiveRequest]:
    """One request per criterion per study, as a client screening criterion by criterion does.

    Each study starts with a read of the Patient; a criterion with codes becomes one search of
    its resource type for those codes; consent searches the Consents; a manual criterion
    without codes searches its confirmation Observation.
    """
    out: list[NaiveRequest] = []
    count = ("_count", str(page_size))
    patient = (f"Patient/{patient_id}", None)
    for study in mappings.studies.values():
        out.append(patient)
        for crit in study.criteria:
            names = _criterion_concepts(mappings, crit)
            if crit.rule == "age":
                out.append(patient)
            elif crit.rule == "consent":
                out.append(("Consent", [("patient", patient_id), count]))
            elif not names:
                token = f"urn:trial-eligibility:criterion|{crit.id}"
                out.append(("Observation", [("patient", patient_id), ("code", token), count]))
            else:
                kind = mappings.concepts[names[0]].kind
                codes = sorted({code_token(c) for n in names for c in mappings.concepts[n].codes
                                if mappings.concepts[n].kind == kind})
                out.append((_KIND_TYPES[kind],
                            [("patient", patient_id), ("code", ",".join(codes)), count]))
    return out


def _naive_fetch(client: FhirClient, requests: Sequence[NaiveRequest]) -> int:
    found = 0
    for target, params in requests:
        if params is None:
            kind, rid = target.split("/")
            client.read(kind, rid)
            found += 1
        else:
            found += sum(1 for _ in client.search(target, params))
    return found


def _naive_write(client: FhirClient, mappings: Mappings, patient_id: str,
                 refs: dict[str, str]) -> None:
    # One conditional update per study, the way a per-study client records its result (under
    # an identifier system of its own, so the service's ResearchSubjects are not touched).
    for key in mappings.studies:
        value = f"{key}/{patient_id}"
        resource = {
            "resourceType": "ResearchSubject", "status": "candidate",
            "identifier": [{"system": NAIVE_SYSTEM, "value": value}],
            "study": {"reference": refs[key]},
            "individual": {"reference": f"Patient/{patient_id}"},
        }
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": resource,
            "request": {"method": "PUT",
                        "url": f"ResearchSubject?identifier={NAIVE_SYSTEM}|{value}"},
        }]})


def run_roundtrips(base_url: str, mappings: Mappings, patient_ids: Sequence[str],
                   heavy_id: str | None = None) -> dict[str, Any]:
    """Count reads and writes of our screening and of the naive client, side by side."""
    session = bench_fhir.CountingSession()
    settings = bench_fhir.settings_for(base_url)
    client = FhirClient(settings, session=session)
    refs = ensure_research_studies(client, mappings, synthetic.SEEDS_DIR)
    as_of = synthetic.AS_OF
    codes = mappings.observation_codes()
    per_patient: list[dict[str, Any]] = []
    ours_ms: list[float] = []
    naive_ms: list[float] = []
    for pid in patient_ids:
        session.take()
        screen_patient(client, mappings, pid, as_of=as_of, write=True, research_studies=refs)
        first = session.take()
        screen_patient(client, mappings, pid, as_of=as_of, write=True, research_studies=refs)
        again = session.take()
        naive_plan = naive_requests(mappings, pid, settings.fhir_page_size)
        _naive_fetch(client, naive_plan)
        _naive_write(client, mappings, pid, refs)
        naive = session.take()
        per_patient.append({"patient": pid, "first": first, "rescreen": again, "naive": naive})
        # Side by side: our read batch vs the naive searches, same patient, same minute.
        queries = record_queries(pid, codes, page_size=settings.fhir_page_size,
                                 research_subject_studies=list(mappings.studies))
        started = time.perf_counter()
        client.run_queries(queries)
        ours_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        _naive_fetch(client, naive_plan)
        naive_ms.append((time.perf_counter() - started) * 1000)
        session.take()
    head = per_patient[0]
    out: dict[str, Any] = {
        "patient": head["patient"],
        "ours": {"reads": head["first"]["read"], "writes": head["first"]["write"],
                 "rescreen_reads": head["rescreen"]["read"],
                 "rescreen_writes": head["rescreen"]["write"]},
        "naive": {"reads": head["naive"]["read"], "writes": head["naive"]["write"]},
        "patients_checked": len(per_patient),
        "max_reads_any_patient": max(p["first"]["read"] for p in per_patient),
        "max_writes_any_patient": max(p["first"]["write"] for p in per_patient),
        "read_ms": {"ours": round(statistics.median(ours_ms), 2),
                    "naive": round(statistics.median(naive_ms), 2)},
    }
    out["read_ms"]["naive_over_ours"] = round(out["read_ms"]["naive"] / out["read_ms"]["ours"], 1)
    if heavy_id:
        session.take()
        screen_patient(client, mappings, heavy_id, as_of=as_of, write=True,
                       research_studies=refs)
        heavy = session.take()
        big = FhirClient(settings.with_overrides(fhir_page_size=1000), session=session)
        screen_patient(big, mappings, heavy_id, as_of=as_of, write=True, research_studies=refs)
        heavy_big = session.take()
        out["heavy"] = {"reads": heavy["read"], "writes": heavy["write"],
                        "page_size": settings.fhir_page_size,
                        "reads_page_size_1000": heavy_big["read"]}
    return out
