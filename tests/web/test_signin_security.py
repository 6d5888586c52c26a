"""Issue 22, hardening round 2: sign-in and sessions of the pages under attack.

Open redirects (2), revocable sessions with an absolute lifetime (3), one session key for
processes starting together (11), password limits and an atomic failure count (13).
"""

from __future__ import annotations

import io
import multiprocessing
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from localfhir import start_local_server
from service.accounts.form_tokens import new_form_token
from service.accounts.store import MAX_PASSWORD, Accounts
from service.cli.main import main
from service.core.settings import Settings
from tests.support.live_app import serve
from tests.support.workspace import AS_OF, COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.integration, pytest.mark.security]
LN = "pediatric-ln-cart"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "eligibility_session"


class Clock:
    """A settable clock for the session lifetimes."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 15, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("signin-sec")) as w:
            yield w
    finally:
        server.stop()


def _csrf(client, path: str = "/login") -> str:
    found = _CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def _sign_in(client, name: str, password: str, **extra: str):
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": _csrf(client), **extra})


def _account(ws: Workspace, name: str, role: str = "coordinator") -> tuple[str, str]:
    password = f"{name} keeps a very private passphrase"
    ws.accounts.add(name, role, password, display=name.title())
    return name, password


def _cli(ws: Workspace, monkeypatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setenv("USERS_DB", str(ws.settings.users_db))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(argv))


def _opens(client, path: str = "/patients/seed-potential") -> bool:
    answer = client.get(path)
    if answer.status_code == 200:
        return True
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    return False


def _copy_cookie(source, target) -> None:
    cookie = source.get_cookie(COOKIE)
    assert cookie is not None
    target.set_cookie(COOKIE, cookie.value)


# ---------------------------------------------------------------- finding 2

@pytest.mark.parametrize("target", [
    "/\t/evil.example/phish", "/\n/evil.example/phish", "/\r\n/evil.example", "/ /evil.example",
    "/\\evil.example", "//evil.example/x", "https://evil.example/", "/\x00/evil.example",
    "/\u3000/evil.example", "/%0a/x\nSet-Cookie: a=b",
])
def test_sign_in_never_redirects_off_site_nor_fails_on_a_hostile_next(ws, target):
    client = ws.app.test_client()
    answer = _sign_in(client, COORDINATOR[0], COORDINATOR[2], next=target)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_a_plain_next_path_is_kept_and_the_oidc_next_is_checked_alike(ws):
    client = ws.app.test_client()
    answer = _sign_in(client, COORDINATOR[0], COORDINATOR[2], next="/patients/seed-potential?x=1")
    assert answer.headers["Location"] == "/patients/seed-potential?x=1"
    from service.web.pages.signin import safe_next

    with ws.app.test_request_context("/login/oidc"):  # /login/oidc keeps safe_next(next)
        assert safe_next("/\t/evil.example/phish") == "/"
        assert safe_next("/studies/x/log") == "/studies/x/log"


# ---------------------------------------------------------------- finding 3

def test_sign_out_voids_every_copy_of_the_cookie(ws):
    client, thief = ws.app.test_client(), ws.app.test_client()
    _sign_in(client, COORDINATOR[0], COORDINATOR[2])
    _copy_cookie(client, thief)
    assert _opens(thief)  # the copy works while the session lives
    token = _csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not _opens(thief)
    assert not _opens(client)


def _confirm(client, pid: str = "seed-potential") -> int:
    page = client.get(f"/patients/{pid}")
    token = _CSRF.search(page.get_data(as_text=True))
    data = {"csrf_token": token.group(1) if token else "", "form_token": new_form_token(),
            "study": LN, "criterion": "venous-access", "answer": "met",
            "date": AS_OF.isoformat()}
    return client.post(f"/patients/{pid}/confirm", data=data).status_code


def _venous(ws: Workspace, pid: str = "seed-potential") -> int:
    return len([o for o in ws.client.search("Observation", {"subject": f"Patient/{pid}"})
                if o["code"]["coding"][0]["code"] == "venous-access"])


def test_users_remove_and_a_change_to_viewer_end_the_sessions_at_once(ws, monkeypatch):
    for change in ("remove", "viewer"):
        name, password = _account(ws, f"temp-{change}")
        client, copy = ws.app.test_client(), ws.app.test_client()
        assert _sign_in(client, name, password).status_code == 302
        page = client.get("/patients/seed-potential").get_data(as_text=True)
        token = _CSRF.search(page).group(1)
        _copy_cookie(client, copy)
        if change == "remove":
            assert _cli(ws, monkeypatch, "users", "remove", name) == 0
        else:
            assert _cli(ws, monkeypatch, "users", "add", name, "--role", "viewer",
                        "--password-stdin", stdin=password + "\n") == 0
        before = _venous(ws)
        for c in (client, copy):
            answer = c.post("/patients/seed-potential/confirm", data={
                "csrf_token": token, "form_token": new_form_token(), "study": LN,
                "criterion": "venous-access", "answer": "met", "date": AS_OF.isoformat()})
            assert answer.status_code in (400, 401), change  # no session: CSRF or sign-in
            assert not _opens(c), change
        assert _venous(ws) == before, change
    # Signing in again as the viewer gives the viewer's rights only.
    viewer = ws.app.test_client()
    assert _sign_in(viewer, "temp-viewer", "temp-viewer keeps a very private passphrase"
                    ).status_code == 302
    assert _confirm(viewer) == 403


def test_users_sign_out_ends_every_session_of_a_user_now(ws, monkeypatch, capsys):
    name, password = _account(ws, "temp-signout")
    first, second, other = (ws.app.test_client() for _ in range(3))
    for client in (first, second):
        assert _sign_in(client, name, password).status_code == 302
    _sign_in(other, COORDINATOR[0], COORDINATOR[2])
    assert _opens(first) and _opens(second)
    assert _cli(ws, monkeypatch, "users", "sign-out", name) == 0
    assert "2 session(s)" in capsys.readouterr().out
    assert not _opens(first) and not _opens(second)
    assert _opens(other)  # another user's session is untouched
    assert _cli(ws, monkeypatch, "users", "sign-out", name) == 1


def test_a_session_ends_after_its_absolute_lifetime_however_active(ws):
    clock = Clock()
    state = ws.app.extensions["pages"]
    state.clock = clock
    try:
        client = ws.app.test_client()
        _sign_in(client, COORDINATOR[0], COORDINATOR[2])
        hours = ws.settings.session_max_hours
        steps = int(hours * 60 / 29)
        for _ in range(steps):  # a request every 29 minutes: never idle
            clock.now += timedelta(minutes=29)
            assert _opens(client, f"/studies/{LN}/log")
        clock.now += timedelta(minutes=29)
        assert (clock.now - datetime(2026, 11, 15, 7, 0, tzinfo=UTC)) > timedelta(hours=hours)
        assert not _opens(client, f"/studies/{LN}/log")
        page = client.get("/login").get_data(as_text=True)
        assert f"limit of {hours} hours" in page
    finally:
        state.clock = lambda: datetime.now(UTC)


# ---------------------------------------------------------------- finding 11

def _key_of(users_db: str, start: multiprocessing.synchronize.Event, out) -> None:
    from service.web.pages import _secret_key

    start.wait()
    out.put(_secret_key(Settings().with_overrides(users_db=Path(users_db))))


def test_processes_starting_together_share_one_session_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for round_ in range(6):
        folder = tmp_path / f"round-{round_}"
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_key_of, args=(str(folder / "users.sqlite"), start, out))
                 for _ in range(6)]
        for p in procs:
            p.start()
        start.set()
        keys = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert len(set(keys)) == 1 and keys[0], keys
        assert (folder / "session.key").read_text().strip() == keys[0]
        assert (folder / "session.key").stat().st_mode & 0o777 == 0o600


def test_a_key_file_created_but_not_yet_written_is_never_used(tmp_path):
    """What a second process saw in the first version: the file touched, the key not written."""
    from service.web.pages import _secret_key

    (tmp_path / "session.key").touch(mode=0o600)
    with pytest.raises(RuntimeError, match="empty"):
        _secret_key(Settings().with_overrides(users_db=tmp_path / "users.sqlite"))


# ---------------------------------------------------------------- finding 13

@pytest.mark.parametrize("password, why", [
    ("aaaaaaaaaaaa", "too weak"),
    ("password1234", "too weak"),
    ("temp-weak2026!", "too weak"),  # the user name and a year
    ("qwertyuiop123", "too weak"),
    ("short", "at least 12"),
    ("Zq8#" * 275, f"at most {MAX_PASSWORD}"),  # 1,100 characters
])
def test_users_add_refuses_weak_and_overlong_passwords(ws, monkeypatch, capsys, password, why):
    assert _cli(ws, monkeypatch, "users", "add", "temp-weak", "--role", "viewer",
                "--password-stdin", stdin=password + "\n") == 2
    assert why in capsys.readouterr().err
    assert not ws.accounts.exists("temp-weak")


def test_the_longest_password_users_add_takes_signs_in_and_one_more_never_does(ws, monkeypatch):
    longest = ("violet tangerine " * 20)[:MAX_PASSWORD]
    assert _cli(ws, monkeypatch, "users", "add", "temp-long", "--role", "viewer",
                "--password-stdin", stdin=longest + "\n") == 0
    assert _sign_in(ws.app.test_client(), "temp-long", longest).status_code == 302
    answer = _sign_in(ws.app.test_client(), "temp-long", longest + "x")
    assert answer.status_code == 400  # over the limit: refused before any check, not counted
    with pytest.raises(ValueError, match=f"at most {MAX_PASSWORD}"):
        Accounts(ws.settings.users_db).add("temp-long", "viewer", longest + "x")


def test_display_names_with_control_characters_are_refused(ws, monkeypatch, capsys):
    assert _cli(ws, monkeypatch, "users", "add", "temp-display", "--role", "viewer",
                "--display", "Eve\nuser casey signed in", "--password-stdin",
                stdin="temp-display keeps a very private passphrase\n") == 2
    assert "display name" in capsys.readouterr().err


def test_forty_parallel_guesses_check_at_most_the_limit_of_passwords(ws):
    name, _ = _account(ws, "temp-guessed")
    accounts = ws.app.extensions["pages"].accounts
    checked = []
    real = accounts.verify

    def counting(*args, **kwargs):
        checked.append(args[0])
        return real(*args, **kwargs)

    accounts.verify = counting
    try:
        with serve(ws.app) as url:
            sessions = []
            for _ in range(40):  # each guess from its own browser session with its own token
                s = requests.Session()
                token = _CSRF.search(s.get(url + "/login", timeout=30).text).group(1)
                sessions.append((s, token))
            barrier = threading.Barrier(40)
            statuses: list[int] = []

            def guess(i: int) -> None:
                s, token = sessions[i]
                barrier.wait()
                answer = s.post(url + "/login", data={
                    "username": name, "password": f"wrong guess number {i:04d}",
                    "csrf_token": token}, allow_redirects=False, timeout=60)
                statuses.append(answer.status_code)

            threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        accounts.verify = real
    limit = ws.settings.signin_max_failures
    assert len(statuses) == 40 and set(statuses) <= {401, 429}
    assert len([n for n in checked if n == name]) <= limit, checked
    assert statuses.count(429) >= 40 - limit


def _begin(users_db: str, start: multiprocessing.synchronize.Event, out) -> None:
    from service.accounts.signin_throttle import Limits, SignInThrottle

    throttle = SignInThrottle(Accounts(Path(users_db)), Limits(per_name=5, per_address=100))
    start.wait()
    try:
        out.put(throttle.begin("casey", f"10.0.0.{multiprocessing.current_process().pid % 250}",
                               now=1000.0).id is not None)
    except Exception as exc:  # a "database is locked" would be a lost attempt: report it
        out.put(repr(exc))


def test_processes_guessing_together_get_at_most_the_limit_of_attempts(tmp_path):
    """gunicorn workers are processes: the count is atomic across them (BEGIN IMMEDIATE)."""
    from service.accounts.signin_throttle import SignInThrottle

    db = tmp_path / "users.sqlite"
    SignInThrottle(Accounts(db)).locked_for("casey", "x", 0.0)  # the schema, before the race
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_begin, args=(str(db), start, out)) for _ in range(16)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert all(isinstance(r, bool) for r in results), results
    assert results.count(True) == 5
