"""SLEDAI-2K (pure): the 24 descriptors and the lower bound the laboratory record alone gives.

Descriptors and weights: Gladman DD, Ibanez D, Urowitz MB. SLEDAI-2K. J Rheumatol
2002;29:288-91; a descriptor counts when present at the visit or in the preceding 30 days.
Only a person can attribute a finding to lupus, so the lab items give a lower bound, never a
score (the criterion stays `unknown` until a score is recorded). Reading the lab items from a
record is service/engine/sledai_labs.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from service.engine.record import PatientRecord
from service.engine.results import CriterionResult
from service.engine.sledai_labs import WINDOW_DAYS, Finding, evidence_of, lab_findings


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
    unknown: CriterionResult, record: PatientRecord, as_of: date, window_days: int = WINDOW_DAYS,
) -> CriterionResult:
    """The `unknown` sledai-2k result of a record without a score, its reason giving the lab
    lower bound and its evidence the lab results; it stays `unknown` (a person attributes)."""
    findings = lab_findings(record, as_of, window_days)
    total, _ = lower_bound(findings)
    refs = evidence_of(findings.values())
    window = f"results of the last {window_days} days"
    reason = (f"{unknown.reason.rstrip('.')}; {lower_bound_reason(findings)} "
              f"({window}; a lower bound: score the clinical items with the SLEDAI-2K "
              "worksheet).")
    if total == 0:
        reason = (f"{unknown.reason.rstrip('.')}; lab items alone score 0 ({window}; score the "
                  "clinical items with the SLEDAI-2K worksheet).")
    return replace(unknown, reason=reason, evidence=tuple(dict.fromkeys(unknown.evidence + refs)))
