"""The engine's entry points: which patient and studies, the study's title, an unknown study
refused before the record is read, and a criterion whose data cannot be read made `unknown`."""

from __future__ import annotations

import pytest

import service.engine.evaluate as evaluate
from service.engine.evaluate import UnknownStudyError, evaluate_patient, evaluate_record
from service.engine.record import build_record
from tests.support.builders import AS_OF, LN, SLE, eligible_sle_patient, patient

MALFORMED = ("The record's data for this criterion is malformed and could not be read; review "
             "it by hand.")


def test_an_unknown_study_is_refused_before_the_record_is_read(every_study_mappings):
    known = ", ".join(every_study_mappings.studies)
    with pytest.raises(UnknownStudyError) as refused:
        evaluate_patient([], every_study_mappings, AS_OF, ["no-such-study"])
    assert str(refused.value) == f"unknown study 'no-such-study'; known: {known}"


def test_the_patient_asked_for_is_the_one_screened(every_study_mappings):
    both = [patient(pid="p1"), patient(pid="p2")]
    found = evaluate_patient(both, every_study_mappings, AS_OF, [SLE], patient_id="p2")
    assert found.patient_id == "p2"


def test_each_study_keeps_its_title(every_study_mappings):
    found = evaluate_patient(eligible_sle_patient(), every_study_mappings, AS_OF, [SLE, LN])
    assert [(s.study, s.title) for s in found.studies] == [
        (key, every_study_mappings.studies[key].title) for key in (SLE, LN)]


@pytest.fixture
def age_unreadable(monkeypatch: pytest.MonkeyPatch):
    # Stands for any data shape a rule trips over (the engine's own rules are proven not to
    # raise on bad input): the `age` criterion raises, the others are decided.
    real = evaluate.decide

    def decide(ctx, crit):
        if crit.id == "age":
            raise ValueError("a shape no rule expected")
        return real(ctx, crit)
    monkeypatch.setattr(evaluate, "decide", decide)


@pytest.mark.parametrize(("study", "cid"), [(SLE, "age"), ("autograph", "acute-flare")],
                         ids=["automatic inclusion", "manual exclusion"])
def test_a_criterion_whose_data_cannot_be_read_is_unknown_and_the_rest_decided(
        every_study_mappings, monkeypatch, study, cid):
    real = evaluate.decide

    def decide(ctx, crit):
        if crit.id == cid:
            raise ValueError("a shape no rule expected")
        return real(ctx, crit)
    monkeypatch.setattr(evaluate, "decide", decide)
    record = build_record(eligible_sle_patient(), every_study_mappings)
    crit = next(c for c in every_study_mappings.studies[study].criteria if c.id == cid)
    for found in (evaluate_patient(eligible_sle_patient(), every_study_mappings, AS_OF, [study]),
                  evaluate_record(record, every_study_mappings, AS_OF, [study])):
        criteria = {c.id: c for c in found.studies[0].criteria}
        broken = criteria[cid]
        assert (broken.id, broken.result, broken.kind, broken.type, broken.reason,
                broken.evidence) == (cid, "unknown", crit.kind, crit.type, MALFORMED, ())
        assert len(criteria) == len(every_study_mappings.studies[study].criteria)


def test_a_bundles_own_reference_to_its_patient_counts_when_given(every_study_mappings):
    plain = eligible_sle_patient()
    aliased = [{**r, "subject": {"reference": "urn:uuid:patient-1"}} if "subject" in r else r
               for r in plain]
    expected = evaluate_patient(plain, every_study_mappings, AS_OF, [SLE]).studies
    found = evaluate_patient(aliased, every_study_mappings, AS_OF, [SLE],
                             aliases=["urn:uuid:patient-1"]).studies
    without = evaluate_patient(aliased, every_study_mappings, AS_OF, [SLE]).studies
    assert found == expected != without


def test_strict_evaluation_lets_the_error_through(every_study_mappings, age_unreadable):
    with pytest.raises(ValueError, match="a shape no rule expected"):
        evaluate_patient(eligible_sle_patient(), every_study_mappings, AS_OF, [SLE], strict=True)
