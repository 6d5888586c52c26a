"""The ln-biopsy rule (class III/IV lupus nephritis with a recent kidney biopsy) with its exact
reason, value and evidence: the biopsy's age at the limit, the newest biopsy, a class
superseded by a newer other class, tentative or written-only classes, nephritis without a
class, pathology reports that are class and biopsy at once."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.results import Value
from tests.support.builders import (
    SCT_CLASS_III,
    SCT_CLASS_IV,
    SCT_CLASS_V,
    SCT_KIDNEY_BIOPSY,
    SCT_LN,
    cc,
    condition,
    day,
    diagnostic_report,
    procedure,
)

CLASS_II = "4676006"
LN = {"classes": ["ln-class-iii-iv"], "biopsy": ["kidney-biopsy"], "max_age_days": 183,
      "nephritis": "lupus-nephritis",
      "other_classes": ["ln-class-ii", "ln-class-i-vi", "ln-class-v"]}
BARE = {k: v for k, v in LN.items() if k not in ("nephritis", "other_classes")}
NO_CLASS = ("No active class III or IV lupus nephritis is recorded (Condition or pathology "
            "conclusion).")
NOT_PROVEN = "which does not prove the diagnosis: a clinician must confirm it."
REVIEW = "it is not missing, but a coded diagnosis or a person's review is needed."
NO_BIOPSY = "Class III/IV lupus nephritis is recorded, but no dated kidney biopsy."
SUPERSEDED = " (an older required class is superseded by it)"


def cls(code: str, cid: str, onset: str | None = day(60), **kw: Any) -> dict[str, Any]:
    res = condition(code, cid=cid, onset=onset, **kw)
    res["code"]["text"] = {SCT_CLASS_III: "LN class III", SCT_CLASS_IV: "LN class IV",
                           SCT_CLASS_V: "LN class V", CLASS_II: "LN class II",
                           SCT_LN: "Lupus nephritis"}[code]
    return res


def biopsy(days: int | None, pid: str = "b1") -> dict[str, Any]:
    return procedure(SCT_KIDNEY_BIOPSY, day(days) if days is not None else None, pid=pid)


def met(days: int, *evidence: str) -> tuple[str, str, Value, tuple[str, ...]]:
    return ("met", f"Class III/IV lupus nephritis with a kidney biopsy on {day(days)}, {days} "
            "days before screening (limit 183).", Value(days, "d"), evidence)


IV, B1 = "Condition/c4", "Procedure/b1"

# (id, params, resources, (result, reason, value, evidence))
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]],
                  tuple[str, str, Value | None, tuple[str, ...]]]] = [
    ("biopsy-at-the-limit", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(183)], met(183, IV, B1)),
    ("biopsy-a-day-older", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(184)],
     ("not-met", f"The latest kidney biopsy ({day(184)}) is 184 days before screening, more "
      "than 183 days.", Value(184, "d"), (IV, B1))),
    ("biopsy-today", BARE, [cls(SCT_CLASS_III, "c3"), biopsy(0)],
     met(0, "Condition/c3", B1)),
    ("own-limit", LN | {"max_age_days": 30}, [cls(SCT_CLASS_IV, "c4"), biopsy(31)],
     ("not-met", f"The latest kidney biopsy ({day(31)}) is 31 days before screening, more "
      "than 30 days.", Value(31, "d"), (IV, B1))),
    ("own-limit-edge", LN | {"max_age_days": 30}, [cls(SCT_CLASS_IV, "c4"), biopsy(30)],
     ("met", f"Class III/IV lupus nephritis with a kidney biopsy on {day(30)}, 30 days before "
      "screening (limit 30).", Value(30, "d"), (IV, B1))),
    ("newest-biopsy", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(400), biopsy(20, "b2")],
     met(20, IV, "Procedure/b2")),
    ("undated-class", LN, [cls(SCT_CLASS_IV, "c4", None), biopsy(20)], met(20, IV, B1)),
    ("two-classes", LN, [cls(SCT_CLASS_IV, "c4", day(30)), cls(SCT_CLASS_III, "c3", day(90)),
                         biopsy(20)], met(20, IV, "Condition/c3", B1)),
    # No dated biopsy up to the as-of date: undated ones are cited, later ones are not.
    ("biopsy-undated", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(None)],
     ("unknown", NO_BIOPSY, None, (IV, B1))),
    ("biopsy-later", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(-1)],
     ("unknown", NO_BIOPSY, None, (IV,))),
    ("biopsy-later-and-undated", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(-1), biopsy(None, "b2")],
     ("unknown", NO_BIOPSY, None, (IV, "Procedure/b2"))),
    ("no-biopsy", LN, [cls(SCT_CLASS_IV, "c4")], ("unknown", NO_BIOPSY, None, (IV,))),
    ("biopsy-later-and-older", LN, [cls(SCT_CLASS_IV, "c4"), biopsy(-1, "b2"), biopsy(100)],
     met(100, IV, B1)),
    # A pathology report coding the class is the class and the biopsy at once.
    ("pathology-report", LN,
     [diagnostic_report(when=day(100), conclusion=[SCT_CLASS_IV], rid="r1")],
     met(100, "DiagnosticReport/r1")),
    ("pathology-report-and-biopsy", LN,
     [diagnostic_report(when=day(100), conclusion=[SCT_CLASS_IV], rid="r1"), biopsy(150)],
     met(100, "DiagnosticReport/r1")),
    # A report coded as a kidney biopsy is a biopsy.
    ("biopsy-report", LN, [cls(SCT_CLASS_IV, "c4"), diagnostic_report(when=day(20), rid="r2")
                           | {"code": cc(SCT_KIDNEY_BIOPSY)}], met(20, IV, "DiagnosticReport/r2")),
    # A report concluding another class is named by its conclusions, not by its own code.
    ("pathology-report-class-v", LN,
     [diagnostic_report(when=day(30), rid="r5", conclusion=[SCT_CLASS_V])], (
         "not-met", f"The most recent lupus nephritis class recorded is Code {SCT_CLASS_V} "
         "(DiagnosticReport/r5), not class III or IV.", None, ("DiagnosticReport/r5",))),
    ("pathology-report-displays", LN,
     [diagnostic_report(when=day(30), rid="r5") | {"conclusionCode": [
         cc(SCT_CLASS_V, display="Lupus nephritis class V"), "junk",
         cc("263756000", display="Glomerular sclerosis"),
         cc(SCT_CLASS_V, display="Lupus nephritis class V")]}, biopsy(20)],
     ("not-met", "The most recent lupus nephritis class recorded is Lupus nephritis class V, "
      "Glomerular sclerosis (DiagnosticReport/r5), not class III or IV.", None,
      ("DiagnosticReport/r5",))),
    # A conclusion that names nothing (no text, no display, no code) is left out of the name.
    ("pathology-report-unnamed-conclusions", LN,
     [diagnostic_report(when=day(30), rid="r5") | {"conclusionCode": [
         {}, {"text": " "}, {"coding": [{"system": "http://snomed.info/sct"}]},
         cc(SCT_CLASS_V)]}, biopsy(20)],
     ("not-met", f"The most recent lupus nephritis class recorded is Code {SCT_CLASS_V} "
      "(DiagnosticReport/r5), not class III or IV.", None, ("DiagnosticReport/r5",))),
    ("report-coded-as-the-class", LN,
     [diagnostic_report(when=day(30), rid="r5") | {"code": cc(SCT_CLASS_V)}], (
         "not-met", f"The most recent lupus nephritis class recorded is Code {SCT_CLASS_V} "
         "(DiagnosticReport/r5), not class III or IV.", None, ("DiagnosticReport/r5",))),
    # Which classes count: active, confirmed, up to the as-of date.
    ("class-resolved", LN, [cls(SCT_CLASS_IV, "c4", clinical="resolved"), biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    ("class-later", LN, [cls(SCT_CLASS_IV, "c4", day(-1)), biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    ("class-on-the-as-of-date", LN, [cls(SCT_CLASS_IV, "c4", day(0)), biopsy(20)],
     met(20, IV, B1)),
    ("class-provisional", LN, [cls(SCT_CLASS_IV, "c4", verification="provisional"), biopsy(20)],
     ("unknown", f"LN class IV is recorded as provisional (Condition/c4), {NOT_PROVEN}", None,
      (IV,))),
    ("class-provisional-resolved", LN,
     [cls(SCT_CLASS_IV, "c4", verification="provisional", clinical="resolved"), biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    # The newest recorded class decides: another class after III/IV supersedes it.
    ("superseded", LN, [cls(SCT_CLASS_IV, "c4", day(300)), cls(CLASS_II, "c2", day(100)),
                        biopsy(20)],
     ("not-met", f"The most recent lupus nephritis class recorded is LN class II (Condition/c2),"
      f" not class III or IV{SUPERSEDED}.", None, ("Condition/c2", IV))),
    ("class-v-alone", LN, [cls(SCT_CLASS_V, "c5"), biopsy(20)],
     ("not-met", "The most recent lupus nephritis class recorded is LN class V (Condition/c5), "
      "not class III or IV.", None, ("Condition/c5",))),
    ("two-other-classes", LN, [cls(SCT_CLASS_V, "c5", day(50)), cls(CLASS_II, "c2", day(50)),
                               cls(SCT_CLASS_V, "c6", day(50)), cls(CLASS_II, "c1", day(80))],
     ("not-met", "The most recent lupus nephritis class recorded is LN class II, LN class V "
      "(Condition/c2), not class III or IV.", None,
      ("Condition/c2", "Condition/c6", "Condition/c5"))),
    ("with-a-membranous-component", LN, [cls(SCT_CLASS_IV, "c4", day(60)),
                                         cls(SCT_CLASS_V, "c5", day(60)), biopsy(20)],
     met(20, IV, B1)),
    ("older-other-class", LN, [cls(SCT_CLASS_IV, "c4", day(60)),
                               cls(CLASS_II, "c2", day(61)), biopsy(20)], met(20, IV, B1)),
    ("undated-required-class", LN, [cls(SCT_CLASS_IV, "c4", None),
                                    cls(SCT_CLASS_V, "c5", day(400)), biopsy(20)],
     ("not-met", "The most recent lupus nephritis class recorded is LN class V (Condition/c5), "
      f"not class III or IV{SUPERSEDED}.", None, ("Condition/c5", IV))),
    ("undated-other-class", LN, [cls(SCT_CLASS_IV, "c4", day(400)),
                                 cls(SCT_CLASS_V, "c5", None), biopsy(20)], met(20, IV, B1)),
    ("tentative-other-class", LN, [cls(SCT_CLASS_IV, "c4", day(300)),
                                   cls(CLASS_II, "c2", day(100), verification="differential"),
                                   biopsy(20)], met(20, IV, B1)),
    ("other-classes-not-asked", BARE, [cls(SCT_CLASS_IV, "c4", day(300)),
                                       cls(CLASS_II, "c2", day(100)), biopsy(20)],
     met(20, IV, B1)),
    # Lupus nephritis without a class, with a biopsy in the window: the class is not recorded.
    ("nephritis-and-biopsy", LN, [cls(SCT_LN, "n1"), biopsy(183)],
     ("unknown", f"Lupus nephritis is recorded (Condition/n1) with a kidney biopsy on "
      f"{day(183)}, but the class is not recorded (class III or IV is required).", None,
      ("Condition/n1", B1))),
    ("nephritis-and-old-biopsy", LN, [cls(SCT_LN, "n1"), biopsy(184)],
     ("not-met", NO_CLASS, None, ())),
    ("nephritis-and-two-biopsies", LN, [cls(SCT_LN, "n1"), biopsy(10, "b2"), biopsy(100)],
     ("unknown", f"Lupus nephritis is recorded (Condition/n1) with a kidney biopsy on "
      f"{day(10)}, but the class is not recorded (class III or IV is required).", None,
      ("Condition/n1", "Procedure/b2"))),
    ("nephritis-resolved", LN, [cls(SCT_LN, "n1", clinical="resolved"), biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    ("nephritis-provisional", LN, [cls(SCT_LN, "n1", verification="provisional"), biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    ("nephritis-not-asked", BARE, [cls(SCT_LN, "n1"), biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    ("nephritis-without-biopsy", LN, [cls(SCT_LN, "n1")], ("not-met", NO_CLASS, None, ())),
    # Written only as text: not missing.
    ("written-only", LN, [condition("0", "urn:none", cid="c9") | {
        "code": {"text": "Lupus nephritis class IV"}}, biopsy(20)],
     ("unknown", f"Lupus nephritis class IV is recorded as text only (Condition/c9): {REVIEW}",
      None, ("Condition/c9",))),
    ("written-only-not-asked", BARE, [condition("0", "urn:none", cid="c9") | {
        "code": {"text": "Lupus nephritis class IV"}}, biopsy(20)],
     ("not-met", NO_CLASS, None, ())),
    ("nothing", LN, [], ("not-met", NO_CLASS, None, ())),
]


@pytest.mark.parametrize(("params", "resources", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_ln_biopsy(rule_check, params, resources, expected):
    found = rule_check("ln-biopsy", params, resources)
    assert (found.result, found.reason, found.value, found.evidence) == expected
