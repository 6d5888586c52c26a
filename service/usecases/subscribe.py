"""Register the rest-hook Subscriptions the loaded mappings need (`eligibility subscribe`)."""

from __future__ import annotations

from dataclasses import dataclass

from service.fhir.api import FhirApi
from service.fhir.subscriptions import (
    SubscriptionNotActive,
    await_active,
    our_tags,
    subscription_criteria,
    subscription_reference,
    subscriptions_transaction,
)
from service.mappings import Mappings

__all__ = ["Registered", "SubscriptionNotActive", "await_subscriptions", "register"]


@dataclass(frozen=True)
class Registered:
    """One Subscription as the server answered: its tag, criteria, HTTP status and location."""

    tag: str
    criteria: str
    status: str
    location: str

    @property
    def reference(self) -> str:
        """'Subscription/<id>' (SubscriptionNotActive when the server named none)."""
        return subscription_reference(self.location)


def register(client: FhirApi, mappings: Mappings, public_url: str, secret: str
             ) -> tuple[list[Registered], list[str]]:
    """Create or update our Subscriptions and delete those no longer wanted, in one
    transaction (2 requests): ([what was registered], [tags deleted])."""
    # HAPI refuses a `_tag` search by system alone (HAPI-1218): read them all (a handful).
    found = list(client.search("Subscription", {}))
    wanted = subscription_criteria(mappings)
    stale = [t for t in our_tags(found) if t not in {tag for _, tag, _ in wanted}]
    answer = client.transaction(subscriptions_transaction(public_url, secret, mappings, stale))
    out = []
    for (_, tag, criteria), entry in zip(wanted, answer.get("entry") or [], strict=False):
        response = entry.get("response") or {}
        out.append(Registered(tag, criteria, str(response.get("status", "?")),
                              str(response.get("location") or "")))
    return out, stale


def await_subscriptions(client: FhirApi, references: list[str], *, timeout: float) -> None:
    """Wait until the server marks each Subscription active; SubscriptionNotActive otherwise."""
    await_active(client.read, references, timeout=timeout)
