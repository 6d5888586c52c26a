"""Ensure the ResearchStudies: find each study's ResearchStudy by identifier, create the
missing ones (from the seed file, else from the mapping), keep their criteria Group current."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.fhir import research_subject as rs
from service.fhir.api import FhirApi
from service.fhir.errors import FhirConflict, FhirProtocolError
from service.fhir.locations import stored_reference
from service.fhir.queries import query_string
from service.fhir.research_study import with_enrollment

if TYPE_CHECKING:
    from service.mappings import Mappings

log = logging.getLogger(__name__)


def _studies_by_key(resources: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, str]:
    """study key -> 'ResearchStudy/<id>' for the resources carrying our study identifier."""
    found: dict[str, str] = {}
    for resource in resources:
        if resource.get("resourceType") != "ResearchStudy" or not resource.get("id"):
            continue
        for ident in resource.get("identifier") or ():
            if not isinstance(ident, Mapping) or ident.get("system") != rs.STUDY_SYSTEM:
                continue
            key = ident.get("value")
            if not isinstance(key, str) or key not in keys:
                continue
            ref = f"ResearchStudy/{resource['id']}"
            if found.get(key, ref) != ref:
                raise FhirConflict(
                    f"two ResearchStudy resources carry identifier {rs.STUDY_SYSTEM}|{key} "
                    f"({found[key]}, {ref}); remove one"
                )
            found[key] = ref
    return found


def _seed_studies(seeds_dir: Path | None) -> dict[str, dict[str, Any]]:
    """ResearchStudy resources of the seeds by study key (the seed loader's own reading)."""
    if seeds_dir is None or not (Path(seeds_dir) / "studies").is_dir():
        return {}
    from service.usecases.seeding import read_studies

    return read_studies(Path(seeds_dir))


_CLIENT_META = ("tag", "security", "profile")


def _create_research_studies(
    client: FhirApi, mappings: Mappings, keys: Sequence[str], seeds_dir: Path | None
) -> dict[str, str]:
    """Create the missing ResearchStudies (seed file, else built from the mapping) at once."""
    seeds = _seed_studies(seeds_dir)
    resources = {}
    for key in keys:
        study = mappings.studies[key]
        resource = dict(
            seeds.get(key) or rs.research_study_resource(key, study.title, study.registry_id)
        )
        # Its criteria for other FHIR tools: a contained Group in `enrollment`.
        resources[key] = with_enrollment(resource, study) or resource
    return create_research_studies(client, resources)


def create_research_studies(
    client: FhirApi, resources: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Create these ResearchStudies (study key -> resource) in one transaction of conditional
    creates on our identifier; study key -> 'ResearchStudy/<id>' created or found."""
    keys = list(resources)
    entries = []
    for key in keys:
        resource = dict(resources[key])
        # Keep the seed's tags and profiles; version and timestamps belong to the server.
        meta = {k: v for k, v in (resource.get("meta") or {}).items() if k in _CLIENT_META}
        resource.pop("meta", None)
        if meta:
            resource["meta"] = meta
        # Conditional create: a study created meanwhile (another worker, the seed loader)
        # is found instead of doubled, and a study someone edited is never overwritten.
        resource.pop("id", None)
        request = {
            "method": "POST",
            "url": "ResearchStudy",
            "ifNoneExist": query_string([("identifier", f"{rs.STUDY_SYSTEM}|{key}")]),
        }
        entries.append({"resource": resource, "request": request})
    answer = client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    created: dict[str, str] = {}
    for key, entry in zip(keys, answer["entry"], strict=True):
        ref = stored_reference(entry, "ResearchStudy")
        if ref is None:
            raise FhirProtocolError(f"creating ResearchStudy {key}: no location in the answer")
        created[key] = ref
    log.info("found or created %d ResearchStudy resources", len(created))
    return created


def find_research_studies(
    client: FhirApi, keys: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(the ResearchStudies found, study key -> reference) by our identifier (1 request)."""
    token = ",".join(f"{rs.STUDY_SYSTEM}|{k}" for k in keys)
    resources = list(client.search("ResearchStudy", {"identifier": token}))
    return resources, _studies_by_key(resources, keys)


def _publish_criteria(client: FhirApi, mappings: Mappings,
                      resources: Sequence[Mapping[str, Any]], found: Mapping[str, str]) -> None:
    """Bring each found ResearchStudy's criteria Group up to date (one versioned update each,
    in one transaction; nothing when all are current). Someone's concurrent edit wins: the
    update is skipped with a warning and tried again at the next start."""
    by_ref = {f"ResearchStudy/{r.get('id')}": r for r in resources}
    entries = []
    for key, ref in found.items():
        stored = by_ref.get(ref)
        updated = with_enrollment(stored, mappings.studies[key]) if stored else None
        if updated is None:
            continue
        request: dict[str, Any] = {"method": "PUT", "url": ref}
        version = (stored or {}).get("meta", {}).get("versionId")
        if version:
            request["ifMatch"] = f'W/"{version}"'
        updated.pop("meta", None)
        entries.append({"resource": updated, "request": request})
    if not entries:
        return
    try:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    except FhirConflict:
        log.warning("ResearchStudy criteria not updated: changed meanwhile; retried next start")
        return
    log.info("published the criteria of %d ResearchStudy resources", len(entries))


def ensure_research_studies(
    client: FhirApi, mappings: Mappings, seeds_dir: Path | None = None
) -> dict[str, str]:
    """study key -> 'ResearchStudy/<id>', finding each by identifier or creating it (2 requests)."""
    keys = list(mappings.studies)
    for attempt in (1, 2):
        resources, found = find_research_studies(client, keys)
        if attempt == 1:
            _publish_criteria(client, mappings, resources, found)
        missing = [k for k in keys if k not in found]
        if not missing:
            break
        try:
            found.update(_create_research_studies(client, mappings, missing, seeds_dir))
            break
        except FhirConflict as exc:
            # HAPI answers 409 to an ifNoneExist that lost a race: the winner's study is
            # found by the next search.
            if attempt == 2 or not lost_a_race(exc):
                raise
            log.info("creating ResearchStudies raced with another writer (HTTP 409); again")
    return {k: found[k] for k in keys}



def lost_a_race(exc: BaseException) -> bool:
    """True for HAPI's 409: a conditional create or update lost a race (HAPI-0550).

    (412, several matches, is a different conflict: retrying cannot help.)
    """
    return isinstance(exc, FhirConflict) and exc.status == 409
