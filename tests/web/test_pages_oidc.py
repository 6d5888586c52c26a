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
