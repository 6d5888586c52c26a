"""`eligibility users add|list|remove|unlock` and the demo coordinator."""

from __future__ import annotations

import io

from service.accounts.signin_throttle import Limits, SignInThrottle
from service.accounts.store import Accounts
from service.cli.main import main
from service.cli.users import demo_coordinator
from service.core.settings import Settings


def test_users_add_list_remove(tmp_path, monkeypatch, capsys):
    db = tmp_path / "users.sqlite"
    monkeypatch.setenv("USERS_DB", str(db))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["users", "add", "casey", "--role", "coordinator", "--display", "Casey C",
                 "--password-stdin"]) == 0
    assert Accounts(db).verify("casey", "a long enough password").display == "Casey C"
    assert main(["users", "list"]) == 0
    assert "casey" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "vera", "--role", "viewer", "--password-stdin"]) == 2
    assert "at least 12" in capsys.readouterr().err
    assert main(["users", "remove", "casey"]) == 0
    assert main(["users", "remove", "casey"]) == 1
    assert Accounts(db).list() == []


def test_the_demo_coordinator_can_sign_in_with_the_printed_password(tmp_path):
    settings = Settings().with_overrides(users_db=tmp_path / "users.sqlite")
    message = demo_coordinator(settings, "http://127.0.0.1:8000")
    password = message.split("sign in as demo / ")[1].split()[0]
    user = Accounts(settings.users_db).verify("demo", password)
    assert user is not None and user.role == "coordinator"


def test_users_unlock_lifts_a_sign_in_lock(tmp_path, monkeypatch, capsys):
    db = tmp_path / "users.sqlite"
    monkeypatch.setenv("USERS_DB", str(db))
    throttle = SignInThrottle(Accounts(db), Limits(per_name=2))
    for _ in range(2):
        attempt = throttle.begin("casey", "10.0.0.1", now=1000.0)
        throttle.failed(attempt, "casey", "10.0.0.1", now=1000.0)
    assert throttle.locked_for("casey", "10.0.0.2", now=1001.0) > 0
    assert main(["users", "unlock", "Casey"]) == 0
    assert "unlocked" in capsys.readouterr().out
    assert throttle.locked_for("casey", "10.0.0.2", now=1001.0) == 0
    assert main(["users", "unlock", "casey"]) == 1
