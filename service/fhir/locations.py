"""Where a FHIR server says it stored a resource: the `location` of a transaction-response
entry ('[base/]Type/id[/_history/version]'), read in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def location_parts(location: str) -> tuple[str, str, str | None] | None:
    """(type, id, version) of a location, or None when it names no type and id."""
    path, _, history = str(location or "").partition("/_history/")
    parts = path.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return parts[-2], parts[-1], history.strip("/") or None


def stored_reference(entry: Mapping[str, Any], resource_type: str) -> str | None:
    """'Type/id' of a transaction-response entry for `resource_type`: from its location, else
    from the resource the server returned; None when the answer names neither."""
    found = location_parts(str((entry.get("response") or {}).get("location") or ""))
    if found is not None and found[0] == resource_type:
        return f"{resource_type}/{found[1]}"
    resource = entry.get("resource") or {}
    if resource.get("resourceType") == resource_type and resource.get("id"):
        return f"{resource_type}/{resource['id']}"
    return None
