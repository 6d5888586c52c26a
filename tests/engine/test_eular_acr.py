"""2019 EULAR/ACR classification: weights, scoring, the record's lab items, `sle-diagnosis`."""

from __future__ import annotations

import inspect
from datetime import date
from typing import Any

import pytest

from service.engine import eular_acr, eular_acr_labs
from service.engine.record import build_record
from service.engine.results import Value
from service.fhir.confirmations import Author, classification_observation
from tests.support.builders import (
    AS_OF,
    LN,
    PID,
    SCT_CLASS_III,
    SCT_CLASS_V,
    SCT_NEGATIVE,
    SCT_POSITIVE,
    SCT_SLE,
    SLE,
    UPCR,
    WBC,
    birth_for,
    cc,
    condition,
    day,
    obs,
    patient,
)

P = patient(birth_for(12, 40), "female")
ANA_TITER, ANA_PRESENCE, PLT, C3, C4, DSDNA, SM, DAT, ACL = (
    "5048-4", "8061-4", "777-3", "4485-9", "4498-2", "5130-0", "11090-8", "1007-4", "3181-5")

# Aringer M, et al. Arthritis Rheumatol 2019;71(9):1400-1412, criteria figure: every weight.
PUBLISHED = {
    "fever": 2, "leukopenia": 3, "thrombocytopenia": 4, "autoimmune-hemolysis": 4,
    "delirium": 2, "psychosis": 3, "seizure": 5, "non-scarring-alopecia": 2, "oral-ulcers": 2,
    "subacute-cutaneous-or-discoid-lupus": 4, "acute-cutaneous-lupus": 6,
    "pleural-or-pericardial-effusion": 5, "acute-pericarditis": 6, "joint-involvement": 6,
    "proteinuria": 4, "renal-biopsy-class-ii-or-v": 8, "renal-biopsy-class-iii-or-iv": 10,
    "antiphospholipid-antibodies": 2, "low-c3-or-c4": 3, "low-c3-and-c4": 4,
    "anti-dsdna-or-anti-sm": 6,
}


def test_the_weights_are_the_published_ones_in_ten_domains():
    assert {i.key: i.weight for i in eular_acr.ITEMS} == PUBLISHED
    assert len([d for d in eular_acr.DOMAINS if d.clinical]) == 7
    assert len([d for d in eular_acr.DOMAINS if not d.clinical]) == 3
    # the highest item of every domain together: the published maximum of 51 points
    assert eular_acr.classify(True, PUBLISHED).total == 51
    assert "loinc.org" not in inspect.getsource(eular_acr_labs)


SCORES = [
    # (entry, present items, total, classified)
    (True, [], 0, False),
    (True, ["renal-biopsy-class-iii-or-iv"], 10, True),
    (False, ["renal-biopsy-class-iii-or-iv"], 10, False),          # no entry criterion
    (True, ["renal-biopsy-class-ii-or-v", "renal-biopsy-class-iii-or-iv", "proteinuria"],
     10, True),                                                    # highest per domain only
    (True, ["anti-dsdna-or-anti-sm", "low-c3-and-c4"], 10, False),  # no clinical item
    (True, ["anti-dsdna-or-anti-sm", "low-c3-or-c4", "low-c3-and-c4", "fever"], 12, True),
    (True, ["anti-dsdna-or-anti-sm", "low-c3-or-c4"], 9, False),
    (True, ["leukopenia", "thrombocytopenia", "autoimmune-hemolysis", "oral-ulcers",
            "non-scarring-alopecia"], 6, False),                   # 4 + 2: one per domain
    (True, ["joint-involvement", "low-c3-or-c4", "antiphospholipid-antibodies"], 11, True),
    (True, ["acute-pericarditis", "pleural-or-pericardial-effusion", "fever", "delirium"],
     10, True),                                                    # 6 + 2 + 2
]


@pytest.mark.parametrize("entry,present,total,classified", SCORES)
def test_classify(entry, present, total, classified):
    c = eular_acr.classify(entry, present)
    assert (c.total, c.classified) == (total, classified)


@pytest.mark.parametrize("present", [["thrombocytopenia", "autoimmune-hemolysis"],
                                     ["autoimmune-hemolysis", "thrombocytopenia"]])
def test_of_two_items_of_equal_weight_in_a_domain_the_first_listed_counts(present):
    # Aringer 2019 counts one item per domain; thrombocytopenia and autoimmune haemolysis are
    # both 4 points: the one listed first (Aringer's order) is named, whatever the record's order.
    counted = eular_acr.classify(True, present).counted
    assert [i.key for i in counted] == ["thrombocytopenia"]


def test_an_unknown_item_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        eular_acr.classify(True, ["rash"])


def _findings(*resources: dict[str, Any], mappings) -> dict[str, Any]:
    record = build_record([P, *resources], mappings, PID)
    return eular_acr_labs.findings(record, AS_OF)


def _low(resource: dict[str, Any], low: float, unit: str = "mg/dL") -> dict[str, Any]:
    resource["referenceRange"] = [{"low": {"value": low, "unit": unit, "code": unit}}]
    return resource


LABS = [
    # (item, resources, present). "Ever": a result of years ago counts.
    ("entry-ana", [obs(ANA_TITER, value_ratio=(1, 160), date=day(2000))], True),
    ("entry-ana", [obs(ANA_TITER, value_ratio=(1, 80))], True),
    ("entry-ana", [obs(ANA_TITER, value_ratio=(1, 40))], False),
    ("entry-ana", [obs(ANA_TITER, value_ratio=(1, 40)),
                   obs(ANA_TITER, value_ratio=(1, 320), date=day(900))], True),  # ever
    ("entry-ana", [obs(ANA_TITER, value_ratio=(1, 640), date=day(-3))], False),  # after as-of
    ("entry-ana", [obs(ANA_TITER, value_ratio=(1, 640), status="preliminary")], False),
    ("entry-ana", [obs(ANA_PRESENCE, value_concept=cc(SCT_POSITIVE))], False),  # no titre
    ("leukopenia", [obs(WBC, 3.9, "10*9/L", day(800))], True),
    ("leukopenia", [obs(WBC, 4.0, "10*9/L")], False),                # strictly below 4.0
    ("leukopenia", [obs(WBC, 3500, "/uL")], True),
    ("thrombocytopenia", [obs(PLT, 99, "10*3/uL")], True),
    ("thrombocytopenia", [obs(PLT, 100, "10*9/L")], False),
    ("proteinuria", [obs(UPCR, 0.6, "g/g", day(1000))], True),
    ("proteinuria", [obs(UPCR, 0.5, "g/g")], False),                 # > 0.5, not >=
    ("autoimmune-hemolysis", [obs(DAT, value_concept=cc(SCT_POSITIVE))], True),
    ("autoimmune-hemolysis", [obs(DAT, value_concept=cc(SCT_NEGATIVE))], False),
    ("anti-dsdna-or-anti-sm", [obs(DSDNA, value_concept=cc(SCT_POSITIVE))], True),
    ("anti-dsdna-or-anti-sm", [obs(SM, 45, "U/mL", ref_high=20, ref_unit="U/mL")], True),
    ("anti-dsdna-or-anti-sm", [obs(SM, 5, "U/mL", ref_high=20, ref_unit="U/mL")], False),
    ("antiphospholipid-antibodies", [obs(ACL, 60, "U/mL", ref_high=40, ref_unit="U/mL")], True),
    ("antiphospholipid-antibodies", [obs(ACL, 12, "U/mL", ref_high=40, ref_unit="U/mL")], False),
    ("low-c3-or-c4", [_low(obs(C3, 60, "mg/dL"), 90)], True),
    ("low-c3-and-c4", [_low(obs(C3, 60, "mg/dL"), 90)], False),
    ("low-c3-and-c4", [_low(obs(C3, 60, "mg/dL"), 90), _low(obs(C4, 5, "mg/dL", day(400)), 10)],
     True),
    ("renal-biopsy-class-iii-or-iv", [condition(SCT_CLASS_III, onset=day(3000))], True),
    ("renal-biopsy-class-iii-or-iv", [condition(SCT_CLASS_III, verification="provisional")],
     False),
    ("renal-biopsy-class-ii-or-v", [condition(SCT_CLASS_V)], True),
    ("renal-biopsy-class-iii-or-iv", [condition(SCT_CLASS_V)], False),
]


@pytest.mark.parametrize("item,resources,present", LABS,
                         ids=[f"{i}-{n}" for n, (i, _, _) in enumerate(LABS)])
def test_lab_items_read_from_the_record(mappings, item, resources, present):
    found = _findings(*resources, mappings=mappings)[item]
    assert found.present is present, found.reason
    if present:
        assert found.evidence and all(
            any(ref == f"{r['resourceType']}/{r['id']}" for r in resources)
            for ref in found.evidence)


def _recorded(total_items: list[str], entry: bool = True, when: str | None = None,
              status: str = "final") -> dict[str, Any]:
    c = eular_acr.classify(entry, total_items)
    res = classification_observation(
        patient_id=PID, when=date.fromisoformat(when or day(5)),
        author=Author("coord", "Coordinator"), entry=entry, total=c.total,
        scored=[(i.key, i.label, i.weight, i.key in total_items) for i in eular_acr.ITEMS],
        derived_from=[])
    res["id"] = f"cls-{len(total_items)}-{entry}-{status}"
    res["status"] = status
    return res


CLASSIFIED = ["joint-involvement", "anti-dsdna-or-anti-sm"]          # 12 points
SLE_CONDITION = condition(SCT_SLE)

DIAGNOSIS = [
    # (resources, result, words in the reason)
    ([SLE_CONDITION], "met", "no 2019 EULAR/ACR classification is recorded"),
    ([], "not-met", "No SLE diagnosis"),
    # a recorded classification decides, whatever the coded diagnosis
    ([_recorded(CLASSIFIED)], "met", "Classified as SLE"),
    ([_recorded(["renal-biopsy-class-iii-or-iv"])], "met", "10 points (at least 10)"),  # bound
    ([SLE_CONDITION, _recorded(["joint-involvement"])], "not-met", "6 points, below 10"),
    ([SLE_CONDITION, _recorded(CLASSIFIED, entry=False)], "not-met", "entry criterion"),
    ([SLE_CONDITION, _recorded(["anti-dsdna-or-anti-sm", "low-c3-and-c4"])], "not-met",
     "no clinical item"),
    # one marked entered-in-error (undone) does not count: the coded diagnosis decides again
    ([SLE_CONDITION, _recorded(["joint-involvement"], status="entered-in-error")], "met",
     "is recorded"),
    # one dated after the as-of date is ignored
    ([_recorded(CLASSIFIED, when=day(-2))], "not-met", "No SLE diagnosis"),
]


@pytest.mark.parametrize("key", [SLE, LN])
@pytest.mark.parametrize("resources,expected,words", DIAGNOSIS,
                         ids=[f"case{n}" for n in range(len(DIAGNOSIS))])
def test_sle_diagnosis_follows_a_recorded_classification(crit, key, resources, expected, words):
    r = crit([P, *resources], key, "sle-diagnosis")
    assert r.result == expected, r.reason
    assert words in r.reason
    assert "the laboratory and biopsy items alone reach" in r.reason


def test_the_newest_classification_decides(crit):
    old = _recorded(CLASSIFIED, when=day(400))
    new = _recorded(["joint-involvement"], when=day(3))
    r = crit([P, SLE_CONDITION, old, new], SLE, "sle-diagnosis")
    assert r.result == "not-met" and r.evidence == (f"Observation/{new['id']}",)


def test_the_reason_gives_the_points_the_labs_alone_reach(crit):
    labs = [obs(ANA_TITER, value_ratio=(1, 320), date=day(700)),
            obs(DSDNA, value_concept=cc(SCT_POSITIVE)),
            _low(obs(C3, 60, "mg/dL"), 90), obs(PLT, 80, "10*9/L")]
    r = crit([P, SLE_CONDITION, *labs], SLE, "sle-diagnosis")
    assert r.result == "met"
    assert "reach 13 of the 10" in r.reason and "entry criterion ANA >= 1:80 met" in r.reason
    assert r.reason.endswith(
        "; the laboratory and biopsy items alone reach 13 of the 10 2019 EULAR/ACR points (entry "
        "criterion ANA >= 1:80 met): Thrombocytopenia 4, Low C3 or low C4 3, Anti-dsDNA or "
        "anti-Smith antibody 6.")


LABS_NONE = ("the laboratory and biopsy items alone reach 0 of the 10 2019 EULAR/ACR points "
             "(entry criterion ANA >= 1:80 not shown)")
ON = day(5)
RECORDED = [
    # (id, items, entry, result, reason before the labs' part, points)
    ("classified", CLASSIFIED, True, "met",
     f"Classified as SLE by the 2019 EULAR/ACR criteria on {ON}: entry criterion met, "
     "12 points (at least 10)", 12),
    ("too-few-points", ["joint-involvement"], True, "not-met",
     f"Not classified as SLE by the 2019 EULAR/ACR criteria recorded on {ON}: 6 points, "
     "below 10", 6),
    ("no-entry", CLASSIFIED, False, "not-met",
     f"Not classified as SLE by the 2019 EULAR/ACR criteria recorded on {ON}: the entry "
     "criterion (ANA >= 1:80) is not met", 12),
    ("no-clinical-item", ["anti-dsdna-or-anti-sm", "low-c3-and-c4"], True, "not-met",
     f"Not classified as SLE by the 2019 EULAR/ACR criteria recorded on {ON}: no clinical item "
     "counts (at least one is required)", 10),
]


@pytest.mark.parametrize(("items", "entry", "expected", "reason", "points"),
                         [r[1:] for r in RECORDED], ids=[r[0] for r in RECORDED])
def test_a_recorded_classification_in_its_exact_words(crit, items, entry, expected, reason,
                                                      points):
    res = _recorded(items, entry)
    # A malformed component and an item of another code system are no items.
    res["component"] = ["not a component", *res["component"],
                        {"code": cc("fever", "urn:other"), "valueInteger": 2}]
    found = crit([P, SLE_CONDITION, res], SLE, "sle-diagnosis")
    assert (found.result, found.reason) == (expected, f"{reason}; {LABS_NONE}.")
    assert (found.value, found.evidence) == (Value(points), (f"Observation/{res['id']}",))


@pytest.mark.parametrize("broken", ["total", "entry"])
def test_a_recorded_classification_that_cannot_be_read(crit, broken):
    res = _recorded(CLASSIFIED)
    if broken == "total":
        del res["valueInteger"]
    else:
        res["component"] = [c for c in res["component"]
                            if c["code"]["coding"][0]["code"] != eular_acr.ENTRY]
    found = crit([P, SLE_CONDITION, res], SLE, "sle-diagnosis")
    assert (found.result, found.value, found.evidence) == (
        "unknown", None, (f"Observation/{res['id']}",))
    assert found.reason == (f"The 2019 EULAR/ACR classification recorded on {ON} "
                            f"(Observation/{res['id']}) has no readable total or entry "
                            f"criterion; record it again with the worksheet; {LABS_NONE}.")


@pytest.mark.parametrize(("points", "expected"), [(1, "met"), (0, "not-met"), (True, "not-met")])
def test_a_recorded_item_counts_when_its_points_are_above_zero(crit, points, expected):
    # Another system may record a present item as 1 point, not its weight: it still counts;
    # 0, or a yes/no where points belong, does not.
    res = _recorded(["anti-dsdna-or-anti-sm", "low-c3-and-c4"])
    for comp in res["component"]:
        if comp["code"]["coding"][0]["code"] == "joint-involvement":
            comp["valueInteger"] = points
    found = crit([P, SLE_CONDITION, res], SLE, "sle-diagnosis")
    assert found.result == expected, found.reason
    assert found.value == Value(10)


def test_the_newest_usable_classification_up_to_the_as_of_date_decides(crit):
    # Newest first: one after the as-of date, one preliminary, a report with the same code;
    # then the one that decides, dated the as-of date itself; then an older one.
    later = _recorded(["joint-involvement"], when=day(-1))
    preliminary = _recorded(["joint-involvement"], when=day(0), status="preliminary")
    preliminary["id"] = "cls-preliminary"
    report = {"resourceType": "DiagnosticReport", "id": "cls-report", "status": "final",
              "subject": {"reference": f"Patient/{PID}"}, "code": later["code"],
              "effectiveDateTime": day(0) + "T23:00:00Z"}
    deciding = _recorded(CLASSIFIED, when=day(0))
    older = _recorded(["joint-involvement"], when=day(30))
    older["id"] = "cls-older"
    found = crit([P, SLE_CONDITION, later, preliminary, report, deciding, older], SLE,
                 "sle-diagnosis")
    assert (found.result, found.evidence) == ("met", (f"Observation/{deciding['id']}",))
