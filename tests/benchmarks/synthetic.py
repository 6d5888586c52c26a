"""Synthetic FHIR records for the benchmarks: a population mix, a heavy record, load Bundles."""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS_DIR = REPO_ROOT / "seeds"
AS_OF = date(2026, 11, 15)  # seeds/manifest.json asOf: the seed records are dated around it

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
SCORE = "urn:trial-eligibility:score"
CRITERION = "urn:trial-eligibility:criterion"
TAG = {"system": "urn:trial-eligibility:benchmark", "code": "synthetic"}
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:trial-eligibility:benchmark")

# (LOINC code, display, UCUM unit, typical low, typical high, decimals). The lupus panel is
# what a rheumatology clinic draws monthly; every code here is one the mappings search for.
LUPUS_PANEL: tuple[tuple[str, str, str, float, float, int], ...] = (
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 9.5, 14.5, 1),
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*9/L", 3.0, 10.0, 1),
    ("751-8", "Neutrophils [#/volume] in Blood", "10*9/L", 1.5, 7.0, 1),
    ("731-0", "Lymphocytes [#/volume] in Blood", "10*9/L", 0.6, 3.5, 1),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.35, 0.9, 2),
    ("50384-7", "GFR/1.73 sq M.predicted by Creatinine-based formula (Schwartz)",
     "mL/min/{1.73_m2}", 70, 130, 0),
    ("1742-6", "Alanine aminotransferase", "U/L", 8, 60, 0),
    ("1920-8", "Aspartate aminotransferase", "U/L", 10, 55, 0),
    ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.2, 1.1, 2),
    ("4485-9", "Complement C3 [Mass/volume] in Serum or Plasma", "mg/dL", 45, 130, 0),
    ("4498-2", "Complement C4 [Mass/volume] in Serum or Plasma", "mg/dL", 5, 35, 0),
    ("2890-2", "Protein/Creatinine [Mass Ratio] in Urine", "g/g", 0.05, 3.0, 2),
    ("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 0.9, 1.2, 2),
    ("5902-2", "Prothrombin time (PT)", "s", 11, 14, 1),
    ("8117-4", "CD19 cells/100 cells in Blood", "%", 5, 25, 1),
    ("8116-6", "CD19 cells [#/volume] in Blood", "/uL", 100, 700, 0),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 94, 100, 0),
    ("29463-7", "Body weight", "kg", 25, 60, 1),
    ("8302-2", "Body height", "cm", 120, 170, 0),
    ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 30, 80, 0),
    ("14631-6", "Bilirubin.total [Moles/volume] in Serum or Plasma", "umol/L", 3, 19, 0),
    ("26464-8", "Leukocytes [#/volume] in Blood", "10*9/L", 3.0, 10.0, 1),
    ("26499-4", "Neutrophils [#/volume] in Blood", "10*9/L", 1.5, 7.0, 1),
    ("26474-7", "Lymphocytes [#/volume] in Blood", "10*9/L", 0.6, 3.5, 1),
    ("34714-6", "INR in Blood by Coagulation assay", "{INR}", 0.9, 1.2, 2),
    ("2708-6", "Oxygen saturation in Arterial blood", "%", 94, 100, 0),
    ("3141-9", "Body weight Measured", "kg", 25, 60, 1),
    ("8306-3", "Body height --lying", "cm", 120, 170, 0),
    ("2889-4", "Protein [Mass/time] in 24 hour Urine", "g/(24.h)", 0.05, 3.0, 2),
)
# Scores and coded results that come with the monthly visit.
_MONTHLY_SCORES = 4  # SLEDAI-2K, ECOG, anti-dsDNA, ANA titer
# A routine non-lupus visit: some mapped codes, some the service never asks for.
ROUTINE_PANEL: tuple[tuple[str, str, str, float, float, int], ...] = (
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11, 15, 1),
    ("6690-2", "Leukocytes [#/volume] in Blood", "10*9/L", 4.0, 11.0, 1),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.3, 0.8, 2),
    ("1742-6", "Alanine aminotransferase", "U/L", 8, 35, 0),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 140, 0),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 135, 145, 0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.0, 1),
    ("29463-7", "Body weight", "kg", 15, 70, 1),
    ("8302-2", "Body height", "cm", 100, 175, 0),
)
OTHER_CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("195967001", "Asthma", "J45.909", "Unspecified asthma, uncomplicated"),
    ("46635009", "Diabetes mellitus type 1", "E10.9", "Type 1 diabetes mellitus"),
    ("410795001", "Juvenile idiopathic arthritis", "M08.00", "Juvenile rheumatoid arthritis"),
    ("24079001", "Atopic dermatitis", "L20.9", "Atopic dermatitis, unspecified"),
    ("52254009", "Nephrotic syndrome", "N04.9", "Nephrotic syndrome"),
    ("34000006", "Crohn's disease", "K50.90", "Crohn's disease, unspecified"),
    ("84757009", "Epilepsy", "G40.909", "Epilepsy, unspecified"),
    ("406506008", "Attention deficit hyperactivity disorder", "F90.9", "ADHD, unspecified"),
    ("414916001", "Obesity", "E66.9", "Obesity, unspecified"),
    ("38341003", "Hypertensive disorder", "I10", "Essential hypertension"),
)
OTHER_MEDICATIONS: tuple[tuple[str, str, float], ...] = (
    ("435", "albuterol", 0.09),
    ("274783", "insulin glargine", 10),
    ("6851", "methotrexate", 10),
    ("8640", "prednisone", 20),
    ("114477", "levetiracetam", 250),
    ("20610", "cetirizine", 5),
    ("41126", "fluticasone", 0.1),
    ("6901", "methylphenidate", 10),
    ("52582", "mesalamine", 800),
    ("17767", "amlodipine", 5),
    ("7646", "omeprazole", 20),
    ("1897", "calcium carbonate", 500),
)
LUPUS_MEDICATIONS: tuple[tuple[str, str, float], ...] = (
    ("8640", "prednisone", 40),
    ("5521", "hydroxychloroquine", 200),
    ("68149", "mycophenolate mofetil", 500),
    ("1256", "azathioprine", 50),
    ("42316", "tacrolimus", 2),
    ("3002", "cyclophosphamide", 500),
    ("6902", "methylprednisolone", 500),
    ("121191", "rituximab", 375),
)
LUPUS_CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("55464009", "Systemic lupus erythematosus", "M32.9", "SLE, unspecified"),
    ("68815009", "Lupus nephritis", "M32.14", "Glomerular disease in SLE"),
    ("36402006", "WHO class IV lupus nephritis", "M32.14", "Glomerular disease in SLE"),
    ("271737000", "Anemia", "D64.9", "Anemia, unspecified"),
    ("38341003", "Hypertensive disorder", "I10", "Essential hypertension"),
    ("69896004", "Rheumatoid arthritis", "M06.9", "Rheumatoid arthritis, unspecified"),
    ("95320005", "Cutaneous lupus", "L93.0", "Discoid lupus erythematosus"),
    ("62914000", "Cerebrovascular disease", "I67.9", "Cerebrovascular disease"),
    ("13645005", "Chronic obstructive lung disease", "J44.9", "COPD, unspecified"),
    ("235595009", "Gastroesophageal reflux disease", "K21.9", "GERD"),
    ("414916001", "Obesity", "E66.9", "Obesity, unspecified"),
    ("35489007", "Depressive disorder", "F32.A", "Depression, unspecified"),
    ("197480006", "Anxiety disorder", "F41.9", "Anxiety disorder, unspecified"),
    ("64859006", "Osteoporosis", "M81.0", "Age-related osteoporosis"),
    ("40930008", "Hypothyroidism", "E03.9", "Hypothyroidism, unspecified"),
    ("267036007", "Dyspnea", "R06.00", "Dyspnea, unspecified"),
    ("25064002", "Headache", "R51.9", "Headache, unspecified"),
    ("68962001", "Muscle pain", "M79.10", "Myalgia"),
    ("271807003", "Eruption of skin", "R21", "Rash"),
    ("386661006", "Fever", "R50.9", "Fever, unspecified"),
)


def _ref(rtype: str, rid: str) -> dict[str, str]:
    return {"reference": f"{rtype}/{rid}"}


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _when(day: date, hour: int = 8) -> str:
    return f"{day.isoformat()}T{hour:02d}:30:00+00:00"


def patient(pid: str, rng: random.Random, *, min_age: int = 3, max_age: int = 20) -> dict[str, Any]:
    """A synthetic Patient with a birth date giving an age in [min_age, max_age] at AS_OF."""
    age_days = rng.randint(min_age * 365, max_age * 365)
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"tag": [TAG]},
        "identifier": [{"system": "urn:trial-eligibility:benchmark-mrn", "value": pid.upper()}],
        "active": True,
        "name": [{"family": "Synthetic", "given": [f"P{pid[-5:]}"]}],
        "gender": rng.choice(("female", "female", "male")),
        "birthDate": (AS_OF - timedelta(days=age_days)).isoformat(),
    }


def observation(
    oid: str, pid: str, code: tuple[str, str, str, float, float, int], day: date,
    rng: random.Random,
) -> dict[str, Any]:
    """A final laboratory Observation with a valueQuantity drawn from the code's typical range."""
    loinc, display, unit, low, high, decimals = code
    value = round(rng.uniform(low, high), decimals)
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [_cc("http://terminology.hl7.org/CodeSystem/observation-category",
                         "laboratory", "Laboratory")],
        "code": _cc(LOINC, loinc, display),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": _when(day),
        "issued": _when(day, 14),
        "valueQuantity": {"value": int(value) if decimals == 0 else value, "unit": unit,
                          "system": UCUM, "code": unit},
    }


def _score(oid: str, pid: str, system: str, code: str, display: str, day: date,
           value: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": _cc(system, code, display),
        "subject": _ref("Patient", pid),
        "effectiveDateTime": _when(day),
    }
    if isinstance(value, bool):
        resource["valueBoolean"] = value
    elif isinstance(value, int):
        resource["valueInteger"] = value
    else:
        resource["valueString"] = str(value)
    return resource


def condition(cid: str, pid: str, entry: tuple[str, str, str, str], onset: date,
              active: bool = True) -> dict[str, Any]:
    """A confirmed Condition coded in SNOMED CT and ICD-10-CM."""
    snomed, display, icd, icd_display = entry
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical",
                              "active" if active else "resolved",
                              "Active" if active else "Resolved"),
        "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                  "confirmed", "Confirmed"),
        "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display},
                            {"system": ICD10, "code": icd, "display": icd_display}],
                 "text": display},
        "subject": _ref("Patient", pid),
        "onsetDateTime": onset.isoformat(),
        "recordedDate": onset.isoformat(),
    }


def medication_request(mid: str, pid: str, drug: tuple[str, str, float], start: date,
                       days: int, status: str = "completed") -> dict[str, Any]:
    """A MedicationRequest with an RxNorm ingredient, a daily dose and a validity period."""
    rxnorm, name, dose = drug
    end = start + timedelta(days=days)
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _cc(RXNORM, rxnorm, name),
        "subject": _ref("Patient", pid),
        "authoredOn": _when(start, 10),
        "dosageInstruction": [{
            "text": f"{dose:g} mg once daily",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg", "system": UCUM,
                                              "code": "mg"}}],
        }],
        "dispenseRequest": {"validityPeriod": {"start": start.isoformat(),
                                               "end": end.isoformat()}},
    }


def medication_statement(mid: str, pid: str, drug: tuple[str, str, float], start: date,
                         days: int) -> dict[str, Any]:
    """A completed MedicationStatement with an effective period and a daily dose."""
    rxnorm, name, dose = drug
    return {
        "resourceType": "MedicationStatement",
        "id": mid,
        "status": "completed",
        "medicationCodeableConcept": _cc(RXNORM, rxnorm, name),
        "subject": _ref("Patient", pid),
        "effectivePeriod": {"start": start.isoformat(),
                            "end": (start + timedelta(days=days)).isoformat()},
        "dosage": [{"text": f"{dose:g} mg once daily",
                    "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg",
                                                      "system": UCUM, "code": "mg"}}]}],
    }


# ------------------------------------------------------------------------------ heavy record


def heavy_record(pid: str = "bench-heavy", *, years: int = 5, medications: int = 50,
                 conditions: int = 20, seed: int = 7) -> list[dict[str, Any]]:
    """A lupus patient with `years` of monthly labs (~2,000 Observations), 50 meds, 20 Conditions.

    Every Observation code is one the service asks the FHIR server for, so this is the
    record exactly as a screening would hold it in memory.
    """
    rng = random.Random(seed)
    out: list[dict[str, Any]] = [patient(pid, rng, min_age=14, max_age=16)]
    out[0]["gender"] = "female"
    for month in range(years * 12):
        day = AS_OF - timedelta(days=5 + 30 * month)
        for i, code in enumerate(LUPUS_PANEL):
            out.append(observation(f"{pid}-m{month}-l{i}", pid, code, day, rng))
        out.append(_score(f"{pid}-m{month}-sledai", pid, SCORE, "sledai-2k", "SLEDAI-2K",
                          day, rng.randint(4, 16)))
        out.append(_score(f"{pid}-m{month}-ecog", pid, LOINC, "89247-1", "ECOG", day,
                          rng.randint(0, 2)))
        out.append(_score(f"{pid}-m{month}-dsdna", pid, LOINC, "5130-0", "dsDNA Ab", day,
                          rng.choice(("Positive", "Negative"))))
        out.append(_score(f"{pid}-m{month}-ana", pid, LOINC, "5048-4", "ANA titer", day,
                          rng.choice(("1:160", "1:320", "1:640"))))
    for i in range(conditions):
        entry = LUPUS_CONDITIONS[i % len(LUPUS_CONDITIONS)]
        out.append(condition(f"{pid}-c{i}", pid, entry,
                             AS_OF - timedelta(days=rng.randint(100, years * 365)),
                             active=i % 4 != 3))
    for i in range(medications):
        drug = LUPUS_MEDICATIONS[i % len(LUPUS_MEDICATIONS)] if i % 3 else \
            OTHER_MEDICATIONS[i % len(OTHER_MEDICATIONS)]
        start = AS_OF - timedelta(days=rng.randint(30, years * 365))
        builder = medication_request if i % 2 else medication_statement
        out.append(builder(f"{pid}-rx{i}", pid, drug, start, rng.randint(30, 400)))
    out.append({
        "resourceType": "Consent", "id": f"{pid}-consent", "status": "active",
        "scope": _cc("http://terminology.hl7.org/CodeSystem/consentscope", "research",
                     "Research"),
        "category": [_cc(LOINC, "59284-0", "Patient Consent")],
        "patient": _ref("Patient", pid), "dateTime": _when(AS_OF - timedelta(days=10)),
        "policy": [{"uri": "urn:trial-eligibility:study:refractory-sle-cart"}],
        "provision": {"type": "permit"},
    })
    return out


# ------------------------------------------------------------------------------ population


def seed_records() -> list[list[dict[str, Any]]]:
    """The seed patients' resources (seeds/patients/*.json, manifest order)."""
    manifest = json.loads((SEEDS_DIR / "manifest.json").read_text())
    records = []
    for name in manifest["patients"]:
        bundle = json.loads((SEEDS_DIR / name).read_text())
        records.append([e["resource"] for e in bundle["entry"]])
    return records


def _rename(record: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    # Seed ids and references all start with the seed patient's id: one textual rewrite.
    text = json.dumps(record).replace(f'"{old}', f'"{new}').replace(f"/{old}", f"/{new}")
    return json.loads(text)


def lupus_patient(pid: str, index: int, seeds: Sequence[list[dict[str, Any]]]) -> list[dict]:
    """A copy of seed patient number `index` (round robin) under id `pid`."""
    record = seeds[index % len(seeds)]
    old = next(r["id"] for r in record if r["resourceType"] == "Patient")
    return _rename(copy.deepcopy(record), old, pid)


def other_patient(pid: str, rng: random.Random) -> list[dict[str, Any]]:
    """A non-lupus pediatric patient: 0-3 conditions, 0-3 medications, 1-3 routine visits."""
    out: list[dict[str, Any]] = [patient(pid, rng)]
    for i, entry in enumerate(rng.sample(OTHER_CONDITIONS, rng.randint(0, 3))):
        out.append(condition(f"{pid}-c{i}", pid, entry,
                             AS_OF - timedelta(days=rng.randint(60, 2000))))
    for i, drug in enumerate(rng.sample(OTHER_MEDICATIONS, rng.randint(0, 3))):
        out.append(medication_request(f"{pid}-rx{i}", pid, drug,
                                      AS_OF - timedelta(days=rng.randint(10, 700)),
                                      rng.randint(14, 365),
                                      status=rng.choice(("active", "completed"))))
    for visit in range(rng.randint(1, 3)):
        day = AS_OF - timedelta(days=rng.randint(1, 700))
        panel = rng.sample(ROUTINE_PANEL, rng.randint(3, len(ROUTINE_PANEL)))
        for i, code in enumerate(panel):
            out.append(observation(f"{pid}-v{visit}-l{i}", pid, code, day, rng))
    return out


def population(count: int, *, lupus_share: float = 0.25, seed: int = 42,
               start: int = 0) -> Iterator[list[dict[str, Any]]]:
    """`count` patient records: about `lupus_share` seed-derived lupus patients, the rest not."""
    rng = random.Random(seed * 1_000_003 + start)
    seeds = seed_records()
    for n in range(start, start + count):
        pid = f"bench-{n:05d}"
        if rng.random() < lupus_share:
            yield lupus_patient(pid, n, seeds)
        else:
            yield other_patient(pid, rng)


def is_lupus(record: Sequence[dict[str, Any]]) -> bool:
    """True when the record holds an SLE Condition (SNOMED or ICD-10-CM M32)."""
    sle = {"55464009", "239887007", "68815009"}
    for resource in record:
        if resource.get("resourceType") != "Condition":
            continue
        for coding in (resource.get("code") or {}).get("coding") or ():
            code = str(coding.get("code", ""))
            if code in sle or code.startswith("M32"):
                return True
    return False


def transaction(records: Iterable[list[dict[str, Any]]]) -> dict[str, Any]:
    """One transaction Bundle creating every resource (POST, urn:uuid references).

    POST lets the server assign ids, so one Bundle may hold thousands of entries (servers cap
    the PUTs of a transaction); references inside the Bundle are rewritten to the entries'
    urn:uuid full URLs, which the server resolves to the ids it assigns.
    """
    entries = []
    for record in records:
        full = {
            f"{r['resourceType']}/{r['id']}":
                f"urn:uuid:{uuid.uuid5(_NS, r['resourceType'] + '/' + r['id'])}"
            for r in record
        }
        for resource in record:
            body = _rewrite(resource, full)
            key = f"{resource['resourceType']}/{resource['id']}"
            body.pop("id", None)
            entries.append({"fullUrl": full[key], "resource": body,
                            "request": {"method": "POST", "url": resource["resourceType"]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _rewrite(value: Any, full: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _rewrite(v, full) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in full:
            out["reference"] = full[ref]
        return out
    if isinstance(value, list):
        return [_rewrite(v, full) for v in value]
    return value


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most `size` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
