"""Sending one email over SMTP (SMTP_URL): smtps:// is TLS from the start, smtp:// upgrades
with STARTTLS when the server offers it; the credentials in the URL, if any, log in."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlparse

TIMEOUT_SECONDS = 30.0


class Mailer(Protocol):
    """What outreach needs: send one plain-text email."""

    def send(self, to: str, subject: str, body: str) -> None: ...


class MailError(RuntimeError):
    """The email was not accepted (the SMTP server's answer, never the URL's password)."""


class SmtpMailer:
    """Sends through the server of SMTP_URL, from MAIL_FROM."""

    def __init__(self, smtp_url: str, mail_from: str,
                 context: ssl.SSLContext | None = None) -> None:
        parsed = urlparse(smtp_url)
        self.secure = parsed.scheme == "smtps"
        self.host = parsed.hostname or ""
        self.port = parsed.port or (465 if self.secure else 25)
        self.user = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        self.mail_from = mail_from
        # The HELO name: the sender's domain (looking up this host's FQDN can stall for seconds).
        self.helo = mail_from.rpartition("@")[2] or "localhost"
        self.context = context or ssl.create_default_context()

    def send(self, to: str, subject: str, body: str) -> None:
        """Send one email; MailError (with the server's reason) when it is not accepted."""
        message = EmailMessage()
        message["From"] = self.mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            if self.secure:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port,
                                                      local_hostname=self.helo,
                                                      timeout=TIMEOUT_SECONDS,
                                                      context=self.context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.helo,
                                    timeout=TIMEOUT_SECONDS)
            with smtp:
                smtp.ehlo()
                if not self.secure and smtp.has_extn("starttls"):
                    smtp.starttls(context=self.context)
                    smtp.ehlo()
                if self.user is not None:
                    smtp.login(self.user, self._password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP server {self.host}:{self.port}: "
                            f"{type(exc).__name__}: {str(exc)[:200]}") from None
