"""OpenID Connect sign-in of the pages against a real provider (npm oidc-provider) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from tests.support.browser import launch
from tests.support.live_app import free_port, serve
from tests.support.oidc_provider import oidc_provider  # noqa: F401  (the fixture)
from tests.support.workspace import workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow,
              pytest.mark.security]
SECRET = "pages-client-secret-" + "s" * 24
ACCOUNTS = {
    "u-1": {"claims": {"name": "Olivia Oidc", "preferred_username": "olivia",
                       "roles": ["coordinator"]}},
    "u-2": {"claims": {"name": "Nick Norole", "preferred_username": "nick", "roles": []}},
    # Issue 22, finding 4: the same preferred_username as u-1, another person.
    "u-3": {"claims": {"name": "Olivia Other", "preferred_username": "olivia",
                       "roles": ["coordinator"]}},
    # A name claim with a line break (a forged log line, a spoofed performer).
    "u-4": {"claims": {"name": "Eve\nuser casey signed in", "preferred_username": "eve",
                       "roles": ["coordinator"]}},
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def signed_in_app(oidc_provider, tmp_path):  # noqa: F811
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    issuer = oidc_provider({
        "clients": [{
            "client_id": "eligibility-pages", "client_secret": SECRET,
            "redirect_uris": [f"{public}/auth/callback"], "grant_types": ["authorization_code"],
            "response_types": ["code"], "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile email",
        }],
        "scopes": ["profile", "email"],
        "claims": {"openid": ["sub"], "profile": ["name", "preferred_username", "roles"],
                   "email": ["email"]},
        "accounts": ACCOUNTS,
    }).issuer
    fhir = start_local_server()
    try:
        with workspace(fhir.base_url, tmp_path, public_url=public,
                       oidc_issuer=issuer, oidc_client_id="eligibility-pages",
                       oidc_client_secret=SECRET) as w, serve(w.app, port=port) as url:
            yield w, url
    finally:
        fhir.stop()


def _provider_login(page: Any, sub: str) -> None:
    # oidc-provider's development interactions: a login form, then a consent form.
    page.fill("input[name=login]", sub)
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if page.locator("button[type=submit]").count() and "/interaction/" in page.url:
        page.click("button[type=submit]")
        page.wait_for_load_state()


def test_oidc_sign_in_maps_the_roles_claim_and_names_the_user(browser, signed_in_app):
    w, url = signed_in_app
    page = browser.new_context().new_page()
    page.goto(url + "/")
    assert "/login" in page.url
    assert page.locator("#password").count() == 0  # no local password form in OIDC mode
    page.get_by_role("link", name="Sign in with the hospital's identity provider").click()
    page.wait_for_load_state()
    _provider_login(page, "u-1")
    assert page.url.rstrip("/") == url, page.url
    assert page.locator("h1").inner_text() == "Worklist"
    assert "Olivia Oidc" in page.locator(".who").inner_text()
    assert "(coordinator)" in page.locator(".who").inner_text()


def test_oidc_user_without_a_role_is_refused(browser, signed_in_app):
    _, url = signed_in_app
    page = browser.new_context().new_page()
    page.goto(url + "/login")
    page.get_by_role("link", name="Sign in with the hospital's identity provider").click()
    page.wait_for_load_state()
    _provider_login(page, "u-2")
    assert "no role for this service" in page.content()
    page.goto(url + "/")
    assert "/login" in page.url


def _oidc_sign_in(browser: Any, url: str, sub: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(url + "/login")
    page.get_by_role("link", name="Sign in with the hospital's identity provider").click()
    page.wait_for_load_state()
    _provider_login(page, sub)
    assert page.url.rstrip("/") == url, page.url
    return page


def _confirm_venous_access(page: Any, url: str, pid: str) -> None:
    page.goto(f"{url}/patients/{pid}")
    item = page.locator("#pediatric-ln-cart-venous-access")
    if item.locator("details.confirm").get_attribute("open") is None:
        item.locator("summary").click()
    item.locator("input[name=answer][value=met]").check()
    item.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "Recorded:" in page.locator(".flashes").inner_text()


def test_two_oidc_users_with_one_user_name_are_two_performers(browser, signed_in_app):
    """Identity is iss + sub, never preferred_username (neither unique nor stable)."""
    w, url = signed_in_app
    issuer = w.settings.oidc_issuer
    pid = "seed-potential"
    for sub, shown in (("u-1", "Olivia Oidc"), ("u-3", "Olivia Other")):
        page = _oidc_sign_in(browser, url, sub)
        assert shown in page.locator(".who").inner_text()
        _confirm_venous_access(page, url, pid)
        page.context.close()
    performers = {}
    for o in w.client.search("Observation", {"subject": f"Patient/{pid}"}):
        if o["code"]["coding"][0]["code"] == "venous-access" and o.get("performer"):
            ident = o["performer"][0]["identifier"]
            assert ident["system"] == "urn:trial-eligibility:user"
            performers[ident["value"]] = o["performer"][0]["display"]
    assert performers == {f"{issuer}#u-1": "Olivia Oidc", f"{issuer}#u-3": "Olivia Other"}
    provenance_agents = {a["who"]["identifier"]["value"]
                         for p in w.client.search("Provenance", {})
                         for a in p.get("agent") or ()}
    assert {f"{issuer}#u-1", f"{issuer}#u-3"} <= provenance_agents


def test_an_oidc_name_with_a_line_break_is_never_shown_or_written(browser, signed_in_app):
    w, url = signed_in_app
    page = _oidc_sign_in(browser, url, "u-4")
    who = page.locator(".who").inner_text()
    assert "eve" in who and "casey" not in who  # the validated preferred_username instead
    _confirm_venous_access(page, url, "seed-potential")
    for o in w.client.search("Observation", {"subject": "Patient/seed-potential"}):
        for p in o.get("performer") or ():
            assert "\n" not in p.get("display", "") and "casey signed in" not in str(p)


def test_oidc_sign_in_never_redirects_off_site(browser, signed_in_app):
    """Issue 22, finding 2: `next=/%09/evil.example/phish` once left as //evil.example/phish."""
    _, url = signed_in_app
    for target in ("/%09/evil.example/phish", "/%0a/evil.example", "//evil.example/x"):
        page = browser.new_context().new_page()
        page.goto(f"{url}/login/oidc?next={target}")
        page.wait_for_load_state()
        _provider_login(page, "u-1")
        assert page.url.rstrip("/") == url, (target, page.url)
        page.context.close()
