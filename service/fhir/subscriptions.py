"""The FHIR R4 rest-hook Subscriptions that trigger screenings (built here, sent by the CLI)."""

from __future__ import annotations

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
