"""Settings: one frozen dataclass read from the environment once and validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from service.core.dates import calendar_date

REPO_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, allow_zero: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SettingsError(f"{name}={value} must be {bound}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} must be true or false")


def _date(raw: str) -> date | None:
    if not raw:
        return None
    try:
        return calendar_date(raw)
    except ValueError:
        raise SettingsError(f"SCREEN_AS_OF={raw!r} is not a date YYYY-MM-DD") from None


def _http_url(name: str, value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name}={value!r} is not an http(s) URL")
    _no_credentials(name, value)
    return value.rstrip("/")


def _no_credentials(name: str, value: str) -> None:
    # A URL is shown in /readyz, error messages and logs: a password in it would be too.
    if "@" in urlparse(value).netloc:
        raise SettingsError(
            f"{name} must not carry credentials (user:password@host); for the FHIR server "
            "use FHIR_AUTH=bearer or smart"
        )


# A plain mailbox: local@domain, no display name, no spaces or line breaks (a header value).
_MAILBOX = re.compile(r"[^@\s<>\"',;]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _check_mail(smtp_url: str | None, mail_from: str | None) -> None:
    """SMTP_URL: smtp:// or smtps:// with a host; MAIL_FROM: a mailbox, required with it."""
    if smtp_url is None:
        if mail_from is not None and not _MAILBOX.fullmatch(mail_from):
            raise SettingsError(f"MAIL_FROM={mail_from!r} is not an email address")
        return
    parsed = urlparse(smtp_url)
    # The URL may carry a password: never echo it, name its scheme and host only.
    if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
        raise SettingsError("SMTP_URL must be smtp://host[:port] or smtps://host[:port] "
                            "(user:password@ optional)")
    try:
        parsed.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        raise SettingsError(f"SMTP_URL has a bad port (host {parsed.hostname})") from None
    if mail_from is None:
        raise SettingsError("SMTP_URL needs MAIL_FROM (the sender address of outreach email)")
    if not _MAILBOX.fullmatch(mail_from):
        raise SettingsError(f"MAIL_FROM={mail_from!r} is not an email address")


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; each is documented in docs/configuration.md."""

    fhir_base_url: str = "http://127.0.0.1:8090/fhir"
    fhir_auth: str = "none"  # none | bearer | smart
    fhir_bearer_token: str | None = field(default=None, repr=False)
    smart_client_id: str | None = None
    smart_private_key_path: str | None = None
    smart_key_id: str | None = None
    smart_alg: str = "RS384"
    # Read everything; write what the service writes: ResearchSubject and ResearchStudy
    # (write-back), and the pages' Observation and Consent (confirmations, scores, undo) each
    # with a Provenance (SMART v2 scopes: c = create, u = update).
    smart_scope: str = ("system/*.rs system/ResearchSubject.cu system/ResearchStudy.cu "
                        "system/Observation.cu system/Consent.cu system/Provenance.c")
    smart_token_url: str | None = None
    fhir_timeout: float = 30.0
    fhir_max_retries: int = 3
    fhir_max_pages: int = 50
    fhir_max_resources: int = 20000
    fhir_page_size: int = 500
    fhir_wait_seconds: float = 0.0  # wait this long for FHIR /metadata at serve/worker start
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    notify_secret: str | None = field(default=None, repr=False)
    queue_url: str = f"sqlite:///{REPO_ROOT / 'var' / 'queue.sqlite'}"
    coalesce_seconds: float = 5.0
    job_lease_seconds: float = 60.0  # a claimed job whose worker stops heartbeating is re-queued
    job_retry_max_seconds: float = 600.0  # cap of the backoff for temporary FHIR errors
    embedded_workers: int = 1  # worker threads `serve` runs in-process (0: run `worker` apart)
    mappings_dir: Path = REPO_ROOT / "mappings"
    seeds_dir: Path = REPO_ROOT / "seeds"
    public_url: str = "http://127.0.0.1:8000"
    # Where the FHIR server reaches /fhir-notify (the Subscription endpoint); None: public_url.
    # In compose HAPI calls http://service:8000 while browsers use PUBLIC_URL.
    notify_base_url: str | None = None
    cds_allowed_fhir_servers: tuple[str, ...] = ()
    cds_issuers: tuple[str, ...] = ()  # entries "issuer" or "issuer|jwks-url"
    cds_jwt_required: bool = True
    max_body_bytes: int = 1_048_576
    log_level: str = "INFO"
    log_format: str = "text"  # text | json (one JSON object a line)
    job_retention_days: int = 30  # finished jobs and their results are purged after this
    # Coordinator pages (docs/coordinator-guide.md).
    users_db: Path = REPO_ROOT / "var" / "users.sqlite"
    session_secret: str | None = field(default=None, repr=False)
    session_idle_minutes: int = 30
    # However active, a session ends this long after sign-in (a copied cookie stops working).
    session_max_hours: int = 12
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_roles_claim: str = "roles"
    frame_ancestors: str = "'self'"
    sledai_window_days: int = 30
    screen_as_of: date | None = None  # pages screen as of this date (demo); None: today
    # Failed password sign-ins (local accounts): this many within the window lock the user
    # name, or the client address, for the lock-out period (OWASP authentication cheat sheet).
    signin_max_failures: int = 5
    # An address may be a ward's shared workstation or NAT: a higher bound than per name.
    signin_max_failures_per_address: int = 20
    signin_window_minutes: int = 15
    signin_lockout_minutes: int = 15
    # Reverse proxies in front of the service that append X-Forwarded-For (0: the socket
    # peer is the client; only trusted hops are read, so a client cannot forge its address).
    trusted_proxy_hops: int = 0
    # Outreach email (docs: coordinator-funnel.md): smtp:// or smtps://[user:password@]host[:port];
    # None: no email is sent. MAIL_FROM is the sender address, required with SMTP_URL.
    smtp_url: str | None = field(default=None, repr=False)
    mail_from: str | None = None
    # The access audit (docs/deployment.md "Access audit"): a JSON-lines file, or "-" for
    # stdout; AUDIT_FHIR also writes each entry to the FHIR server as an AuditEvent.
    audit_log: str = str(REPO_ROOT / "var" / "audit.jsonl")
    audit_fhir: bool = False

    @property
    def notify_endpoint_base(self) -> str:
        """Base URL the FHIR server's Subscriptions call: NOTIFY_BASE_URL, else PUBLIC_URL."""
        return self.notify_base_url or self.public_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings from the environment (os.environ by default)."""
        env = os.environ if env is None else env
        get = lambda name, default="": env.get(name, default).strip()  # noqa: E731
        auth = get("FHIR_AUTH", "none").lower()
        values: dict[str, Any] = {
            "fhir_base_url": _http_url("FHIR_BASE_URL", get("FHIR_BASE_URL", cls.fhir_base_url)),
            "fhir_auth": auth,
            "fhir_bearer_token": get("FHIR_BEARER_TOKEN") or None,
            "smart_client_id": get("FHIR_SMART_CLIENT_ID") or None,
            "smart_private_key_path": get("FHIR_SMART_PRIVATE_KEY") or None,
            "smart_key_id": get("FHIR_SMART_KEY_ID") or None,
            "smart_alg": get("FHIR_SMART_ALG", "RS384").upper(),
            "smart_scope": get("FHIR_SMART_SCOPE", cls.smart_scope),
            "smart_token_url": get("FHIR_SMART_TOKEN_URL") or None,
            "fhir_timeout": _float(env, "FHIR_TIMEOUT", cls.fhir_timeout),
            "fhir_max_retries": _int(env, "FHIR_MAX_RETRIES", cls.fhir_max_retries),
            "fhir_max_pages": _int(env, "FHIR_MAX_PAGES", cls.fhir_max_pages, 1),
            "fhir_max_resources": _int(env, "FHIR_MAX_RESOURCES", cls.fhir_max_resources, 1),
            "fhir_page_size": _int(env, "FHIR_PAGE_SIZE", cls.fhir_page_size, 1),
            "fhir_wait_seconds": _float(
                env, "FHIR_WAIT_SECONDS", cls.fhir_wait_seconds, allow_zero=True
            ),
            "api_tokens": _split(get("ELIGIBILITY_API_TOKEN")),
            "webhook_secret": get("WEBHOOK_SECRET") or None,
            "notify_secret": get("FHIR_NOTIFY_SECRET") or None,
            "queue_url": get("QUEUE_URL", cls.queue_url),
            "coalesce_seconds": _float(
                env, "COALESCE_SECONDS", cls.coalesce_seconds, allow_zero=True
            ),
            "job_lease_seconds": _float(env, "JOB_LEASE_SECONDS", cls.job_lease_seconds),
            "job_retry_max_seconds": _float(
                env, "JOB_RETRY_MAX_SECONDS", cls.job_retry_max_seconds
            ),
            "embedded_workers": _int(env, "EMBEDDED_WORKERS", cls.embedded_workers),
            "mappings_dir": Path(get("MAPPINGS_DIR", str(cls.mappings_dir))),
            "seeds_dir": Path(get("SEEDS_DIR", str(cls.seeds_dir))),
            "public_url": _http_url("PUBLIC_URL", get("PUBLIC_URL", cls.public_url)),
            "notify_base_url": (
                _http_url("NOTIFY_BASE_URL", get("NOTIFY_BASE_URL"))
                if get("NOTIFY_BASE_URL") else None
            ),
            "cds_allowed_fhir_servers": tuple(
                _http_url("CDS_ALLOWED_FHIR_SERVERS", u)
                for u in _split(get("CDS_ALLOWED_FHIR_SERVERS"))
            ),
            "cds_issuers": _split(get("CDS_ISSUERS")),
            "cds_jwt_required": _bool(env, "CDS_JWT_REQUIRED", True),
            "max_body_bytes": _int(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1024),
            "log_level": get("LOG_LEVEL", "INFO").upper(),
            "log_format": get("LOG_FORMAT", "text").lower(),
            "job_retention_days": _int(env, "JOB_RETENTION_DAYS", cls.job_retention_days, 1),
            "users_db": Path(get("USERS_DB", str(cls.users_db))),
            "session_secret": get("SESSION_SECRET") or None,
            "session_idle_minutes": _int(env, "SESSION_IDLE_MINUTES", cls.session_idle_minutes, 1),
            "session_max_hours": _int(env, "SESSION_MAX_HOURS", cls.session_max_hours, 1),
            "oidc_issuer": get("OIDC_ISSUER").rstrip("/") or None,
            "oidc_client_id": get("OIDC_CLIENT_ID") or None,
            "oidc_client_secret": get("OIDC_CLIENT_SECRET") or None,
            "oidc_roles_claim": get("OIDC_ROLES_CLAIM", cls.oidc_roles_claim),
            "frame_ancestors": get("FRAME_ANCESTORS", cls.frame_ancestors),
            "sledai_window_days": _int(env, "SLEDAI_WINDOW_DAYS", cls.sledai_window_days, 1),
            "screen_as_of": _date(get("SCREEN_AS_OF")),
            "signin_max_failures": _int(env, "SIGNIN_MAX_FAILURES", cls.signin_max_failures, 1),
            "signin_max_failures_per_address": _int(
                env, "SIGNIN_MAX_FAILURES_PER_ADDRESS", cls.signin_max_failures_per_address, 1
            ),
            "signin_window_minutes": _int(
                env, "SIGNIN_WINDOW_MINUTES", cls.signin_window_minutes, 1
            ),
            "signin_lockout_minutes": _int(
                env, "SIGNIN_LOCKOUT_MINUTES", cls.signin_lockout_minutes, 1
            ),
            "trusted_proxy_hops": _int(env, "TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops),
            "smtp_url": get("SMTP_URL") or None,
            "mail_from": get("MAIL_FROM") or None,
            "audit_log": get("AUDIT_LOG", cls.audit_log),
            "audit_fhir": _bool(env, "AUDIT_FHIR", False),
        }
        settings = cls(**values)
        settings.validate()
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests use this like Flask config overrides)."""
        new = replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        """Raise SettingsError with one clear line when the settings cannot work."""
        _check_mail(self.smtp_url, self.mail_from)
        _no_credentials("FHIR_BASE_URL", self.fhir_base_url)
        self._validate_fhir_auth()
        scheme = urlparse(self.queue_url).scheme
        if scheme not in ("sqlite", "redis", "rediss", "memory"):
            raise SettingsError(
                f"QUEUE_URL={self.queue_url!r} must start with sqlite:///, redis:// or memory://"
            )
        # docs/configuration.md MAPPINGS_DIR: several folders separated by `:`.
        for folder in str(self.mappings_dir).split(":"):
            if not Path(folder).is_dir():
                raise SettingsError(f"MAPPINGS_DIR={str(self.mappings_dir)!r}: {folder!r} is "
                                    "not a directory")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"LOG_LEVEL={self.log_level!r} must be DEBUG, INFO, WARNING or ERROR"
            )
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT={self.log_format!r} must be text or json")
        self._validate_cds_issuers()
        self._validate_pages()
        self._validate_audit_log()

    def _validate_audit_log(self) -> None:
        if self.audit_log == "-":
            return
        path = Path(self.audit_log)
        if path.is_dir():
            raise SettingsError(f"AUDIT_LOG={self.audit_log!r} is a directory, not a file")
        if path.exists() and not os.access(path, os.W_OK):
            raise SettingsError(f"AUDIT_LOG={self.audit_log!r} is not writable")
        # The folder is made at the first entry: its nearest existing parent must allow it.
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise SettingsError(
                f"AUDIT_LOG={self.audit_log!r}: {str(folder)!r} is not a writable directory"
            )

    def _validate_pages(self) -> None:
        if self.oidc_issuer:
            _http_url("OIDC_ISSUER", self.oidc_issuer)
            if not self.oidc_client_id or not self.oidc_client_secret:
                raise SettingsError("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
        for name, value, minimum in (
            ("SIGNIN_MAX_FAILURES", self.signin_max_failures, 1),
            ("SIGNIN_MAX_FAILURES_PER_ADDRESS", self.signin_max_failures_per_address, 1),
            ("SIGNIN_WINDOW_MINUTES", self.signin_window_minutes, 1),
            ("SIGNIN_LOCKOUT_MINUTES", self.signin_lockout_minutes, 1),
            ("TRUSTED_PROXY_HOPS", self.trusted_proxy_hops, 0),
        ):
            if value < minimum:
                raise SettingsError(f"{name}={value} must be >= {minimum}")
        if any(c in self.frame_ancestors for c in ";,\r\n"):
            raise SettingsError(
                f"FRAME_ANCESTORS={self.frame_ancestors!r}: space-separated sources only"
            )

    def _validate_fhir_auth(self) -> None:
        if self.fhir_auth not in ("none", "bearer", "smart"):
            raise SettingsError(f"FHIR_AUTH={self.fhir_auth!r} must be none, bearer or smart")
        if self.fhir_auth == "bearer" and not self.fhir_bearer_token:
            raise SettingsError("FHIR_AUTH=bearer needs FHIR_BEARER_TOKEN")
        if self.fhir_auth == "smart":
            if not self.smart_client_id or not self.smart_private_key_path:
                raise SettingsError(
                    "FHIR_AUTH=smart needs FHIR_SMART_CLIENT_ID and FHIR_SMART_PRIVATE_KEY"
                )
            if not Path(self.smart_private_key_path).is_file():
                raise SettingsError(
                    f"FHIR_SMART_PRIVATE_KEY={self.smart_private_key_path!r} is not a readable file"
                )
            if self.smart_alg not in ("RS384", "ES384"):
                raise SettingsError(f"FHIR_SMART_ALG={self.smart_alg!r} must be RS384 or ES384")

    def _validate_cds_issuers(self) -> None:
        for entry in self.cds_issuers:
            issuer, _, keys = entry.partition("|")
            if not issuer.strip():
                raise SettingsError(f"CDS_ISSUERS entry {entry!r} has no issuer")
            keys = keys.strip()
            if keys.startswith(("http://", "https://")):
                _http_url("CDS_ISSUERS", keys)
            elif keys and not Path(keys.removeprefix("file://")).is_file():
                raise SettingsError(
                    f"CDS_ISSUERS entry {entry!r}: {keys!r} is neither a JWKS URL nor a key file"
                )


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (the only ones served without a token)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
