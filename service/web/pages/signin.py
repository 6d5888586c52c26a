"""Sign-in for the pages: local accounts or OpenID Connect, roles, idle timeout, CSRF."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_wtf.csrf import CSRFError, validate_csrf

from service.accounts.sessions import EXPIRED, IDLE
from service.accounts.signin_throttle import client_key
from service.accounts.store import MAX_PASSWORD, NAME_RE, User, clean_display
from service.core.metrics import count_signin_failure
from service.core.settings import Settings
from service.web.languages import LANGUAGES
from service.web.pages import bp, pages
from service.web.requests_in import raw_body

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def current_user() -> User | None:
    """The signed-in user of this request, or None."""
    return g.get("user")


def safe_next(target: str | None) -> str:
    # Only a path on this site: never an open redirect to another host. Browsers drop tabs
    # and newlines from URLs ("/\t/evil.example" is "//evil.example") and read "\" as "/",
    # so any control character, space or backslash refuses the target outright.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not any(ch in target for ch in "\\ ")
        and all(0x20 < ord(ch) < 0x7F for ch in target)
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("pages.worklist")


@bp.before_app_request
def _load_user() -> Any:
    g.user = None
    token = session.get("sid")
    if not isinstance(token, str):
        if "user" in session:  # a cookie of the first version (role in the cookie): void
            session.clear()
        return None
    state = pages()
    loaded = state.sessions.load(token, state.clock().timestamp())
    if loaded.user is None:
        # Ended on the server (sign-out, idle, lifetime, account removed or changed): the
        # cookie, and any copy of it, opens nothing. The language choice stays.
        language = session.get("language")
        session.clear()
        if isinstance(language, str) and language in LANGUAGES:
            session["language"] = language
        if loaded.ended == IDLE:
            flash(gettext("You were signed out after %(minutes)s minutes without activity.",
                          minutes=state.settings.session_idle_minutes), "info")
        elif loaded.ended == EXPIRED:
            flash(gettext("Your session reached its limit of %(hours)s hours: please sign in "
                          "again.", hours=state.settings.session_max_hours), "info")
        return None
    session.permanent = True
    g.user = loaded.user
    return None


@bp.before_request
def _csrf() -> None:
    # Every state-changing request of the pages carries the session's CSRF token.
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        # Read the body whatever its type first: 413 over MAX_BODY_BYTES, declared or
        # streamed; the form is then parsed from the cached body.
        raw_body()
        try:
            validate_csrf(request.form.get("csrf_token"))
        except Exception as exc:  # ValidationError: missing, expired or wrong token
            raise CSRFError(str(exc)) from None


def signed_in(view: F) -> F:
    """Pages for anyone signed in (viewers and coordinators)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if request.method == "GET":
                return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
            abort(401)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def coordinator(view: F) -> F:
    """Actions for coordinators only: confirm, undo, change workflow, score, screen."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            abort(401)
        if not user.can_write:
            abort(403)
        return view(*args, **kwargs)

    return signed_in(cast(F, wrapper))


def _start_session(user: User) -> None:
    state = pages()
    chosen = session.get("language")  # chosen on the sign-in page, before the account was known
    session.clear()  # a fresh session (and CSRF token) for every sign-in
    _language_of(user.name, chosen)
    session["sid"] = state.sessions.start(user, state.clock().timestamp())
    session.permanent = True
    log.info("user %s signed in (%s, %s)", user.name, user.source, user.role)


def _language_of(name: str, chosen: Any) -> None:
    # The account's language wins; a first choice made before signing in becomes the account's.
    accounts = pages().accounts
    kept = accounts.language(name)
    if kept in LANGUAGES:
        session["language"] = kept
    elif isinstance(chosen, str) and chosen in LANGUAGES:
        session["language"] = chosen
        accounts.set_language(name, chosen)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in page: a local account form, or the identity provider's button."""
    state = pages()
    oidc = state.oauth is not None
    if request.method == "POST":
        if oidc:
            abort(404)
        return _password_sign_in()
    return render_template("login.html", oidc=oidc, error=None, next=request.args.get("next", ""))


def _refused(error: str, status: int, **headers: str) -> Any:
    page = render_template("login.html", oidc=False, error=error,
                           next=request.form.get("next", ""))
    return page, status, headers


def _password_sign_in() -> Any:
    """Check the form, then the locks, then the password; count what fails."""
    state = pages()
    name = request.form.get("username", "").strip().lower()
    password = request.form.get("password", "")
    if not NAME_RE.fullmatch(name) or not password or len(password) > MAX_PASSWORD:
        # No account can have this name or password: nothing is checked, counted or locked.
        log.info("malformed sign-in form")
        missing = not name or not password
        return _refused(gettext("Enter your user name and password.") if missing
                        else gettext("Wrong user name or password."), 400)
    address = client_key(request.remote_addr)
    now = state.clock().timestamp()
    # Counted before the password is checked, atomically with the limit check: parallel
    # guesses cannot all slip past the check while none is counted yet.
    attempt = state.throttle.begin(name, address, now)
    if attempt.id is None:
        # Refused before the password is looked at, for existing and unknown names alike.
        log.warning("sign-in refused while locked (%s) from %s", _who(name), address)
        count_signin_failure("locked")
        return _locked(attempt.wait)
    user = state.accounts.verify(name, password)
    if user is None:
        failure = state.throttle.failed(attempt, name, address, now)
        count_signin_failure("wrong-password")
        limits = state.throttle.limits
        log.info("failed local sign-in (%s) from %s: %d of %d for the name, %d of %d for the "
                 "address", _who(name), address, failure.name_failures, limits.per_name,
                 failure.address_failures, limits.per_address)
        if failure.locked:
            log.warning("sign-in locked for %d minutes: too many failures for the %s (%s, %s)",
                        limits.lockout_seconds // 60, " and the ".join(failure.locked),
                        _who(name), address)
            return _locked(limits.lockout_seconds)
        return _refused(gettext("Wrong user name or password."), 401)
    state.throttle.succeeded(attempt, name)
    _start_session(user)
    return redirect(safe_next(request.form.get("next")))


def _who(name: str) -> str:
    # Logs name an account, never what was typed for an unknown one (it may be a password).
    return f"account {name}" if pages().accounts.exists(name) else "unknown user name"


def _locked(seconds: float) -> Any:
    minutes = max(1, math.ceil(seconds / 60))
    # The same words whether the account exists or not, and whatever was locked.
    return _refused(
        ngettext("Too many failed sign-in attempts. Sign-in is paused for this user name or "
                 "this computer: try again in %(num)d minute, or ask your administrator.",
                 "Too many failed sign-in attempts. Sign-in is paused for this user name or "
                 "this computer: try again in %(num)d minutes, or ask your administrator.",
                 minutes),
        429, **{"Retry-After": str(math.ceil(seconds))})


@bp.route("/login/oidc")
def login_oidc() -> Any:
    """Send the browser to the identity provider (authorization code flow with PKCE)."""
    state = pages()
    if state.oauth is None:
        abort(404)
    session["after_login"] = safe_next(request.args.get("next"))
    redirect_uri = f"{state.settings.public_url}{url_for('pages.oidc_callback')}"
    return state.oauth.authorize_redirect(redirect_uri)


def _oidc_role(claims: dict[str, Any], claim: str) -> str | None:
    value = claims.get(claim)
    values = value if isinstance(value, list) else [value]
    if "coordinator" in values:
        return "coordinator"
    if "viewer" in values:
        return "viewer"
    return None


@bp.route("/auth/callback")
def oidc_callback() -> Any:
    """The identity provider's answer: verify it, map the roles claim, start the session."""
    state = pages()
    if state.oauth is None:
        abort(404)
    try:
        token = state.oauth.authorize_access_token()
    except Exception as exc:  # authlib raises OAuthError and others on a bad answer
        log.warning("OIDC sign-in failed: %s", type(exc).__name__)
        count_signin_failure("oidc")
        return render_template("login.html", oidc=True, next="",
                               error=gettext("The sign-in with your identity provider failed.")
                               ), 401
    id_token = dict(token.get("userinfo") or {})  # the verified ID token's claims
    claims = dict(id_token)
    claim = state.settings.oidc_roles_claim
    if claim not in claims:
        # No userinfo endpoint: the ID token's claims are all there is.
        with contextlib.suppress(Exception):
            claims.update(state.oauth.userinfo(token=token))
    role = _oidc_role(claims, claim)
    # Who it is comes from the verified ID token only, never from the userinfo answer.
    identity = _oidc_identity({**claims, "sub": id_token.get("sub"), "iss": id_token.get("iss")},
                              state.settings.oidc_issuer or "")
    if identity is None:
        log.warning("OIDC sign-in refused: the provider's answer has no usable sub or name")
        return render_template(
            "login.html", oidc=True, next="",
            error=gettext("Your identity provider did not send a usable account id and name."),
        ), 403
    name, display = identity
    if role is None:
        log.info("OIDC user %s has no role for this service", name)
        return render_template(
            "login.html", oidc=True, next="",
            error=gettext("Your account has no role for this service (claim '%(claim)s' must "
                          "hold 'coordinator' or 'viewer').", claim=claim),
        ), 403
    after = session.get("after_login")
    _start_session(User(name=name, display=display, role=role, source="oidc"))
    return redirect(safe_next(after))


# OIDC Core 1.0: `sub` is at most 255 ASCII characters, unique and never reassigned within
# its issuer. Printable ones only here (it becomes an identifier value and a log field).
_SUB_RE = re.compile(r"[\x21-\x7e]{1,255}")


def _oidc_identity(claims: dict[str, Any], configured_issuer: str) -> tuple[str, str] | None:
    """(stable name, display name) of an OIDC user, or None when unusable.

    Identity is `iss` + `sub` (OIDC: `preferred_username` is neither unique nor stable, so two
    people with one user name must not become one performer); the name shown is `name`, else
    `preferred_username`, else `email`, validated like a local display name.
    """
    sub, issuer = claims.get("sub"), claims.get("iss") or configured_issuer
    if not isinstance(sub, str) or not _SUB_RE.fullmatch(sub):
        return None
    if not isinstance(issuer, str) or not _SUB_RE.fullmatch(issuer):
        return None
    display = next((shown for key in ("name", "preferred_username", "email")
                    if isinstance(claims.get(key), str)
                    and (shown := clean_display(claims[key])) is not None), None)
    if display is None:
        return None
    # The issuer is a URL without a fragment (OIDC Discovery): "#" cannot occur in it, and
    # ":" and "/" never occur in local names, so the two kinds never collide.
    return f"{issuer}#{sub}", display


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out (a POST with the CSRF token, so no other site can sign a user out)."""
    user = current_user()
    language = session.get("language")
    token = session.get("sid")
    if isinstance(token, str):
        pages().sessions.end(token)  # on the server: a copy of the cookie is void too
    session.clear()
    if isinstance(language, str) and language in LANGUAGES:
        session["language"] = language  # the sign-in page stays in the person's language
    if user is not None:
        log.info("user %s signed out", user.name)
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("pages.login"))


def oidc_client(app: Flask, settings: Settings) -> Any:
    """The Authlib client of the configured identity provider (discovery, PKCE, nonce)."""
    from authlib.integrations.flask_client import OAuth

    oauth = OAuth(app)
    return oauth.register(
        "idp",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
