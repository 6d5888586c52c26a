"""Where `--since last` finds the previous bulk run: a Basic resource of ours on the FHIR server.

The FHIR server is the one store every deployment shares: a restart, another worker or another
machine finds the same instant there (the job queue's SQLite store is local to one machine).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from service.fhir.api import FhirApi
from service.fhir.errors import FhirConflict
from service.fhir.queries import query_string

STATE_SYSTEM = "urn:trial-eligibility:bulk-export"
TRANSACTION_TIME_URL = "urn:trial-eligibility:bulk-export:transaction-time"
_KIND = {"system": "urn:trial-eligibility:resource-kind", "code": "bulk-export-state"}
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def state_key(group: str | None) -> str:
    """One state per export scope: the whole server, or one Group."""
    return "system" if group is None else f"group-{group}"


def last_transaction_time(client: FhirApi, group: str | None) -> str | None:
    """The transactionTime of the last successful bulk run of this scope, if any."""
    token = f"{STATE_SYSTEM}|{state_key(group)}"
    found = list(client.search("Basic", {"identifier": token, "_count": "2"}))
    if len(found) > 1:
        raise FhirConflict(f"{len(found)} Basic resources carry identifier {token}; remove one")
    for resource in found:
        for ext in resource.get("extension") or ():
            if isinstance(ext, Mapping) and ext.get("url") == TRANSACTION_TIME_URL:
                value = ext.get("valueInstant")
                if isinstance(value, str) and _INSTANT.fullmatch(value):
                    return value
    return None


def state_resource(group: str | None, transaction_time: str) -> dict[str, Any]:
    """The Basic resource holding one scope's last transactionTime."""
    return {
        "resourceType": "Basic",
        "identifier": [{"system": STATE_SYSTEM, "value": state_key(group)}],
        "code": {"coding": [_KIND], "text": "Last successful bulk screening (trial-eligibility)"},
        "extension": [{"url": TRANSACTION_TIME_URL, "valueInstant": transaction_time}],
    }


def save_transaction_time(client: FhirApi, group: str | None, transaction_time: str) -> None:
    """Keep the instant (one conditional update: found by identifier, created when absent)."""
    if not _INSTANT.fullmatch(transaction_time):
        raise ValueError(f"not a FHIR instant: {transaction_time[:40]!r}")
    url = "Basic?" + query_string([("identifier", f"{STATE_SYSTEM}|{state_key(group)}")])
    client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": state_resource(group, transaction_time),
         "request": {"method": "PUT", "url": url}}]})
