"""The FHIR R4 rest-hook Subscriptions that trigger screenings (built here, sent by the CLI)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from service.fhir.locations import location_parts

if TYPE_CHECKING:
    from service.engine.model import Mappings

SUBSCRIPTION_TAG_SYSTEM = "urn:trial-eligibility:subscription"
SUBSCRIBED_TYPES: tuple[str, ...] = (
    "Observation", "Condition", "MedicationRequest", "MedicationStatement", "Procedure", "Patient",
)


# Observations the service itself reads beyond the concepts: manual confirmations and
# recorded scores/classifications (any code of these systems).
OWN_OBSERVATION_SYSTEMS = ("urn:trial-eligibility:criterion", "urn:trial-eligibility:score")
# Longest `criteria` of one Subscription; longer lists of codes are split over several
# Subscriptions (tags Observation, Observation-2, ...). HAPI 8.4 accepted up to 30,000
# characters in one (docs/candidates-and-triggers.md); the bound is for other servers.
MAX_CRITERIA_CHARS = 4000
# Types notified whatever changed: a Patient (deceased, birth date, merged), and medication
# uses, which the engine also recognises by name and through a referenced Medication, neither
# of which a `code=` criteria can express.
UNFILTERED_TYPES: tuple[str, ...] = ("MedicationRequest", "MedicationStatement", "Patient")
# Which concept kind each filtered type's `code` holds.
FILTERED_KINDS: dict[str, str] = {
    "Observation": "observation", "Condition": "condition", "Procedure": "procedure",
}


def subscription(resource_type: str, public_url: str, secret: str, *, criteria: str | None = None,
                 tag: str | None = None) -> dict[str, Any]:
    """One Subscription: a change of resource_type matching `criteria` (default: any) is PUT
    to {public_url}/fhir-notify/...; `tag` (default: the type) finds it again."""
    return {
        "resourceType": "Subscription",
        # R4 Subscription has no identifier; the tag makes it findable for conditional update.
        "meta": {"tag": [{"system": SUBSCRIPTION_TAG_SYSTEM, "code": tag or resource_type}]},
        "status": "requested",
        "reason": f"Re-screen the patient for trial eligibility when a {resource_type} changes",
        "criteria": criteria or f"{resource_type}?",
        "channel": {
            "type": "rest-hook",
            "endpoint": f"{public_url.rstrip('/')}/fhir-notify",
            "payload": "application/fhir+json",
            "header": [f"Authorization: Bearer {secret}"],
        },
    }


def code_tokens(mappings: Mappings, kind: str) -> list[str]:
    """Sorted `system|code` tokens of every concept of this kind (site.toml's included); a
    wildcard code is its system alone, an ICD-10 prefix stands for its children too."""
    from service.fhir.candidates import condition_tokens

    tokens: set[str] = set()
    for concept in mappings.concepts.values():
        if concept.kind != kind:
            continue
        for token in concept.codes:
            tokens.update(condition_tokens(token, prefix=False))
        for token in concept.prefixes:
            tokens.update(condition_tokens(token, prefix=True))
    if kind == "observation":
        tokens.update(mappings.observation_codes())
        tokens.update(f"{system}|" for system in OWN_OBSERVATION_SYSTEMS)
    return sorted(tokens)


def _chunks(tokens: Sequence[str], room: int) -> list[list[str]]:
    out: list[list[str]] = [[]]
    used = 0
    for token in tokens:
        cost = len(token) + 1
        if out[-1] and used + cost > room:
            out.append([])
            used = 0
        out[-1].append(token)
        used += cost
    return out


def subscription_criteria(mappings: Mappings, max_chars: int = MAX_CRITERIA_CHARS
                          ) -> list[tuple[str, str, str]]:
    """(resource type, tag, criteria) of every Subscription: the filtered types name the codes
    the loaded mappings read (`Observation?code=sys|c1,sys|c2`), split when too long; a type
    whose concepts have no code is not subscribed at all."""
    out: list[tuple[str, str, str]] = []
    for rtype, kind in FILTERED_KINDS.items():
        tokens = code_tokens(mappings, kind)
        if not tokens:
            continue
        prefix = f"{rtype}?code="
        for index, chunk in enumerate(_chunks(tokens, max_chars - len(prefix))):
            tag = rtype if index == 0 else f"{rtype}-{index + 1}"
            out.append((rtype, tag, prefix + ",".join(quote(t, safe="|:/.-_") for t in chunk)))
    out += [(rtype, rtype, f"{rtype}?") for rtype in UNFILTERED_TYPES]
    return out


def subscriptions_transaction(public_url: str, secret: str, mappings: Mappings,
                              stale: Sequence[str] = ()) -> dict[str, Any]:
    """A transaction creating or updating every Subscription (conditional update by tag) and
    deleting ours whose tag is no longer wanted (`stale` tags: a mapping change shrank a
    split list, or an older version subscribed a type no longer subscribed)."""
    entries: list[dict[str, Any]] = [
        {
            "resource": subscription(rtype, public_url, secret, criteria=criteria, tag=tag),
            "request": {"method": "PUT",
                        "url": f"Subscription?_tag={SUBSCRIPTION_TAG_SYSTEM}|{tag}"},
        }
        for rtype, tag, criteria in subscription_criteria(mappings)
    ]
    entries += [{"request": {"method": "DELETE",
                             "url": f"Subscription?_tag={SUBSCRIPTION_TAG_SYSTEM}|{tag}"}}
                for tag in stale]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def our_tags(resources: Sequence[Mapping[str, Any]]) -> list[str]:
    """The tags of our Subscriptions among `resources`."""
    return sorted({str(t.get("code")) for r in resources
                   for t in (r.get("meta") or {}).get("tag") or ()
                   if isinstance(t, Mapping) and t.get("system") == SUBSCRIPTION_TAG_SYSTEM})


class SubscriptionNotActive(Exception):
    """A Subscription did not become `active`; the message carries the server's reason."""


def subscription_reference(location: str) -> str:
    """'Subscription/<id>' from a transaction response location (history part dropped)."""
    found = location_parts(location)
    if found is None or found[0] != "Subscription":
        raise SubscriptionNotActive(f"the server answered no Subscription location ({location!r})")
    return f"Subscription/{found[1]}"


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
