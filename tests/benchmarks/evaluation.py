"""Evaluation-cost figure: evaluating both studies vs json.loads of the same record, in turns."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from service.engine.evaluate import evaluate_patient
from service.mappings import Mappings
from tests.benchmarks import synthetic

TYPICAL = "seed-sle-eligible"


def _clock(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def _validate_bundle(resources: list[dict[str, Any]]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": r} for r in resources],
    })


def measure_record(resources: list[dict[str, Any]], mappings: Mappings, *, reps: int,
                   validate_reps: int) -> dict[str, Any]:
    """Median milliseconds of json.loads, evaluate_patient and R4B validation, and the ratios.

    The three are timed in turns on the same record (loads, evaluate, loads, evaluate, ...) so
    a noisy neighbour slows both sides of a ratio alike; evaluation gets a freshly parsed copy
    each turn, as a screening would.
    """
    text = json.dumps(resources)
    for _ in range(2):  # warm caches (mappings indexes, imports) outside the timing
        evaluate_patient(json.loads(text), mappings, synthetic.AS_OF)
    _validate_bundle(json.loads(text))
    loads: list[float] = []
    evaluate: list[float] = []
    validate: list[float] = []
    for i in range(reps):
        loads.append(_clock(lambda: json.loads(text)))
        parsed = json.loads(text)
        evaluate.append(_clock(lambda p=parsed: evaluate_patient(p, mappings, synthetic.AS_OF)))
        if i < validate_reps:
            parsed = json.loads(text)
            validate.append(_clock(lambda p=parsed: _validate_bundle(p)))
    loads_ms = statistics.median(loads) * 1000
    evaluate_ms = statistics.median(evaluate) * 1000
    validate_ms = statistics.median(validate) * 1000
    return {
        "resources": len(resources),
        "json_bytes": len(text),
        "json_loads_ms": round(loads_ms, 3),
        "evaluate_ms": round(evaluate_ms, 3),
        "ratio": round(evaluate_ms / loads_ms, 2),
        "validate_ms": round(validate_ms, 1),
        "validate_ratio": round(validate_ms / loads_ms, 1),
        "reps": reps,
        "validate_reps": validate_reps,
    }


def measure_write_check(record: list[dict[str, Any]], mappings: Mappings, *, reps: int,
                        model_reps: int) -> dict[str, Any]:
    """Milliseconds per ResearchSubject of the write path's check (compiled R4 JSON Schema)
    against the fhir.resources R4B model it replaced, on the resources built for `record`,
    timed in turns."""
    from datetime import UTC, datetime

    from service.fhir import research_subject as rs

    evaluation = evaluate_patient(record, mappings, synthetic.AS_OF)
    built = [rs.build_research_subject(
        study, patient_id=evaluation.patient_id, as_of=synthetic.AS_OF,
        research_study="ResearchStudy/bench", evaluated_at=datetime.now(UTC))
        for study in evaluation.studies]
    for resource in built:  # warm: compile the schema, import the model
        rs.validate_research_subject(resource)
        rs.validate_with_model(resource)
    schema: list[float] = []
    model: list[float] = []
    for i in range(reps):
        schema.append(_clock(lambda: [rs.validate_research_subject(r) for r in built]))
        if i < model_reps:
            model.append(_clock(lambda: [rs.validate_with_model(r) for r in built]))
    schema_ms = statistics.median(schema) * 1000 / len(built)
    model_ms = statistics.median(model) * 1000 / len(built)
    return {
        "resources": len(built),
        "extensions": sum(len(r.get("extension") or ()) for r in built),
        "schema_ms": round(schema_ms, 3),
        "model_ms": round(model_ms, 2),
        "model_over_schema": round(model_ms / schema_ms, 1) if schema_ms else None,
        "reps": reps,
    }


def run_evaluation(mappings: Mappings, *, years: int, reps: int, validate_reps: int
                   ) -> dict[str, Any]:
    """The heavy record and a typical seed patient (seed-sle-eligible)."""
    heavy = synthetic.heavy_record(years=years)
    typical = next(r for r in synthetic.seed_records()
                   if any(x.get("resourceType") == "Patient" and x.get("id") == TYPICAL
                          for x in r))
    return {
        "heavy": measure_record(heavy, mappings, reps=reps, validate_reps=validate_reps),
        "heavy_years": years,
        "typical": measure_record(typical, mappings, reps=max(reps, 20) * 5,
                                  validate_reps=max(validate_reps, 5)),
        "typical_patient": TYPICAL,
        "write_check": measure_write_check(typical, mappings, reps=max(reps, 20) * 5,
                                           model_reps=max(validate_reps, 5) * 4),
    }
