"""The API token, as docs/security.md says: with ELIGIBILITY_API_TOKEN set, every endpoint except
health, CDS Hooks discovery and the FHIR notification endpoint (its own secret) refuses a
request without `Authorization: Bearer <token>` (the CDS service takes its client's JWT
instead). The check covers every route the app has, so a new one cannot slip through; it runs
before any body is read or any FHIR request is made; tokens are compared with
hmac.compare_digest.

tests/web/test_rest.py (test_token_required_everywhere_but_health_discovery_and_notify) checks
a fixed list; tests/cli/test_cli.py checks that `serve` refuses a non-loopback address without a
token."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import Settings
from service.web.webhooks import sign

pytestmark = pytest.mark.security

TOKENS = ("first-api-token-0123456789abcdef", "second-api-token-0123456789abcdef",
          "third-api-token-0123456789abcdef")
HOOK_SECRET = "webhook-secret-0123456789abcdef-api"
NOTIFY_SECRET = "notify-secret-0123456789abcdef-api"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/cds-services")}
OWN_SECRET = {"/fhir-notify", "/fhir-notify/<rtype>/<rid>"}
CDS_JWT = {"/cds-services/trial-eligibility", "/cds-services/trial-eligibility/feedback"}
# The coordinator pages have their own sign-in (session cookie), not the API token.
SIGN_IN_PAGES = {("GET", "/login"), ("GET", "/login/oidc"), ("GET", "/auth/callback"),
                 ("GET", "/assets/<path:filename>")}


@pytest.fixture
def app(make_app, proxy, tmp_path: Path) -> Iterator[Any]:
    settings = Settings().with_overrides(
        fhir_base_url=proxy.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        api_tokens=TOKENS, webhook_secret=HOOK_SECRET, notify_secret=NOTIFY_SECRET,
        cds_issuers=("https://ehr.example.org",), coalesce_seconds=60.0,
    )
    made, _ = make_app(settings)
    yield made


def routes(app: Any) -> list[tuple[str, str, str, str]]:
    """(method, rule, url, endpoint) of every route of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        url = (rule.rule.replace("<path:patient>", "p1").replace("<job>", "0" * 32)
               .replace("<rtype>", "Observation").replace("<rid>", "o1")
               .replace("<raw_id>", "p1").replace("<key>", "pediatric-ln-cart")
               .replace("<path:filename>", "pages.css"))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule, url, rule.endpoint))
    return found


def test_every_route_but_the_public_ones_needs_credentials(app, proxy):
    http = app.test_client()
    seen = set()
    body = b'{"patients": ["p1"]}' + b" " * 2_000_000  # never read: refused before the body
    for method, rule, url, endpoint in routes(app):
        seen.add((method, rule))
        response = http.open(url, method=method, data=body,
                             headers={"Content-Type": "application/json"})
        if endpoint.startswith("pages."):
            # Pages: a sign-in page, or sent to sign in (GET), or refused (POST: no session,
            # no CSRF token, or too large), never served.
            if (method, rule) in SIGN_IN_PAGES:
                continue
            if method == "GET":
                assert response.status_code == 302, (method, url, response.status_code)
                assert "/login" in response.headers["Location"]
            else:
                assert response.status_code in (400, 401, 413), (method, url)
            continue
        if (method, rule) in PUBLIC:
            assert response.status_code != 401, (method, url)
            continue
        assert response.status_code == 401, (method, url, response.status_code)
        if rule not in OWN_SECRET:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert seen >= PUBLIC
    assert app.extensions["eligibility"].queue.store.queued_due(time.time() + 3600) == []
    # /readyz asked the FHIR server for its metadata; nothing else reached it.
    assert {s.path for s in proxy.requests()} <= {"/fhir/metadata"}


def test_the_api_token_opens_every_route_it_guards(app):
    http = app.test_client()
    for method, rule, url, endpoint in routes(app):
        if (method, rule) in PUBLIC or rule in OWN_SECRET | CDS_JWT or endpoint.startswith(
                "pages."):
            continue
        headers = {"Authorization": f"Bearer {TOKENS[1]}"}
        data = b"{}"
        if rule == "/webhooks/screening":
            data = b'{"patient": "p1"}'
            stamp = str(int(time.time()))
            headers |= {"X-Timestamp": stamp, "X-Signature": sign(HOOK_SECRET, stamp, data)}
        response = http.open(url, method=method, data=data,
                             headers={**headers, "Content-Type": "application/json"})
        assert response.status_code != 401, (method, url, response.get_data(as_text=True))


def test_the_api_token_is_not_a_cds_jwt_nor_a_notification_secret(app):
    http = app.test_client()
    headers = {"Authorization": f"Bearer {TOKENS[0]}", "Content-Type": "application/json"}
    for url in sorted(CDS_JWT):
        assert http.post(url, data=b"{}", headers=headers).status_code == 401
    assert http.post("/fhir-notify", data=b"", headers=headers).status_code == 401


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", f"Bearer {TOKENS[0]}x", f"Bearer {TOKENS[0][:-1]}",
    f"Bearer {TOKENS[0].upper()}", f"Basic {TOKENS[0]}", TOKENS[0], f"Token {TOKENS[0]}",
    f"Bearer {TOKENS[0]},{TOKENS[1]}", f"Bearer {HOOK_SECRET}", f"Bearer {NOTIFY_SECRET}",
])
def test_anything_but_a_configured_token_is_refused(app, header):
    headers = {} if header is None else {"Authorization": header}
    response = app.test_client().get("/studies", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    for token in TOKENS:
        assert token not in response.get_data(as_text=True)


def test_a_token_in_the_query_string_or_a_cookie_is_not_accepted(app):
    http = app.test_client()
    assert http.get(f"/studies?access_token={TOKENS[0]}").status_code == 401
    http.set_cookie("token", TOKENS[0])
    assert http.get("/studies").status_code == 401


def test_every_configured_token_is_compared_in_constant_time(app, monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    http = app.test_client()
    for presented in (TOKENS[0], TOKENS[2], "wrong-token"):
        calls.clear()
        http.get("/studies", headers={"Authorization": f"Bearer {presented}"})
        # All of them, whichever matches: the time taken does not say which one did.
        assert calls == [(presented.encode(), token.encode()) for token in TOKENS]
