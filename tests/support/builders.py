"""Small builders of FHIR R4 JSON resources for the engine tests, and two eligible patients."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

AS_OF = date(2026, 11, 15)  # the seeds' reference date (seeds/manifest.json "asOf")
PID = "p1"
SUBJECT = {"reference": f"Patient/{PID}"}

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CRITERION = "urn:trial-eligibility:criterion"
SCORE = "urn:trial-eligibility:score"
STUDY_POLICY = "urn:trial-eligibility:study:"

SLE = "refractory-sle-cart"
LN = "pediatric-ln-cart"

# Codes used below (mappings/concepts.toml).
HB, WBC, NEUT, LYMPH = "718-7", "6690-2", "751-8", "731-0"
ALT, AST, BILI, BILI_MOL = "1742-6", "1920-8", "1975-2", "14631-6"
CREAT, CREAT_MOL, EGFR = "2160-0", "14682-9", "33914-3"
INR, PT, ANA, ANA_PRESENCE = "6301-6", "5902-2", "5048-4", "8061-4"
SPO2, LVEF, CD19_PCT, CD19_ABS = "59408-5", "10230-1", "8117-4", "8116-6"
UPCR, PROT_24H, HCG_URINE, ECOG = "2890-2", "2889-4", "2106-3", "89247-1"
HEIGHT, WEIGHT, ECG = "8302-2", "29463-7", "8601-7"
SCT_SLE, SCT_LN, SCT_CLASS_III, SCT_CLASS_IV = "55464009", "68815009", "76521009", "36402006"
SCT_CLASS_V, SCT_DRUG_LUPUS, SCT_GILBERT, SCT_MYOSITIS = "52042003", "201436003", "27503000", \
    "26889001"
SCT_KIDNEY_BIOPSY, SCT_ECG_NORMAL, SCT_ECG_ABNORMAL = "48426002", "164854000", "102594003"
SCT_NEGATIVE, SCT_POSITIVE = "260385009", "10828004"
RX_PREDNISONE, RX_METHYLPRED, RX_HCQ, RX_CYC = "8640", "6902", "5521", "3002"
RX_MMF, RX_MPA, RX_AZA, RX_MTX, RX_TAC = "68149", "7145", "1256", "6851", "42316"
RX_FILGRASTIM, RX_PREDNISONE_20MG_TAB = "68442", "312615"

_ids = itertools.count(1)


def day(days_before: int, as_of: date = AS_OF) -> str:
    """ISO date `days_before` days before the as-of date (negative: after it)."""
    return (as_of - timedelta(days=days_before)).isoformat()


def birth_for(years: int, extra_days: int = 0, as_of: date = AS_OF) -> str:
    """Birth date making the patient exactly `years` old at as_of, plus `extra_days` older."""
    born = as_of.replace(year=as_of.year - years) - timedelta(days=extra_days)
    return born.isoformat()


def _new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def cc(code: str, system: str = SNOMED, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding."""
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def quantity(value: float | int | str, unit: str | None, comparator: str | None = None
             ) -> dict[str, Any]:
    """A Quantity; `unit` is written both as the human unit and the UCUM code."""
    q: dict[str, Any] = {"value": value}
    if unit is not None:
        q.update(unit=unit, system=UCUM, code=unit)
    if comparator:
        q["comparator"] = comparator
    return q


def patient(birth_date: str | None = None, gender: str | None = "female", pid: str = PID
            ) -> dict[str, Any]:
    """A Patient with an optional (possibly partial) birth date."""
    res: dict[str, Any] = {"resourceType": "Patient", "id": pid}
    if birth_date is not None:
        res["birthDate"] = birth_date
    if gender is not None:
        res["gender"] = gender
    return res


def obs(
    code: str,
    value: Any = None,
    unit: str | None = None,
    date: str | None = None,
    *,
    system: str = LOINC,
    status: str = "final",
    comparator: str | None = None,
    value_string: str | None = None,
    value_ratio: tuple[float, float] | None = None,
    value_concept: dict[str, Any] | None = None,
    value_boolean: bool | None = None,
    value_integer: int | None = None,
    ref_high: float | None = None,
    ref_unit: str | None = None,
    oid: str | None = None,
) -> dict[str, Any]:
    """An Observation; `value` with `unit` becomes valueQuantity (unit may be None: no unit)."""
    res: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid or _new_id("obs"),
        "status": status,
        "code": cc(code, system),
        "subject": SUBJECT,
        "effectiveDateTime": date if date is not None else day(1),
    }
    if value is not None:
        res["valueQuantity"] = quantity(value, unit, comparator)
    if value_string is not None:
        res["valueString"] = value_string
    if value_ratio is not None:
        res["valueRatio"] = {"numerator": {"value": value_ratio[0]},
                             "denominator": {"value": value_ratio[1]}}
    if value_concept is not None:
        res["valueCodeableConcept"] = value_concept
    if value_boolean is not None:
        res["valueBoolean"] = value_boolean
    if value_integer is not None:
        res["valueInteger"] = value_integer
    if ref_high is not None:
        high_unit = ref_unit if ref_unit is not None else unit
        res["referenceRange"] = [{"high": quantity(ref_high, high_unit)}]
    return res


def sledai(score: int, date: str | None = None, **kw: Any) -> dict[str, Any]:
    """A SLEDAI-2K score Observation (local code system of the default mapping)."""
    return obs("sledai-2k", system=SCORE, value_integer=score, date=date, **kw)


def lansky(score: int, date: str | None = None) -> dict[str, Any]:
    """A Lansky play-performance score Observation."""
    return obs("lansky", system=SCORE, value_integer=score, date=date)


def confirmation(criterion_id: str, value: bool = True, date: str | None = None,
                 status: str = "final") -> dict[str, Any]:
    """A person's confirmation of a manual criterion (Observation, valueBoolean)."""
    return obs(criterion_id, system=CRITERION, value_boolean=value, date=date, status=status)


def condition(code: str, system: str = SNOMED, *, clinical: str | None = "active",
              verification: str | None = "confirmed", onset: str | None = None,
              cid: str | None = None) -> dict[str, Any]:
    """A Condition (SNOMED by default; pass system=ICD10CM for ICD-10-CM)."""
    res: dict[str, Any] = {
        "resourceType": "Condition", "id": cid or _new_id("cond"), "subject": SUBJECT,
        "code": cc(code, system),
    }
    cs = "http://terminology.hl7.org/CodeSystem/condition-"
    if clinical:
        res["clinicalStatus"] = cc(clinical, cs + "clinical")
    if verification:
        res["verificationStatus"] = cc(verification, cs + "ver-status")
    if onset:
        res["onsetDateTime"] = onset
    return res


def _dosage(dose: tuple[float, str] | None, frequency: int, period: float, period_unit: str,
            bounds: tuple[str | None, str | None] | None = None) -> dict[str, Any]:
    dosage: dict[str, Any] = {}
    repeat: dict[str, Any] = {"frequency": frequency, "period": period, "periodUnit": period_unit}
    if bounds is not None:
        bp = {k: v for k, v in (("start", bounds[0]), ("end", bounds[1])) if v}
        repeat["boundsPeriod"] = bp
    dosage["timing"] = {"repeat": repeat}
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": quantity(dose[0], dose[1])}]
    return dosage


def _medication_fields(res: dict[str, Any], code: str | None, system: str,
                       contained: dict[str, Any] | None) -> None:
    if contained is not None:
        res["contained"] = [contained]
        res["medicationReference"] = {"reference": f"#{contained['id']}"}
    elif code is not None:
        res["medicationCodeableConcept"] = cc(code, system)


def medication(code: str | None = None, system: str = RXNORM, *,
               ingredient: str | None = None, strength_mg: float | None = None,
               mid: str = "med") -> dict[str, Any]:
    """A Medication (for `contained`) with an optional ingredient and strength per tablet."""
    res: dict[str, Any] = {"resourceType": "Medication", "id": mid}
    if code is not None:
        res["code"] = cc(code, system)
    if ingredient is not None:
        item: dict[str, Any] = {"itemCodeableConcept": cc(ingredient, RXNORM)}
        if strength_mg is not None:
            item["strength"] = {
                "numerator": quantity(strength_mg, "mg"),
                "denominator": {"value": 1, "unit": "tablet", "system": UCUM,
                                "code": "{tbl}"},
            }
        res["ingredient"] = [item]
    return res


def med_statement(code: str | None = None, start: str | None = None, end: str | None = None,
                  *, dose: tuple[float, str] | None = None, frequency: int = 1,
                  period: float = 1, period_unit: str = "d", status: str = "completed",
                  system: str = RXNORM, contained: dict[str, Any] | None = None,
                  mid: str | None = None) -> dict[str, Any]:
    """A MedicationStatement with an effectivePeriod (start/end) and an optional daily dose."""
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement", "id": mid or _new_id("ms"), "status": status,
        "subject": SUBJECT,
    }
    _medication_fields(res, code, system, contained)
    period_json = {k: v for k, v in (("start", start), ("end", end)) if v}
    if period_json:
        res["effectivePeriod"] = period_json
    res["dosage"] = [_dosage(dose, frequency, period, period_unit)]
    return res


def med_request(code: str | None = None, start: str | None = None, end: str | None = None,
                *, dose: tuple[float, str] | None = None, frequency: int = 1,
                period: float = 1, period_unit: str = "d", status: str = "active",
                intent: str = "order", system: str = RXNORM,
                contained: dict[str, Any] | None = None, authored: str | None = None,
                mid: str | None = None) -> dict[str, Any]:
    """A MedicationRequest whose period is the dosage timing's boundsPeriod."""
    res: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": mid or _new_id("mr"), "status": status,
        "intent": intent, "subject": SUBJECT, "authoredOn": authored or start or day(0),
    }
    _medication_fields(res, code, system, contained)
    bounds = (start, end) if start or end else None
    res["dosageInstruction"] = [_dosage(dose, frequency, period, period_unit, bounds)]
    return res


def med_admin(code: str, when: str | None = None, *, start: str | None = None,
              end: str | None = None, dose: tuple[float, str] | None = None,
              status: str = "completed", system: str = RXNORM, mid: str | None = None
              ) -> dict[str, Any]:
    """A MedicationAdministration at a date-time or over a period."""
    res: dict[str, Any] = {
        "resourceType": "MedicationAdministration", "id": mid or _new_id("ma"),
        "status": status, "subject": SUBJECT, "medicationCodeableConcept": cc(code, system),
    }
    if when is not None:
        res["effectiveDateTime"] = when
    else:
        res["effectivePeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if dose is not None:
        res["dosage"] = {"dose": quantity(dose[0], dose[1])}
    return res


def procedure(code: str = SCT_KIDNEY_BIOPSY, when: str | None = None, *,
              status: str = "completed", pid: str | None = None) -> dict[str, Any]:
    """A Procedure (kidney biopsy by default) performed on a date."""
    res: dict[str, Any] = {
        "resourceType": "Procedure", "id": pid or _new_id("proc"), "status": status,
        "subject": SUBJECT, "code": cc(code),
    }
    if when is not None:
        res["performedDateTime"] = when
    return res


def diagnostic_report(code: str = "60567-5", when: str | None = None, *,
                      conclusion: list[str] = (), status: str = "final",
                      results: list[str] = (), rid: str | None = None) -> dict[str, Any]:
    """A DiagnosticReport (pathology by default) with SNOMED conclusionCodes and results."""
    res: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": rid or _new_id("dr"), "status": status,
        "subject": SUBJECT, "code": cc(code, LOINC),
    }
    if when is not None:
        res["effectiveDateTime"] = when
    if conclusion:
        res["conclusionCode"] = [cc(c) for c in conclusion]
    if results:
        res["result"] = [{"reference": r} for r in results]
    return res


def allergy(code: str, system: str = RXNORM, *, category: str = "medication",
            verification: str = "confirmed", clinical: str = "active",
            aid: str | None = None) -> dict[str, Any]:
    """An AllergyIntolerance (intolerance) to a substance."""
    base = "http://terminology.hl7.org/CodeSystem/allergyintolerance-"
    return {
        "resourceType": "AllergyIntolerance", "id": aid or _new_id("ai"),
        "type": "intolerance", "category": [category], "patient": SUBJECT,
        "code": cc(code, system),
        "clinicalStatus": cc(clinical, base + "clinical"),
        "verificationStatus": cc(verification, base + "verification"),
    }


def consent(study: str, status: str = "active", when: str | None = None,
            cid: str | None = None) -> dict[str, Any]:
    """A Consent of the patient to a study (policy uri urn:trial-eligibility:study:<key>)."""
    return {
        "resourceType": "Consent", "id": cid or _new_id("consent"), "status": status,
        "patient": SUBJECT, "dateTime": when or day(1),
        "scope": cc("research", "http://terminology.hl7.org/CodeSystem/consentscope"),
        "category": [cc("59284-0", LOINC)],
        "policy": [{"uri": f"{STUDY_POLICY}{study}"}],
    }


# --------------------------------------------------------------------------- full patients

def eligible_sle_patient() -> list[dict[str, Any]]:
    """A 12-year-old girl meeting every criterion of refractory-sle-cart as of AS_OF."""
    return [
        patient(birth_for(12, 100), "female"),
        condition(SCT_SLE, onset="2023-01-10"),
        obs(WEIGHT, 40, "kg", day(10)),
        obs(HEIGHT, 150, "cm", day(10)),
        # 120 days of prednisone 40 mg/day = 1.0 mg/kg/day
        med_statement(RX_PREDNISONE, day(200), day(81), dose=(40, "mg")),
        med_statement(RX_HCQ, day(400), status="active", dose=(200, "mg")),
        med_statement(RX_MMF, day(400), day(100), dose=(1000, "mg")),
        med_statement(RX_TAC, day(300), status="active", dose=(2, "mg")),
        sledai(12, day(5)),
        obs(LVEF, 62, "%", day(20)),
        obs(ECG, value_concept=cc(SCT_ECG_NORMAL), date=day(20)),
        obs(EGFR, 95, "mL/min/{1.73_m2}", day(5)),
        obs(ALT, 20, "U/L", day(5), ref_high=25),
        obs(AST, 30, "U/L", day(5), ref_high=36),
        obs(BILI, 0.5, "mg/dL", day(5), ref_high=1.0),
        obs(SPO2, 98, "%", day(5)),
        confirmation("lung-lesions", True, day(3)),
        confirmation("leukapheresis", True, day(3)),
        obs(HCG_URINE, value_concept=cc(SCT_NEGATIVE, display="Negative"), date=day(3)),
        confirmation("contraception", True, day(3)),
        consent(SLE, "active", day(2)),
    ]


def eligible_ln_patient() -> list[dict[str, Any]]:
    """A 10-year-old boy meeting every criterion of pediatric-ln-cart as of AS_OF."""
    return [
        patient(birth_for(10, 30), "male"),
        condition(SCT_SLE, onset="2022-03-01"),
        condition(SCT_CLASS_IV, onset=day(60)),
        procedure(SCT_KIDNEY_BIOPSY, day(60)),
        sledai(10, day(5)),
        med_statement(RX_PREDNISONE, day(400), status="active", dose=(20, "mg")),
        med_statement(RX_MMF, day(350), status="active", dose=(600, "mg")),
        obs(UPCR, 1.2, "g/g", day(5)),
        obs(CD19_PCT, 12, "%", day(5)),
        confirmation("venous-access", True, day(3)),
        consent(LN, "active", day(2)),
        obs(LYMPH, 1.5, "10*3/uL", day(5)),
        obs(WBC, 5.2, "10*3/uL", day(5)),
        obs(NEUT, 3.1, "10*3/uL", day(5)),
        obs(HB, 11.5, "g/dL", day(5)),
        obs(ALT, 20, "U/L", day(5), ref_high=25),
        obs(AST, 30, "U/L", day(5), ref_high=44),
        obs(BILI, 0.4, "mg/dL", day(5), ref_high=1.0),
        obs(EGFR, 110, "mL/min/{1.73_m2}", day(5)),
        obs(INR, 1.0, "{INR}", day(5), ref_high=1.2),
        obs(PT, 12.5, "s", day(5), ref_high=13.5),
        confirmation("hemodynamic-stability", True, day(3)),
        obs(ANA, value_ratio=(1, 320), date=day(30)),
        obs(ECOG, value_integer=1, date=day(5)),
    ]
