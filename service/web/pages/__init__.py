"""Coordinator pages: server-rendered worklist, patient page, confirmations, SLEDAI-2K, log."""

from __future__ import annotations

import contextlib
import inspect
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app

from service.accounts.form_tokens import FormTokens
from service.accounts.sessions import Sessions
from service.accounts.signin_throttle import Limits, SignInThrottle
from service.accounts.store import Accounts
from service.core.clock import Clock
from service.core.settings import Settings

bp = Blueprint(
    "pages", __name__, template_folder="templates", static_folder="static",
    static_url_path="/assets",
)


@dataclass
class Pages:
    """What the pages need besides the Services: accounts, sign-in, clock."""

    settings: Settings
    accounts: Accounts
    throttle: SignInThrottle
    form_tokens: FormTokens
    sessions: Sessions
    oauth: Any = None  # Authlib client when OIDC_ISSUER is set
    _clock: Clock = field(default_factory=Clock)  # the app's one clock (Services.clock)

    @property
    def clock(self) -> Clock:
        """The app's clock: `clock()` is now, `clock.today()` the as-of date of a screening."""
        return self._clock

    @clock.setter
    def clock(self, now: Callable[[], datetime]) -> None:
        # Tests move time for the whole app by handing a bare `() -> datetime`.
        if isinstance(now, Clock):
            self._clock = now
        else:
            self._clock.set_now(now)

    def today(self) -> date:
        """The date screenings from the pages are made as of (SCREEN_AS_OF pins it)."""
        return self._clock.today()


def pages() -> Pages:
    """The Pages of the current app."""
    return current_app.extensions["pages"]


def _secret_key(settings: Settings) -> str:
    # One key shared by every process of this installation: from the settings, else a file
    # beside the accounts created once (0600), so sessions survive restarts.
    if settings.session_secret:
        return settings.session_secret
    path = Path(settings.users_db).with_name("session.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a private temporary file, then linked into place: link() fails when
        # the name exists, so of processes starting together exactly one key wins, and no
        # process ever reads a file another has created but not yet written.
        fd, temporary = tempfile.mkstemp(prefix=".session.key.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it, or set SESSION_SECRET")
    return key


def install_pages(
    app: Flask,
    settings: Settings,
    *,
    accounts: Accounts | None = None,
    clock: Clock | None = None,
) -> None:
    """Register the pages blueprint, its sessions, CSRF and sign-in on the app."""
    from datetime import timedelta

    from flask_wtf.csrf import CSRFProtect

    from service.web.pages import (  # noqa: F401  (the modules register their views)
        classification_page,
        language,
        layout,
        log_page,
        notifications_page,
        patient,
        signin,
        sledai_page,
        wording,
        worklist,
    )

    app.secret_key = _secret_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME="eligibility_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # the OIDC callback is a top-level GET from the IdP
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which has its own idle timeout
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the pages only: the JSON API has tokens
    )
    CSRFProtect(app)
    accounts = accounts or Accounts(settings.users_db)
    limits = Limits(
        per_name=settings.signin_max_failures,
        per_address=settings.signin_max_failures_per_address,
        window_seconds=settings.signin_window_minutes * 60,
        lockout_seconds=settings.signin_lockout_minutes * 60,
    )
    state = Pages(settings=settings, accounts=accounts,
                  throttle=SignInThrottle(accounts, limits), form_tokens=FormTokens(accounts),
                  sessions=Sessions(accounts, idle_seconds=settings.session_idle_minutes * 60,
                                    max_seconds=settings.session_max_hours * 3600),
                  _clock=clock or Clock.from_settings(settings))
    if settings.oidc_issuer:
        state.oauth = signin.oidc_client(app, settings)
    app.extensions["pages"] = state
    app.register_blueprint(bp)
    # The pages authenticate with their own sign-in, not the API token.
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith("pages."):
            if not hasattr(view, "__dict__") or inspect.ismethod(view):
                view = _as_function(view)  # the static files view is a bound method
                app.view_functions[endpoint] = view
            setattr(view, "auth_mode", "own")  # noqa: B010 (views carry no such field)


def _as_function(view: Callable[..., Any]) -> Callable[..., Any]:
    def plain(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    return plain
