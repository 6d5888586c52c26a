"""The signed webhook: the HMAC is compared in constant time (hmac.compare_digest, whatever is
presented), the window (5 minutes back, 30 seconds ahead) holds at its edges, a signed request
is accepted once, and no header or body an attacker can send causes anything but a 4xx without
a queued screening.

Tampering, a wrong secret, old and future timestamps and a missing secret are covered in
tests/web/test_triggers.py (test_bad_or_replayed_signatures_are_401 etc.)."""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.settings import Settings
from service.web.webhooks import MAX_FUTURE_SECONDS, MAX_SKEW_SECONDS, sign

pytestmark = pytest.mark.security

SECRET = "webhook-secret-0123456789abcdef-xyz"
BODY = b'{"patient": "w1"}'


@pytest.fixture
def app(make_app, tmp_path: Path) -> Any:
    settings = Settings().with_overrides(
        queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}", webhook_secret=SECRET,
        coalesce_seconds=60.0,
    )
    made, _ = make_app(settings)
    yield made


def queued(app: Any) -> int:
    store = app.extensions["eligibility"].queue.store
    return len(store.queued_due(time.time() + 3600))


def headers_for(body: bytes, *, age: int = 0, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) - age)
    return {"X-Timestamp": stamp, "X-Signature": sign(secret, stamp, body),
            "Content-Type": "application/json"}


@pytest.fixture
def compare_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Record every hmac.compare_digest call (the real comparison still decides)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


@pytest.mark.parametrize("valid", [True, False], ids=["good", "forged"])
def test_the_signature_is_compared_with_compare_digest(app, compare_calls, valid):
    headers = headers_for(BODY)
    if not valid:
        headers["X-Signature"] = "sha256=" + "0" * 64
    response = app.test_client().post("/webhooks/screening", data=BODY, headers=headers)
    assert response.status_code == (202 if valid else 401)
    expected = sign(SECRET, headers["X-Timestamp"], BODY).encode()
    assert (expected, headers["X-Signature"].encode()) in compare_calls


@pytest.mark.parametrize("verdict", [True, False], ids=["says-equal", "says-different"])
def test_compare_digest_alone_decides(app, monkeypatch, verdict):
    # Behavioural: whatever compare_digest answers is what happens to the request. A second
    # comparison beside it (==, startswith, a prefix check) would overrule a lying
    # compare_digest, and this test would fail: a forged signature would still be refused
    # when compare_digest says "equal", or a valid one accepted when it says "different".
    calls: list[tuple[Any, Any]] = []

    def lying(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return verdict

    monkeypatch.setattr(hmac, "compare_digest", lying)
    headers = headers_for(BODY)
    if verdict:  # a forged signature, accepted only because compare_digest says so
        headers["X-Signature"] = "sha256=" + "0" * 64
    response = app.test_client().post("/webhooks/screening", data=BODY, headers=headers)
    assert calls, "the signature was not compared with hmac.compare_digest"
    assert response.status_code == (202 if verdict else 401)
    assert queued(app) == (1 if verdict else 0)


@pytest.mark.parametrize(("age", "accepted"), [
    (MAX_SKEW_SECONDS - 2, True), (MAX_SKEW_SECONDS + 2, False),
    (-(MAX_FUTURE_SECONDS - 2), True), (-(MAX_FUTURE_SECONDS + 2), False),
    (-290, False),  # the attack's 290 s ahead: far beyond any clock skew
])
def test_the_replay_window_holds_at_its_edges(app, age, accepted):
    response = app.test_client().post("/webhooks/screening", data=BODY,
                                      headers=headers_for(BODY, age=age))
    assert response.status_code == (202 if accepted else 401)
    assert queued(app) == (1 if accepted else 0)


def test_a_replay_inside_the_window_is_refused(app):
    # Documented in docs/security.md: each accepted signature is remembered in the job store for
    # the whole window, so the same signed request is refused when sent again (the
    # coalescing of queued screenings plays no part; see tests/web/test_webhook_replay.py).
    headers = headers_for(BODY)
    http = app.test_client()
    first = http.post("/webhooks/screening", data=BODY, headers=headers)
    again = http.post("/webhooks/screening", data=BODY, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 409
    assert again.get_json()["type"].endswith(":webhook-replay")
    assert queued(app) == 1


header_text = st.one_of(
    # Header values travel as latin-1 and cannot hold line breaks.
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40),
    st.sampled_from(["\u00b2", "\u00b9\u00b2\u00b3", "1" * 5000, "-1", "+1", "1e9", " 1", "0x10",
                     "sha256=", "sha256=" + "g" * 64, "SHA256=" + "A" * 64, "md5=00"]),
)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stamp=header_text, signature=header_text,
       body=st.one_of(st.binary(max_size=64), st.just(BODY)))
def test_forged_headers_and_bodies_are_refused_with_401(app, stamp, signature, body):
    response = app.test_client().post(
        "/webhooks/screening", data=body,
        headers={"X-Timestamp": stamp, "X-Signature": signature,
                 "Content-Type": "application/json"})
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert queued(app) == 0
