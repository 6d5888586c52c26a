"""The medication-for rule (a medication given for a condition, by its reasonCode or
reasonReference) with its exact reason and evidence: window edges, undated and open-ended
uses, a medication list, uses without an indication."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import ICD10CM, RX_PREDNISONE, cc, day, med_statement

LEVETIRACETAM = "114477"          # RxNorm; no concept of the mappings names it
EPILEPSY = cc("G40.909", ICD10CM)  # a cns-disease code (mappings/examples)


def given(start: int | None, end: int | None, mid: str, *, code: str = LEVETIRACETAM,
          reason: dict[str, Any] | None = EPILEPSY, status: str = "completed") -> dict[str, Any]:
    res = med_statement(code, day(start) if start is not None else None,
                        day(end) if end is not None else None, dose=(500, "mg"), mid=mid,
                        status=status)
    if reason is not None:
        res["reasonCode"] = [reason]
    return res


WITHIN = {"indications": ["cns-disease"], "within_days": 730}
EVER = {"indications": ["cns-disease"]}
PRED_ONLY = {**WITHIN, "concepts": ["prednisone"]}
W = " in the 730 days before 2026-11-15"

CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    ("inside", WITHIN, [given(100, 70, "m1")]),
    ("ends-on-first-day", WITHIN, [given(900, 730, "m1")]),
    ("ends-the-day-before", WITHIN, [given(900, 731, "m1")]),
    ("starts-on-first-day", WITHIN, [given(730, None, "m1", status="active")]),
    ("open-end-before", WITHIN, [given(900, None, "m1")]),
    ("undated", WITHIN, [given(None, None, "m1")]),
    ("undated-ever", EVER, [given(None, None, "m1")]),
    ("ever-long-ago", EVER, [given(4000, 3900, "m1")]),
    ("no-indication", WITHIN, [given(100, 70, "m1", reason=None)]),
    ("other-indication", WITHIN, [given(100, 70, "m1", reason=cc("I10", ICD10CM))]),
    ("listed-medication", PRED_ONLY, [given(100, 70, "m1", code=RX_PREDNISONE)]),
    ("unlisted-medication", PRED_ONLY, [given(100, 70, "m1")]),
    ("several", WITHIN, [given(None, None, "m0"), given(100, 70, "m1"), given(50, 20, "m2")]),
    ("several-unsure", WITHIN, [given(None, None, "m1"), given(900, None, "m2")]),
    ("open-end-from-first-day", WITHIN, [given(730, None, "m1")]),
    ("two-indications", {**WITHIN, "indications": ["cns-disease", "sle"]}, []),
]

# (id, result, reason, evidence) of each case above
EXPECTED = [
    ('inside', 'met',
     'A medication was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 '
     'days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('ends-on-first-day', 'met',
     'A medication was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 '
     'days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('ends-the-day-before', 'not-met',
     'No medication recorded as given for non-malignant CNS disease in the 730 days before '
     '2026-11-15.',
     ()),
    ('starts-on-first-day', 'met',
     'A medication was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 '
     'days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('open-end-before', 'unknown',
     'A medication for non-malignant CNS disease is recorded (MedicationStatement/m1), but its '
     'dates do not show whether it was taken in the 730 days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('undated', 'unknown',
     'A medication for non-malignant CNS disease is recorded (MedicationStatement/m1), but its '
     'dates do not show whether it was taken in the 730 days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('undated-ever', 'unknown',
     'A medication for non-malignant CNS disease is recorded (MedicationStatement/m1), but its '
     'dates do not show whether it was taken.',
     ('MedicationStatement/m1',)),
    ('ever-long-ago', 'met',
     'A medication was given for non-malignant CNS disease (MedicationStatement/m1).',
     ('MedicationStatement/m1',)),
    ('no-indication', 'not-met',
     'No medication recorded as given for non-malignant CNS disease in the 730 days before '
     '2026-11-15.',
     ()),
    ('other-indication', 'not-met',
     'No medication recorded as given for non-malignant CNS disease in the 730 days before '
     '2026-11-15.',
     ()),
    ('listed-medication', 'met',
     'Prednisone was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 '
     'days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('unlisted-medication', 'not-met',
     'No medication recorded as given for non-malignant CNS disease in the 730 days before '
     '2026-11-15.',
     ()),
    ('several', 'met',
     'A medication was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 '
     'days before 2026-11-15.',
     ('MedicationStatement/m1', 'MedicationStatement/m2')),
    ('several-unsure', 'unknown',
     'A medication for non-malignant CNS disease is recorded (MedicationStatement/m1), but its '
     'dates do not show whether it was taken in the 730 days before 2026-11-15.',
     ('MedicationStatement/m1', 'MedicationStatement/m2')),
    ('open-end-from-first-day', 'met',
     'A medication was given for non-malignant CNS disease (MedicationStatement/m1) in the 730 '
     'days before 2026-11-15.',
     ('MedicationStatement/m1',)),
    ('two-indications', 'not-met',
     'No medication recorded as given for non-malignant CNS disease or SLE in the 730 days '
     'before 2026-11-15.',
     ()),
]


@pytest.mark.parametrize(("params", "resources", "expected", "reason", "evidence"),
                         [(p, r, *e[1:]) for (_, p, r), e in zip(CASES, EXPECTED, strict=True)],
                         ids=[c[0] for c in CASES])
def test_medication_for(rule_check, params, resources, expected, reason, evidence):
    found = rule_check("medication-for", params, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)


def test_the_expectations_line_up_with_the_cases():
    assert [c[0] for c in CASES] == [e[0] for e in EXPECTED]
