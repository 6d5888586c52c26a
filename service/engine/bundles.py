"""Flatten FHIR Bundles (of any type, nested) into resources and find each patient's share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.engine.record import RecordError, check_r4, reference_of


@dataclass(frozen=True)
class PatientSlice:
    """One patient of a Bundle: its id, the references that mean it, and all resources."""

    patient_id: str
    aliases: tuple[str, ...]
    resources: tuple[dict[str, Any], ...]


def iter_resources(bundle: Any, _depth: int = 0) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(fullUrl, resource) of every resource in a Bundle, descending into nested Bundles."""
    if _depth > 8 or not isinstance(bundle, dict):
        return
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        if resource["resourceType"] == "Bundle":
            yield from iter_resources(resource, _depth + 1)
        else:
            yield full_url, resource


def check_bundle_version(bundle: Any) -> None:
    """Raise RecordError for a Bundle that is not FHIR R4 (STU3 and R5 markers)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise RecordError("not a FHIR Bundle (resourceType must be 'Bundle')")
    check_r4(resource for _, resource in iter_resources(bundle))


_PATIENT_REF = re.compile(r"Patient/[^/]+\Z")


def patient_slices(bundle: dict[str, Any], include_referenced: bool = False
                   ) -> list[PatientSlice]:
    """Every Patient of a Bundle with the resources (all of them: the engine filters by subject).

    With include_referenced, patients only referenced (not carried) get a slice too.
    """
    check_bundle_version(bundle)
    pairs = list(iter_resources(bundle))
    resources = tuple(resource for _, resource in pairs)
    slices = []
    for full_url, resource in pairs:
        if resource["resourceType"] != "Patient" or not isinstance(resource.get("id"), str):
            continue
        aliases = tuple(a for a in (full_url,) if a)
        slices.append(PatientSlice(resource["id"], aliases, resources))
    if include_referenced:
        # Results often point at a Patient the Bundle does not carry: give each such patient
        # a bare Patient so its results can still be read (age and sex stay unknown).
        known = {f"Patient/{s.patient_id}" for s in slices} | {a for s in slices for a in s.aliases}
        referenced: dict[str, None] = {}
        for _, resource in pairs:
            for key in ("subject", "patient"):
                ref = reference_of(resource.get(key))
                # "Patient/a/b" or "Patient/" is no patient's reference: a stub with the id
                # "a/b" or "" would be written back as a ResearchSubject about no patient.
                if isinstance(ref, str) and _PATIENT_REF.match(ref) and ref not in known:
                    referenced[ref] = None
        for ref in referenced:
            pid = ref.split("/", 1)[1]
            stub = {"resourceType": "Patient", "id": pid}
            slices.append(PatientSlice(pid, (), resources + (stub,)))
    return slices
