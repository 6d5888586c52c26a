"""The FHIR R4 rest-hook Subscriptions that trigger screenings (built here, sent by the CLI)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SUBSCRIPTION_TAG_SYSTEM = "urn:trial-eligibility:subscription"
SUBSCRIBED_TYPES: tuple[str, ...] = (
    "Observation", "Condition", "MedicationRequest", "MedicationStatement", "Procedure", "Patient",
)


def subscription(resource_type: str, public_url: str, secret: str) -> dict[str, Any]:
    """One Subscription: any change of resource_type is PUT to {public_url}/fhir-notify/..."""
    return {
        "resourceType": "Subscription",
        # R4 Subscription has no identifier; the tag makes it findable for conditional update.
        "meta": {"tag": [{"system": SUBSCRIPTION_TAG_SYSTEM, "code": resource_type}]},
        "status": "requested",
        "reason": f"Re-screen the patient for trial eligibility when a {resource_type} changes",
        "criteria": f"{resource_type}?",
        "channel": {
            "type": "rest-hook",
            "endpoint": f"{public_url.rstrip('/')}/fhir-notify",
            "payload": "application/fhir+json",
            "header": [f"Authorization: Bearer {secret}"],
        },
    }


def subscriptions_transaction(public_url: str, secret: str) -> dict[str, Any]:
    """A transaction creating or updating every Subscription (conditional update by tag)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": subscription(rtype, public_url, secret),
                "request": {
                    "method": "PUT",
                    "url": f"Subscription?_tag={SUBSCRIPTION_TAG_SYSTEM}|{rtype}",
                },
            }
            for rtype in SUBSCRIBED_TYPES
        ],
    }


class SubscriptionNotActive(Exception):
    """A Subscription did not become `active`; the message carries the server's reason."""


def subscription_reference(location: str) -> str:
    """'Subscription/<id>' from a transaction response location (history part dropped)."""
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "Subscription" or not parts[-1]:
        raise SubscriptionNotActive(f"the server answered no Subscription location ({location!r})")
    return f"Subscription/{parts[-1]}"


def await_active(
    read: Callable[[str, str], Mapping[str, Any]],
    references: Sequence[str],
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 0.5,
) -> None:
    """Poll each Subscription until the server marks it `active` (HAPI does it asynchronously).

    `error` or `off` fails at once with the server's `error` text; still `requested` after
    `timeout` seconds fails saying so (on HAPI: rest-hook delivery is switched off).
    """
    deadline = clock() + timeout
    pending = list(references)
    while pending:
        still = []
        for ref in pending:
            rtype, rid = ref.split("/", 1)
            resource = read(rtype, rid)
            status = resource.get("status")
            if status == "active":
                continue
            if status in ("error", "off"):
                reason = resource.get("error") or "no reason given"
                raise SubscriptionNotActive(f"{ref} is {status!r}: {reason}")
            still.append((ref, status))
        if not still:
            return
        if clock() >= deadline:
            ref, status = still[0]
            raise SubscriptionNotActive(
                f"{ref} is still {status!r} after {timeout:g} s: the FHIR server does not "
                "activate rest-hook Subscriptions (on HAPI set "
                "hapi.fhir.subscription.resthook_enabled=true)"
            )
        pending = [ref for ref, _ in still]
        sleep(interval)
