"""The manual rule with its exact reason and evidence: a person's confirmation by answer, date,
status, look-back and scope (a confirmation's `focus` naming studies), as an exclusion, and a
coded ECG interpretation deciding first."""

from __future__ import annotations

from datetime import date
from types import MappingProxyType
from typing import Any

import pytest

from service.engine.context import Context
from service.engine.decide import decide
from service.engine.model import CriterionMapping
from service.engine.record import build_record
from service.engine.registry import RULES
from service.engine.results import CriterionResult
from service.mappings import Mappings
from tests.support.builders import (
    AS_OF,
    ECG,
    SCT_ECG_ABNORMAL,
    SCT_ECG_NORMAL,
    birth_for,
    cc,
    confirmation,
    day,
    obs,
    patient,
)

LN, SLE = "pediatric-ln-cart", "refractory-sle-cart"
STUDY_SYSTEM = "urn:trial-eligibility:study"
WHERE = "Record it with the confirmation form on the patient page."
NEEDED = f"Needs a person to confirm: No lung lesions. {WHERE}"
NEEDED_HERE = f"Needs a person to confirm for this study: No lung lesions. {WHERE}"
PATIENT, STUDY = {"scope": "patient"}, {"scope": "study"}
ECG_CODED = PATIENT | {"interpretation": "ecg-interpretation", "normal": "ecg-normal",
                       "abnormal": "ecg-abnormal"}


def check(mappings: Mappings, params: dict[str, Any], resources: list[dict[str, Any]], *,
          study: str = LN, type: str = "inclusion", text: str = "No lung lesions.",
          research_studies: dict[str, str] | None = None, as_of: date = AS_OF
          ) -> CriterionResult:
    """The manual criterion `lung-lesions` with these parameters, for `study`."""
    spec = RULES["manual"]
    parsed = {k: spec.params[k].parse(v, mappings.concepts) for k, v in params.items()}
    assert spec.check(parsed) is None
    crit = CriterionMapping(id="lung-lesions", text=text, rule="manual", kind="manual",
                            type=type,  # type: ignore[arg-type]
                            params=MappingProxyType(parsed), source="test")
    record = build_record([patient(birth_for(12), "female"), *resources], mappings)
    ctx = Context(record=record, mappings=mappings, as_of=as_of, study=study,
                  research_studies=MappingProxyType(research_studies or {}))
    return decide(ctx, crit)


def said(answer: Any = True, when: str | None = day(5), oid: str = "m1", cid: str = "lung-lesions",
         status: str = "final", focus: list[Any] | None = None) -> dict[str, Any]:
    res = confirmation(cid, True, when, status) | {"id": oid}
    res.pop("valueBoolean")
    if answer is not None:
        res["valueBoolean"] = answer
    if when is None:
        res.pop("effectiveDateTime")
    if focus is not None:
        res["focus"] = focus
    return res


def study_id(key: Any) -> dict[str, Any]:
    return {"identifier": {"system": STUDY_SYSTEM, "value": key}}


def ecg(code: str, when: str = day(10), oid: str = "e1") -> dict[str, Any]:
    return obs(ECG, value_concept=cc(code), date=when, oid=oid)


RS1 = {"resourceType": "ResearchStudy", "id": "rs1", "status": "active",
       "identifier": [{"system": "urn:other", "value": "x"}, {"system": STUDY_SYSTEM, "value": LN}]}
M1 = ("Observation/m1",)
CONFIRMED = f"Confirmed by a person on {day(5)}."

# (id, params, resources, extra keywords, result, reason, evidence)
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any], str, str,
                  tuple[str, ...]]] = [
    ("nothing", PATIENT, [], {}, "unknown", NEEDED, ()),
    ("nothing-per-study", STUDY, [], {}, "unknown", NEEDED_HERE, ()),
    ("no-text", PATIENT, [], {"text": " "}, "unknown",
     f"Needs a person to confirm: lung-lesions. {WHERE}", ()),
    ("text-with-full-stops", PATIENT, [], {"text": " Lungs clear... "}, "unknown",
     f"Needs a person to confirm: Lungs clear. {WHERE}", ()),
    ("text-ending-in-x", PATIENT, [], {"text": "Chest X"}, "unknown",
     f"Needs a person to confirm: Chest X. {WHERE}", ()),
    ("yes", PATIENT, [said()], {}, "met", CONFIRMED, M1),
    ("no", PATIENT, [said(False)], {}, "not-met",
     f"A person recorded on {day(5)} that it is not met.", M1),
    # The look-back (90 days unless given; 0: any time): its first day counts.
    ("on-the-first-day", PATIENT, [said(when=day(90))], {}, "met",
     f"Confirmed by a person on {day(90)}.", M1),
    ("the-day-before", PATIENT, [said(when=day(91))], {}, "unknown",
     f"The confirmation of {day(91)} is older than 90 days; a person must confirm it again. "
     f"{WHERE}", M1),
    ("own-lookback", PATIENT | {"lookback_days": 30}, [said(when=day(31))], {}, "unknown",
     f"The confirmation of {day(31)} is older than 30 days; a person must confirm it again. "
     f"{WHERE}", M1),
    ("own-lookback-edge", PATIENT | {"lookback_days": 30}, [said(when=day(30))], {}, "met",
     f"Confirmed by a person on {day(30)}.", M1),
    ("any-time", PATIENT | {"lookback_days": 0}, [said(when=day(3000))], {}, "met",
     f"Confirmed by a person on {day(3000)}.", M1),
    # Which confirmations count: usable, of this criterion, dated up to the as-of date.
    ("preliminary", PATIENT, [said(status="preliminary")], {}, "unknown", NEEDED, ()),
    ("amended", PATIENT, [said(status="amended")], {}, "met", CONFIRMED, M1),
    ("another-criterion", PATIENT, [said(cid="leukapheresis")], {}, "unknown", NEEDED, ()),
    ("another-criterion-first", PATIENT, [said(cid="leukapheresis", when=day(2), oid="m2"),
                                          said()], {}, "met", CONFIRMED, M1),
    ("another-system", PATIENT, [said() | {"code": cc("lung-lesions", "urn:other")}], {},
     "unknown", NEEDED, ()),
    ("second-coding", PATIENT, [said() | {"code": {"coding": [
        {"system": "urn:other", "code": "x"},
        {"system": "urn:trial-eligibility:criterion", "code": "lung-lesions"}]}}], {}, "met",
     CONFIRMED, M1),
    ("after-the-as-of-date", PATIENT, [said(when=day(-1))], {}, "unknown", NEEDED, ()),
    ("on-the-as-of-date", PATIENT, [said(when=day(0))], {}, "met",
     f"Confirmed by a person on {day(0)}.", M1),
    ("undated", PATIENT, [said(when=None)], {}, "unknown", NEEDED, ()),
    ("later-then-usable", PATIENT, [said(when=day(-1), oid="m2"), said(status="preliminary",
                                                                       when=day(2), oid="m3"),
                                    said()], {}, "met", CONFIRMED, M1),
    # The newest answer decides; one without a yes or no gives way to an older one.
    ("newest-decides", PATIENT, [said(True, day(20), "m2"), said(False)], {}, "not-met",
     f"A person recorded on {day(5)} that it is not met.", M1),
    ("no-answer-then-yes", PATIENT, [said("yes", day(2), "m2"), said()], {}, "met",
     CONFIRMED, M1),
    ("no-answer-only", PATIENT, [said(None, day(2), "m2")], {}, "unknown", NEEDED, ()),
    # Scope: a per-study criterion needs a confirmation naming this study; one naming another
    # study counts for neither scope; one naming none counts per patient only.
    ("per-study-unnamed", STUDY, [said()], {}, "unknown", NEEDED_HERE, ()),
    ("per-study-named", STUDY, [said(focus=[study_id(LN)])], {}, "met", CONFIRMED, M1),
    ("per-study-named-among", STUDY, [said(focus=["junk", study_id(SLE), study_id(LN)])], {},
     "met", CONFIRMED, M1),
    ("per-study-unnamed-first", STUDY, [said(when=day(2), oid="m2"),
                                        said(focus=[study_id(LN)])], {}, "met", CONFIRMED, M1),
    ("other-study-first", PATIENT, [said(when=day(2), oid="m2", focus=[study_id(SLE)]),
                                    said()], {}, "met", CONFIRMED, M1),
    ("per-study-other", STUDY, [said(focus=[study_id(SLE)])], {}, "unknown", NEEDED_HERE, ()),
    ("per-patient-other", PATIENT, [said(focus=[study_id(SLE)])], {}, "unknown", NEEDED, ()),
    ("per-patient-named", PATIENT, [said(focus=[study_id(LN)])], {}, "met", CONFIRMED, M1),
    ("per-patient-focus-on-no-study", PATIENT, [said(focus=[{"reference": "Patient/p1"}])],
     {}, "met", CONFIRMED, M1),
    ("per-study-focus-on-no-study", STUDY, [said(focus=[
        {"reference": "Patient/p1"}, {"identifier": {"system": "urn:other", "value": LN}}])],
     {}, "unknown", NEEDED_HERE, ()),
    ("study-identifier-without-value", PATIENT, [said(focus=[study_id(7)])], {}, "unknown",
     NEEDED, ()),
    ("by-reference-the-caller-knows", STUDY,
     [said(focus=[{"reference": "https://fhir.example/ResearchStudy/rs9/"}])],
     {"research_studies": {SLE: "ResearchStudy/rs1", LN: "ResearchStudy/rs9"}}, "met",
     CONFIRMED, M1),
    # The study is the last ResearchStudy/ segment, whatever the server's base says.
    ("by-reference-last-segment", STUDY,
     [said(focus=[{"reference": "https://h/ResearchStudy/x/ResearchStudy/RSX"}])],
     {"research_studies": {LN: "ResearchStudy/RSX"}}, "met", CONFIRMED, M1),
    ("by-reference-to-another", STUDY, [said(focus=[{"reference": "ResearchStudy/rs1"}])],
     {"research_studies": {SLE: "ResearchStudy/rs1"}}, "unknown", NEEDED_HERE, ()),
    ("by-reference-in-the-record", STUDY, [RS1, said(focus=[{"reference": "ResearchStudy/rs1"}])],
     {}, "met", CONFIRMED, M1),
    ("record-study-of-another-system", STUDY,
     [RS1 | {"identifier": [{"system": "urn:other", "value": LN}]},
      said(focus=[{"reference": "ResearchStudy/rs1"}])], {}, "unknown", NEEDED_HERE, ()),
    ("by-reference-to-a-foreign-study", PATIENT, [said(focus=[{"reference": "ResearchStudy/x"}])],
     {}, "unknown", NEEDED, ()),
    # As an exclusion the answer says whether the condition is present.
    ("exclusion-present", PATIENT, [said(True)], {"type": "exclusion"}, "not-met",
     f"Excluded: a person recorded on {day(5)} that it is present: No lung lesions.", M1),
    ("exclusion-absent", PATIENT, [said(False)], {"type": "exclusion"}, "met",
     f"Not excluded: a person recorded on {day(5)} that it is absent: No lung lesions.", M1),
    ("exclusion-no-answer-then-absent", PATIENT, [said("no", day(2), "m2"), said(False)],
     {"type": "exclusion"}, "met",
     f"Not excluded: a person recorded on {day(5)} that it is absent: No lung lesions.", M1),
    ("exclusion-stale", PATIENT, [said(True, day(91))], {"type": "exclusion"}, "unknown",
     f"The confirmation of {day(91)} is older than 90 days; a person must confirm it again. "
     f"{WHERE}", M1),
    # A coded ECG interpretation decides before any confirmation; abnormal wins over normal.
    ("ecg-normal", ECG_CODED, [ecg(SCT_ECG_NORMAL), said(False)], {}, "met",
     f"The ECG of {day(10)} is coded normal.", ("Observation/e1",)),
    ("ecg-abnormal", ECG_CODED, [ecg(SCT_ECG_ABNORMAL), said(True)], {}, "not-met",
     f"The ECG of {day(10)} is coded abnormal.", ("Observation/e1",)),
    ("ecg-both", ECG_CODED, [obs(ECG, date=day(10), oid="e1", value_concept={"coding": [
        {"system": "http://snomed.info/sct", "code": SCT_ECG_NORMAL},
        {"system": "http://snomed.info/sct", "code": SCT_ECG_ABNORMAL}]})], {}, "not-met",
     f"The ECG of {day(10)} is coded abnormal.", ("Observation/e1",)),
    ("ecg-unknown-code-then-normal", ECG_CODED, [ecg("999", day(3), "e2"), ecg(SCT_ECG_NORMAL)],
     {}, "met", f"The ECG of {day(10)} is coded normal.", ("Observation/e1",)),
    ("ecg-unknown-code", ECG_CODED, [ecg("999"), said()], {}, "met", CONFIRMED, M1),
    ("ecg-other-system", ECG_CODED, [obs(ECG, date=day(10), oid="e1",
                                         value_concept=cc(SCT_ECG_NORMAL, "urn:x"))], {},
     "unknown", NEEDED, ()),
    ("ecg-stale", ECG_CODED, [ecg(SCT_ECG_NORMAL, day(91))], {}, "unknown", NEEDED, ()),
    ("ecg-stale-then-confirmed", ECG_CODED, [ecg(SCT_ECG_ABNORMAL, day(91)), said()], {},
     "met", CONFIRMED, M1),
    ("ecg-on-the-first-day", ECG_CODED, [ecg(SCT_ECG_NORMAL, day(90))], {}, "met",
     f"The ECG of {day(90)} is coded normal.", ("Observation/e1",)),
    ("ecg-own-lookback", ECG_CODED | {"lookback_days": 30}, [ecg(SCT_ECG_NORMAL, day(31))], {},
     "unknown", NEEDED, ()),
    ("ecg-normal-only-asked", {"scope": "patient", "interpretation": "ecg-interpretation",
                               "normal": "ecg-normal"}, [ecg(SCT_ECG_ABNORMAL)], {}, "unknown",
     NEEDED, ()),
    ("ecg-abnormal-only-asked", {"scope": "patient", "interpretation": "ecg-interpretation",
                                 "abnormal": "ecg-abnormal"}, [ecg(SCT_ECG_NORMAL)], {},
     "unknown", NEEDED, ()),
    ("ecg-abnormal-only-asked-abnormal", {"scope": "patient",
                                          "interpretation": "ecg-interpretation",
                                          "abnormal": "ecg-abnormal"},
     [ecg(SCT_ECG_ABNORMAL)], {}, "not-met", f"The ECG of {day(10)} is coded abnormal.",
     ("Observation/e1",)),
    ("ecg-not-asked", PATIENT, [ecg(SCT_ECG_NORMAL)], {}, "unknown", NEEDED, ()),
]


@pytest.mark.parametrize(("params", "resources", "extra", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_manual(every_study_mappings, params, resources, extra, expected, reason, evidence):
    found = check(every_study_mappings, params, resources, **extra)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value is None
