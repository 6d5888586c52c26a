"""The refractory-SLE rule with its exact reasons and evidence: intolerances (which count, when
recorded, by reaction substance), the glucocorticoid course per kg (equivalents, doses per kg,
ranges, weights), the required agents and the DMARD count with undated uses (found surviving
by mutation testing: docs/mutation-testing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    RX_AZA,
    RX_CYC,
    RX_HCQ,
    RX_METHYLPRED,
    RX_MMF,
    RX_MPA,
    RX_MTX,
    RX_PREDNISONE,
    RX_TAC,
    WEIGHT,
    allergy,
    day,
    med_statement,
    obs,
)

PARAMS = {
    "steroid_min_mg_per_kg_day": "1", "steroid_min_days": 90, "required": ["hydroxychloroquine"],
    "dmards": [{"name": "cyclophosphamide", "concepts": ["cyclophosphamide"]},
               {"name": "mycophenolate", "concepts": ["mycophenolate-mofetil",
                                                      "mycophenolic-acid"]},
               {"name": "azathioprine", "concepts": ["azathioprine"]}],
    "min_dmards": 2, "glucocorticoids": ["prednisone", "methylprednisolone"],
}
UCUM = "http://unitsofmeasure.org"


def taken(code: str, mid: str, start: int = 200, end: int | None = 10, mg: float | None = 100,
          **kw: Any) -> dict[str, Any]:
    return med_statement(code, day(start), day(end) if end is not None else None,
                         dose=(mg, "mg") if mg is not None else None, mid=mid, **kw)


def kg(value: float, when: int = 20) -> dict[str, Any]:
    return obs(WEIGHT, value, "kg", day(when), oid="w1")


def ranged(res: dict[str, Any], low: float, high: float, unit: str = "mg") -> dict[str, Any]:
    res["dosage"][0]["doseAndRate"] = [{"doseRange": {
        "low": {"value": low, "system": UCUM, "code": unit},
        "high": {"value": high, "system": UCUM, "code": unit}}}]
    return res


def intolerance(code: str, aid: str, **fields: Any) -> dict[str, Any]:
    made = allergy(code, aid=aid)
    made.update(fields)
    return made


STEROID = taken(RX_PREDNISONE, "s1", 100, 10, 40)       # 40 mg/day = 1 mg/kg at 40 kg, 90 days
HCQ = taken(RX_HCQ, "h1")
DMARDS = [taken(RX_MMF, "d1"), taken(RX_AZA, "d2")]
ALL = [kg(40), STEROID, HCQ, *DMARDS]
MET = ("High-dose glucocorticoid for 90 days, hydroxychloroquine and 2 DMARDs (azathioprine, "
       "mycophenolate) are recorded.")
MET_EVIDENCE = ("MedicationStatement/s1", "MedicationStatement/h1", "MedicationStatement/d1",
                "MedicationStatement/d2")
RELEVANT = ("MedicationStatement/s1", "MedicationStatement/h1", "MedicationStatement/d1",
            "MedicationStatement/d2")
STEROID_MISSING = ("glucocorticoid >= 1 mg/kg/day prednisone-equivalent for >= 90 days "
                   "(longest high-dose course {} days)")


def not_shown(*missing: str) -> str:
    return (f"The medication history does not show: {'; '.join(missing)}; no intolerance to "
            "standard treatment is recorded.")


def partial(gaps: str, *missing: str) -> str:
    return f"Medication history is partial ({gaps}); not shown: {'; '.join(missing)}."


# (id, resources, result, reason, evidence)
CASES: list[tuple[str, list[dict[str, Any]], str, str, tuple[str, ...]]] = [
    ("all-shown", ALL, "met", MET, MET_EVIDENCE),
    ("methylprednisolone-equivalent", [kg(40), taken(RX_METHYLPRED, "s1", 100, 10, 32), HCQ,
                                       *DMARDS], "met", MET, MET_EVIDENCE),
    ("methylprednisolone-below", [kg(40), taken(RX_METHYLPRED, "s1", 100, 10, 31.9), HCQ,
                                  *DMARDS], "not-met", not_shown(STEROID_MISSING.format(0)),
     RELEVANT),
    ("one-day-short", [kg(40), taken(RX_PREDNISONE, "s1", 99, 10, 40), HCQ, *DMARDS], "not-met",
     not_shown(STEROID_MISSING.format(89)), RELEVANT),
    ("heavier", [kg(40.1), STEROID, HCQ, *DMARDS], "not-met",
     not_shown(STEROID_MISSING.format(0)), RELEVANT),
    ("dose-per-kg", [ranged(taken(RX_PREDNISONE, "s1", 100, 10, None), 1, 1, "mg/kg"), HCQ,
                     *DMARDS], "met", MET, MET_EVIDENCE),
    ("dose-per-kg-range-spans", [ranged(taken(RX_PREDNISONE, "s1", 100, 10, None), 0.5, 1,
                                        "mg/kg"), HCQ, *DMARDS], "unknown",
     partial("dose range of MedicationStatement/s1 spans 1 mg/kg/day",
             STEROID_MISSING.format(0)), RELEVANT),
    ("dose-range-spans", [kg(40), ranged(taken(RX_PREDNISONE, "s1", 100, 10, None), 39, 40),
                          HCQ, *DMARDS], "unknown",
     partial("dose range of MedicationStatement/s1 spans 1 mg/kg/day",
             STEROID_MISSING.format(0)), RELEVANT),
    ("dose-range-at-threshold", [kg(40), ranged(taken(RX_PREDNISONE, "s1", 100, 10, None), 40,
                                                60), HCQ, *DMARDS], "met", MET, MET_EVIDENCE),
    ("dose-range-below", [kg(40), ranged(taken(RX_PREDNISONE, "s1", 100, 10, None), 30, 39.9),
                          HCQ, *DMARDS], "not-met", not_shown(STEROID_MISSING.format(0)),
     RELEVANT),
    ("dose-unknown", [kg(40), taken(RX_PREDNISONE, "s1", 100, 10, None), HCQ, *DMARDS],
     "unknown", partial("dose of MedicationStatement/s1 unknown", STEROID_MISSING.format(0)),
     RELEVANT),
    ("no-weight", [STEROID, HCQ, *DMARDS], "unknown",
     partial("no body weight for mg/kg/day", STEROID_MISSING.format(0)), RELEVANT),
    # A body weight of 0 (a slip) converts nothing: unknown, as the daily-dose rule says.
    ("zero-weight", [kg(0), STEROID, HCQ, *DMARDS], "unknown",
     partial("no body weight for mg/kg/day", STEROID_MISSING.format(0)), RELEVANT),
    ("old-weight", [kg(40, 366), STEROID, HCQ, *DMARDS], "unknown",
     partial("no body weight for mg/kg/day", STEROID_MISSING.format(0)), RELEVANT),
    ("period-unknown", [kg(40), taken(RX_PREDNISONE, "s1", 100, None, 40), HCQ, *DMARDS],
     "unknown", partial("period of MedicationStatement/s1 unknown", STEROID_MISSING.format(0)),
     RELEVANT),
    # A use that cannot be read, listed first, does not hide the course that follows it.
    ("unread-then-course", [kg(40), taken(RX_PREDNISONE, "s0", 300, 250, None),
                            ranged(taken(RX_PREDNISONE, "s2", 300, 250, None), 20, 60),
                            taken(RX_PREDNISONE, "s3", 300, None, 40), STEROID, HCQ, *DMARDS],
     "met", MET, MET_EVIDENCE),
    ("no-hydroxychloroquine", [kg(40), STEROID, *DMARDS], "not-met",
     not_shown("hydroxychloroquine"),
     ("MedicationStatement/s1", "MedicationStatement/d1", "MedicationStatement/d2")),
    ("one-dmard", [kg(40), STEROID, HCQ, DMARDS[0]], "not-met",
     not_shown("at least 2 DMARDs (found 1: mycophenolate)"),
     ("MedicationStatement/s1", "MedicationStatement/h1", "MedicationStatement/d1")),
    ("one-agent-two-forms", [kg(40), STEROID, HCQ, DMARDS[0], taken(RX_MPA, "d3")], "not-met",
     not_shown("at least 2 DMARDs (found 1: mycophenolate)"),
     ("MedicationStatement/s1", "MedicationStatement/h1", "MedicationStatement/d1",
      "MedicationStatement/d3")),
    ("no-dmard", [kg(40), STEROID, HCQ], "not-met", not_shown("at least 2 DMARDs (found 0)"),
     ("MedicationStatement/s1", "MedicationStatement/h1")),
    ("nothing-shown", [kg(40), taken(RX_PREDNISONE, "s1", 100, 10, 10)], "not-met",
     not_shown(STEROID_MISSING.format(0), "hydroxychloroquine",
               "at least 2 DMARDs (found 0)"), ("MedicationStatement/s1",)),
    # A DMARD with a date but no period may be a therapy or a single dose: unknown.
    ("undated-dmard", [kg(40), STEROID, HCQ, DMARDS[0],
                       med_statement(RX_AZA, day(30), mid="d2", dose=(100, "mg"))], "unknown",
     partial("duration of azathioprine not recorded",
             "at least 2 DMARDs (found 1: mycophenolate)"), RELEVANT),
    ("undated-and-dated-same-agent", [kg(40), STEROID, HCQ, DMARDS[0], DMARDS[1],
                                      med_statement(RX_AZA, day(30), mid="d3",
                                                    dose=(100, "mg"))], "met", MET,
     MET_EVIDENCE),
    ("undated-not-enough", [kg(40), STEROID, HCQ,
                            med_statement(RX_AZA, day(30), mid="d2", dose=(100, "mg"))],
     "not-met", not_shown("at least 2 DMARDs (found 0)"),
     ("MedicationStatement/s1", "MedicationStatement/h1", "MedicationStatement/d2")),
    # Each agent of the list counts; methotrexate is not on this list.
    ("other-drugs-are-no-evidence", [kg(40), STEROID, DMARDS[0], taken(RX_MTX, "x1")],
     "not-met", not_shown("hydroxychloroquine", "at least 2 DMARDs (found 1: mycophenolate)"),
     ("MedicationStatement/s1", "MedicationStatement/d1")),
    # Per kg, the equivalent scales both ends of a range.
    ("per-kg-range-equivalent-spans", [ranged(taken(RX_METHYLPRED, "s1", 100, 10, None), 0.4,
                                              0.9, "mg/kg"), HCQ, *DMARDS], "unknown",
     partial("dose range of MedicationStatement/s1 spans 1 mg/kg/day",
             STEROID_MISSING.format(0)), RELEVANT),
    ("per-kg-range-equivalent-above", [ranged(taken(RX_METHYLPRED, "s1", 100, 10, None), 0.8,
                                              0.9, "mg/kg"), HCQ, *DMARDS], "met", MET,
     MET_EVIDENCE),
    ("mg-range-equivalent-spans", [kg(40), ranged(taken(RX_METHYLPRED, "s1", 100, 10, None), 16,
                                                  32), HCQ, *DMARDS], "unknown",
     partial("dose range of MedicationStatement/s1 spans 1 mg/kg/day",
             STEROID_MISSING.format(0)), RELEVANT),
    ("one-kg", [kg(1), taken(RX_PREDNISONE, "s1", 100, 10, 1), HCQ, *DMARDS], "met", MET,
     MET_EVIDENCE),
    # Two gaps and two things not shown, each listed.
    ("two-gaps", [kg(40), taken(RX_PREDNISONE, "s0", 300, 250, None),
                  taken(RX_PREDNISONE, "s1", 100, None, 40), DMARDS[0], DMARDS[1]], "unknown",
     partial("dose of MedicationStatement/s0 unknown; period of MedicationStatement/s1 unknown",
             STEROID_MISSING.format(0), "hydroxychloroquine"),
     ("MedicationStatement/s0", "MedicationStatement/s1", "MedicationStatement/d1",
      "MedicationStatement/d2")),
    ("no-history", [kg(40)], "unknown",
     "No medication history is recorded, so refractoriness cannot be judged.", ()),
]


@pytest.mark.parametrize(("resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refractory_sle(rule_check, resources, expected, reason, evidence):
    found = rule_check("refractory-sle", PARAMS, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value is None


def test_its_own_lists_and_look_back(rule_check):
    """Three DMARDs needed, no `required`, a body weight's own look-back."""
    three = {**PARAMS, "min_dmards": 3}
    found = rule_check("refractory-sle", three, ALL)
    assert (found.result, found.reason) == ("not-met", not_shown(
        "at least 3 DMARDs (found 2: azathioprine, mycophenolate)"))
    undated = [med_statement(code, day(30), mid=mid, dose=(100, "mg"))
               for code, mid in ((RX_AZA, "u1"), (RX_CYC, "u2"))]
    found = rule_check("refractory-sle", three, [kg(40), STEROID, HCQ, DMARDS[0], *undated])
    assert (found.result, found.reason) == ("unknown", partial(
        "duration of azathioprine, cyclophosphamide not recorded",
        "at least 3 DMARDs (found 1: mycophenolate)"))
    no_required = {k: v for k, v in PARAMS.items() if k != "required"}
    found = rule_check("refractory-sle", no_required, [kg(40), STEROID])
    assert (found.result, found.reason) == ("not-met", not_shown(
        "at least 2 DMARDs (found 0)"))
    recent = {**PARAMS, "weight_lookback_days": 20}
    assert rule_check("refractory-sle", recent, ALL).result == "met"   # weighed 20 days ago
    found = rule_check("refractory-sle", {**PARAMS, "weight_lookback_days": 19}, ALL)
    assert (found.result, found.reason) == ("unknown", partial(
        "no body weight for mg/kg/day", STEROID_MISSING.format(0)))


def test_a_glucocorticoid_without_a_prednisone_equivalent_cannot_be_compared(rule_check):
    """A mapping may list an agent the concepts give no factor (tacrolimus stands in)."""
    listed = {**PARAMS, "glucocorticoids": ["prednisone", "tacrolimus"]}
    found = rule_check("refractory-sle", listed, [kg(40), taken(RX_TAC, "t1", 100, 10, 40), HCQ,
                                                  *DMARDS])
    assert (found.result, found.reason, found.evidence) == ("unknown", partial(
        "no prednisone equivalent for MedicationStatement/t1", STEROID_MISSING.format(0)),
        ("MedicationStatement/t1", "MedicationStatement/h1", "MedicationStatement/d1",
         "MedicationStatement/d2"))
    found = rule_check("refractory-sle", listed, [*ALL, taken(RX_TAC, "t1", 100, 10, 40)])
    assert (found.result, found.reason) == ("met", MET)


REACTION = {"reaction": ["junk", {"substance": {"coding": [
    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": RX_CYC}]}}]}
CS = "http://terminology.hl7.org/CodeSystem/allergyintolerance-"


def status(kind: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": CS + kind, "code": code}]}


# (id, allergies, names, evidence ids); every other record has no medication history.
INTOLERANCES: list[tuple[str, list[dict[str, Any]], str | None, tuple[str, ...]]] = [
    ("one", [intolerance(RX_HCQ, "a1")], "hydroxychloroquine", ("a1",)),
    ("steroid", [intolerance(RX_PREDNISONE, "a1")], "prednisone", ("a1",)),
    ("dmard", [intolerance(RX_MMF, "a1")], "mycophenolate-mofetil", ("a1",)),
    ("sorted-once", [intolerance(RX_HCQ, "a1"), intolerance(RX_AZA, "a2"),
                     intolerance(RX_HCQ, "a3")], "azathioprine, hydroxychloroquine",
     ("a1", "a2", "a3")),
    ("by-reaction", [intolerance("7980", "a1", **REACTION)], "cyclophosphamide", ("a1",)),
    ("unrelated", [intolerance("7980", "a1")], None, ()),
    ("refuted-then-shown", [intolerance(RX_HCQ, "a1", verificationStatus=status(
        "verification", "refuted")), intolerance(RX_AZA, "a2")], "azathioprine", ("a2",)),
    ("entered-in-error", [intolerance(RX_HCQ, "a1", verificationStatus=status(
        "verification", "entered-in-error"))], None, ()),
    ("inactive", [intolerance(RX_HCQ, "a1", clinicalStatus=status("clinical", "inactive"))],
     None, ()),
    ("resolved", [intolerance(RX_HCQ, "a1", clinicalStatus=status("clinical", "resolved"))],
     None, ()),
    ("unconfirmed", [intolerance(RX_HCQ, "a1", verificationStatus=status(
        "verification", "unconfirmed"))], "hydroxychloroquine", ("a1",)),
    ("recorded-on-as-of", [intolerance(RX_HCQ, "a1", recordedDate=day(0))],
     "hydroxychloroquine", ("a1",)),
    ("recorded-after-then-shown", [intolerance(RX_HCQ, "a1", recordedDate=day(-1)),
                                   intolerance(RX_AZA, "a2")], "azathioprine", ("a2",)),
    ("onset-after", [intolerance(RX_HCQ, "a1", onsetDateTime=day(-1))], None, ()),
    ("recorded-before-onset-after", [intolerance(RX_HCQ, "a1", recordedDate=day(5),
                                                 onsetDateTime=day(-1))],
     "hydroxychloroquine", ("a1",)),
]


@pytest.mark.parametrize(("allergies", "names", "ids"), [c[1:] for c in INTOLERANCES],
                         ids=[c[0] for c in INTOLERANCES])
def test_intolerance_to_standard_treatment(rule_check, allergies, names, ids):
    found = rule_check("refractory-sle", PARAMS, allergies)
    if names is None:
        assert (found.result, found.reason, found.evidence) == (
            "unknown", "No medication history is recorded, so refractoriness cannot be judged.",
            ())
    else:
        assert (found.result, found.reason, found.evidence) == (
            "met", f"Intolerant to standard treatment ({names}).",
            tuple(f"AllergyIntolerance/{i}" for i in ids))


@pytest.mark.parametrize(("required", "resources", "named", "evidence"), [
    (None, [kg(40), STEROID, *DMARDS], "",
     ("MedicationStatement/s1", "MedicationStatement/d1", "MedicationStatement/d2")),
    (["tacrolimus", "hydroxychloroquine"], [*ALL, taken(RX_TAC, "t1")],
     ", hydroxychloroquine, tacrolimus",
     (*MET_EVIDENCE[:2], "MedicationStatement/t1", *MET_EVIDENCE[2:])),
], ids=["none", "two, named in order"])
def test_the_met_sentence_names_each_required_agent(rule_check, required, resources, named,
                                                    evidence):
    params = {k: v for k, v in PARAMS.items() if k != "required"}
    found = rule_check("refractory-sle", {**params, "required": required} if required else params,
                       resources)
    assert (found.result, found.reason, found.evidence) == ("met", (
        f"High-dose glucocorticoid for 90 days{named} and 2 DMARDs (azathioprine, "
        "mycophenolate) are recorded."), evidence)
