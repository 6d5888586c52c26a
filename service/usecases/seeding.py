"""Load the seed ResearchStudies and patient transaction Bundles into the FHIR server."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from service.core.dates import calendar_date

if TYPE_CHECKING:
    from service.mappings import Mappings
    from service.usecases.screener import ScreeningService

log = logging.getLogger(__name__)

STUDY_SYSTEM = "urn:trial-eligibility:study"
MANIFEST = "manifest.json"


class SeedError(ValueError):
    """A seed file is unreadable or not what the loader expects; the message names the file."""


class TransactionClient(Protocol):
    """What the loader needs of service.fhir.client.FhirClient."""

    def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]: ...

    def search(self, resource_type: str, params: Mapping[str, str]) -> Any: ...


@dataclass(frozen=True)
class SeedPatient:
    """One validated seed Bundle: its file, patient id and the resources it PUTs."""

    path: Path
    patient_id: str
    bundle: dict[str, Any]

    @property
    def references(self) -> tuple[str, ...]:
        """'Type/id' of every resource in the Bundle."""
        return tuple(e["request"]["url"] for e in self.bundle["entry"])


@dataclass(frozen=True)
class SeedReport:
    """What load_seeds did: the patients loaded and where the studies are."""

    patients: tuple[str, ...]
    studies: dict[str, str]
    resources: int
    created: int
    updated: int
    as_of: date | None = None
    files: tuple[str, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON form for the CLI and tests."""
        return {
            "asOf": self.as_of.isoformat() if self.as_of else None,
            "patients": [f"Patient/{p}" for p in self.patients],
            "studies": dict(self.studies),
            "resources": self.resources,
            "created": self.created,
            "updated": self.updated,
        }

    def __str__(self) -> str:
        lines = [
            f"Loaded {len(self.patients)} seed patients ({self.resources} resources: "
            f"{self.created} created, {self.updated} updated or unchanged).",
        ]
        lines += [f"  {key}: {ref}" for key, ref in self.studies.items()]
        if self.as_of:
            lines.append(f"Screen them as of {self.as_of.isoformat()} (seeds/manifest.json).")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeedError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedError(f"{path}: cannot read ({exc})") from None
    except ValueError as exc:
        raise SeedError(f"{path}: not valid JSON ({exc})") from None


def read_manifest(seeds_dir: Path) -> dict[str, Any]:
    """The manifest (asOf, patient files, study files); without one, every file in order."""
    path = seeds_dir / MANIFEST
    if not path.exists():
        return {
            "asOf": None,
            "patients": [p.relative_to(seeds_dir).as_posix()
                         for p in sorted((seeds_dir / "patients").glob("*.json"))],
            "studies": [p.relative_to(seeds_dir).as_posix()
                        for p in sorted((seeds_dir / "studies").glob("*.json"))],
        }
    manifest = _read_json(path)
    if not isinstance(manifest, dict):
        raise SeedError(f"{path}: must be a JSON object")
    for key in ("patients", "studies"):
        files = manifest.get(key, [])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise SeedError(f"{path}: '{key}' must be a list of file names")
    if manifest.get("asOf") is not None:
        try:
            calendar_date(manifest["asOf"])
        except (TypeError, ValueError):
            raise SeedError(f"{path}: 'asOf' must be a date YYYY-MM-DD") from None
    return manifest


def _model_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def _check_entry(path: Path, index: int, entry: Any, seen: set[str]) -> tuple[str, str, str]:
    """One seed entry: a valid R4 resource PUT at Type/id, not seen before; (url, type, id)."""
    from fhir.resources.R4B import get_fhir_model_class

    resource = entry.get("resource") if isinstance(entry, dict) else None
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(resource, dict) or not isinstance(request, dict):
        raise SeedError(f"{path}: entry {index} needs a resource and a request")
    rtype, rid = resource.get("resourceType"), resource.get("id")
    url = f"{rtype}/{rid}"
    # Fixed ids and PUT make loading idempotent: a POST would duplicate on every load.
    if request.get("method") != "PUT" or request.get("url") != url:
        raise SeedError(f"{path}: entry {index} must be 'PUT {url}' (got "
                        f"{request.get('method')} {request.get('url')})")
    if url in seen:
        raise SeedError(f"{path}: {url} appears twice")
    try:
        get_fhir_model_class(str(rtype)).model_validate(resource)
    except KeyError:
        raise SeedError(f"{path}: entry {index} has unknown resourceType {rtype!r}") from None
    except ValidationError as exc:
        raise SeedError(f"{path}: {url} is not valid FHIR R4: {_model_error(exc)}") from None
    return url, str(rtype), str(rid)


def validate_patient_bundle(path: Path, data: Any) -> SeedPatient:
    """Check one seed Bundle (shape, PUT Type/id entries, R4 validity); SeedError if not."""
    from fhir.resources.R4B.bundle import Bundle

    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise SeedError(f"{path}: not a FHIR Bundle")
    if data.get("type") != "transaction":
        raise SeedError(f"{path}: Bundle.type is {data.get('type')!r}, expected 'transaction'")
    entries = data.get("entry")
    if not isinstance(entries, list) or not entries:
        raise SeedError(f"{path}: the Bundle has no entries")
    patients: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        url, rtype, rid = _check_entry(path, index, entry, seen)
        seen.add(url)
        if rtype == "Patient":
            patients.append(rid)
    if len(patients) != 1:
        raise SeedError(f"{path}: expected exactly one Patient, found {len(patients)}")
    pid = patients[0]
    for url in seen:
        rid = url.split("/", 1)[1]
        if rid != pid and not rid.startswith(f"{pid}-"):
            # Prefixed ids keep two seed patients from overwriting each other's resources.
            raise SeedError(f"{path}: {url} must have an id starting with '{pid}-'")
    try:
        Bundle.model_validate(data)
    except ValidationError as exc:
        raise SeedError(f"{path}: not a valid FHIR R4 Bundle: {_model_error(exc)}") from None
    return SeedPatient(path=path, patient_id=pid, bundle=data)


def read_patients(seeds_dir: Path, manifest: Mapping[str, Any] | None = None) -> list[SeedPatient]:
    """Every seed patient of the manifest, validated; ids unique across files."""
    manifest = manifest if manifest is not None else read_manifest(seeds_dir)
    out: list[SeedPatient] = []
    owner: dict[str, Path] = {}
    for rel in manifest.get("patients", []):
        path = seeds_dir / rel
        patient = validate_patient_bundle(path, _read_json(path))
        for ref in patient.references:
            if ref in owner:
                raise SeedError(f"{path}: {ref} is also in {owner[ref]}")
            owner[ref] = path
        out.append(patient)
    return out


def read_studies(seeds_dir: Path, manifest: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """Study key -> seed ResearchStudy resource (validated, no fixed id)."""
    from fhir.resources.R4B.researchstudy import ResearchStudy

    manifest = manifest if manifest is not None else read_manifest(seeds_dir)
    out: dict[str, dict] = {}
    for rel in manifest.get("studies", []):
        path = seeds_dir / rel
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("resourceType") != "ResearchStudy":
            raise SeedError(f"{path}: not a ResearchStudy")
        try:
            ResearchStudy.model_validate(data)
        except ValidationError as exc:
            raise SeedError(f"{path}: not a valid FHIR R4 ResearchStudy: {_model_error(exc)}"
                            ) from None
        keys = [i.get("value") for i in data.get("identifier") or ()
                if isinstance(i, dict) and i.get("system") == STUDY_SYSTEM]
        if len(keys) != 1 or not isinstance(keys[0], str):
            raise SeedError(f"{path}: needs exactly one identifier with system {STUDY_SYSTEM}")
        if keys[0] in out:
            raise SeedError(f"{path}: study {keys[0]} is defined twice")
        out[keys[0]] = data
    return out


# ---------------------------------------------------------------------------- writing


def _ensure_studies(client: TransactionClient, studies: Mapping[str, dict]) -> dict[str, str]:
    """Find each seed study by identifier, create the missing ones by conditional create."""
    from service.usecases.research_studies import (
        create_research_studies,
        find_research_studies,
    )

    keys = list(studies)
    if not keys:
        return {}
    api: Any = client  # search and transaction are all the two use
    _, found = find_research_studies(api, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        found.update(create_research_studies(api, {k: studies[k] for k in missing}))
    return {k: found[k] for k in keys}


def load_seeds(
    client: TransactionClient, seeds_dir: Path, *, mappings: Mappings | None = None
) -> SeedReport:
    """Validate every seed file, then create the studies and PUT each patient's Bundle.

    Idempotent: studies are found by identifier before anything is created and patient
    resources have fixed ids. Nothing is sent when any seed file is invalid (SeedError).
    With `mappings`, studies go through service.usecases.research_studies.ensure_research_studies.
    """
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        raise SeedError(f"{seeds_dir}: seeds directory not found")
    manifest = read_manifest(seeds_dir)
    studies = read_studies(seeds_dir, manifest)
    patients = read_patients(seeds_dir, manifest)

    if mappings is not None:
        from service.usecases.research_studies import ensure_research_studies

        study_refs = ensure_research_studies(client, mappings, seeds_dir)  # type: ignore[arg-type]
    else:
        study_refs = _ensure_studies(client, studies)

    created = updated = resources = 0
    for patient in patients:
        answer = client.transaction(patient.bundle)
        for entry in answer.get("entry") or []:
            status = str((entry.get("response") or {}).get("status") or "")
            if status.startswith("201"):
                created += 1
            else:
                updated += 1
        resources += len(patient.bundle["entry"])
        log.debug("seed patient %s loaded (%d resources)", patient.patient_id,
                  len(patient.bundle["entry"]))
    log.info("loaded %d seed patients (%d resources) and %d studies", len(patients), resources,
             len(study_refs))
    as_of = calendar_date(manifest["asOf"]) if manifest.get("asOf") else None
    return SeedReport(
        patients=tuple(p.patient_id for p in patients),
        studies=study_refs,
        resources=resources,
        created=created,
        updated=updated,
        as_of=as_of,
        files=tuple(str(p.path) for p in patients),
    )


def load_seeds_into(svc: ScreeningService, seeds_dir: Path) -> SeedReport:
    """Load the seeds into the screener's FHIR server, the studies found or created the way
    screenings do it (the CLI's `load-seeds` and `demo`)."""
    return load_seeds(svc.client(), seeds_dir, mappings=svc.mappings)
