"""Every file of the shared FHIR corpus is read and evaluated against both studies safely."""

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from service.core.settings import REPO_ROOT
from service.engine.bundles import patient_slices
from service.engine.evaluate import evaluate_patient
from service.engine.record import RecordError, build_record
from service.mappings import load_mappings
from tests.support.ci import SHARED, shared_file

CORPUS = SHARED / "fhir-corpus"
FILES = sorted(p for p in CORPUS.rglob("*.json") if p.name != "MANIFEST.json")
MAPPINGS = load_mappings(REPO_ROOT / "mappings")


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    shared_file("fhir-corpus/MANIFEST.json")  # skipped here without it; a failure in CI


def test_every_file_of_the_manifest_is_read():
    # Without this, a moved corpus would parametrize nothing and the file tests would vanish.
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
    listed = {CORPUS / entry["file"] for entry in manifest}
    assert listed and listed <= set(FILES)


def _is_stu3(path: Path) -> bool:
    return "STU3" in str(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:40])
def test_corpus_file_evaluates_without_exception(path):
    bundle = json.loads(path.read_text(encoding="utf-8"))
    if _is_stu3(path):
        with pytest.raises(RecordError, match="not FHIR R4"):
            patient_slices(bundle, include_referenced=True)
        return
    slices = patient_slices(bundle, include_referenced=True)
    for piece in slices:
        record = build_record(piece.resources, MAPPINGS, piece.patient_id, piece.aliases)
        dates = [e.when.day for es in record.by_concept.values() for e in es if e.when]
        # Evaluate both today and as of the patient's own data (Synthea data ends in 2020/21),
        # so the lab paths really run on this data.
        for as_of in {date(2026, 11, 22), max(dates) + timedelta(days=1) if dates else None}:
            if as_of is None:
                continue
            evaluation = evaluate_patient(piece.resources, MAPPINGS, as_of,
                                          patient_id=piece.patient_id, aliases=piece.aliases,
                                          strict=True)
            assert len(evaluation.studies) == len(MAPPINGS.studies)
            for study in evaluation.studies:
                # None of these patients has lupus: never eligible, never a candidate.
                assert study.status == "ineligible"
                by_id = {c.id: c for c in study.criteria}
                assert by_id["sle-diagnosis"].result == "not-met"
                for crit in study.criteria:
                    assert crit.result in ("met", "not-met", "unknown")
                    assert crit.reason


def test_corpus_labs_are_read_with_their_units():
    """Conversions and reference ranges from real data produce sensible comparisons."""
    bundle = json.loads(next(p for p in FILES if p.name.startswith("Bundle-72ac")).read_text())
    piece = next(s for s in patient_slices(bundle, include_referenced=True)
                 if s.patient_id == "5")
    evaluation = evaluate_patient(piece.resources, MAPPINGS, date(2004, 12, 4),
                                  patient_id="5", strict=True)
    ln = {c.id: c for c in evaluation.studies[1].criteria}
    # ALT 475 U/L with the result's own ULN 45 U/L: above 3 x ULN, and the reason says so.
    assert ln["alt"].result == "not-met"
    assert ln["alt"].uln_source.startswith("reference range of Observation/")
    # Bilirubin written in umol/L is compared in mg/dL.
    assert ln["bilirubin"].value.unit == "mg/dL"


def test_stu3_bundle_gets_a_clear_error():
    stu3 = [p for p in FILES if _is_stu3(p)]
    assert stu3, "the corpus carries an STU3 bundle"
    with pytest.raises(RecordError) as err:
        patient_slices(json.loads(stu3[0].read_text()))
    assert "this service reads R4 only" in str(err.value)
