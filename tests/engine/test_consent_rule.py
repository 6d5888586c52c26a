"""The consent rule with its exact reason and evidence: a Consent for this study by status and
date, the newest decision, a research consent naming no study (scope or category), one naming
another study."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from service.engine.context import Context
from service.engine.decide import decide
from service.engine.model import CriterionMapping
from service.engine.record import build_record
from service.engine.results import CriterionResult
from service.mappings import Mappings, load_mappings
from tests.support.builders import AS_OF, birth_for, cc, day, patient

LN, SLE = "pediatric-ln-cart", "refractory-sle-cart"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ONCE = "Record it with the confirmation form on the patient page once it is signed."
NONE = ("No signed informed consent for this study is recorded: Participants and guardians "
        f"sign. {ONCE}")
GENERIC = "A research consent naming no particular study is active"
CHECK = "; check that it covers this study."


def check(mappings: Mappings, resources: list[dict[str, Any]], study: str = LN
          ) -> CriterionResult:
    crit = CriterionMapping(id="consent", text="Participants and guardians sign.",
                            rule="consent", kind="manual", type="inclusion",
                            params=MappingProxyType({}), source="test")
    record = build_record([patient(birth_for(12), "female"), *resources], mappings)
    return decide(Context(record=record, mappings=mappings, as_of=AS_OF, study=study), crit)


def consent(cid: str = "k1", status: str = "active", when: str | None = day(3), *,
            names: str | None = f"urn:trial-eligibility:study:{LN}",
            scope: str | None = "research", category: list[str] = ()) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Consent", "id": cid, "status": status,
                           "patient": {"reference": "Patient/p1"}}
    if when is not None:
        res["dateTime"] = when
    if scope is not None:
        res["scope"] = cc(scope, SCOPE)
    if category:
        res["category"] = [cc(c, SCOPE) for c in category]
    if names is not None:
        res["policy"] = [{"uri": names}]
    return res


def withdrawn(status: str) -> str:
    return (f"The latest consent for this study is {status}; an active, signed consent is "
            f"needed. {ONCE}")


K1 = ("Consent/k1",)

# (id, resources, result, reason, evidence)
CASES: list[tuple[str, list[dict[str, Any]], str, str, tuple[str, ...]]] = [
    ("nothing", [], "unknown", NONE, ()),
    ("active", [consent()], "met",
     f"Informed consent for this study is recorded as active (signed {day(3)}).", K1),
    ("active-undated", [consent(when=None)], "met",
     "Informed consent for this study is recorded as active.", K1),
    ("by-registry-number", [consent(names="https://clinicaltrials.gov/study/NCT06904729")],
     "met", f"Informed consent for this study is recorded as active (signed {day(3)}).", K1),
    ("on-the-as-of-date", [consent(when=day(0))], "met",
     f"Informed consent for this study is recorded as active (signed {day(0)}).", K1),
    ("after-the-as-of-date", [consent(when=day(-1))], "unknown", NONE, ()),
    # Only a decision counts: signed (active), refused (rejected), withdrawn (inactive).
    ("draft", [consent(status="draft")], "unknown", NONE, ()),
    ("draft-listed-first", [consent("k2", "draft"), consent()], "met",
     f"Informed consent for this study is recorded as active (signed {day(3)}).", K1),
    ("later-listed-first", [consent("k2", when=day(-1), status="inactive"), consent()], "met",
     f"Informed consent for this study is recorded as active (signed {day(3)}).", K1),
    ("proposed", [consent(status="proposed")], "unknown", NONE, ()),
    ("rejected", [consent(status="rejected")], "unknown", withdrawn("rejected"), K1),
    ("inactive", [consent(status="inactive")], "unknown", withdrawn("inactive"), K1),
    # The newest decision counts; an undated one is the oldest.
    ("withdrawn-later", [consent("k2", when=day(200)), consent(status="inactive")], "unknown",
     withdrawn("inactive"), K1),
    ("signed-again-later", [consent(status="inactive", when=day(200), cid="k2"), consent()],
     "met", f"Informed consent for this study is recorded as active (signed {day(3)}).", K1),
    # Two decisions of one day: the one listed first counts (no order between them is known).
    ("same-day", [consent("k2", "inactive"), consent()], "unknown", withdrawn("inactive"),
     ("Consent/k2",)),
    ("undated-signed-dated-withdrawn", [consent("k2", when=None), consent(status="rejected")],
     "unknown", withdrawn("rejected"), K1),
    ("undated-withdrawn-dated-signed", [consent("k2", "inactive", None), consent()], "met",
     f"Informed consent for this study is recorded as active (signed {day(3)}).", K1),
    # Another study's consent does not count, nor a general one beside one for this study.
    ("another-study", [consent(names=f"urn:trial-eligibility:study:{SLE}")], "unknown", NONE,
     ()),
    ("this-study-beside-a-general-one", [consent("g1", when=day(1), names=None),
                                         consent(status="rejected")], "unknown",
     withdrawn("rejected"), K1),
    # A research consent naming no study: taken, with a request to check it.
    ("general", [consent(names=None)], "met", f"{GENERIC} (signed {day(3)}){CHECK}", K1),
    ("general-undated", [consent(names=None, when=None)], "met", f"{GENERIC}{CHECK}", K1),
    ("general-withdrawn-later", [consent("g2", names=None, when=day(10)),
                                 consent(names=None, status="inactive")], "unknown",
     withdrawn("inactive"), K1),
    ("general-by-category", [consent(names=None, scope="patient-privacy",
                                     category=["research", "x"])], "met",
     f"{GENERIC} (signed {day(3)}){CHECK}", K1),
    ("general-by-scope-with-a-category", [consent(names=None, category=["x"])], "met",
     f"{GENERIC} (signed {day(3)}){CHECK}", K1),
    ("general-by-second-category", [consent(names=None, scope=None,
                                            category=["x", "research"])], "met",
     f"{GENERIC} (signed {day(3)}){CHECK}", K1),
    ("not-research", [consent(names=None, scope="patient-privacy", category=["x"])],
     "unknown", NONE, ()),
    ("no-scope-nor-category", [consent(names=None, scope=None)], "unknown", NONE, ()),
]


@pytest.mark.parametrize(("resources", "expected", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_consent(every_study_mappings, resources, expected, reason, evidence):
    found = check(every_study_mappings, resources)
    assert (found.result, found.reason, found.evidence) == (expected, reason, evidence)
    assert found.value is None


NON_ASCII_STUDY = """
[study]
key = "\u72fc\u75ae-cart"
title = "A study keyed in Chinese"
diagnosis_criteria = []

[[criteria]]
id = "consent"
text = "Participants and guardians sign."
rule = "consent"
"""


def test_a_study_keyed_in_another_script_finds_its_consent(tmp_path):
    (tmp_path / "study.toml").write_text(NON_ASCII_STUDY)
    mappings = load_mappings(tmp_path)
    [key] = mappings.studies
    found = check(mappings, [consent(names=f"urn:trial-eligibility:study:{key}", scope=None)],
                  study=key)
    assert (found.result, found.reason, found.evidence) == (
        "met", f"Informed consent for this study is recorded as active (signed {day(3)}).", K1)
