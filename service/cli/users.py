"""`eligibility users add|list|remove|unlock|sign-out`: accounts and sessions of the pages."""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import Any

from service.accounts.sessions import Sessions
from service.accounts.signin_throttle import SignInThrottle
from service.accounts.store import ROLES, AccountError, Accounts
from service.core.settings import Settings

DEMO_USER = "demo"


def add_parser(sub: Any) -> None:
    """Register the `users` subcommand on the main parser's subparsers."""
    users = sub.add_parser("users", help="manage local accounts of the coordinator pages")
    action = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = action.add_parser("add", help="create an account or set its password and role")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--display", help="name shown on pages and in FHIR performer (default NAME)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of prompting")
    add.set_defaults(func=cmd_users_add)
    listing = action.add_parser("list", help="list the accounts")
    listing.set_defaults(func=cmd_users_list)
    remove = action.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_users_remove)
    unlock = action.add_parser("unlock", help="lift a sign-in lock after failed attempts")
    unlock.add_argument("name")
    unlock.set_defaults(func=cmd_users_unlock)
    sign_out = action.add_parser(
        "sign-out", help="end every session of a user now (local name, or an OIDC user's "
                         "ISSUER#SUB as the pages' performer identifier shows it)")
    sign_out.add_argument("name")
    sign_out.set_defaults(func=cmd_users_sign_out)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("the passwords differ")
    return first


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create or update a local account (argon2 hash in USERS_DB)."""
    try:
        user = Accounts(settings.users_db).add(
            args.name, args.role, _password(args), display=args.display
        )
    except AccountError as exc:
        print(f"eligibility users: {exc}", file=sys.stderr)
        return 2
    print(f"account {user.name} ({user.role}) saved in {settings.users_db}")
    return 0


def cmd_users_list(settings: Settings, args: argparse.Namespace) -> int:
    """Print every account: name, role, display name."""
    for user in Accounts(settings.users_db).list():
        print(f"{user.name:24} {user.role:12} {user.display}")
    return 0


def cmd_users_remove(settings: Settings, args: argparse.Namespace) -> int:
    """Delete an account (exit 1 when there was none)."""
    if Accounts(settings.users_db).remove(args.name):
        print(f"account {args.name} removed")
        return 0
    print(f"eligibility users: no account {args.name}", file=sys.stderr)
    return 1


def cmd_users_unlock(settings: Settings, args: argparse.Namespace) -> int:
    """Lift the lock and failure count of a user name (exit 1 when there was none)."""
    if SignInThrottle(Accounts(settings.users_db)).unlock(args.name.strip().lower()):
        print(f"sign-in for {args.name} unlocked")
        return 0
    print(f"eligibility users: no lock or failed sign-in for {args.name}", file=sys.stderr)
    return 1


def cmd_users_sign_out(settings: Settings, args: argparse.Namespace) -> int:
    """End every session of a user (exit 1 when there was none)."""
    accounts = Accounts(settings.users_db)
    # The lifetimes do not matter here: every session of the name goes.
    ended = Sessions(accounts, idle_seconds=0, max_seconds=0).end_all(args.name.strip())
    if ended:
        print(f"{ended} session(s) of {args.name} ended")
        return 0
    print(f"eligibility users: no session of {args.name}", file=sys.stderr)
    return 1


def demo_coordinator(settings: Settings, public_url: str) -> str:
    """Create (or reset) the demo coordinator with a fresh password; how to sign in."""
    password = secrets.token_urlsafe(12)
    Accounts(settings.users_db).add(DEMO_USER, "coordinator", password, display="Demo Coordinator")
    return (f"Coordinator pages: {public_url}/  sign in as {DEMO_USER} / {password}\n"
            f"  (more accounts: eligibility users add NAME --role coordinator|viewer)")
