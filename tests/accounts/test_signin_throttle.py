"""Failed password sign-ins lock a user name or a client address for a while, across workers."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher

from service.accounts.signin_throttle import client_key
from service.core.settings import Settings, SettingsError

pytestmark = pytest.mark.security
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"
LOCKED = "Too many failed sign-in attempts"


class Clock:
    """The pages' injected clock, moved by the test (no sleeps)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(make_app, clock, monkeypatch):
    """build(**settings) -> an app with the account casey and the test's clock."""
    # argon2id still, at its lowest cost: these tests count attempts, not hashing strength.
    monkeypatch.setattr("service.accounts.store.PasswordHasher", lambda: PasswordHasher(
        time_cost=1, memory_cost=64, parallelism=1))

    def build(**overrides: Any) -> Any:
        app, _ = make_app(**overrides)
        pages = app.extensions["pages"]
        pages.clock = clock
        if not pages.accounts.exists("casey"):
            pages.accounts.add("casey", "coordinator", PASSWORD)
        return app

    return build


def attempt(app, name: str, password: str, address: str = "10.0.0.1",
            headers: dict[str, str] | None = None, client: Any = None) -> Any:
    """One sign-in POST from `address` (a fresh session unless `client` is given)."""
    client = client or app.test_client()
    env = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=env).get_data(as_text=True)
    token = _TOKEN.search(page).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": token},
                       environ_base=env, headers=headers or {})


def fail(app, name: str, times: int, address: str = "10.0.0.1") -> list[int]:
    return [attempt(app, name, "wrong password!", address).status_code for _ in range(times)]


def test_the_sixth_attempt_is_refused_even_with_the_right_password(site):
    app = site()
    assert fail(app, "casey", 4) == [401] * 4
    answer = attempt(app, "casey", "wrong password!")
    assert answer.status_code == 429 and LOCKED in answer.get_data(as_text=True)
    client = app.test_client()
    answer = attempt(app, "casey", PASSWORD, client=client)
    assert answer.status_code == 429, "the right password must not open a locked name"
    assert LOCKED in answer.get_data(as_text=True) and "15 minutes" in answer.get_data(True)
    assert answer.headers["Retry-After"] == str(15 * 60)
    assert client.get("/").status_code == 302, "no session was started"


def test_sign_in_is_allowed_again_after_the_lockout_and_a_success_resets_the_count(site, clock):
    app = site()
    fail(app, "casey", 5)
    clock.now += timedelta(minutes=14, seconds=59)
    assert attempt(app, "casey", PASSWORD).status_code == 429
    clock.now += timedelta(seconds=1)
    assert attempt(app, "casey", PASSWORD).status_code == 302
    # After the success the count starts again: four more failures lock nothing.
    assert fail(app, "casey", 4) == [401] * 4
    assert attempt(app, "casey", PASSWORD).status_code == 302
    assert fail(app, "casey", 4) == [401] * 4
    # Failures older than the window no longer count.
    clock.now += timedelta(minutes=15, seconds=1)
    assert fail(app, "casey", 4) == [401] * 4
    assert attempt(app, "casey", PASSWORD).status_code == 302


def test_counters_are_per_name_and_per_address(site):
    app = site(signin_max_failures_per_address=8)
    fail(app, "casey", 5, address="10.0.0.1")
    # The name is locked from every address ...
    assert attempt(app, "casey", PASSWORD, address="10.0.0.2").status_code == 429
    # ... while the address may still try other names (3 more failures: 8 for the address).
    app.extensions["pages"].accounts.add("vera", "viewer", PASSWORD)
    assert fail(app, "robin", 2, address="10.0.0.1") == [401, 401]
    assert attempt(app, "vera", PASSWORD, address="10.0.0.1").status_code == 302
    assert attempt(app, "sam", "wrong password!", address="10.0.0.1").status_code == 429
    # Now the address is locked for every name, the right password included ...
    assert attempt(app, "vera", PASSWORD, address="10.0.0.1").status_code == 429
    # ... and vera still signs in from elsewhere: her own count was never touched.
    assert attempt(app, "vera", PASSWORD, address="10.0.0.3").status_code == 302


def test_an_unknown_name_is_answered_and_locked_like_an_existing_one(site):
    app = site()

    def run(name: str) -> list[tuple[int, str, str | None]]:
        out = []
        for password in ["wrong password!"] * 5 + [PASSWORD]:
            answer = attempt(app, name, password, address=f"10.1.0.{len(name)}")
            body = _TOKEN.sub("", answer.get_data(as_text=True))
            out.append((answer.status_code, body, answer.headers.get("Retry-After")))
        return out

    known, unknown = run("casey"), run("nobody")
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 4 + [429, 429]


def test_two_app_instances_on_one_store_share_the_lock(site):
    # Two gunicorn workers are two apps on the same USERS_DB.
    one, two = site(), site()
    assert one.extensions["pages"] is not two.extensions["pages"]
    for index in range(5):
        attempt(one if index % 2 else two, "casey", "wrong password!")
    assert attempt(one, "casey", PASSWORD).status_code == 429
    assert attempt(two, "casey", PASSWORD).status_code == 429


@pytest.mark.parametrize("form", [
    {}, {"username": "casey"}, {"password": PASSWORD}, {"username": "", "password": PASSWORD},
    {"username": "casey", "password": ""}, {"username": "Casey Chen", "password": PASSWORD},
    {"username": "casey\r\nforged", "password": PASSWORD}, {"username": "c" * 65, "password": "x"},
    {"username": "casey", "password": "p" * 5000}, {"username": ["casey", "vera"]},
])
def test_a_malformed_form_is_400_and_never_counts_towards_a_lock(site, form):
    app = site()
    client = app.test_client()
    for _ in range(8):
        page = client.get("/login").get_data(as_text=True)
        token = _TOKEN.search(page).group(1)  # type: ignore[union-attr]
        answer = client.post("/login", data={**form, "csrf_token": token})
        assert answer.status_code == 400, form
    assert attempt(app, "casey", PASSWORD, address="127.0.0.1").status_code == 302


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(site):
    # No trusted proxy: X-Forwarded-For is the caller's own text and changes nothing.
    direct = site(signin_max_failures_per_address=5)
    for index in range(5):
        attempt(direct, f"name{index}", "wrong password!", address="10.0.0.9",
                headers={"X-Forwarded-For": f"192.0.2.{index}"})
    assert attempt(direct, "casey", PASSWORD, address="10.0.0.9",
                   headers={"X-Forwarded-For": "192.0.2.200"}).status_code == 429
    # One trusted proxy: its X-Forwarded-For entry is the client; a forged one before it is not.
    proxied = site(trusted_proxy_hops=1, signin_max_failures_per_address=5)
    for index in range(5):
        attempt(proxied, f"other{index}", "wrong password!", address="10.0.0.10",
                headers={"X-Forwarded-For": f"203.0.113.{index}, 198.51.100.7"})
    assert attempt(proxied, "casey", PASSWORD, address="10.0.0.10",
                   headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    assert attempt(proxied, "casey", PASSWORD, address="10.0.0.10",
                   headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 302


def test_ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4():
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "unknown" and len(client_key("x" * 500)) == 100


def test_the_log_names_the_event_but_never_the_password_or_an_unknown_name(site, caplog):
    app = site()
    caplog.set_level(logging.INFO, logger="service")
    for _ in range(5):
        attempt(app, "casey", "secret-guess-1234")
    for _ in range(5):
        attempt(app, "typed-my-password-here", "secret-guess-1234")
    text = caplog.text
    assert "failed local sign-in (account casey) from 10.0.0.1" in text
    assert "sign-in locked for 15 minutes: too many failures for the name (account casey" in text
    assert "unknown user name" in text
    assert "secret-guess-1234" not in text and "typed-my-password-here" not in text


def test_the_limits_are_validated_settings():
    env = {"SIGNIN_MAX_FAILURES": "3", "SIGNIN_MAX_FAILURES_PER_ADDRESS": "9",
           "SIGNIN_WINDOW_MINUTES": "10", "SIGNIN_LOCKOUT_MINUTES": "30",
           "TRUSTED_PROXY_HOPS": "1"}
    settings = Settings.from_env(env)
    assert (settings.signin_max_failures, settings.signin_max_failures_per_address,
            settings.signin_window_minutes, settings.signin_lockout_minutes,
            settings.trusted_proxy_hops) == (3, 9, 10, 30, 1)
    defaults = Settings.from_env({})
    assert (defaults.signin_max_failures, defaults.signin_max_failures_per_address,
            defaults.signin_window_minutes, defaults.signin_lockout_minutes,
            defaults.trusted_proxy_hops) == (5, 20, 15, 15, 0)
    for name, bad in (("SIGNIN_MAX_FAILURES", "0"), ("SIGNIN_LOCKOUT_MINUTES", "-1"),
                      ("SIGNIN_WINDOW_MINUTES", "soon"), ("TRUSTED_PROXY_HOPS", "-1")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})
    with pytest.raises(SettingsError, match="SIGNIN_MAX_FAILURES"):
        Settings().with_overrides(signin_max_failures=0)
