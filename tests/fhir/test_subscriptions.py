"""`eligibility subscribe` waits for HAPI to activate each Subscription, or fails with its reason;
the endpoint is NOTIFY_BASE_URL (how the FHIR server reaches us), not PUBLIC_URL."""

from __future__ import annotations

import pytest

from service.core.settings import REPO_ROOT, Settings
from service.fhir.subscriptions import (
    SubscriptionNotActive,
    await_active,
    subscription_reference,
    subscriptions_transaction,
)
from service.mappings import load_mappings


class FakeClock:
    """A monotonic clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def reader(statuses: dict[str, list[dict]]):
    """read(type, id) answering each Subscription's next state (the last one repeats)."""

    def read(rtype: str, rid: str) -> dict:
        states = statuses[f"{rtype}/{rid}"]
        state = states.pop(0) if len(states) > 1 else states[0]
        return {"resourceType": rtype, "id": rid, **state}

    return read


def test_waits_until_every_subscription_is_active():
    clock = FakeClock()
    read = reader({
        "Subscription/1": [{"status": "requested"}, {"status": "active"}],
        "Subscription/2": [{"status": "requested"}, {"status": "requested"}, {"status": "active"}],
    })
    await_active(read, ["Subscription/1", "Subscription/2"], timeout=60, clock=clock,
                 sleep=clock.sleep)
    assert len(clock.sleeps) == 2


def test_an_error_status_fails_at_once_with_the_servers_reason():
    clock = FakeClock()
    read = reader({"Subscription/1": [{"status": "error", "error": "HAPI-0014: endpoint refused"}]})
    with pytest.raises(SubscriptionNotActive, match="HAPI-0014: endpoint refused"):
        await_active(read, ["Subscription/1"], timeout=60, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_still_requested_after_the_timeout_names_the_hapi_setting():
    clock = FakeClock()
    read = reader({"Subscription/1": [{"status": "requested"}]})
    with pytest.raises(SubscriptionNotActive) as info:
        await_active(read, ["Subscription/1"], timeout=5, clock=clock, sleep=clock.sleep)
    assert "still 'requested' after 5 s" in str(info.value)
    assert "hapi.fhir.subscription.resthook_enabled=true" in str(info.value)
    assert 5 <= clock.now < 6


@pytest.mark.parametrize(("location", "ref"), [
    ("Subscription/17/_history/1", "Subscription/17"),
    ("http://hapi:8080/fhir/Subscription/abc/_history/3", "Subscription/abc"),
])
def test_subscription_reference_from_a_transaction_location(location, ref):
    assert subscription_reference(location) == ref


def test_a_location_that_is_no_subscription_is_refused():
    with pytest.raises(SubscriptionNotActive):
        subscription_reference("Observation/1")


def test_notify_base_url_is_the_subscription_endpoint_and_public_url_stays_for_browsers():
    settings = Settings.from_env({
        "PUBLIC_URL": "https://elig.example.org",
        "NOTIFY_BASE_URL": "http://service:8000/",
    })
    assert settings.public_url == "https://elig.example.org"
    assert settings.notify_endpoint_base == "http://service:8000"
    bundle = subscriptions_transaction(settings.notify_endpoint_base, "sekrit",
                                       load_mappings(REPO_ROOT / "mappings"))
    assert {e["resource"]["channel"]["endpoint"] for e in bundle["entry"]} == {
        "http://service:8000/fhir-notify"}
    # Unset, the endpoint is PUBLIC_URL as before.
    assert Settings.from_env({"PUBLIC_URL": "https://elig.example.org"}).notify_endpoint_base == (
        "https://elig.example.org")
