"""Local accounts: argon2 hashes, verification, validation, visits."""

from __future__ import annotations

import sqlite3

import pytest

from service.accounts.store import AccountError, Accounts


@pytest.fixture
def accounts(tmp_path):
    return Accounts(tmp_path / "var" / "users.sqlite")


def test_passwords_are_stored_as_argon2id_hashes_only(accounts):
    accounts.add("casey", "coordinator", "a long enough password", display="Casey C")
    (stored,) = sqlite3.connect(accounts.path).execute("SELECT hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored
    assert oct(accounts.path.stat().st_mode & 0o777) == "0o600"


def test_verify_accepts_only_the_right_password_of_an_existing_user(accounts):
    accounts.add("casey", "coordinator", "a long enough password")
    user = accounts.verify("casey", "a long enough password")
    assert user is not None and user.role == "coordinator" and user.can_write
    assert accounts.verify("casey", "a long enough passwor") is None
    assert accounts.verify("nobody", "a long enough password") is None
    accounts.add("vera", "viewer", "another long password")
    assert not accounts.verify("vera", "another long password").can_write


@pytest.mark.parametrize(("name", "role", "password"), [
    ("Casey", "coordinator", "a long enough password"),  # upper case
    ("a b", "coordinator", "a long enough password"),
    ("x" * 65, "coordinator", "a long enough password"),
    ("casey", "admin", "a long enough password"),
    ("casey", "viewer", "short"),
])
def test_bad_names_roles_and_short_passwords_are_refused(accounts, name, role, password):
    with pytest.raises(AccountError):
        accounts.add(name, role, password)
    assert accounts.list() == []


def test_a_new_password_replaces_the_old_and_remove_deletes(accounts):
    accounts.add("casey", "coordinator", "first long password")
    accounts.add("casey", "viewer", "second long password")
    assert accounts.verify("casey", "first long password") is None
    assert accounts.verify("casey", "second long password").role == "viewer"
    assert accounts.remove("casey") and not accounts.remove("casey")


def test_visits_return_the_previous_time(accounts):
    assert accounts.swap_visit("casey", "worklist:x", 10.0) is None
    assert accounts.swap_visit("casey", "worklist:x", 20.0) == 10.0
    assert accounts.swap_visit("casey", "worklist:y", 30.0) is None
