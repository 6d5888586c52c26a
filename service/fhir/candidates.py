"""Who `screen --all` screens: patients with a study's diagnosis, plus those we already screened."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from service.engine.model import ICD10_SYSTEMS, WILDCARD, Mappings
from service.fhir.research_subject import RESEARCH_SUBJECT_SYSTEM

_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
# An ICD-10 prefix (M32.1) stands for itself and its children one character longer (M32.10 ..
# M32.19), which is the whole of ICD-10-CM's M32.1 family; a token search has no prefix match.
_CHILD_CHARACTERS = "0123456789"


def _icd10_forms(code: str) -> list[str]:
    # Mappings hold ICD-10 codes without the dot (M329); records carry either form (M32.9).
    return [code, f"{code[:3]}.{code[3:]}"] if len(code) > 3 else [code]


def _tokens_of(token: str, *, prefix: bool) -> list[str]:
    system, _, code = token.partition("|")
    if code == WILDCARD:
        return [f"{system}|"]  # any code of that system
    if system not in ICD10_SYSTEMS:
        return [token]
    codes = [code] + ([code + c for c in _CHILD_CHARACTERS] if prefix else [])
    return [f"{s}|{form}" for s in ICD10_SYSTEMS for c in codes for form in _icd10_forms(c)]


def condition_tokens(token: str, *, prefix: bool) -> list[str]:
    """The search tokens standing for one mapping token (ICD-10 forms and children)."""
    return _tokens_of(token, prefix=prefix)


def diagnosis_concepts(mappings: Mappings, studies: Sequence[str] | None = None) -> list[str]:
    """Concepts the studies' declared diagnosis criteria (`study.diagnosis_criteria`) look for
    (e.g. `sle`), in study order: whoever has one is a candidate
    (docs/candidates-and-triggers.md)."""
    keys = studies or list(mappings.studies)
    names = [c.params["concept"] for k in keys for c in mappings.studies[k].criteria
             if c.id in mappings.studies[k].diagnosis_criteria and c.params.get("concept")]
    return list(dict.fromkeys(names))


def diagnosis_tokens(mappings: Mappings, studies: Sequence[str] | None = None) -> list[str]:
    """`system|code` tokens for a Condition `code` search finding every diagnosed patient."""
    tokens: list[str] = []
    for name in diagnosis_concepts(mappings, studies):
        concept = mappings.concepts[name]
        for token in sorted(concept.codes):
            tokens += _tokens_of(token, prefix=False)
        for token in concept.prefixes:
            tokens += _tokens_of(token, prefix=True)
    return list(dict.fromkeys(tokens))


def patient_id_of(reference: Any) -> str | None:
    """The id of a `Patient/<id>` reference (relative, absolute or versioned), else None."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    match = _PATIENT_REF.search(reference["reference"])
    return match.group(1) if match else None


def _ids(resources: Iterable[dict[str, Any]], element: str) -> Iterator[str]:
    for resource in resources:
        patient = patient_id_of(resource.get(element))
        if patient:
            yield patient


def candidate_ids(client: Any, mappings: Mappings, studies: Sequence[str] | None = None, *,
                  page_size: int = 500) -> list[str]:
    """Sorted ids of every patient with a diagnosis a study looks for, or one of our
    ResearchSubjects (so a result that no longer holds is updated, never left stale).

    Two paged searches that return only the patient reference (`_elements`); the number of
    requests follows the number of candidates, not the size of the hospital.
    """
    count = str(page_size)
    found: set[str] = set()
    tokens = diagnosis_tokens(mappings, studies)
    if tokens:
        found.update(_ids(client.search_population(
            "Condition", {"code": ",".join(tokens), "_elements": "subject", "_count": count}),
            "subject"))
    found.update(_ids(client.search_population(
        "ResearchSubject",
        {"identifier": f"{RESEARCH_SUBJECT_SYSTEM}|", "_elements": "individual",
         "_count": count}), "individual"))
    return sorted(found)


def every_patient_id(client: Any, *, page_size: int = 500) -> Iterator[str]:
    """Every Patient id of the server, page by page (`--every-patient`)."""
    for resource in client.search_population(
            "Patient", {"_count": str(page_size), "_elements": "id"}):
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            yield resource["id"]


def diagnosis_matcher(mappings: Mappings, studies: Sequence[str] | None = None
                      ) -> Callable[[dict[str, Any]], bool]:
    """Whether a Condition holds a code the population search (`diagnosis_tokens`) finds: the
    same candidates from exported Conditions as from the search."""
    exact: set[tuple[str, str]] = set()
    any_code: set[str] = set()
    for token in diagnosis_tokens(mappings, studies):
        system, _, code = token.partition("|")
        if code:
            exact.add((system, code))
        else:
            any_code.add(system)

    def matches(resource: dict[str, Any]) -> bool:
        if resource.get("resourceType") != "Condition":
            return False
        for coding in (resource.get("code") or {}).get("coding") or ():
            if not isinstance(coding, dict):
                continue
            system, code = coding.get("system"), coding.get("code")
            if system in any_code or (system, code) in exact:
                return True
        return False

    return matches


def holds_our_subject(resource: dict[str, Any]) -> bool:
    """Whether a resource is one of our ResearchSubjects (so its patient is a candidate)."""
    return resource.get("resourceType") == "ResearchSubject" and any(
        isinstance(i, dict) and i.get("system") == RESEARCH_SUBJECT_SYSTEM
        for i in resource.get("identifier") or ())
