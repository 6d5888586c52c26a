"""SLEDAI-2K (pure): the 24 descriptors and the lower bound the laboratory record alone gives.

Descriptors and weights: Gladman DD, Ibanez D, Urowitz MB. SLEDAI-2K. J Rheumatol
2002;29:288-91; a descriptor counts when present at the visit or in the preceding 30 days.
Only a person can attribute a finding to lupus, so the lab items give a lower bound, never a
score (the criterion stays `unknown` until a score is recorded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from service.engine.results import CriterionResult


@dataclass(frozen=True)
class Descriptor:
    """One SLEDAI-2K descriptor: key, label, weight, definition, read from labs or not."""

    key: str
    label: str
    weight: int
    definition: str
    lab: bool = False


DESCRIPTORS: tuple[Descriptor, ...] = (
    Descriptor(
        "seizure", "Seizure", 8,
        "Recent onset, excluding metabolic, infectious or drug causes",
    ),
    Descriptor(
        "psychosis", "Psychosis", 8,
        "Altered ability to function because of severe disturbance in the perception of reality",
    ),
    Descriptor(
        "organic-brain-syndrome", "Organic brain syndrome", 8,
        "Altered mental function with impaired orientation, memory or other intellectual"
        " function, rapid onset, fluctuating",
    ),
    Descriptor(
        "visual-disturbance", "Visual disturbance", 8,
        "Retinal changes of SLE: cytoid bodies, retinal haemorrhages, serous exudate or"
        " haemorrhages in the choroid, optic neuritis",
    ),
    Descriptor(
        "cranial-nerve-disorder", "Cranial nerve disorder", 8,
        "New onset of sensory or motor neuropathy involving cranial nerves",
    ),
    Descriptor(
        "lupus-headache", "Lupus headache", 8,
        "Severe persistent headache, may be migrainous, unresponsive to narcotic analgesia",
    ),
    Descriptor("cva", "Cerebrovascular accident", 8, "New onset, excluding arteriosclerosis"),
    Descriptor(
        "vasculitis", "Vasculitis", 8,
        "Ulceration, gangrene, tender finger nodules, periungual infarction, splinter"
        " haemorrhages, or biopsy/angiogram proof",
    ),
    Descriptor(
        "arthritis", "Arthritis", 4,
        "At least 2 joints with pain and signs of inflammation",
    ),
    Descriptor(
        "myositis", "Myositis", 4,
        "Proximal muscle aching or weakness with elevated CK/aldolase, EMG changes or biopsy",
    ),
    Descriptor(
        "urinary-casts", "Urinary casts", 4,
        "Heme-granular or red blood cell casts",
        lab=True,
    ),
    Descriptor(
        "hematuria", "Haematuria", 4,
        "More than 5 red blood cells per high power field, excluding stone, infection or"
        " other cause",
        lab=True,
    ),
    Descriptor("proteinuria", "Proteinuria", 4, "More than 0.5 g/24 h", lab=True),
    Descriptor(
        "pyuria", "Pyuria", 4,
        "More than 5 white blood cells per high power field, excluding infection",
        lab=True,
    ),
    Descriptor("rash", "Rash", 2, "Inflammatory type rash"),
    Descriptor("alopecia", "Alopecia", 2, "Abnormal, patchy or diffuse loss of hair"),
    Descriptor("mucosal-ulcers", "Mucosal ulcers", 2, "Oral or nasal ulcerations"),
    Descriptor(
        "pleurisy", "Pleurisy", 2,
        "Pleuritic chest pain with pleural rub, effusion or pleural thickening",
    ),
    Descriptor(
        "pericarditis", "Pericarditis", 2,
        "Pericardial pain with rub, effusion, or ECG or echocardiogram confirmation",
    ),
    Descriptor(
        "low-complement", "Low complement", 2,
        "Decrease in CH50, C3 or C4 below the lower limit of normal",
        lab=True,
    ),
    Descriptor(
        "increased-dna-binding", "Increased DNA binding", 2,
        "Anti-dsDNA above the normal range",
        lab=True,
    ),
    Descriptor("fever", "Fever", 1, "Above 38 °C, excluding infectious cause", lab=True),
    Descriptor(
        "thrombocytopenia", "Thrombocytopenia", 1,
        "Below 100 x 10^9/L platelets, excluding drug causes",
        lab=True,
    ),
    Descriptor(
        "leukopenia", "Leukopenia", 1,
        "Below 3 x 10^9/L white blood cells, excluding drug causes",
        lab=True,
    ),
)  # fmt: skip
BY_KEY = {d.key: d for d in DESCRIPTORS}
WINDOW_DAYS = 30  # SLEDAI-2K: "present at the time of the visit or in the preceding 30 days"

_L = "http://loinc.org|"
# Codes read per lab descriptor (LOINC; the first ones as in mappings/concepts.toml).
LAB_CODES: Mapping[str, frozenset[str]] = {
    "proteinuria": frozenset({_L + "2889-4", _L + "2890-2"}),  # 24 h protein; protein/creat
    "hematuria": frozenset({_L + "13945-1"}),  # RBC [#/area] urine sediment, HPF
    "pyuria": frozenset({_L + "5821-4"}),  # WBC [#/area] urine sediment, HPF
    # Casts [#/area] LPF, RBC casts LPF, pathologic casts [presence] in urine sediment
    "urinary-casts": frozenset({_L + "9842-6", _L + "5807-3", _L + "101248-3"}),
    "low-complement": frozenset({_L + "4485-9", _L + "4498-2"}),  # C3, C4
    "increased-dna-binding": frozenset({_L + "5130-0", _L + "11013-0"}),  # anti-dsDNA
    "fever": frozenset({_L + "8310-5", _L + "8331-1", _L + "8332-9"}),  # body temperature
    "thrombocytopenia": frozenset({_L + "777-3", _L + "26515-7"}),  # platelets
    "leukopenia": frozenset({_L + "6690-2", _L + "26464-8"}),  # leukocytes
}
ALL_LAB_CODES = frozenset().union(*LAB_CODES.values())
_USABLE = frozenset({"final", "amended", "corrected", "appended"})
_POSITIVE = frozenset({"POS", "H", "HH", "A", "AA", "10828004", "260373001", "52101004"})
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Finding:
    """A lab descriptor read from the record: present, with the evidence and why."""

    key: str
    present: bool
    reason: str
    evidence: tuple[str, ...] = ()


def _day(resource: Mapping[str, Any]) -> date | None:
    raw = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get(
        "start") or resource.get("issued")
    match = _DATE.match(raw) if isinstance(raw, str) else None
    try:
        return date(*map(int, match.groups())) if match else None
    except ValueError:
        return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _tokens(resource: Mapping[str, Any]) -> set[str]:
    return {f"{c.get('system')}|{c.get('code')}"
            for c in (resource.get("code") or {}).get("coding") or () if isinstance(c, Mapping)}


def _codes(concept: Any) -> set[str]:
    out = set()
    for item in concept if isinstance(concept, list) else [concept]:
        if isinstance(item, Mapping):
            out |= {str(c.get("code")) for c in item.get("coding") or () if isinstance(c, Mapping)}
    return out


# Units a value is converted from, to the unit its threshold is written in.
_FACTORS: Mapping[str, Mapping[str, Decimal]] = {
    "g/24h": {"g/(24.h)": Decimal(1), "g/d": Decimal(1), "mg/(24.h)": Decimal("0.001"),
              "mg/d": Decimal("0.001"), "g/g": Decimal(1), "mg/mg": Decimal(1),
              "mg/g": Decimal("0.001")},
    "10*9/L": {"10*9/L": Decimal(1), "10*3/uL": Decimal(1), "/nL": Decimal(1), "G/L": Decimal(1),
               "/uL": Decimal("0.001"), "10*3/mm3": Decimal(1), "K/uL": Decimal(1)},
    "/[HPF]": {"/[HPF]": Decimal(1), "{cells}/[HPF]": Decimal(1), "/hpf": Decimal(1)},
    "/[LPF]": {"/[LPF]": Decimal(1), "{casts}/[LPF]": Decimal(1), "/lpf": Decimal(1)},
}


def _in(resource: Mapping[str, Any], unit: str) -> Decimal | None:
    q = resource.get("valueQuantity")
    if not isinstance(q, Mapping):
        return None
    value = _number(q.get("value"))
    given = str(q.get("code") or q.get("unit") or "")
    if value is None:
        return None
    if unit == "Cel":
        if given in ("Cel", "°C", "C"):
            return value
        if given in ("[degF]", "°F", "F"):
            return (value - 32) * 5 / 9
        return None
    factor = _FACTORS[unit].get(given)
    return value * factor if factor is not None else None


def _ref_bound(resource: Mapping[str, Any], side: str) -> Decimal | None:
    for rng in resource.get("referenceRange") or ():
        if isinstance(rng, Mapping) and isinstance(rng.get(side), Mapping):
            bound = rng[side]
            mine = resource.get("valueQuantity") or {}
            unit = bound.get("code") or bound.get("unit")
            if unit in (None, mine.get("code"), mine.get("unit")):
                return _number(bound.get("value"))
    return None


def _interpreted_high(resource: Mapping[str, Any]) -> bool:
    return bool(_codes(resource.get("interpretation")) & _POSITIVE) or bool(
        _codes(resource.get("valueCodeableConcept")) & _POSITIVE)


def _present(key: str, r: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Whether this one result shows the descriptor (None: it cannot tell) and a short text."""
    if key == "proteinuria":
        v = _in(r, "g/24h")
        return (None if v is None else v > Decimal("0.5")), f"protein {_show(v)} g/24 h or g/g"
    if key in ("hematuria", "pyuria"):
        v = _in(r, "/[HPF]")
        return (None if v is None else v > 5), f"{_show(v)} cells/hpf"
    if key == "urinary-casts":
        v = _in(r, "/[LPF]")
        if v is not None:
            return v > 0, f"{_show(v)} casts/lpf"
        return (True if _interpreted_high(r) else None), "casts reported present"
    if key == "low-complement":
        v, low = _number((r.get("valueQuantity") or {}).get("value")), _ref_bound(r, "low")
        if v is None or low is None:
            return None, "no lower reference limit"
        return v < low, f"{_show(v)} (lower limit {_show(low)})"
    if key == "increased-dna-binding":
        v, high = _number((r.get("valueQuantity") or {}).get("value")), _ref_bound(r, "high")
        if v is not None and high is not None:
            return v > high, f"{_show(v)} (upper limit {_show(high)})"
        return (True if _interpreted_high(r) else None), "reported above range"
    if key == "fever":
        v = _in(r, "Cel")
        return (None if v is None else v > 38), f"{_show(v)} °C"
    if key == "thrombocytopenia":
        v = _in(r, "10*9/L")
        return (None if v is None else v < 100), f"platelets {_show(v)} x 10^9/L"
    if key == "leukopenia":
        v = _in(r, "10*9/L")
        return (None if v is None else v < 3), f"WBC {_show(v)} x 10^9/L"
    return None, ""


def _show(value: Decimal | None) -> str:
    if value is None:
        return "?"
    return f"{value.quantize(Decimal('0.1')).normalize():f}"


def lab_findings(
    resources: Iterable[Mapping[str, Any]], as_of: date, window_days: int = WINDOW_DAYS
) -> dict[str, Finding]:
    """Each lab descriptor shown present by any usable result in the window before `as_of`."""
    start = as_of - timedelta(days=window_days)
    by_key: dict[str, list[tuple[date, Mapping[str, Any]]]] = {k: [] for k in LAB_CODES}
    for r in resources:
        if not isinstance(r, Mapping) or r.get("resourceType") != "Observation":
            continue
        if r.get("status") not in _USABLE:
            continue
        day = _day(r)
        if day is None or not start < day <= as_of:
            continue
        tokens = _tokens(r)
        for key, codes in LAB_CODES.items():
            if tokens & codes:
                by_key[key].append((day, r))
    out = {}
    for key, results in by_key.items():
        results.sort(key=lambda item: item[0], reverse=True)
        hits = []
        for day, r in results:
            shown, text = _present(key, r)
            if shown:
                hits.append((day, r, text))
        if hits:
            day, r, text = hits[0]
            refs = tuple(f"Observation/{h[1].get('id')}" for h in hits if h[1].get("id"))
            out[key] = Finding(key, True, f"{text} on {day.isoformat()}", refs)
        elif results:
            out[key] = Finding(key, False, f"not shown by {len(results)} result(s) in the window")
        else:
            out[key] = Finding(key, False, "no result in the window")
    return out


def lower_bound(findings: Mapping[str, Finding]) -> tuple[int, list[tuple[str, int]]]:
    """The score the lab descriptors alone reach, with (label, weight) of each one present."""
    parts = [(BY_KEY[k].label.lower(), BY_KEY[k].weight)
             for k in (d.key for d in DESCRIPTORS) if k in findings and findings[k].present]
    return sum(w for _, w in parts), parts


def lower_bound_reason(findings: Mapping[str, Finding]) -> str:
    """'lab items alone score 10: proteinuria 4, low complement 2, ...' (a lower bound)."""
    total, parts = lower_bound(findings)
    listed = ", ".join(f"{name} {weight}" for name, weight in parts)
    return f"lab items alone score {total}" + (f": {listed}" if listed else "")


def with_lab_lower_bound(
    unknown: CriterionResult, resources: Iterable[Mapping[str, Any]], as_of: date,
    window_days: int = WINDOW_DAYS,
) -> CriterionResult:
    """The `unknown` sledai-2k result of a record without a score, its reason giving the lab
    lower bound and its evidence the lab results; it stays `unknown` (a person attributes)."""
    findings = lab_findings(resources, as_of, window_days)
    total, _ = lower_bound(findings)
    refs = tuple(r for f in findings.values() if f.present for r in f.evidence)
    reason = (f"{unknown.reason.rstrip('.')}; {lower_bound_reason(findings)} "
              f"(a lower bound: score the clinical items with the SLEDAI-2K worksheet).")
    if total == 0:
        reason = (f"{unknown.reason.rstrip('.')}; lab items alone score 0 (score the clinical "
                  "items with the SLEDAI-2K worksheet).")
    return replace(unknown, reason=reason, evidence=tuple(dict.fromkeys(unknown.evidence + refs)))
