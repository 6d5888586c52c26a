"""Conditions recorded tentatively or only in words: what the diagnosis rules must not miss."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from service.engine.record import (
    IGNORED_STATUSES,
    PatientRecord,
    codes_of,
    codings,
    concept_texts,
    status_of,
)

# Verification statuses that do not prove a diagnosis (docs/decisions.md "Records as hospitals send
# them"): alone such a Condition gives `unknown`, never `met`.
TENTATIVE_VERIFICATION = frozenset({"provisional", "differential", "unconfirmed"})
REJECTED = frozenset({"refuted", "entered-in-error"})


def condition_tentative(resource: dict[str, Any]) -> bool:
    """Whether a Condition is recorded as provisional, differential or unconfirmed."""
    return bool(codes_of(resource.get("verificationStatus")) & TENTATIVE_VERIFICATION)


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({n.strip().lower() for n in names if n.strip()}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in words)
                      + r")(?![a-z0-9])")


def uncoded_mentions(record: PatientRecord, names: Iterable[str],
                     unless: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Conditions without a mapped code whose text names the condition (e.g. "SLE").

    `unless`: names that mean something else and take precedence ("drug-induced lupus").
    Refuted and entered-in-error Conditions are left out, as everywhere.
    """
    wanted, other = _names_pattern(names), _names_pattern(unless)
    if wanted is None:
        return []
    found = []
    for resource in record.by_type.get("Condition", []):
        if status_of(resource) in IGNORED_STATUSES:
            continue
        if codes_of(resource.get("verificationStatus")) & REJECTED:
            continue
        code = resource.get("code")
        if any(record.mappings.concepts_for(c.get("system"), c.get("code"))
               for c in codings(code)):
            continue  # coded with a mapped code: the index has it
        texts = concept_texts(code)
        if any(wanted.search(t) for t in texts) and not (
                other and any(other.search(t) for t in texts)):
            found.append(resource)
    return found


def has_coding(resource: dict[str, Any]) -> bool:
    """Whether a resource's `code` has at least one coding with a code."""
    return bool(codes_of(resource.get("code")))
