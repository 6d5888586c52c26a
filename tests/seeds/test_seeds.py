"""Seed data checks (validity, codes, expectations) and the seed loader against a fake client."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.researchstudy import ResearchStudy

from service.engine.results import overall_status
from service.usecases.seeding import SeedError, load_seeds, read_patients, validate_patient_bundle
from tests.support.ci import shared_file

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
AS_OF = date(2026, 11, 15)

# Criterion ids of shared/spec/criteria.md, in spec order (part of the public API).
CRITERIA = {
    "refractory-sle-cart": (
        "age", "sle-diagnosis", "refractory-disease", "sledai-2k", "lvef", "ecg", "egfr", "alt",
        "ast", "bilirubin", "spo2", "lung-lesions", "leukapheresis", "pregnancy",
        "contraception", "consent",
    ),
    "pediatric-ln-cart": (
        "age", "sle-diagnosis", "ln-biopsy", "sledai-2k", "refractory-ln", "proteinuria",
        "cd19-b-cells", "venous-access", "consent", "lymphocytes", "wbc", "neutrophils",
        "hemoglobin", "alt", "ast", "bilirubin", "egfr", "inr", "pt", "hemodynamic-stability",
        "ana", "ecog",
    ),
}
MANUAL = {
    "refractory-sle-cart": ("ecg", "lung-lesions", "leukapheresis", "contraception"),
    "pediatric-ln-cart": ("venous-access", "hemodynamic-stability"),
}

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

# Snapshot of the codes listed in shared/spec/terminology.md (checked against the file when
# the shared folder is present).
TERMINOLOGY = {
    LOINC: {
        "2160-0", "14682-9", "33914-3", "48642-3", "48643-1", "62238-1", "98979-8", "50384-7",
        "1742-6", "1920-8", "1975-2", "14631-6", "718-7", "6690-2", "26464-8", "751-8",
        "26499-4", "731-0", "26474-7", "6301-6", "34714-6", "5902-2", "5048-4", "29953-7",
        "8061-4", "42254-3", "5130-0", "11013-0", "4485-9", "4498-2", "59408-5", "2708-6",
        "10230-1", "18043-0", "8117-4", "8116-6", "2889-4", "2890-2", "2106-3", "2118-8",
        "82810-3", "89247-1", "89243-0", "8302-2", "29463-7",
    },
    SNOMED: {
        "55464009", "239887007", "68815009", "76521009", "36402006", "52042003", "201436003",
        "80258006", "200936003", "27503000", "48426002",
    },
    ICD10CM: {"M32.8", "M32.9", "M32.14", "M32.15", "M32.0", "E80.4"},
    RXNORM: {
        "8640", "8638", "6902", "5521", "3002", "68149", "7145", "1256", "6851", "3008",
        "42316", "35302", "27169", "121191", "68442", "312615",
    },
}
ICD_PREFIXES = ("M32.1",)  # terminology.md: "M32.1x"
# The project's own code systems (common brief conventions).
PROJECT_SYSTEMS = (
    "urn:trial-eligibility:criterion", "urn:trial-eligibility:score",
    "urn:trial-eligibility:seed", "urn:trial-eligibility:seed-mrn",
    "urn:trial-eligibility:study",
)
README_SYSTEM_NAMES = {"SNOMED CT": SNOMED, "ICD-10-CM": ICD10CM, "RxNorm": RXNORM,
                       "LOINC": LOINC}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


MANIFEST = _load(SEEDS / "manifest.json")
EXPECTED = _load(SEEDS / "expected.json")
BUNDLES = {rel: _load(SEEDS / rel) for rel in MANIFEST["patients"]}
STUDIES = {rel: _load(SEEDS / rel) for rel in MANIFEST["studies"]}


def _resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]]


def _patient(bundle: Mapping[str, Any]) -> dict[str, Any]:
    return next(r for r in _resources(bundle) if r["resourceType"] == "Patient")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside node (depth first)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _codings(node: Any) -> Iterator[tuple[str, str]]:
    for obj in _walk(node):
        if "system" in obj and "code" in obj:
            yield obj["system"], obj["code"]


def _readme_codes() -> tuple[dict[str, set[str]], set[str], set[str]]:
    """Codes documented in seeds/README.md: per system, whole systems, and UCUM units."""
    text = (SEEDS / "README.md").read_text(encoding="utf-8")
    section = text.split("## Codes not in", 1)[1].split("\n## ", 1)[0]
    codes: dict[str, set[str]] = {}
    systems: set[str] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("code", "---"):
            continue
        system = README_SYSTEM_NAMES.get(cells[1], cells[1].strip("`"))
        if "..." in system:
            systems.add(system.split("...")[0])
            continue
        codes.setdefault(system, set()).update(c.strip() for c in cells[0].split(","))
    units_sentence = section.split("units are", 1)[1].split(").", 1)[0]
    units = set(re.findall(r"`([^`]+)`", units_sentence))
    return codes, systems, units


# ---------------------------------------------------------------------------- files


def test_manifest_lists_every_seed_file_and_the_reference_date():
    assert MANIFEST["asOf"] == AS_OF.isoformat()
    on_disk = sorted(p.relative_to(SEEDS).as_posix() for p in (SEEDS / "patients").glob("*.json"))
    assert sorted(MANIFEST["patients"]) == on_disk
    assert len(set(MANIFEST["patients"])) == len(MANIFEST["patients"])
    studies = sorted(p.relative_to(SEEDS).as_posix() for p in (SEEDS / "studies").glob("*.json"))
    assert sorted(MANIFEST["studies"]) == studies == [
        "studies/pediatric-ln-cart.json", "studies/refractory-sle-cart.json"]
    assert len(MANIFEST["patients"]) >= 14


def test_committed_seed_files_are_what_the_build_script_writes():
    spec = importlib.util.spec_from_file_location("build_seeds", SEEDS / "build_seeds.py")
    assert spec is not None and spec.loader is not None
    build_seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_seeds)
    rendered = build_seeds.render()
    for rel, text in rendered.items():
        assert (SEEDS / rel).read_text(encoding="utf-8") == text, f"{rel}: run seeds/build_seeds.py"
    assert set(rendered) == {"manifest.json", *MANIFEST["patients"]}


# ---------------------------------------------------------------------------- validity


@pytest.mark.parametrize("rel", sorted(BUNDLES))
def test_patient_bundle_is_valid_r4_with_put_entries(rel):
    bundle = BUNDLES[rel]
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction"
    pid = _patient(bundle)["id"]
    assert Path(rel).stem == pid
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["request"] == {"method": "PUT",
                                    "url": f"{resource['resourceType']}/{resource['id']}"}
        assert resource["id"] == pid or resource["id"].startswith(f"{pid}-")
        for obj in _walk(resource):
            ref = obj.get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                assert ref == f"Patient/{pid}", f"{resource['id']} points at {ref}"
    # The loader's own validation accepts it too.
    assert validate_patient_bundle(SEEDS / rel, bundle).patient_id == pid


def test_resource_ids_are_unique_across_all_seed_files():
    refs = [f"{r['resourceType']}/{r['id']}" for b in BUNDLES.values() for r in _resources(b)]
    assert len(refs) == len(set(refs))
    full_urls = [e["fullUrl"] for b in BUNDLES.values() for e in b["entry"]]
    assert len(full_urls) == len(set(full_urls))


@pytest.mark.parametrize("rel", sorted(STUDIES))
def test_research_study_is_valid_r4_without_fixed_id(rel):
    study = STUDIES[rel]
    ResearchStudy.model_validate(study)
    assert "id" not in study
    assert study["status"] == "active"
    key = Path(rel).stem
    idents = {i["system"]: i["value"] for i in study["identifier"]}
    assert idents["urn:trial-eligibility:study"] == key
    assert idents["https://clinicaltrials.gov"] == {
        "refractory-sle-cart": "NCT07233642", "pediatric-ln-cart": "NCT06904729"}[key]
    assert study["title"] and study["sponsor"]["display"] and study["period"]["start"]
    assert "Inclusion criteria" in study["description"]
    condition_codes = {c["code"] for cc in study["condition"] for c in cc["coding"]}
    assert {"refractory-sle-cart": "55464009", "pediatric-ln-cart": "68815009"}[key] in (
        condition_codes)
    if key == "refractory-sle-cart":
        assert "not confirmed" in study["description"].lower()


def test_observations_are_final_dated_and_ucum_coded():
    _, _, units = _readme_codes()
    for bundle in BUNDLES.values():
        for r in _resources(bundle):
            if r["resourceType"] != "Observation":
                continue
            assert r["status"] in ("final", "entered-in-error"), r["id"]
            date.fromisoformat(r["effectiveDateTime"][:10])
            quantities = [r.get("valueQuantity")] + [
                rr.get(k) for rr in r.get("referenceRange", []) for k in ("low", "high")]
            for q in filter(None, quantities):
                assert q["system"] == UCUM and q["code"] in units, (r["id"], q)


# ---------------------------------------------------------------------------- codes


def test_every_code_is_from_terminology_or_documented_in_readme():
    documented, documented_systems, units = _readme_codes()
    allowed = {s: set(c) for s, c in TERMINOLOGY.items()}
    for system, codes in documented.items():
        allowed.setdefault(system, set()).update(codes)
    seen = [c for b in BUNDLES.values() for c in _codings(b)]
    seen += [c for s in STUDIES.values() for c in _codings(s)]
    problems = []
    for system, code in seen:
        if system == UCUM:
            ok = code in units
        elif system in PROJECT_SYSTEMS or any(system.startswith(p) for p in documented_systems):
            ok = True
        elif system in (ICD10CM, ICD10):
            ok = code in allowed[ICD10CM] or code in allowed.get(ICD10, set()) or (
                code.startswith(ICD_PREFIXES))
        else:
            ok = code in allowed.get(system, set())
        if not ok:
            problems.append(f"{system}|{code}")
    assert not problems, f"undocumented codes: {sorted(set(problems))}"


def test_terminology_snapshot_matches_the_shared_spec():
    text = shared_file("spec/terminology.md").read_text(encoding="utf-8")
    for codes in TERMINOLOGY.values():
        for code in codes:
            assert re.search(rf"(?<![\w.-]){re.escape(code)}(?![\w.-])", text), code


# ---------------------------------------------------------------------------- expectations


def test_every_patient_has_expectations_for_both_studies_and_every_criterion():
    pids = [_patient(b)["id"] for b in BUNDLES.values()]
    assert list(EXPECTED["patients"]) == pids
    assert EXPECTED["asOf"] == MANIFEST["asOf"]
    for pid, patient in EXPECTED["patients"].items():
        assert patient["intent"] and patient["exercises"]
        assert list(patient["studies"]) == list(CRITERIA)
        for key, study in patient["studies"].items():
            assert tuple(study["criteria"]) == CRITERIA[key], (pid, key)
            for cid, crit in study["criteria"].items():
                assert crit["result"] in ("met", "not-met", "unknown"), (pid, key, cid)
                assert crit.get("alternative", "met") in ("met", "not-met", "unknown")
                assert crit.get("alternative") != crit["result"]
                assert crit["why"].strip(), (pid, key, cid)


def test_expected_status_follows_from_expected_criteria():
    class R:  # the attribute overall_status reads
        def __init__(self, result: str) -> None:
            self.result = result

    for pid, patient in EXPECTED["patients"].items():
        for key, study in patient["studies"].items():
            results = [R(c["result"]) for c in study["criteria"].values()]
            assert overall_status(results) == study["status"], (pid, key)
            alternative = [R(c.get("alternative", c["result"]))
                           for c in study["criteria"].values()]
            assert overall_status(alternative) == study.get("alternativeStatus", study["status"])


def test_expectations_cover_the_brief():
    statuses = {(pid, key): s["status"] for pid, p in EXPECTED["patients"].items()
                for key, s in p["studies"].items()}
    for key in CRITERIA:
        for status in ("eligible", "potential-candidate", "ineligible"):
            assert status in {s for (_, k), s in statuses.items() if k == key}, (key, status)
    deciding = {(key, cid) for p in EXPECTED["patients"].values()
                for key, s in p["studies"].items()
                for cid, c in s["criteria"].items() if c["result"] == "not-met"}
    for pair in [("refractory-sle-cart", "age"), ("pediatric-ln-cart", "age"),
                 ("refractory-sle-cart", "sle-diagnosis"), ("pediatric-ln-cart", "hemoglobin"),
                 ("pediatric-ln-cart", "alt"), ("pediatric-ln-cart", "ln-biopsy"),
                 ("refractory-sle-cart", "sledai-2k"), ("refractory-sle-cart", "egfr"),
                 ("refractory-sle-cart", "pregnancy"), ("refractory-sle-cart", "bilirubin"),
                 ("pediatric-ln-cart", "ana"), ("pediatric-ln-cart", "refractory-ln")]:
        assert pair in deciding, pair


def _whole_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@pytest.mark.parametrize("rel", sorted(BUNDLES))
def test_hand_expectations_agree_with_the_seed_record(rel):
    """Cross-check the hand-written file against plain facts of the record it describes."""
    resources = _resources(BUNDLES[rel])
    patient = _patient(BUNDLES[rel])
    expected = EXPECTED["patients"][patient["id"]]["studies"]
    age = _whole_years(date.fromisoformat(patient["birthDate"]), AS_OF)
    sle = expected["refractory-sle-cart"]["criteria"]
    ln = expected["pediatric-ln-cart"]["criteria"]
    assert sle["age"]["result"] == ("met" if age >= 5 else "not-met")
    assert ln["age"]["result"] == ("met" if 6 <= age <= 18 else "not-met")
    if patient["gender"] == "male" or age < 10:
        assert sle["pregnancy"]["result"] == "met"

    confirmed = {
        r["code"]["coding"][0]["code"] for r in resources
        if r["resourceType"] == "Observation"
        and r["code"]["coding"][0]["system"] == "urn:trial-eligibility:criterion"
        and r.get("valueBoolean") is True
    }
    consents = {
        p["uri"].rsplit(":", 1)[1] for r in resources
        if r["resourceType"] == "Consent" and r["status"] == "active" for p in r["policy"]
    }
    for key, criteria in expected.items():
        assert (criteria["criteria"]["consent"]["result"] == "met") == (key in consents)
        for cid in MANUAL[key]:
            assert (criteria["criteria"][cid]["result"] == "met") == (cid in confirmed), cid


# ---------------------------------------------------------------------------- loader


class FakeFhir:
    """Just enough of a FHIR server for the loader: transaction and identifier search."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._next = 0

    def search(self, resource_type: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        self.calls.append(f"search {resource_type}")
        tokens = set(params.get("identifier", "").split(","))
        for ref, res in list(self.store.items()):
            if not ref.startswith(f"{resource_type}/"):
                continue
            mine = {f"{i['system']}|{i['value']}" for i in res.get("identifier", [])}
            if mine & tokens:
                yield res

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(f"transaction {len(bundle['entry'])}")
        out = []
        for entry in bundle["entry"]:
            request, resource = entry["request"], copy.deepcopy(entry["resource"])
            if request["method"] == "PUT":
                ref = request["url"]
                status = "200 OK" if ref in self.store else "201 Created"
            else:
                condition = request.get("ifNoneExist", "").split("=", 1)[1]
                matches = list(self.search(resource["resourceType"], {"identifier": condition}))
                if matches:
                    ref = f"{resource['resourceType']}/{matches[0]['id']}"
                    out.append({"response": {"status": "200 OK", "location": ref}})
                    continue
                self._next += 1
                ref = f"{request['url']}/gen{self._next}"
                status = "201 Created"
            resource["id"] = ref.split("/")[1]
            self.store[ref] = resource
            out.append({"response": {"status": status, "location": f"{ref}/_history/1"}})
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": out}


def test_load_seeds_sends_every_patient_and_creates_studies_once():
    fake = FakeFhir()
    first = load_seeds(fake, SEEDS)
    total = sum(len(b["entry"]) for b in BUNDLES.values())
    assert first.patients == tuple(_patient(b)["id"] for b in BUNDLES.values())
    assert first.resources == first.created == total and first.updated == 0
    assert set(first.studies) == {"refractory-sle-cart", "pediatric-ln-cart"}
    assert first.as_of == AS_OF
    assert all(ref.startswith("ResearchStudy/") for ref in first.studies.values())

    second = load_seeds(fake, SEEDS)
    assert second.studies == first.studies
    assert second.created == 0 and second.updated == total
    studies = [r for ref, r in fake.store.items() if ref.startswith("ResearchStudy/")]
    assert len(studies) == 2
    assert len(fake.store) == total + 2
    # The second load found the studies by identifier and did not post them again.
    assert sum(c.startswith("transaction") for c in fake.calls) == 1 + 2 * len(BUNDLES)


def test_report_names_ids_only():
    report = load_seeds(FakeFhir(), SEEDS)
    text = str(report) + json.dumps(report.to_json())
    for bundle in BUNDLES.values():
        name = _patient(bundle)["name"][0]
        assert name["family"] not in text and name["given"][0] not in text
        assert _patient(bundle)["birthDate"] not in text
    assert report.to_json()["patients"][0] == f"Patient/{report.patients[0]}"


def _copy_seeds(tmp_path: Path) -> Path:
    target = tmp_path / "seeds"
    for rel in ["manifest.json", *MANIFEST["patients"], *MANIFEST["studies"]]:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_text((SEEDS / rel).read_text(encoding="utf-8"), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda b: b.update(type="batch"), "expected 'transaction'"),
        (lambda b: b["entry"][3]["request"].update(method="POST"), "must be 'PUT"),
        (lambda b: b["entry"][0]["resource"].update(birthDate="yesterday"), "not valid FHIR R4"),
        (lambda b: b["entry"][2]["resource"].update(id="someone-else"), "must have an id"),
        (lambda b: b["entry"].append(copy.deepcopy(b["entry"][1])), "appears twice"),
    ],
)
def test_an_invalid_bundle_names_the_file_and_nothing_is_sent(tmp_path, breakage, message):
    seeds = _copy_seeds(tmp_path)
    victim = seeds / MANIFEST["patients"][-1]
    bundle = json.loads(victim.read_text(encoding="utf-8"))
    breakage(bundle)
    if bundle["entry"][2]["resource"]["id"] == "someone-else":
        entry = bundle["entry"][2]
        entry["request"]["url"] = f"{entry['resource']['resourceType']}/someone-else"
    victim.write_text(json.dumps(bundle), encoding="utf-8")
    fake = FakeFhir()
    with pytest.raises(SeedError, match=re.escape(message)) as info:
        load_seeds(fake, seeds)
    assert victim.name in str(info.value)
    assert fake.calls == []


def test_unreadable_json_and_missing_files_are_clear_errors(tmp_path):
    seeds = _copy_seeds(tmp_path)
    (seeds / MANIFEST["patients"][0]).write_text("{not json", encoding="utf-8")
    with pytest.raises(SeedError, match="not valid JSON"):
        load_seeds(FakeFhir(), seeds)
    (seeds / MANIFEST["patients"][0]).unlink()
    with pytest.raises(SeedError, match="file not found"):
        load_seeds(FakeFhir(), seeds)
    with pytest.raises(SeedError, match="seeds directory not found"):
        load_seeds(FakeFhir(), tmp_path / "nowhere")


def test_the_same_resource_in_two_files_is_refused(tmp_path):
    seeds = _copy_seeds(tmp_path)
    manifest = json.loads((seeds / "manifest.json").read_text())
    manifest["patients"].append("patients/copy.json")
    (seeds / "manifest.json").write_text(json.dumps(manifest))
    (seeds / "patients" / "copy.json").write_text(
        (seeds / MANIFEST["patients"][0]).read_text())
    with pytest.raises(SeedError, match="is also in"):
        read_patients(seeds)
