"""Single-value threshold criteria of both studies, at and around each boundary, with units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.builders import (
    CD19_ABS,
    CD19_PCT,
    ECOG,
    HB,
    LN,
    LVEF,
    LYMPH,
    NEUT,
    PROT_24H,
    SLE,
    SPO2,
    UPCR,
    WBC,
    birth_for,
    day,
    lansky,
    obs,
    patient,
    sledai,
)

P = patient(birth_for(12, 40), "female")

# (study, criterion, (value, unit) as recorded, expected result, canonical value, canonical unit)
QUANTITY_TABLE = [
    (SLE, "lvef", LVEF, (55, "%"), "met", "55", "%"),
    (SLE, "lvef", LVEF, (54.9, "%"), "not-met", "54.9", "%"),
    (SLE, "lvef", LVEF, (70, "%"), "met", "70", "%"),
    (SLE, "spo2", SPO2, (92, "%"), "met", "92", "%"),
    (SLE, "spo2", SPO2, (91.9, "%"), "not-met", "91.9", "%"),
    (SLE, "spo2", SPO2, (100, "%"), "met", "100", "%"),
    (LN, "hemoglobin", HB, (60, "g/L"), "met", "60", "g/L"),
    (LN, "hemoglobin", HB, (59.9, "g/L"), "not-met", "59.9", "g/L"),
    (LN, "hemoglobin", HB, (6.0, "g/dL"), "met", "60", "g/L"),
    (LN, "hemoglobin", HB, (5.99, "g/dL"), "not-met", "59.9", "g/L"),
    (LN, "hemoglobin", HB, (120, "g/L"), "met", "120", "g/L"),
    (LN, "lymphocytes", LYMPH, (1.0, "10*3/uL"), "met", "1.0", "10*9/L"),
    (LN, "lymphocytes", LYMPH, (0.99, "10*3/uL"), "not-met", "0.99", "10*9/L"),
    (LN, "lymphocytes", LYMPH, (1.0, "10*9/L"), "met", "1.0", "10*9/L"),
    (LN, "lymphocytes", LYMPH, (1000, "/uL"), "met", "1.0", "10*9/L"),
    (LN, "lymphocytes", LYMPH, (999, "/uL"), "not-met", "0.999", "10*9/L"),
    (LN, "wbc", WBC, (3.0, "10*3/uL"), "met", "3.0", "10*9/L"),
    (LN, "wbc", WBC, (2.99, "10*3/uL"), "not-met", "2.99", "10*9/L"),
    (LN, "wbc", WBC, (3000, "/uL"), "met", "3.0", "10*9/L"),
    (LN, "wbc", WBC, (2999, "/uL"), "not-met", "2.999", "10*9/L"),
    (LN, "neutrophils", NEUT, (1.0, "10*3/uL"), "met", "1.0", "10*9/L"),
    (LN, "neutrophils", NEUT, (0.99, "10*3/uL"), "not-met", "0.99", "10*9/L"),
    (LN, "neutrophils", NEUT, (1000, "/uL"), "met", "1.0", "10*9/L"),
    (LN, "neutrophils", NEUT, (0.999, "10*9/L"), "not-met", "0.999", "10*9/L"),
    (LN, "cd19-b-cells", CD19_PCT, (0, "%"), "not-met", "0", "%"),
    (LN, "cd19-b-cells", CD19_PCT, (0.1, "%"), "met", "0.1", "%"),
    (LN, "cd19-b-cells", CD19_PCT, (15, "%"), "met", "15", "%"),
    (LN, "cd19-b-cells", CD19_ABS, (0, "/uL"), "not-met", "0", "/uL"),
    (LN, "cd19-b-cells", CD19_ABS, (3, "/uL"), "met", "3", "/uL"),
    (LN, "proteinuria", UPCR, (0.5, "g/g"), "met", "0.5", "g/g"),
    (LN, "proteinuria", UPCR, (0.49, "g/g"), "not-met", "0.49", "g/g"),
    (LN, "proteinuria", UPCR, (500, "mg/g"), "met", "0.5", "g/g"),
    (LN, "proteinuria", UPCR, (490, "mg/g"), "not-met", "0.49", "g/g"),
    (LN, "proteinuria", PROT_24H, (0.5, "g/d"), "met", "0.5", "g/(24.h)"),
    (LN, "proteinuria", PROT_24H, (0.49, "g/d"), "not-met", "0.49", "g/(24.h)"),
    (LN, "proteinuria", PROT_24H, (500, "mg/(24.h)"), "met", "0.5", "g/(24.h)"),
    (LN, "proteinuria", PROT_24H, (499, "mg/(24.h)"), "not-met", "0.499", "g/(24.h)"),
    (LN, "ecog", ECOG, (2, "{score}"), "met", "2", None),
    (LN, "ecog", ECOG, (3, "{score}"), "not-met", "3", None),
]


@pytest.mark.parametrize(
    "key,cid,code,recorded,expected,canonical,unit", QUANTITY_TABLE,
    ids=[f"{r[0][:3]}-{r[1]}-{r[3][0]}{r[3][1]}-{r[4]}" for r in QUANTITY_TABLE],
)
def test_quantity_boundaries(crit, key, cid, code, recorded, expected, canonical, unit):
    o = obs(code, recorded[0], recorded[1], day(3))
    r = crit([P, o], key, cid)
    assert r.result == expected, r.reason
    assert r.evidence == (f"Observation/{o['id']}",)
    assert r.value is not None
    assert Decimal(r.value.value) == Decimal(canonical)
    if unit is not None:
        assert r.value.unit == unit


SCORE_TABLE = [
    (SLE, 8, "met"), (SLE, 7, "not-met"), (SLE, 9, "met"), (SLE, 0, "not-met"),
    (LN, 8, "met"), (LN, 7, "not-met"), (LN, 30, "met"),
]


@pytest.mark.parametrize("key,score,expected", SCORE_TABLE)
def test_sledai_integer(crit, key, score, expected):
    o = sledai(score, day(10))
    r = crit([P, o], key, "sledai-2k")
    assert r.result == expected
    assert r.value is not None and Decimal(r.value.value) == score
    assert r.evidence == (f"Observation/{o['id']}",)


@pytest.mark.parametrize("value,expected", [(8, "met"), (7, "not-met")])
def test_sledai_quantity_score_unit(crit, value, expected):
    o = obs("sledai-2k", value, "{score}", day(10), system="urn:trial-eligibility:score")
    assert crit([P, o], SLE, "sledai-2k").result == expected


@pytest.mark.parametrize("score,expected", [(0, "met"), (1, "met"), (2, "met"), (3, "not-met"),
                                            (5, "not-met")])
def test_ecog_integer(crit, score, expected):
    o = obs(ECOG, value_integer=score, date=day(10))
    r = crit([P, o], LN, "ecog")
    assert r.result == expected
    assert Decimal(r.value.value) == score


@pytest.mark.parametrize("score,ecog_equivalent,expected", [
    (100, 0, "met"), (70, 1, "met"), (60, 2, "met"), (50, 2, "met"), (40, 3, "not-met"),
    (20, 4, "not-met"),
])
def test_lansky_equivalent(crit, score, ecog_equivalent, expected):
    o = lansky(score, day(10))
    r = crit([P, o], LN, "ecog")
    assert r.result == expected
    assert Decimal(r.value.value) == ecog_equivalent
    assert "lansky" in r.reason.lower()
    assert r.evidence == (f"Observation/{o['id']}",)


def test_ecog_newest_of_ecog_and_lansky_wins(crit):
    older = obs(ECOG, value_integer=3, date=day(40))
    newer = lansky(80, day(5))
    r = crit([P, older, newer], LN, "ecog")
    assert r.result == "met"
    assert r.evidence == (f"Observation/{newer['id']}",)


def test_proteinuria_uses_the_most_recent_of_upcr_and_24h(crit):
    old_high = obs(UPCR, 2.0, "g/g", day(40))
    new_low = obs(PROT_24H, 0.3, "g/d", day(5))
    r = crit([P, old_high, new_low], LN, "proteinuria")
    assert r.result == "not-met"
    assert r.evidence == (f"Observation/{new_low['id']}",)


@pytest.mark.parametrize("score,expected", [(60, "met"), (50, "met"), (40, "not-met")])
def test_karnofsky_equivalent(crit, score, expected):
    o = obs("89243-0", value_integer=score, date=day(10))
    r = crit([P, o], LN, "ecog")
    assert r.result == expected
    assert r.evidence == (f"Observation/{o['id']}",)


@pytest.mark.parametrize("key,cid,code,value,unit", [
    (LN, "neutrophils", NEUT, 3000, "10*3/uL"),   # an entry error seen in real data
    (LN, "hemoglobin", HB, 5, "g/L"),
    (LN, "hemoglobin", HB, 500, "g/L"),
    (SLE, "spo2", SPO2, 120, "%"),
    (LN, "sledai-2k", "sledai-2k", 106, "{score}"),
])
def test_implausible_value_is_unknown_not_a_comparison(crit, key, cid, code, value, unit):
    system = "urn:trial-eligibility:score" if code == "sledai-2k" else "http://loinc.org"
    o = obs(code, value, unit, day(5), system=system)
    r = crit([P, o], key, cid)
    assert r.result == "unknown"
    assert "implausible" in r.reason
    assert r.evidence == (f"Observation/{o['id']}",)
