"""The 2019 EULAR/ACR items read from a record in their exact words and with their evidence:
the ANA entry criterion (the newest titre, one below 1:80, an ANA without a titre, results
after the as-of date or not final), the biopsy classes (dated, undated, tentative, later), low
C3 and C4 together or either, and what the laboratory items alone reach."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine import eular_acr_labs
from service.engine.record import build_record
from tests.engine.test_eular_acr import ANA_PRESENCE, ANA_TITER, C3, C4, PLT, P, _low
from tests.support.builders import (
    AS_OF,
    PID,
    SCT_CLASS_III,
    SCT_CLASS_IV,
    SCT_CLASS_V,
    SCT_POSITIVE,
    cc,
    condition,
    day,
    obs,
)


def named(resource: dict[str, Any], rid: str) -> dict[str, Any]:
    return {**resource, "id": rid}


def titre(rid: str, when: str, ratio: tuple[float, float] | None = None, *,
          text: str | None = None, status: str = "final") -> dict[str, Any]:
    return named(obs(ANA_TITER, value_ratio=ratio, value_string=text, date=when, status=status),
                 rid)


def ana_positive(when: str | None = None) -> dict[str, Any]:
    return named(obs(ANA_PRESENCE, value_concept=cc(SCT_POSITIVE), date=when or day(1)), "p1")


def low_c3() -> dict[str, Any]:
    return named(_low(obs(C3, 60, "mg/dL"), 90), "r1")


def low_c4() -> dict[str, Any]:
    return named(_low(obs(C4, 5, "mg/dL"), 10), "r2")


WITHOUT_TITRE = ("; an ANA result without a titre is recorded: tick the entry criterion only if "
                 "that test is equivalent to HEp-2 at 1:80")
C3_LOW = "C3 60 mg/dL (lower limit 90) on 2026-11-14"
C4_LOW = "C4 5 mg/dL (lower limit 10) on 2026-11-14"
CASES = [
    ("entry: the newest titre of 1:80 or more",
     "entry-ana", [titre("a1", day(20), (1, 160)), titre("a2", day(10), (1, 320)),
                   titre("a3", day(5), (1, 40))],
     True, "ANA titre 1:320 on 2026-11-05", ["a2", "a1"]),
    ("entry: exactly 1:80", "entry-ana", [titre("a1", day(4), (1, 80))],
     True, "ANA titre 1:80 on 2026-11-11", ["a1"]),
    ("entry: two on one day", "entry-ana",
     [titre("a1", day(4), (1, 80)), titre("a2", day(4), (1, 160))],
     True, "ANA titre 1:160 on 2026-11-11", ["a2", "a1"]),
    ("entry: the newest below 1:80 is unreadable", "entry-ana",
     [titre("a1", day(20), (1, 40)), titre("a2", day(10), text="weird")],
     False, "no ANA titre of 1:80 or more (latest the text 'weird' on 2026-11-05)", ["a2", "a1"]),
    ("entry: below 1:80, and an ANA without a titre", "entry-ana",
     [titre("a1", day(20), (1, 40)), ana_positive()],
     False, f"no ANA titre of 1:80 or more (latest 1:40 on 2026-10-26){WITHOUT_TITRE}",
     ["a1", "p1"]),
    ("entry: on the as-of date", "entry-ana", [titre("a1", day(0), (1, 80))],
     True, "ANA titre 1:80 on 2026-11-15", ["a1"]),
    ("entry: a newer result not final", "entry-ana",
     [titre("a1", day(2), (1, 640), status="preliminary"), titre("a2", day(9), (1, 80))],
     True, "ANA titre 1:80 on 2026-11-06", ["a2"]),
    ("entry: an ANA without a titre on the as-of date", "entry-ana", [ana_positive(day(0))],
     False, f"no ANA titre on record{WITHOUT_TITRE}", ["p1"]),
    ("entry: nothing", "entry-ana", [], False, "no ANA titre on record", []),
    ("entry: only an ANA without a titre", "entry-ana", [ana_positive()],
     False, f"no ANA titre on record{WITHOUT_TITRE}", ["p1"]),
    ("entry: an ANA without a titre after the as-of date", "entry-ana", [ana_positive(day(-2))],
     False, "no ANA titre on record", []),
    ("entry: after the as-of date or not final", "entry-ana",
     [titre("a1", day(-1), (1, 80)), titre("a2", day(1), (1, 80), status="preliminary")],
     False, "no ANA titre on record", []),
    ("entry: a later 1:80 does not count", "entry-ana",
     [titre("a1", day(-1), text="1:80"), titre("a2", day(3), (1, 40))],
     False, "no ANA titre of 1:80 or more (latest 1:40 on 2026-11-12)", ["a2"]),
    ("biopsy: the dated class first", "renal-biopsy-class-iii-or-iv",
     [named(condition(SCT_CLASS_III), "c1"), named(condition(SCT_CLASS_IV, onset=day(30)), "c2")],
     True, "class recorded on 2026-10-16", ["c2", "c1"]),
    ("biopsy: undated", "renal-biopsy-class-iii-or-iv", [named(condition(SCT_CLASS_III), "c1")],
     True, "class recorded", ["c1"]),
    ("biopsy: on the as-of date", "renal-biopsy-class-iii-or-iv",
     [named(condition(SCT_CLASS_III, onset=day(0)), "c1")], True,
     "class recorded on 2026-11-15", ["c1"]),
    ("biopsy: after the as-of date", "renal-biopsy-class-iii-or-iv",
     [named(condition(SCT_CLASS_III, onset=day(-3)), "c1")], False, "no such class recorded",
     []),
    ("biopsy: a tentative class does not count", "renal-biopsy-class-iii-or-iv",
     [named(condition(SCT_CLASS_III, verification="provisional", onset=day(3)), "c1"),
      named(condition(SCT_CLASS_IV, onset=day(30)), "c2")],
     True, "class recorded on 2026-10-16", ["c2"]),
    ("biopsy: class V", "renal-biopsy-class-ii-or-v",
     [named(condition(SCT_CLASS_V, onset=day(30)), "c1")], True, "class recorded on 2026-10-16",
     ["c1"]),
    ("biopsy: class V is not class III or IV", "renal-biopsy-class-iii-or-iv",
     [named(condition(SCT_CLASS_V, onset=day(30)), "c1")], False, "no such class recorded", []),
    ("complement: neither", "low-c3-or-c4", [], False,
     "C3: no result on record; C4: no result on record", []),
    ("complement: both asked, C3 only", "low-c3-and-c4", [low_c3()], False,
     f"C3: {C3_LOW}; C4: no result on record", []),
    ("complement: either, C3 only", "low-c3-or-c4", [low_c3()], True, C3_LOW, ["r1"]),
    ("complement: either, C4 only", "low-c3-or-c4", [low_c4()], True, C4_LOW, ["r2"]),
    ("complement: both asked, both low", "low-c3-and-c4", [low_c3(), low_c4()], True,
     f"C3: {C3_LOW}; C4: {C4_LOW}", ["r1", "r2"]),
    ("complement: either, both low", "low-c3-or-c4", [low_c3(), low_c4()], True, C3_LOW,
     ["r1", "r2"]),
]


@pytest.mark.parametrize(("item", "resources", "present", "reason", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_an_item_in_its_exact_words(mappings, item, resources, present, reason, evidence):
    record = build_record([P, *resources], mappings, PID)
    found = eular_acr_labs.findings(record, AS_OF)[item]
    refs = {f"{r['resourceType']}/{r['id']}": r["id"] for r in resources}
    assert (found.key, found.present, found.reason) == (item, present, reason)
    assert [refs[e] for e in found.evidence] == evidence


def test_every_item_of_the_worksheet_is_read(mappings):
    found = eular_acr_labs.findings(build_record([P], mappings, PID), AS_OF)
    assert list(found) == [
        "entry-ana", "leukopenia", "thrombocytopenia", "autoimmune-hemolysis", "proteinuria",
        "antiphospholipid-antibodies", "anti-dsdna-or-anti-sm", "renal-biopsy-class-iii-or-iv",
        "renal-biopsy-class-ii-or-v", "low-c3-and-c4", "low-c3-or-c4"]
    assert {k: f.key for k, f in found.items()} == {k: k for k in found}


def test_what_the_laboratory_items_alone_reach(mappings):
    resources = [titre("a1", day(700), (1, 320)), low_c3(), named(obs(PLT, 80, "10*9/L"), "r2"),
                 named(condition(SCT_CLASS_V), "c1")]
    score = eular_acr_labs.lab_score(build_record([P, *resources], mappings, PID), AS_OF)
    assert (score.entry.present, score.entry.reason) == (True, "ANA titre 1:320 on 2024-12-15")
    assert (score.classification.total, score.classification.classified) == (15, True)
    assert score.evidence == ("Observation/a1", "Observation/r2", "Condition/c1",
                              "Observation/r1")


def test_the_concepts_the_items_read(mappings):
    assert eular_acr_labs.lab_concepts() == (
        "wbc", "platelets", "direct-antiglobulin", "urine-protein-24h", "upcr", "anticardiolipin",
        "anti-b2gp1", "lupus-anticoagulant", "c3", "c4", "anti-dsdna", "anti-sm",
        "ln-class-iii-iv", "ln-class-ii", "ln-class-v", "ana-titer", "ana-presence")
    assert set(eular_acr_labs.lab_concepts()) <= set(mappings.concepts)
