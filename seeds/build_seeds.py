"""Writes the synthetic seed patients (transaction Bundles) and seeds/manifest.json.

The JSON files under seeds/ are the artefacts the service loads; this script is how they
were authored, so that every patient is written with the same structure and codes. Run
`python seeds/build_seeds.py` after editing a patient here; tests/test_seeds.py checks the
committed files are what this script writes. seeds/expected.json is NOT generated: it was
derived by hand from shared/spec/criteria.md (see seeds/README.md).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEEDS_DIR = Path(__file__).resolve().parent
AS_OF = "2026-11-15"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CRITERION_SYSTEM = "urn:trial-eligibility:criterion"
SCORE_SYSTEM = "urn:trial-eligibility:score"
STUDY_POLICY = "urn:trial-eligibility:study:"
SEED_TAG = {"system": "urn:trial-eligibility:seed", "code": "synthetic",
            "display": "Synthetic seed data"}
MRN_SYSTEM = "urn:trial-eligibility:seed-mrn"
SEED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:trial-eligibility:seed")

SLE_STUDY = "refractory-sle-cart"
LN_STUDY = "pediatric-ln-cart"

TZ = "+08:00"  # both trial sites are in China

# key -> (LOINC code, display, UCUM unit, category)
ANALYTES: dict[str, tuple[str, str, str, str]] = {
    "hb_gdl": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "laboratory"),
    "hb_gl": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", "laboratory"),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL",
            "laboratory"),
    "wbc_si": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L",
               "laboratory"),
    "neut": ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*3/uL",
             "laboratory"),
    "neut_si": ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*9/L",
                "laboratory"),
    "lymph": ("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "10*3/uL",
              "laboratory"),
    "lymph_ul": ("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "/uL",
                 "laboratory"),
    "alt": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "U/L", "laboratory"),
    "ast": ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "U/L", "laboratory"),
    "tbil_mgdl": ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL",
                  "laboratory"),
    "tbil_umol": ("14631-6", "Bilirubin.total [Moles/volume] in Serum or Plasma", "umol/L",
                  "laboratory"),
    "creat_mgdl": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL",
                   "laboratory"),
    "creat_umol": ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L",
                   "laboratory"),
    "egfr_schwartz": ("50384-7", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/"
                      "Area] in Serum, Plasma or Blood by Creatinine-based formula (Schwartz)",
                      "mL/min/{1.73_m2}", "laboratory"),
    "egfr_ckdepi2021": ("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume "
                        "Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula "
                        "(CKD-EPI 2021)", "mL/min/{1.73_m2}", "laboratory"),
    "inr": ("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", "laboratory"),
    "pt": ("5902-2", "Prothrombin time (PT)", "s", "laboratory"),
    "cd19_pct": ("8117-4", "CD19 cells/100 cells in Blood", "%", "laboratory"),
    "cd19_abs": ("8116-6", "CD19 cells [#/volume] in Blood", "/uL", "laboratory"),
    "upcr_mgg": ("2890-2", "Protein/Creatinine [Mass Ratio] in Urine", "mg/g", "laboratory"),
    "upcr_gg": ("2890-2", "Protein/Creatinine [Mass Ratio] in Urine", "g/g", "laboratory"),
    "uprot24": ("2889-4", "Protein [Mass/time] in 24 hour Urine", "mg/(24.h)", "laboratory"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%",
             "vital-signs"),
    "lvef": ("10230-1", "Left ventricular Ejection fraction", "%", "imaging"),
    "weight": ("29463-7", "Body weight", "kg", "vital-signs"),
    "height": ("8302-2", "Body height", "cm", "vital-signs"),
}
# Displays of the units written in valueQuantity.unit (the human-readable form).
UNIT_DISPLAY = {"10*3/uL": "10^3/uL", "10*9/L": "10^9/L", "{INR}": "INR",
                "mL/min/{1.73_m2}": "mL/min/1.73m2", "mg/(24.h)": "mg/24h", "{score}": "score"}

HCG = {"urine": ("2106-3", "Choriogonadotropin (pregnancy test) [Presence] in Urine"),
       "serum": ("2118-8", "Choriogonadotropin (pregnancy test) [Presence] in Serum or Plasma")}
RESULT_CODES = {"negative": ("260385009", "Negative", "NEG"),
                "positive": ("10828004", "Positive", "POS")}

DRUGS = {
    "prednisone": ("8640", "prednisone"),
    "prednisolone": ("8638", "prednisolone"),
    "methylprednisolone": ("6902", "methylprednisolone"),
    "hydroxychloroquine": ("5521", "hydroxychloroquine"),
    "cyclophosphamide": ("3002", "cyclophosphamide"),
    "mycophenolate-mofetil": ("68149", "mycophenolate mofetil"),
    "mycophenolic-acid": ("7145", "mycophenolic acid"),
    "azathioprine": ("1256", "azathioprine"),
    "methotrexate": ("6851", "methotrexate"),
    "cyclosporine": ("3008", "cyclosporine"),
    "tacrolimus": ("42316", "tacrolimus"),
    "leflunomide": ("27169", "leflunomide"),
    "filgrastim": ("68442", "filgrastim"),
}
ROUTES = {"oral": ("26643006", "Oral route"), "iv": ("47625008", "Intravenous route"),
          "sc": ("34206005", "Subcutaneous route")}

CONDITIONS = {
    "sle": [(SNOMED, "55464009", "Systemic lupus erythematosus")],
    "sle-organ": [(SNOMED, "239887007",
                   "Systemic lupus erythematosus with organ/system involvement"),
                  (ICD10CM, "M32.19",
                   "Other organ or system involvement in systemic lupus erythematosus")],
    "sle-icd-only": [(ICD10CM, "M32.19",
                      "Other organ or system involvement in systemic lupus erythematosus")],
    "sle-icd10-who": [(SNOMED, "55464009", "Systemic lupus erythematosus"),
                      (ICD10, "M32.9", "Systemic lupus erythematosus, unspecified")],
    "ln": [(SNOMED, "68815009", "Lupus nephritis"),
           (ICD10CM, "M32.14", "Glomerular disease in systemic lupus erythematosus")],
    "ln-iii": [(SNOMED, "76521009", "Lupus nephritis, WHO class III"),
               (ICD10CM, "M32.14", "Glomerular disease in systemic lupus erythematosus")],
    "ln-iv": [(SNOMED, "36402006", "Lupus nephritis, WHO class IV"),
              (ICD10CM, "M32.14", "Glomerular disease in systemic lupus erythematosus")],
    "drug-induced": [(SNOMED, "201436003", "Drug-induced systemic lupus erythematosus"),
                     (ICD10CM, "M32.0", "Drug-induced systemic lupus erythematosus")],
    "gilbert": [(SNOMED, "27503000", "Gilbert syndrome"), (ICD10CM, "E80.4", "Gilbert syndrome")],
    "polymyositis": [(SNOMED, "31384009", "Polymyositis"),
                     (ICD10CM, "M33.20", "Polymyositis, organ involvement unspecified")],
}


def at(day: str, time: str = "08:30:00") -> str:
    """A FHIR dateTime on `day` in the sites' time zone."""
    return f"{day}T{time}{TZ}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(codings: list[tuple[str, str, str]], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [coding(*c) for c in codings]}
    out["text"] = text or codings[0][2]
    return out


def quantity(value: float | int, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": UNIT_DISPLAY.get(unit, unit), "system": UCUM, "code": unit}


class PatientBuilder:
    """Collects one synthetic patient's resources; every id is prefixed with the patient id."""

    def __init__(self, pid: str, family: str, given: str, gender: str, birth_date: str,
                 city: str, mrn: str) -> None:
        self.pid = pid
        self.ref = {"reference": f"Patient/{pid}"}
        self.resources: list[dict[str, Any]] = []
        self.suffixes: set[str] = set()
        self.add("", {
            "resourceType": "Patient",
            "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given],
                      "text": f"{given} {family}"}],
            "gender": gender,
            "birthDate": birth_date,
            "address": [{"city": city, "country": "CN"}],
        })

    # -- plumbing -----------------------------------------------------------------------
    def add(self, suffix: str, resource: dict[str, Any]) -> dict[str, Any]:
        if suffix in self.suffixes:
            raise ValueError(f"{self.pid}: duplicate resource suffix {suffix!r}")
        self.suffixes.add(suffix)
        rid = f"{self.pid}-{suffix}" if suffix else self.pid
        body = {"resourceType": resource.pop("resourceType"), "id": rid,
                "meta": {"tag": [dict(SEED_TAG)]}}
        body.update(resource)
        self.resources.append(body)
        return body

    def bundle(self) -> dict[str, Any]:
        entries = []
        for res in self.resources:
            url = f"{res['resourceType']}/{res['id']}"
            # Deterministic placeholder fullUrl; references use the relative "Type/id" form.
            full_url = f"urn:uuid:{uuid.uuid5(SEED_NAMESPACE, url)}"
            entries.append({"fullUrl": full_url, "resource": res,
                            "request": {"method": "PUT", "url": url}})
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    # -- observations ---------------------------------------------------------------------
    def _obs(self, suffix: str, code: dict[str, Any], category: str | None, day: str,
             status: str = "final", time: str = "08:30:00", **value: Any) -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "Observation", "status": status}
        if category:
            res["category"] = [concept([(OBS_CATEGORY, category, category.replace("-", " ")
                                         .capitalize())])]
        res.update({"code": code, "subject": self.ref, "effectiveDateTime": at(day, time),
                    "issued": at(day, "14:00:00")})
        res.update(value)
        return self.add(suffix, res)

    def lab(self, suffix: str, key: str, value: float | int, day: str, *,
            high: float | int | None = None, low: float | int | None = None,
            status: str = "final") -> dict[str, Any]:
        code, display, unit, category = ANALYTES[key]
        extra: dict[str, Any] = {"valueQuantity": quantity(value, unit)}
        if high is not None:
            rng: dict[str, Any] = {}
            if low is not None:
                rng["low"] = quantity(low, unit)
            rng["high"] = quantity(high, unit)
            extra["referenceRange"] = [rng]
        return self._obs(suffix, concept([(LOINC, code, display)]), category, day,
                         status=status, **extra)

    def sledai(self, suffix: str, score: int, day: str, *, as_quantity: bool = False) -> None:
        code = concept([(SCORE_SYSTEM, "sledai-2k", "SLEDAI-2K disease activity score")])
        value = ({"valueQuantity": quantity(score, "{score}")} if as_quantity
                 else {"valueInteger": score})
        self._obs(suffix, code, "survey", day, **value)

    def ecog(self, suffix: str, score: int, day: str) -> None:
        code = concept([(LOINC, "89247-1", "ECOG Performance Status score")])
        self._obs(suffix, code, "survey", day, valueInteger=score)

    def ana(self, suffix: str, day: str, *, ratio: int | None = None,
            string: str | None = None) -> None:
        code = concept([(LOINC, "5048-4", "Nuclear Ab [Titer] in Serum by Immunofluorescence")])
        if ratio is not None:
            value = {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": ratio}}}
        else:
            value = {"valueString": string}
        self._obs(suffix, code, "laboratory", day, **value)

    def ana_presence(self, suffix: str, day: str, result: str) -> None:
        code = concept([(LOINC, "8061-4", "Nuclear Ab [Presence] in Serum")])
        rcode, rdisplay, interp = RESULT_CODES[result]
        self._obs(suffix, code, "laboratory", day,
                  valueCodeableConcept=concept([(SNOMED, rcode, rdisplay)]),
                  interpretation=[concept([(INTERPRETATION, interp, rdisplay)])])

    def hcg(self, suffix: str, day: str, result: str, specimen: str = "urine") -> None:
        code, display = HCG[specimen]
        rcode, rdisplay, interp = RESULT_CODES[result]
        self._obs(suffix, concept([(LOINC, code, display)]), "laboratory", day,
                  valueCodeableConcept=concept([(SNOMED, rcode, rdisplay)]),
                  interpretation=[concept([(INTERPRETATION, interp, rdisplay)])])

    def confirm(self, criterion: str, day: str, value: bool = True, note: str = "") -> None:
        """A manual criterion recorded by a study coordinator (common brief convention)."""
        code = concept([(CRITERION_SYSTEM, criterion, f"Trial criterion {criterion}")],
                       text=f"Coordinator confirmation: {criterion}")
        extra: dict[str, Any] = {"valueBoolean": value}
        if note:
            extra["note"] = [{"text": note}]
        self._obs(f"confirm-{criterion}", code, None, day, time="10:00:00", **extra)

    def vitals(self, day: str, weight: float, height: float, suffix: str = "") -> None:
        self.lab(f"weight{suffix}", "weight", weight, day)
        self.lab(f"height{suffix}", "height", height, day)

    # -- other clinical resources -------------------------------------------------------------
    def condition(self, suffix: str, kind: str, onset: str, *, verification: str = "confirmed",
                  clinical: str = "active", note: str = "") -> None:
        res: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": concept([("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                        clinical, clinical.capitalize())]),
            "verificationStatus": concept([(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", verification,
                verification.capitalize())]),
            "category": [concept([("http://terminology.hl7.org/CodeSystem/condition-category",
                                   "problem-list-item", "Problem List Item")])],
            "code": concept(CONDITIONS[kind]),
            "subject": self.ref,
            "onsetDateTime": onset,
            "recordedDate": onset,
        }
        if note:
            res["note"] = [{"text": note}]
        self.add(suffix, res)

    def biopsy(self, day: str, suffix: str = "kidney-biopsy") -> None:
        self.add(suffix, {
            "resourceType": "Procedure",
            "status": "completed",
            "code": concept([(SNOMED, "48426002", "Fine needle biopsy of kidney")],
                            text="Percutaneous kidney biopsy"),
            "subject": self.ref,
            "performedDateTime": at(day, "09:00:00"),
        })

    def pathology_report(self, suffix: str, day: str, class_code: str, conclusion: str) -> None:
        self.add(suffix, {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "category": [concept([("http://terminology.hl7.org/CodeSystem/v2-0074", "PAT",
                                   "Pathology (gross & histopath, not surgical)")])],
            "code": concept([(LOINC, "11526-1", "Pathology study")],
                            text="Kidney biopsy pathology report"),
            "subject": self.ref,
            "effectiveDateTime": at(day, "09:00:00"),
            "issued": at(day, "17:00:00"),
            "conclusion": conclusion,
            "conclusionCode": [concept([(SNOMED, class_code, {
                "76521009": "Lupus nephritis, WHO class III",
                "36402006": "Lupus nephritis, WHO class IV"}[class_code])])],
        })

    def consent(self, study: str, day: str) -> None:
        self.add(f"consent-{study}", {
            "resourceType": "Consent",
            "status": "active",
            "scope": concept([("http://terminology.hl7.org/CodeSystem/consentscope", "research",
                               "Research")]),
            "category": [concept([(LOINC, "59284-0", "Patient Consent")])],
            "patient": self.ref,
            "dateTime": at(day, "11:00:00"),
            "policy": [{"uri": f"{STUDY_POLICY}{study}"}],
            "provision": {"type": "permit"},
        })

    def allergy(self, suffix: str, drug: str, day: str, manifestation: str) -> None:
        code, name = DRUGS[drug]
        self.add(suffix, {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": concept([(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active",
                "Active")]),
            "verificationStatus": concept([(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "confirmed", "Confirmed")]),
            "type": "intolerance",
            "category": ["medication"],
            "criticality": "low",
            "code": concept([(RXNORM, code, name)]),
            "patient": self.ref,
            "recordedDate": at(day, "10:00:00"),
            "reaction": [{"manifestation": [{"text": manifestation}], "severity": "moderate"}],
        })

    # -- medications ----------------------------------------------------------------------
    @staticmethod
    def _dosage(dose_mg: float, per: int, period_unit: str, route: str) -> list[dict[str, Any]]:
        if period_unit == "d":
            when = {1: "once daily", 2: "twice daily", 3: "three times daily"}[per]
        else:
            when = {"wk": "once weekly", "mo": "once monthly"}[period_unit]
        dose_text = f"{dose_mg:g} mg"
        rcode, rdisplay = ROUTES[route]
        return [{
            "text": f"{dose_text} {when}",
            "timing": {"repeat": {"frequency": per if period_unit == "d" else 1, "period": 1,
                                  "periodUnit": period_unit}},
            "route": concept([(SNOMED, rcode, rdisplay)]),
            "doseAndRate": [{"doseQuantity": quantity(dose_mg, "mg")}],
        }]

    def _medication(self, drug: str | None, medication: dict[str, Any] | None) -> dict[str, Any]:
        if medication is not None:
            return medication
        code, name = DRUGS[drug or ""]
        return {"medicationCodeableConcept": concept([(RXNORM, code, name)])}

    def med_request(self, suffix: str, drug: str | None, dose_mg: float, start: str, end: str,
                    *, status: str, per: int = 1, period_unit: str = "d",
                    route: str = "oral", medication: dict[str, Any] | None = None,
                    contained: list[dict[str, Any]] | None = None) -> None:
        res: dict[str, Any] = {"resourceType": "MedicationRequest"}
        if contained:
            res["contained"] = contained
        res.update({"status": status, "intent": "order"})
        res.update(self._medication(drug, medication))
        res.update({
            "subject": self.ref,
            "authoredOn": at(start, "10:00:00"),
            "dosageInstruction": self._dosage(dose_mg, per, period_unit, route),
            "dispenseRequest": {"validityPeriod": {"start": start, "end": end}},
        })
        self.add(suffix, res)

    def med_statement(self, suffix: str, drug: str, dose_mg: float, start: str,
                      end: str | None, *, status: str, per: int = 1, period_unit: str = "d",
                      route: str = "oral") -> None:
        period = {"start": start}
        if end:
            period["end"] = end
        res: dict[str, Any] = {"resourceType": "MedicationStatement", "status": status}
        res.update(self._medication(drug, None))
        res.update({
            "subject": self.ref,
            "effectivePeriod": period,
            "dateAsserted": at(end or "2026-11-01", "10:00:00"),
            "dosage": self._dosage(dose_mg, per, period_unit, route),
        })
        self.add(suffix, res)

    def med_administration(self, suffix: str, drug: str, dose_ug: float, when: str,
                           reason: str) -> None:
        code, name = DRUGS[drug]
        rcode, rdisplay = ROUTES["sc"]
        self.add(suffix, {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": concept([(RXNORM, code, name)]),
            "subject": self.ref,
            "effectiveDateTime": when,
            "reasonCode": [{"text": reason}],
            "dosage": {"route": concept([(SNOMED, rcode, rdisplay)]),
                       "dose": quantity(dose_ug, "ug")},
        })

    # -- panels ---------------------------------------------------------------------------
    def coag(self, day: str, inr: float, pt: float) -> None:
        self.lab("inr", "inr", inr, day, high=1.2, low=0.8)
        self.lab("pt", "pt", pt, day, high=13.5, low=10.5)

    def manual_ln(self, day: str) -> None:
        self.confirm("venous-access", day, note="Good peripheral venous access (coordinator).")
        self.confirm("hemodynamic-stability", day, note="Stable; no inotropes.")
        self.consent(LN_STUDY, day)

    def manual_sle(self, day: str) -> None:
        self.confirm("ecg", day, note="12-lead ECG: sinus rhythm, no abnormality.")
        self.confirm("lung-lesions", day, note="Chest CT: no serious lung lesions.")
        self.confirm("leukapheresis", day, note="Fit for leukapheresis.")
        self.confirm("contraception", day, note="Guardian and patient agree.")
        self.consent(SLE_STUDY, day)


# ------------------------------------------------------------------------------- patients
# Each function writes one patient; seeds/README.md and seeds/expected.json describe the
# intent. Reference date 2026-11-15: labs within 90 days are on or after 2026-08-17, a biopsy
# within 183 days on or after 2026-05-16, an hCG within 30 days on or after 2026-10-16.

def ln_eligible() -> PatientBuilder:
    b = PatientBuilder("seed-ln-eligible", "Lin", "Yutong", "female", "2012-03-14",
                       "Guangzhou", "SEED-0001")
    b.condition("sle", "sle", "2024-09-10")
    b.condition("ln", "ln-iv", "2026-09-22", note="ISN/RPS class IV-G (A), biopsy 2026-09-22.")
    b.biopsy("2026-09-22")
    b.vitals("2026-11-03", 42, 156)
    d = "2026-11-03"
    # MedicationStatements with effectivePeriod; ongoing drugs have no end (taken to as-of).
    b.med_statement("pred-high", "prednisone", 45, "2026-03-01", "2026-10-31",
                    status="completed")
    b.med_statement("pred-taper", "prednisone", 20, "2026-11-01", None, status="active")
    b.med_statement("hcq", "hydroxychloroquine", 200, "2024-10-01", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 750, "2025-04-01", None, status="active",
                    per=2)
    b.med_statement("tac", "tacrolimus", 2, "2025-11-01", None, status="active", per=2)
    b.lab("hb-old", "hb_gdl", 5.8, "2026-09-01")  # superseded by the newer value
    b.lab("hb", "hb_gdl", 10.8, d)
    b.lab("wbc", "wbc", 5.6, d)
    b.lab("neut", "neut", 3.4, d)
    b.lab("lymph", "lymph", 1.3, d)
    b.lab("alt", "alt", 18, d, high=35, low=7)
    # A typo corrected by the lab: must be ignored (status entered-in-error).
    b.lab("alt-eie", "alt", 410, "2026-11-04", high=35, low=7, status="entered-in-error")
    b.lab("ast", "ast", 22, d)
    b.lab("tbil", "tbil_mgdl", 0.4, d, high=1.0, low=0.1)
    b.lab("creat", "creat_mgdl", 0.62, d)
    b.lab("egfr", "egfr_schwartz", 104, d)
    b.coag(d, 1.0, 12.4)
    b.ana("ana", d, ratio=320)
    b.lab("cd19", "cd19_pct", 14.2, d)
    b.lab("upcr", "upcr_mgg", 1850, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 64, "2026-10-20")
    b.sledai("sledai", 14, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-05")
    return b


def sle_eligible() -> PatientBuilder:
    b = PatientBuilder("seed-sle-eligible", "Chen", "Sitong", "female", "2014-06-02",
                       "Hangzhou", "SEED-0002")
    b.condition("sle", "sle-organ", "2024-11-20",
                note="Cutaneous, haematological and serosal involvement; no nephritis.")
    b.vitals("2026-11-06", 36, 150)
    d = "2026-11-06"
    # Product-level RxNorm code resolved through a contained Medication with its ingredient.
    pred20 = {
        "resourceType": "Medication", "id": "pred20",
        "code": concept([(RXNORM, "312615", "prednisone 20 MG Oral Tablet")]),
        "ingredient": [{
            "itemCodeableConcept": concept([(RXNORM, "8640", "prednisone")]),
            "isActive": True,
            "strength": {"numerator": quantity(20, "mg"),
                         "denominator": {"value": 1, "unit": "tablet",
                                         "system": "http://terminology.hl7.org/CodeSystem/"
                                                   "v3-orderableDrugForm", "code": "TAB"}},
        }],
    }
    b.med_request("pred-high", None, 40, "2026-04-15", "2026-10-31", status="completed",
                  medication={"medicationReference": {"reference": "#pred20",
                                                      "display": "prednisone 20 mg tablet"}},
                  contained=[pred20])
    b.med_request("pred-taper", "prednisone", 10, "2026-11-01", "2027-01-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-06-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 500, "2025-09-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("aza", "azathioprine", 50, "2025-01-10", "2025-08-31", status="completed")
    b.lab("hb", "hb_gdl", 11.9, d)
    b.lab("wbc", "wbc", 4.8, d)
    b.lab("neut", "neut", 2.9, d)
    b.lab("lymph", "lymph", 1.1, d)
    b.lab("alt", "alt", 12, d)          # no referenceRange: CALIPER fallback
    b.lab("ast", "ast", 25, d)          # no referenceRange: CALIPER fallback
    b.lab("tbil", "tbil_umol", 5.1, d)  # no referenceRange: CALIPER fallback
    b.lab("creat", "creat_mgdl", 0.55, d)  # no reported eGFR: bedside Schwartz
    b.ana("ana", d, string="1:320")
    b.lab("spo2", "spo2", 97, d)
    b.lab("lvef", "lvef", 60, "2026-10-28")
    b.sledai("sledai", 10, d)
    b.hcg("hcg", d, "negative", specimen="serum")
    b.manual_sle("2026-11-08")
    return b


def potential() -> PatientBuilder:
    b = PatientBuilder("seed-potential", "Wang", "Haoran", "male", "2016-01-20", "Guangzhou",
                       "SEED-0003")
    b.condition("sle", "sle", "2025-02-14")
    b.condition("ln", "ln", "2025-05-20")  # lupus nephritis without a class on the Condition
    # Class and biopsy date only in the pathology report (no Procedure resource).
    b.pathology_report("kidney-pathology", "2026-08-12", "76521009",
                       "Kidney biopsy: lupus nephritis ISN/RPS class III (A); "
                       "no membranous component.")
    b.vitals("2026-11-02", 30, 138)
    d = "2026-11-02"
    # Prednisolone 30 mg/d for 30 kg: exactly 1.0 mg/kg/d (inclusive boundary).
    b.med_request("pred-high", "prednisolone", 30, "2026-02-01", "2026-08-31",
                  status="completed")
    b.med_request("pred-taper", "prednisolone", 10, "2026-09-01", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 150, "2025-03-01", "2026-12-31", status="active")
    b.med_request("cyc", "cyclophosphamide", 500, "2025-06-01", "2025-10-31",
                  status="completed", period_unit="mo", route="iv")
    b.med_request("mpa", "mycophenolic-acid", 360, "2025-12-01", "2026-12-31", status="active",
                  per=2)
    b.lab("hb", "hb_gl", 112, d)
    b.lab("wbc", "wbc_si", 6.1, d)
    b.lab("neut", "neut_si", 3.8, d)
    b.lab("lymph", "lymph_ul", 1450, d)
    b.lab("alt", "alt", 20, d)
    b.lab("ast", "ast", 30, d)
    b.lab("tbil", "tbil_umol", 4.0, d)
    b.lab("creat", "creat_umol", 48, d)
    b.lab("egfr", "egfr_schwartz", 105, d)
    b.lab("inr", "inr", 1.1, d, high=1.2, low=0.8)
    b.lab("pt", "pt", 13.0, d, high=14.0, low=11.0)
    b.ana("ana", d, ratio=160)
    b.lab("cd19", "cd19_abs", 310, d)
    b.lab("uprot24", "uprot24", 1350, d)
    b.ecog("ecog", 0, d)
    b.lab("spo2", "spo2", 99, d)
    b.lab("lvef", "lvef", 66, "2026-10-15")
    b.sledai("sledai", 10, d, as_quantity=True)
    return b


def age_4() -> PatientBuilder:
    b = PatientBuilder("seed-age-4", "Zhou", "Anqi", "female", "2022-08-01", "Hangzhou",
                       "SEED-0004")
    b.condition("sle", "sle", "2025-08-15", note="Early-onset SLE.")
    b.condition("ln", "ln-iv", "2026-08-25")
    b.biopsy("2026-08-25")
    b.vitals("2026-11-04", 16, 102)
    d = "2026-11-04"
    b.med_statement("pred-high", "prednisolone", 16, "2026-04-01", "2026-10-31",
                    status="completed")
    b.med_statement("pred-taper", "prednisolone", 8, "2026-11-01", None, status="active")
    b.med_statement("hcq", "hydroxychloroquine", 80, "2025-09-01", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 300, "2025-10-01", None, status="active",
                    per=2)
    b.med_statement("tac", "tacrolimus", 1, "2026-01-05", None, status="active", per=2)
    b.lab("hb", "hb_gdl", 10.2, d)
    b.lab("wbc", "wbc", 7.2, d)
    b.lab("neut", "neut", 4.1, d)
    b.lab("lymph", "lymph", 2.3, d)
    b.lab("alt", "alt", 15, d)
    b.lab("ast", "ast", 35, d)
    b.lab("tbil", "tbil_mgdl", 0.3, d)
    b.lab("creat", "creat_mgdl", 0.30, d)
    b.lab("egfr", "egfr_schwartz", 140, d)
    b.coag(d, 1.0, 12.0)
    b.ana("ana", d, ratio=640)
    b.lab("cd19", "cd19_pct", 18, d)
    b.lab("upcr", "upcr_mgg", 2400, d)
    b.ecog("ecog", 0, d)
    b.lab("spo2", "spo2", 99, d)
    b.lab("lvef", "lvef", 68, "2026-10-30")
    b.sledai("sledai", 16, d)
    b.manual_ln("2026-11-06")
    b.manual_sle("2026-11-06")
    return b


def age_19() -> PatientBuilder:
    b = PatientBuilder("seed-age-19", "Huang", "Jiayi", "female", "2007-11-15", "Guangzhou",
                       "SEED-0005")
    b.condition("sle", "sle", "2023-05-02")
    b.condition("ln", "ln-iii", "2026-10-01")
    b.biopsy("2026-10-01")
    b.vitals("2026-11-05", 55, 162)
    d = "2026-11-05"
    b.med_request("pred-high", "prednisone", 60, "2026-03-15", "2026-10-15", status="completed")
    b.med_request("pred-taper", "prednisone", 20, "2026-10-16", "2027-01-15", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2024-06-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 1000, "2025-06-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("csa", "cyclosporine", 75, "2025-12-01", "2026-12-31", status="active", per=2)
    b.lab("hb", "hb_gdl", 12.4, d)
    b.lab("wbc", "wbc", 5.9, d)
    b.lab("neut", "neut", 3.7, d)
    b.lab("lymph", "lymph", 1.5, d)
    b.lab("alt", "alt", 16, d, high=40, low=7)
    b.lab("ast", "ast", 19, d, high=35, low=13)
    b.lab("tbil", "tbil_umol", 8, d, high=21, low=3)
    b.lab("creat", "creat_mgdl", 0.75, d)
    b.lab("egfr", "egfr_ckdepi2021", 112, d)  # adult lab: CKD-EPI 2021 reported
    b.coag(d, 1.0, 12.8)
    b.ana("ana", d, ratio=160)
    b.lab("cd19", "cd19_pct", 11, d)
    b.lab("upcr", "upcr_gg", 1.1, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 61, "2026-10-22")
    b.sledai("sledai", 11, d)
    b.hcg("hcg", "2026-11-10", "negative")
    b.manual_ln("2026-11-06")
    return b


def drug_induced() -> PatientBuilder:
    b = PatientBuilder("seed-drug-induced", "Liu", "Mengqi", "female", "2010-04-22",
                       "Hangzhou", "SEED-0006")
    b.condition("dil", "drug-induced", "2026-07-10",
                note="Minocycline-induced lupus; minocycline stopped 2026-07-10.")
    # The first working diagnosis, refuted once the drug link was established.
    b.condition("sle-refuted", "sle", "2026-07-01", verification="refuted", clinical="inactive")
    b.vitals("2026-11-02", 52, 160)
    d = "2026-11-02"
    b.lab("hb", "hb_gdl", 12.8, d)
    b.lab("wbc", "wbc", 5.1, d)
    b.lab("neut", "neut", 3.0, d)
    b.lab("lymph", "lymph", 1.6, d)
    b.lab("alt", "alt", 21, d, high=40, low=7)
    b.lab("ast", "ast", 24, d, high=35, low=13)
    b.lab("tbil", "tbil_umol", 7, d)
    b.lab("creat", "creat_mgdl", 0.68, d)
    b.lab("egfr", "egfr_schwartz", 97, d)
    b.ana("ana", d, ratio=160)
    b.lab("spo2", "spo2", 99, d)
    b.hcg("hcg", d, "negative")
    return b


def hb_59() -> PatientBuilder:
    b = PatientBuilder("seed-hb-59", "Zhang", "Yichen", "male", "2013-07-09", "Guangzhou",
                       "SEED-0007")
    b.condition("sle", "sle", "2024-03-18")
    b.condition("ln", "ln-iv", "2026-10-08")
    b.add("aiha", {
        "resourceType": "Condition",
        "clinicalStatus": concept([("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "active", "Active")]),
        "verificationStatus": concept([(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
            "Confirmed")]),
        "code": {"text": "Autoimmune haemolytic anaemia (SLE-associated)"},
        "subject": b.ref, "onsetDateTime": "2026-10-20", "recordedDate": "2026-10-20"})
    b.biopsy("2026-10-08")
    b.vitals("2026-11-04", 45, 158)
    d = "2026-11-04"
    b.med_request("pred-high", "prednisone", 50, "2026-03-20", "2026-10-20", status="completed")
    b.med_request("pred-taper", "prednisone", 25, "2026-10-21", "2027-01-20", status="active")
    # Product-level code on a referenced Medication resource (fetched with _include).
    b.add("med-hcq200", {
        "resourceType": "Medication",
        "code": concept([(RXNORM, "979092", "hydroxychloroquine sulfate 200 MG Oral Tablet")]),
        "ingredient": [{"itemCodeableConcept": concept([(RXNORM, "5521", "hydroxychloroquine")]),
                        "isActive": True}],
    })
    b.med_request("hcq", None, 200, "2025-05-01", "2026-12-31", status="active",
                  medication={"medicationReference": {
                      "reference": "Medication/seed-hb-59-med-hcq200"}})
    b.med_request("mmf", "mycophenolate-mofetil", 750, "2025-07-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("tac", "tacrolimus", 2, "2025-12-15", "2026-12-31", status="active", per=2)
    b.lab("hb", "hb_gdl", 5.9, d)
    # Dated after the reference date: ignored when screening as of 2026-11-15.
    b.lab("hb-future", "hb_gdl", 10.2, "2026-11-20")
    b.lab("wbc", "wbc", 4.4, d)
    b.lab("neut", "neut", 2.6, d)
    b.lab("lymph", "lymph", 1.2, d)
    b.lab("alt", "alt", 25, d, high=40, low=7)
    b.lab("ast", "ast", 30, d, high=40, low=13)
    b.lab("tbil", "tbil_mgdl", 0.9, d, high=1.2, low=0.1)
    b.lab("creat", "creat_mgdl", 0.70, d)
    b.lab("egfr", "egfr_schwartz", 93, d)
    b.coag(d, 1.1, 13.1)
    b.ana("ana", d, ratio=640)
    b.lab("cd19", "cd19_pct", 9.5, d)
    b.lab("upcr", "upcr_mgg", 1400, d)
    b.ecog("ecog", 2, d)
    b.lab("spo2", "spo2", 97, d)
    b.lab("lvef", "lvef", 58, "2026-10-25")
    b.sledai("sledai", 18, d)
    b.manual_ln("2026-11-06")
    return b


def alt_high() -> PatientBuilder:
    b = PatientBuilder("seed-alt-high", "Xu", "Ruoxi", "female", "2011-02-17", "Guangzhou",
                       "SEED-0008")
    b.condition("sle", "sle-icd-only", "2024-01-09")
    b.condition("ln", "ln-iii", "2026-09-15")
    b.biopsy("2026-09-15")
    b.vitals("2026-11-03", 38, 155)
    d = "2026-11-03"
    b.med_request("pred-high", "prednisone", 40, "2026-03-01", "2026-09-30", status="completed")
    b.med_request("pred-taper", "prednisone", 15, "2026-10-01", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-02-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 750, "2025-05-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("mtx", "methotrexate", 15, "2025-01-01", "2026-10-15", status="completed",
                  period_unit="wk")
    b.lab("hb", "hb_gdl", 11.2, d)
    b.lab("wbc", "wbc", 5.3, d)
    b.lab("neut", "neut", 3.2, d)
    b.lab("lymph", "lymph", 1.2, d)
    b.lab("alt", "alt", 120, d, high=30, low=7)  # 4.0 x ULN, no myositis
    b.lab("ast", "ast", 28, d, high=35, low=13)
    b.lab("tbil", "tbil_mgdl", 0.6, d, high=1.2, low=0.1)
    b.lab("creat", "creat_mgdl", 0.66, d)
    b.lab("egfr", "egfr_schwartz", 97, d)
    b.coag(d, 1.0, 12.2)
    b.ana("ana", d, ratio=160)
    b.lab("cd19", "cd19_pct", 12, d)
    b.lab("upcr", "upcr_gg", 2.1, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 62, "2026-10-20")
    b.sledai("sledai", 12, d)
    b.hcg("hcg", d, "negative", specimen="serum")
    b.manual_ln("2026-11-05")
    return b


def myositis() -> PatientBuilder:
    b = PatientBuilder("seed-myositis", "Sun", "Yiran", "female", "2008-11-15", "Guangzhou",
                       "SEED-0009")
    b.condition("sle", "sle", "2023-10-11")
    b.condition("ln", "ln-iv", "2026-09-28")
    b.condition("myositis", "polymyositis", "2026-08-20",
                note="Lupus-associated inflammatory myopathy; CK 2400 U/L, MRI thigh oedema.")
    b.biopsy("2026-09-28")
    b.vitals("2026-11-05", 52, 163)
    d = "2026-11-05"
    b.med_statement("pred-high", "prednisone", 55, "2026-02-15", "2026-09-30",
                    status="completed")
    b.med_statement("pred-taper", "prednisone", 30, "2026-10-01", None, status="active")
    b.med_statement("hcq", "hydroxychloroquine", 200, "2024-12-01", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 1000, "2025-08-01", None, status="active",
                    per=2)
    b.med_statement("tac", "tacrolimus", 2, "2026-01-10", None, status="active", per=2)
    b.lab("hb", "hb_gdl", 11.5, d)
    b.lab("wbc", "wbc", 6.4, d)
    b.lab("neut", "neut", 4.0, d)
    b.lab("lymph", "lymph", 1.4, d)
    b.lab("alt", "alt", 105, d, high=30, low=7)   # 3.5 x ULN
    b.lab("ast", "ast", 140, d, high=35, low=13)  # 4.0 x ULN
    b.lab("tbil", "tbil_mgdl", 0.5, d, high=1.2, low=0.1)
    b.lab("creat", "creat_mgdl", 0.72, d)
    b.lab("egfr", "egfr_schwartz", 94, d)
    b.coag(d, 1.0, 12.6)
    b.ana("ana", d, ratio=1280)
    b.lab("cd19", "cd19_pct", 10, d)
    b.lab("upcr", "upcr_gg", 1.6, d)
    b.ecog("ecog", 2, d)
    b.lab("spo2", "spo2", 97, d)
    b.lab("lvef", "lvef", 60, "2026-10-27")
    b.sledai("sledai", 15, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-06")
    return b


def biopsy_old() -> PatientBuilder:
    b = PatientBuilder("seed-biopsy-old", "Li", "Zihan", "male", "2012-12-01", "Guangzhou",
                       "SEED-0010")
    b.condition("sle", "sle", "2025-01-22")
    b.condition("ln", "ln-iv", "2026-03-02")
    b.biopsy("2026-03-02")  # 258 days before the reference date
    b.vitals("2026-11-04", 44, 160)
    d = "2026-11-04"
    b.med_request("pred-high", "prednisone", 45, "2026-03-05", "2026-09-30", status="completed")
    b.med_request("pred-taper", "prednisone", 15, "2026-10-01", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-08-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 1000, "2025-08-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("tac", "tacrolimus", 2, "2026-02-01", "2026-12-31", status="active", per=2)
    b.lab("hb", "hb_gdl", 11.8, d)
    b.lab("wbc", "wbc", 6.0, d)
    b.lab("neut", "neut", 3.9, d)
    b.lab("lymph", "lymph", 1.3, d)
    b.lab("alt", "alt", 22, d)
    b.lab("ast", "ast", 26, d)
    b.lab("tbil", "tbil_umol", 9, d)
    b.lab("creat", "creat_mgdl", 0.74, d)
    b.lab("egfr", "egfr_schwartz", 89, d)
    b.coag(d, 1.0, 12.5)
    b.ana("ana", d, string="1:320")
    b.lab("cd19", "cd19_pct", 13, d)
    b.lab("upcr", "upcr_mgg", 950, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 63, "2026-10-28")
    b.sledai("sledai", 12, d)
    b.manual_ln("2026-11-06")
    return b


def sledai_6() -> PatientBuilder:
    b = PatientBuilder("seed-sledai-6", "Gao", "Shiyu", "female", "2013-05-30", "Guangzhou",
                       "SEED-0011")
    b.condition("sle", "sle", "2024-12-03")
    b.condition("ln", "ln-iii", "2026-09-05")
    b.biopsy("2026-09-05")
    b.allergy("hcq-intolerance", "hydroxychloroquine", "2025-06-20",
              "Persistent vomiting and maculopapular rash on hydroxychloroquine")
    b.vitals("2026-11-05", 40, 152)
    d = "2026-11-05"
    b.med_statement("hcq", "hydroxychloroquine", 200, "2025-05-01", "2025-06-20",
                    status="stopped")
    b.med_statement("pred-high", "prednisone", 40, "2026-02-01", "2026-09-15",
                    status="completed")
    b.med_statement("pred-taper", "prednisone", 10, "2026-09-16", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 750, "2025-07-01", None, status="active",
                    per=2)
    b.med_statement("tac", "tacrolimus", 1.5, "2025-12-01", None, status="active", per=2)
    b.lab("hb", "hb_gdl", 11.0, d)
    b.lab("wbc", "wbc", 5.0, d)
    b.lab("neut", "neut", 2.8, d)
    b.lab("lymph", "lymph", 1.1, d)
    b.lab("alt", "alt", 19, d, high=35, low=7)
    b.lab("ast", "ast", 23, d, high=35, low=13)
    b.lab("tbil", "tbil_umol", 6, d)
    b.lab("creat", "creat_mgdl", 0.60, d)
    b.lab("egfr", "egfr_schwartz", 105, d)
    b.coag(d, 1.0, 12.0)
    b.ana("ana", d, ratio=320)
    b.lab("cd19", "cd19_pct", 15, d)
    b.lab("upcr", "upcr_mgg", 720, d)
    b.ecog("ecog", 0, d)
    b.lab("spo2", "spo2", 99, d)
    b.lab("lvef", "lvef", 65, "2026-10-20")
    b.sledai("sledai-old", 12, "2026-08-25")  # older score, superseded
    b.sledai("sledai", 6, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-06")
    return b


def egfr_low() -> PatientBuilder:
    b = PatientBuilder("seed-egfr-low", "Zhao", "Junjie", "male", "2011-09-14", "Guangzhou",
                       "SEED-0012")
    b.condition("sle", "sle", "2024-06-30")
    b.condition("ln", "ln-iv", "2026-10-12")
    b.biopsy("2026-10-12")
    b.vitals("2026-09-20", 40, 150)                    # height 45 days before the creatinine
    b.lab("weight-nov", "weight", 41, "2026-11-04")     # no new height in November
    d = "2026-11-04"
    # Methylprednisolone 40 mg/d = 50 mg prednisone (4 mg = 5 mg) -> 1.22 mg/kg/d at 41 kg.
    b.med_request("mpred-high", "methylprednisolone", 40, "2026-02-01", "2026-08-31",
                  status="completed")
    b.med_request("pred-taper", "prednisone", 20, "2026-09-01", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-04-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 1000, "2025-06-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("tac", "tacrolimus", 2, "2025-10-01", "2026-12-31", status="active", per=2)
    b.lab("hb", "hb_gdl", 9.1, d)
    b.lab("wbc", "wbc", 5.5, d)
    b.lab("neut", "neut", 3.6, d)
    b.lab("lymph", "lymph", 1.0, d)  # exactly 1.0 x 10^9/L: inclusive boundary
    b.lab("alt", "alt", 20, d, high=40, low=7)
    b.lab("ast", "ast", 24, d, high=40, low=13)
    b.lab("tbil", "tbil_umol", 5, d)
    b.lab("creat", "creat_umol", 221, d)  # no reported eGFR: Schwartz 0.413*150/2.4994 = 24.8
    b.coag(d, 1.1, 13.2)
    b.ana("ana", d, ratio=640)
    b.lab("cd19", "cd19_pct", 7.5, d)
    b.lab("upcr", "upcr_mgg", 3200, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 96, d)
    b.lab("lvef", "lvef", 57, "2026-10-30")
    b.sledai("sledai", 20, d)
    b.manual_ln("2026-11-06")
    return b


def stale_labs() -> PatientBuilder:
    b = PatientBuilder("seed-stale-labs", "Ma", "Xinyi", "female", "2014-01-08", "Guangzhou",
                       "SEED-0013")
    b.condition("sle", "sle", "2025-01-15")
    b.condition("ln", "ln-iv", "2026-06-10")
    b.biopsy("2026-06-10")  # 158 days: within 183
    b.vitals("2026-11-10", 34, 148)  # weighed recently; no blood tests since July
    d = "2026-07-20"  # 118 days before the reference date
    b.med_statement("pred-high", "prednisone", 35, "2026-02-10", "2026-09-30",
                    status="completed")
    b.med_statement("pred-taper", "prednisone", 10, "2026-10-01", None, status="active")
    b.med_statement("hcq", "hydroxychloroquine", 200, "2025-01-15", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 750, "2025-05-01", None, status="active",
                    per=2)
    b.med_statement("tac", "tacrolimus", 1.5, "2025-11-20", None, status="active", per=2)
    b.lab("hb", "hb_gdl", 10.9, d)
    b.lab("wbc", "wbc", 5.2, d)
    b.lab("neut", "neut", 3.1, d)
    b.lab("lymph", "lymph", 1.2, d)
    b.lab("alt", "alt", 17, d, high=35, low=7)
    b.lab("ast", "ast", 22, d, high=35, low=13)
    b.lab("tbil", "tbil_umol", 6, d)
    b.lab("creat", "creat_mgdl", 0.58, d)
    b.lab("egfr", "egfr_schwartz", 105, d)
    b.coag(d, 1.0, 12.3)
    b.ana("ana", "2025-01-15", ratio=320)  # at diagnosis
    b.lab("cd19", "cd19_pct", 12, d)
    b.lab("upcr", "upcr_mgg", 1500, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 62, "2025-09-15")
    b.sledai("sledai", 13, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-10")
    b.manual_sle("2026-11-10")
    return b


def gcsf() -> PatientBuilder:
    b = PatientBuilder("seed-gcsf", "Wu", "Yuxuan", "female", "2012-10-05", "Guangzhou",
                       "SEED-0014")
    b.condition("sle", "sle", "2024-08-08")
    b.condition("ln", "ln-iii", "2026-09-18")
    b.biopsy("2026-09-18")
    b.vitals("2026-11-06", 40, 154)
    d = "2026-11-06"
    b.med_request("pred-high", "prednisone", 40, "2026-03-01", "2026-09-30", status="completed")
    b.med_request("pred-taper", "prednisone", 15, "2026-10-01", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-03-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 750, "2025-06-01", "2026-04-30",
                  status="completed", per=2)
    b.med_request("cyc", "cyclophosphamide", 500, "2026-05-01", "2026-10-20",
                  status="completed", period_unit="mo", route="iv")
    # G-CSF five days before the only neutrophil count in the window.
    b.med_administration("filgrastim", "filgrastim", 300, at("2026-11-01", "10:00:00"),
                         "Neutropenia after cyclophosphamide")
    b.lab("hb", "hb_gdl", 10.5, d)
    b.lab("wbc", "wbc", 6.8, d)
    b.lab("neut", "neut", 4.2, d)
    b.lab("lymph", "lymph", 1.2, d)
    b.lab("alt", "alt", 20, d, high=35, low=7)
    b.lab("ast", "ast", 25, d, high=35, low=13)
    b.lab("tbil", "tbil_mgdl", 0.5, d, high=1.2, low=0.1)
    b.lab("creat", "creat_mgdl", 0.60, d)
    b.lab("egfr", "egfr_schwartz", 106, d)
    b.coag(d, 1.0, 12.1)
    b.ana("ana", d, ratio=320)
    b.lab("cd19", "cd19_pct", 8, d)
    b.lab("upcr", "upcr_gg", 1.3, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 62, "2026-10-25")
    b.sledai("sledai", 12, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-08")
    b.manual_sle("2026-11-08")
    return b


def hcg_positive() -> PatientBuilder:
    b = PatientBuilder("seed-hcg-positive", "Yang", "Xinran", "female", "2011-06-20",
                       "Hangzhou", "SEED-0015")
    b.condition("sle", "sle", "2024-02-26")
    b.condition("ln", "ln-iv", "2026-10-05")
    b.biopsy("2026-10-05")
    b.vitals("2026-11-07", 48, 158)
    d = "2026-11-07"
    b.med_request("pred-high", "prednisone", 50, "2026-03-10", "2026-10-10", status="completed")
    b.med_request("pred-taper", "prednisone", 20, "2026-10-11", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-01-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 1000, "2025-06-15", "2026-12-31",
                  status="active", per=2)
    b.med_request("lef", "leflunomide", 20, "2025-09-01", "2026-09-30", status="completed")
    b.lab("hb", "hb_gdl", 11.6, d)
    b.lab("wbc", "wbc", 5.7, d)
    b.lab("neut", "neut", 3.5, d)
    b.lab("lymph", "lymph", 1.3, d)
    b.lab("alt", "alt", 18, d, high=35, low=7)
    b.lab("ast", "ast", 21, d, high=35, low=13)
    b.lab("tbil", "tbil_umol", 7, d, high=21, low=3)
    b.lab("creat", "creat_mgdl", 0.64, d)
    b.lab("egfr", "egfr_schwartz", 102, d)
    b.coag(d, 1.0, 12.0)
    b.ana("ana", d, ratio=320)
    b.lab("cd19", "cd19_pct", 11, d)
    b.lab("upcr", "upcr_gg", 1.4, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 99, d)
    b.lab("lvef", "lvef", 63, "2026-10-30")
    b.sledai("sledai", 12, d)
    b.hcg("hcg-urine", d, "positive")
    b.hcg("hcg-serum", "2026-11-08", "positive", specimen="serum")
    b.manual_sle("2026-11-06")
    return b


def gilbert() -> PatientBuilder:
    b = PatientBuilder("seed-gilbert", "Deng", "Haoyu", "male", "2010-12-12", "Guangzhou",
                       "SEED-0016")
    b.condition("sle", "sle-icd10-who", "2024-04-04")
    b.condition("ln", "ln-iv", "2026-09-30")
    b.condition("gilbert", "gilbert", "2019-05-10")
    b.biopsy("2026-09-30")
    b.vitals("2026-11-02", 50, 166)
    d = "2026-11-02"
    b.med_statement("pred-high", "prednisone", 50, "2026-02-20", "2026-09-30",
                    status="completed")
    b.med_statement("pred-taper", "prednisone", 15, "2026-10-01", None, status="active")
    b.med_statement("hcq", "hydroxychloroquine", 200, "2025-02-01", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 1000, "2025-05-01", None, status="active",
                    per=2)
    b.med_statement("tac", "tacrolimus", 2, "2025-12-01", None, status="active", per=2)
    b.lab("hb", "hb_gdl", 12.9, d)
    b.lab("wbc", "wbc", 6.2, d)
    b.lab("neut", "neut", 3.9, d)
    b.lab("lymph", "lymph", 1.5, d)
    b.lab("alt", "alt", 24, d, high=40, low=7)
    b.lab("ast", "ast", 27, d, high=40, low=13)
    b.lab("tbil", "tbil_umol", 42.5, d, high=17, low=3)  # 2.5 x ULN
    b.lab("creat", "creat_mgdl", 0.80, d)
    b.lab("egfr", "egfr_schwartz", 86, d)
    b.coag(d, 1.1, 12.9)
    b.ana("ana", d, ratio=160)
    b.lab("cd19", "cd19_pct", 10, d)
    b.lab("upcr", "upcr_gg", 1.2, d)
    b.ecog("ecog", 0, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 64, "2026-10-22")
    b.sledai("sledai", 10, d)
    b.manual_ln("2026-11-04")
    return b


def ana_low() -> PatientBuilder:
    b = PatientBuilder("seed-ana-low", "Qian", "Xiaoman", "female", "2015-03-03", "Guangzhou",
                       "SEED-0017")
    b.condition("sle", "sle", "2025-03-12")
    b.condition("ln", "ln-iii", "2026-10-10")
    b.biopsy("2026-10-10")
    b.vitals("2026-11-04", 35, 146)
    d = "2026-11-04"
    b.med_request("pred-high", "prednisone", 35, "2026-03-01", "2026-09-30", status="completed")
    b.med_request("pred-taper", "prednisone", 10, "2026-10-01", "2026-12-31", status="active")
    b.med_request("hcq", "hydroxychloroquine", 200, "2025-04-01", "2026-12-31", status="active")
    b.med_request("mmf", "mycophenolate-mofetil", 600, "2025-06-01", "2026-12-31",
                  status="active", per=2)
    b.med_request("tac", "tacrolimus", 1, "2025-12-01", "2026-12-31", status="active", per=2)
    b.lab("hb", "hb_gdl", 11.4, d)
    b.lab("wbc", "wbc", 5.8, d)
    b.lab("neut", "neut", 3.3, d)
    b.lab("lymph", "lymph", 1.4, d)
    b.lab("alt", "alt", 16, d)
    b.lab("ast", "ast", 28, d)
    b.lab("tbil", "tbil_mgdl", 0.4, d, high=1.0, low=0.1)
    b.lab("creat", "creat_mgdl", 0.52, d)
    b.lab("egfr", "egfr_schwartz", 116, d)
    b.coag(d, 1.0, 12.2)
    b.ana("ana", d, string="1:40")
    # Presence-only ANA: positive, but cannot satisfy ">= 1:80" (terminology.md).
    b.ana_presence("ana-presence", d, "positive")
    b.lab("cd19", "cd19_pct", 14, d)
    b.lab("upcr", "upcr_mgg", 880, d)
    b.ecog("ecog", 0, d)
    b.lab("spo2", "spo2", 99, d)
    b.lab("lvef", "lvef", 66, "2026-10-28")
    b.sledai("sledai", 9, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-06")
    return b


def ln_new_onset() -> PatientBuilder:
    b = PatientBuilder("seed-ln-new-onset", "He", "Jingwen", "female", "2013-10-10",
                       "Guangzhou", "SEED-0018")
    b.condition("sle", "sle", "2026-08-28")
    b.condition("ln", "ln-iv", "2026-09-10")
    b.biopsy("2026-09-10")
    b.vitals("2026-11-05", 40, 152)
    d = "2026-11-05"
    # Complete, recent treatment history: every agent started in September 2026.
    b.med_statement("pred", "prednisone", 40, "2026-09-12", None, status="active")
    b.med_statement("hcq", "hydroxychloroquine", 200, "2026-09-12", None, status="active")
    b.med_statement("mmf", "mycophenolate-mofetil", 750, "2026-09-15", None, status="active",
                    per=2)
    b.lab("hb", "hb_gdl", 10.6, d)
    b.lab("wbc", "wbc", 5.4, d)
    b.lab("neut", "neut", 3.6, d)
    b.lab("lymph", "lymph", 1.1, d)
    b.lab("alt", "alt", 21, d, high=35, low=7)
    b.lab("ast", "ast", 24, d, high=35, low=13)
    b.lab("tbil", "tbil_umol", 5, d)
    b.lab("creat", "creat_mgdl", 0.62, d)
    b.lab("egfr", "egfr_schwartz", 101, d)
    b.coag(d, 1.0, 12.4)
    b.ana("ana", d, ratio=640)
    b.lab("cd19", "cd19_pct", 16, d)
    b.lab("upcr", "upcr_gg", 2.8, d)
    b.ecog("ecog", 1, d)
    b.lab("spo2", "spo2", 98, d)
    b.lab("lvef", "lvef", 65, "2026-10-29")
    b.sledai("sledai", 16, d)
    b.hcg("hcg", d, "negative")
    b.manual_ln("2026-11-06")
    return b


PATIENTS: tuple[Callable[[], PatientBuilder], ...] = (
    ln_eligible, sle_eligible, potential, age_4, age_19, drug_induced, hb_59, alt_high,
    myositis, biopsy_old, sledai_6, egfr_low, stale_labs, gcsf, hcg_positive, gilbert,
    ana_low, ln_new_onset,
)
STUDY_FILES = (f"studies/{SLE_STUDY}.json", f"studies/{LN_STUDY}.json")


def render() -> dict[str, str]:
    """Relative path -> file text for every generated file."""
    out: dict[str, str] = {}
    files = []
    for make in PATIENTS:
        builder = make()
        rel = f"patients/{builder.pid}.json"
        files.append(rel)
        out[rel] = json.dumps(builder.bundle(), indent=2, ensure_ascii=False) + "\n"
    manifest = {"asOf": AS_OF, "patients": files, "studies": list(STUDY_FILES)}
    out["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    return out


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else SEEDS_DIR
    for rel, text in render().items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
