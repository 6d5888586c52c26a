"""The 2019 EULAR/ACR laboratory and biopsy items read from a patient record (pure).

The worksheet's pre-filled items and the `sle-diagnosis` reason both come from `findings`,
so they cannot disagree. Every result up to the as-of date counts (the criteria count an item
that occurred at least once). Limits: Aringer M, et al. Arthritis Rheumatol
2019;71(9):1400-1412, table 1 (definitions); codes are data in mappings/concepts.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from service.engine import eular_acr
from service.engine.conditions import condition_tentative
from service.engine.labs import ratio_denominator
from service.engine.record import USABLE_OBSERVATION, PatientRecord
from service.engine.sledai_labs import Finding, LabTest, evidence_of, findings_of

_D = Decimal
# Window 0: every result up to the as-of date.
EVER = 0
# Aringer 2019 entry criterion: "ANA at a titer of >= 1:80 on HEp-2 cells".
ANA_MIN_DENOMINATOR = _D(80)

LAB_TESTS: Mapping[str, tuple[LabTest, ...]] = {
    # Aringer 2019 "Leukopenia: white blood cell count <4,000/mm3" (4.0 x 10^9/L).
    "leukopenia": (LabTest("wbc", "<", _D(4), ("10*9/L",)),),
    # Aringer 2019 "Thrombocytopenia: platelet count <100,000/mm3" (100 x 10^9/L).
    "thrombocytopenia": (LabTest("platelets", "<", _D(100), ("10*9/L",)),),
    # Aringer 2019 "Autoimmune hemolysis: evidence of hemolysis ... AND positive Coombs (direct
    # antiglobulin) test": the record shows the positive DAT; the clinician checks haemolysis
    # (the worksheet says so beside the pre-filled tick).
    "autoimmune-hemolysis": (LabTest("direct-antiglobulin", ">", None, presence=True),),
    # Aringer 2019 "Proteinuria >0.5 g/24 hours by 24-hour urine or equivalent spot urine
    # protein-to-creatinine ratio".
    "proteinuria": (LabTest("urine-protein-24h", ">", _D("0.5"), ("g/(24.h)",)),
                    LabTest("upcr", ">", _D("0.5"), ("g/g",))),
    # Aringer 2019 "Anticardiolipin antibodies (IgA, IgG or IgM) at medium or high titer (>40
    # APL, GPL or MPL, or >the 99th percentile) or positive anti-beta2GP1 antibodies (IgA, IgG
    # or IgM) or positive lupus anticoagulant": above the laboratory's own upper limit (most
    # laboratories set it at the 99th percentile) or reported positive; the clinician checks
    # the titre against 40 units.
    "antiphospholipid-antibodies": (
        LabTest("anticardiolipin", ">", None, presence=True),
        LabTest("anti-b2gp1", ">", None, presence=True),
        LabTest("lupus-anticoagulant", ">", None, presence=True),
    ),
    # Aringer 2019 "Low C3: below the lower limit of normal"; "Low C4: below the lower limit".
    "low-c3": (LabTest("c3", "<", None),),
    "low-c4": (LabTest("c4", "<", None),),
    # Aringer 2019 "Anti-dsDNA antibodies in an immunoassay with demonstrated >=90% specificity
    # for SLE against relevant disease controls, or anti-Smith antibodies".
    "anti-dsdna-or-anti-sm": (LabTest("anti-dsdna", ">", None, presence=True),
                              LabTest("anti-sm", ">", None, presence=True)),
}  # fmt: skip
# Biopsy items: the class recorded as a Condition or a pathology conclusion (any date).
# Class II is not mapped yet (no code was verified); a site may add codes to ln-class-ii.
BIOPSY_CLASSES: Mapping[str, tuple[str, ...]] = {
    "renal-biopsy-class-iii-or-iv": ("ln-class-iii-iv",),
    "renal-biopsy-class-ii-or-v": ("ln-class-ii", "ln-class-v"),
}


def lab_concepts() -> tuple[str, ...]:
    """Every concept name the items read (the loader checks they exist)."""
    names = [t.concept for tests in LAB_TESTS.values() for t in tests]
    names += [c for classes in BIOPSY_CLASSES.values() for c in classes]
    return tuple(dict.fromkeys(names + ["ana-titer", "ana-presence"]))


def entry_finding(record: PatientRecord, as_of: date) -> Finding:
    """The entry criterion: an ANA titre of at least 1:80 at any time up to the as-of date."""
    hits: list[tuple[date, str, str]] = []
    below: list[tuple[date, str, str]] = []
    for entry in record.entries("ana-titer"):
        if entry.when is None or entry.when.day > as_of:
            continue
        if entry.resource.get("status") not in USABLE_OBSERVATION:
            continue
        denominator, shown = ratio_denominator(entry.resource)
        if denominator is not None and denominator >= ANA_MIN_DENOMINATOR:
            hits.append((entry.when.day, entry.ref, shown))
        else:
            below.append((entry.when.day, entry.ref, shown))
    if hits:
        hits.sort(reverse=True)
        day, _, shown = hits[0]
        return Finding(eular_acr.ENTRY, True, f"ANA titre {shown} on {day.isoformat()}",
                       tuple(ref for _, ref, _ in hits))
    below.sort(reverse=True)
    titres = (f"no ANA titre of 1:80 or more (latest {below[0][2] or 'unreadable'} on "
              f"{below[0][0].isoformat()})") if below else "no ANA titre on record"
    presence = [e.ref for e in record.entries("ana-presence")
                if e.when is not None and e.when.day <= as_of]
    if presence:
        return Finding(eular_acr.ENTRY, False, f"{titres}; an ANA result without a titre is "
                       "recorded: tick the entry criterion only if that test is equivalent to "
                       "HEp-2 at 1:80", tuple([r for _, r, _ in below] + presence))
    return Finding(eular_acr.ENTRY, False, titres, tuple(r for _, r, _ in below))


def _biopsy(record: PatientRecord, key: str, as_of: date) -> Finding:
    found = [e for name in BIOPSY_CLASSES[key] for e in record.entries(name)
             if (e.when is None or e.when.day <= as_of)
             and not (e.resource.get("resourceType") == "Condition"
                      and condition_tentative(e.resource))]
    if not found:
        return Finding(key, False, "no such class recorded")
    first = found[0]
    when = f" on {first.when.day.isoformat()}" if first.when is not None else ""
    return Finding(key, True, f"class recorded{when}",
                   tuple(dict.fromkeys(e.ref for e in found)))


def findings(record: PatientRecord, as_of: date) -> dict[str, Finding]:
    """Every pre-filled item by its worksheet key, and the entry criterion under `entry-ana`."""
    raw = findings_of(record, LAB_TESTS, as_of, EVER)
    out: dict[str, Finding] = {eular_acr.ENTRY: entry_finding(record, as_of)}
    for key in ("leukopenia", "thrombocytopenia", "autoimmune-hemolysis", "proteinuria",
                "antiphospholipid-antibodies", "anti-dsdna-or-anti-sm"):
        out[key] = raw[key]
    for key in BIOPSY_CLASSES:
        out[key] = _biopsy(record, key, as_of)
    c3, c4 = raw["low-c3"], raw["low-c4"]
    both = c3.present and c4.present
    either = c3 if c3.present else c4
    out["low-c3-and-c4"] = Finding(
        "low-c3-and-c4", both, f"C3: {c3.reason}; C4: {c4.reason}",
        c3.evidence + c4.evidence if both else ())
    out["low-c3-or-c4"] = Finding(
        "low-c3-or-c4", c3.present or c4.present,
        either.reason if c3.present or c4.present else f"C3: {c3.reason}; C4: {c4.reason}",
        c3.evidence + c4.evidence)
    return out


@dataclass(frozen=True)
class LabScore:
    """What the record's laboratory and biopsy items alone reach."""

    entry: Finding
    classification: eular_acr.Classification
    evidence: tuple[str, ...]


def lab_score(record: PatientRecord, as_of: date) -> LabScore:
    """The points the laboratory and biopsy items alone reach, with the entry criterion."""
    found = findings(record, as_of)
    entry = found.pop(eular_acr.ENTRY)
    present = [k for k, f in found.items() if f.present]
    return LabScore(entry, eular_acr.classify(entry.present, present),
                    evidence_of([entry, *found.values()]))
