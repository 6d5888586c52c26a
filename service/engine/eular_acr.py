"""The 2019 EULAR/ACR classification criteria for SLE (pure): items, weights and the score.

Items, domains and weights: Aringer M, Costenbader K, Daikh D, et al. 2019 European League
Against Rheumatism/American College of Rheumatology classification criteria for systemic lupus
erythematosus. Arthritis Rheumatol 2019;71(9):1400-1412 (also Ann Rheum Dis 2019;78:1151-9),
the criteria figure. Each weight below was checked against that figure. The rules of the
figure: the entry criterion (ANA >= 1:80 on HEp-2 cells or an equivalent positive test, ever)
must hold; an item counts when it occurred at least once and has no more likely explanation
than SLE; items need not occur together; within each domain only the highest-weighted item
counts; SLE is classified with at least one clinical item and >= 10 points. Reading the
laboratory and biopsy items from a record is service/engine/eular_acr_labs.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ENTRY = "entry-ana"
# Aringer 2019: "Classify as SLE with a score of 10 or more if entry criterion fulfilled".
THRESHOLD = 10


@dataclass(frozen=True)
class Domain:
    """One domain: key, label, clinical (True) or immunological (False)."""

    key: str
    label: str
    clinical: bool


@dataclass(frozen=True)
class Item:
    """One weighted item: key, domain, label, weight, definition, pre-filled from the record."""

    key: str
    domain: str
    label: str
    weight: int
    definition: str
    lab: bool = False


DOMAINS: tuple[Domain, ...] = (
    Domain("constitutional", "Constitutional", True),
    Domain("hematologic", "Haematological", True),
    Domain("neuropsychiatric", "Neuropsychiatric", True),
    Domain("mucocutaneous", "Mucocutaneous", True),
    Domain("serosal", "Serosal", True),
    Domain("musculoskeletal", "Musculoskeletal", True),
    Domain("renal", "Renal", True),
    Domain("antiphospholipid", "Antiphospholipid antibodies", False),
    Domain("complement", "Complement proteins", False),
    Domain("sle-antibodies", "SLE-specific antibodies", False),
)

# Weights as published (Aringer 2019, criteria figure); definitions shortened from its table 1.
ITEMS: tuple[Item, ...] = (
    Item("fever", "constitutional", "Fever", 2, "Temperature above 38.3 °C"),
    Item("leukopenia", "hematologic", "Leukopenia", 3,
         "White blood cell count below 4.0 x 10^9/L", lab=True),
    Item("thrombocytopenia", "hematologic", "Thrombocytopenia", 4,
         "Platelet count below 100 x 10^9/L", lab=True),
    Item("autoimmune-hemolysis", "hematologic", "Autoimmune haemolysis", 4,
         "Evidence of haemolysis (reticulocytosis, low haptoglobin, raised indirect bilirubin "
         "or LDH) and a positive direct antiglobulin (Coombs) test", lab=True),
    Item("delirium", "neuropsychiatric", "Delirium", 2,
         "Acute, fluctuating change in consciousness with reduced ability to focus"),
    Item("psychosis", "neuropsychiatric", "Psychosis", 3,
         "Delusions or hallucinations without insight, in the absence of delirium"),
    Item("seizure", "neuropsychiatric", "Seizure", 5,
         "Primary generalised or partial/focal seizure"),
    Item("non-scarring-alopecia", "mucocutaneous", "Non-scarring alopecia", 2,
         "Observed by a clinician"),
    Item("oral-ulcers", "mucocutaneous", "Oral ulcers", 2, "Observed by a clinician"),
    Item("subacute-cutaneous-or-discoid-lupus", "mucocutaneous",
         "Subacute cutaneous or discoid lupus", 4, "Observed by a clinician"),
    Item("acute-cutaneous-lupus", "mucocutaneous", "Acute cutaneous lupus", 6,
         "Malar rash or generalised maculopapular rash observed by a clinician"),
    Item("pleural-or-pericardial-effusion", "serosal", "Pleural or pericardial effusion", 5,
         "Shown by imaging (ultrasound, X-ray, CT, MRI)"),
    Item("acute-pericarditis", "serosal", "Acute pericarditis", 6,
         "At least two of: pericardial chest pain, rub, ECG changes, new or worse effusion"),
    Item("joint-involvement", "musculoskeletal", "Joint involvement", 6,
         "Synovitis of two or more joints, or tenderness of two or more joints with at least "
         "30 minutes of morning stiffness"),
    Item("proteinuria", "renal", "Proteinuria > 0.5 g/24 h", 4,
         "24-hour urine protein or an equivalent spot protein/creatinine ratio", lab=True),
    Item("renal-biopsy-class-ii-or-v", "renal", "Renal biopsy class II or V lupus nephritis",
         8, "ISN/RPS 2003 class II or V on renal biopsy", lab=True),
    Item("renal-biopsy-class-iii-or-iv", "renal",
         "Renal biopsy class III or IV lupus nephritis", 10,
         "ISN/RPS 2003 class III or IV on renal biopsy", lab=True),
    Item("antiphospholipid-antibodies", "antiphospholipid",
         "Anticardiolipin, anti-β2GP1 or lupus anticoagulant", 2,
         "Anticardiolipin at medium or high titre (> 40 GPL/MPL or > 99th percentile), "
         "anti-β2GP1 or lupus anticoagulant positive", lab=True),
    Item("low-c3-or-c4", "complement", "Low C3 or low C4", 3,
         "Below the lower limit of normal", lab=True),
    Item("low-c3-and-c4", "complement", "Low C3 and low C4", 4,
         "Both below the lower limit of normal", lab=True),
    Item("anti-dsdna-or-anti-sm", "sle-antibodies", "Anti-dsDNA or anti-Smith antibody", 6,
         "Anti-dsDNA by an immunoassay with >= 90% specificity for SLE, or anti-Sm", lab=True),
)  # fmt: skip
BY_KEY = {i.key: i for i in ITEMS}
DOMAIN_BY_KEY = {d.key: d for d in DOMAINS}


@dataclass(frozen=True)
class Classification:
    """The score of a set of present items: total, the item counted per domain, the verdict."""

    entry: bool
    total: int
    counted: tuple[Item, ...]

    @property
    def clinical(self) -> bool:
        """At least one clinical item counts (Aringer 2019: required to classify)."""
        return any(DOMAIN_BY_KEY[i.domain].clinical for i in self.counted)

    @property
    def classified(self) -> bool:
        """Entry criterion met, at least one clinical item and >= 10 points."""
        return self.entry and self.clinical and self.total >= THRESHOLD


def classify(entry: bool, present: Iterable[str]) -> Classification:
    """Score the present items: only the highest-weighted item of each domain counts."""
    keys = set(present)
    unknown = keys - set(BY_KEY)
    if unknown:
        raise ValueError(f"unknown 2019 EULAR/ACR item {sorted(unknown)[0]!r}")
    best: dict[str, Item] = {}
    for item in ITEMS:
        if item.key in keys and (item.domain not in best
                                 or item.weight > best[item.domain].weight):
            best[item.domain] = item
    counted = tuple(best[d.key] for d in DOMAINS if d.key in best)
    return Classification(entry=entry, total=sum(i.weight for i in counted), counted=counted)
