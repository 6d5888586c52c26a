"""The seeds' full decisions, criterion by criterion, held in a reviewed snapshot.

Every seed patient is screened against every study the repository defines (the two trials,
the example trials and the conformance study) as of the seeds' date and as of a later one, and
each criterion's result, reason sentence, value compared, ULN and evidence list must equal
`seed_decisions.json`. The reason sentences are a contract (the pages' Chinese templates match
them word for word), and the value and evidence are what a reviewer checks: a changed word, a
dropped `value=` or a missing evidence reference fails here even where the result stays.

A deliberate change of a decision or a sentence rewrites the snapshot on purpose:

    GOLDEN_WRITE=1 .venv/bin/pytest -q tests/engine/test_seed_decisions.py -p no:cacheprovider
    git diff tests/engine/seed_decisions.json      # review every changed line, then commit it

(docs/mutation-testing.md, "The seeds' decisions snapshot").
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.engine.evaluate import evaluate_patient
from service.mappings import Mappings, load_mappings
from tests.engine.conftest import check_invariants

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
SNAPSHOT = Path(__file__).with_name("seed_decisions.json")
DIRS = ":".join(str(REPO / "mappings" / d) for d in (".", "examples", "conformance"))
# The seeds' date, and one 120 days on, when every lab of the seeds is older than its window.
DATES = (date(2026, 11, 15), date(2027, 3, 15))
PATIENTS = sorted(p.stem for p in (SEEDS / "patients").glob("*.json"))


def _resources(patient: str) -> list[dict[str, Any]]:
    bundle = json.loads((SEEDS / "patients" / f"{patient}.json").read_text(encoding="utf-8"))
    return [entry["resource"] for entry in bundle["entry"]]


@pytest.fixture(scope="module")
def every_study() -> Mappings:
    return load_mappings(DIRS)


def decisions(mappings: Mappings, patient: str) -> dict[str, Any]:
    """One patient's screening of every study on each date, as the snapshot holds it."""
    resources = _resources(patient)
    out: dict[str, Any] = {}
    for as_of in DATES:
        evaluation = evaluate_patient(resources, mappings, as_of, strict=True)
        for study in evaluation.studies:
            check_invariants(study, resources)
        out[as_of.isoformat()] = {s.study: s.to_json() for s in evaluation.studies}
    return out


def _dump(snapshot: dict[str, Any]) -> str:
    """JSON with one criterion a line, so a review of `git diff` reads criterion by criterion."""
    def line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    out = ["{"]
    for i, (patient, dates) in enumerate(snapshot.items()):
        out.append(f" {line(patient)}: {{")
        for j, (as_of, studies) in enumerate(dates.items()):
            out.append(f"  {line(as_of)}: {{")
            for k, (key, study) in enumerate(studies.items()):
                criteria = ",\n".join(f"    {line(c)}" for c in study["criteria"])
                rest = {n: v for n, v in study.items() if n != "criteria"}
                out.append(f"   {line(key)}: {line(rest)[:-1]}, \"criteria\": [\n{criteria}\n   ]}}"
                           + ("," if k < len(studies) - 1 else ""))
            out.append("  }" + ("," if j < len(dates) - 1 else ""))
        out.append(" }" + ("," if i < len(snapshot) - 1 else ""))
    return "\n".join(out) + "\n}\n"


def _snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8")) if SNAPSHOT.exists() else {}


def test_the_snapshot_holds_every_seed_patient_and_nothing_else():
    if os.environ.get("GOLDEN_WRITE"):
        pytest.skip("the snapshot is being rewritten")
    assert sorted(_snapshot()) == PATIENTS
    assert len(PATIENTS) >= 18


@pytest.mark.parametrize("patient", PATIENTS)
def test_a_seed_patients_decisions_equal_the_snapshot(every_study, patient):
    got = decisions(every_study, patient)
    if os.environ.get("GOLDEN_WRITE"):
        snapshot = _snapshot()
        snapshot[patient] = got
        snapshot = {k: snapshot[k] for k in sorted(snapshot) if k in PATIENTS}
        SNAPSHOT.write_text(_dump(snapshot), encoding="utf-8")
        pytest.skip("snapshot rewritten: review `git diff tests/engine/seed_decisions.json`")
    want = _snapshot()[patient]
    assert sorted(got) == sorted(want)
    for as_of, studies in want.items():
        assert sorted(got[as_of]) == sorted(studies), as_of
        for key, study in studies.items():
            mine = got[as_of][key]
            assert mine["status"] == study["status"], (as_of, key)
            # Criterion by criterion, so a failure names the one that changed.
            assert [c["id"] for c in mine["criteria"]] == [c["id"] for c in study["criteria"]]
            for have, expected in zip(mine["criteria"], study["criteria"], strict=True):
                assert have == expected, (as_of, key, expected["id"])
