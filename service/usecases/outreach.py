"""Outreach: tell coordinators of new eligible or potential candidates by email.

One `sweep` (run by the job queue: after each queued screening and every minute) reads each
study's ResearchSubjects changed since the last sweep from the FHIR server, so candidates
found by any path (queue, pages, CLI, another worker) count. A candidate is new once per
study (outreach_log `known`; the first sweep of a study only learns who is there already).
Each new candidate becomes one delivery per coordinator who chose email for the study;
deliveries go out as one email per coordinator and study, at once or as a daily digest (24
hours after the previous digest, or after the oldest waiting candidate). An email names the
study, the counts and the worklist's link: never a patient's name, id or birth date.
A failed send is retried later; a sent delivery is never sent again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from service.accounts.outreach_log import Batch, OutreachLog
from service.accounts.store import Accounts
from service.core.catalogues import DEFAULT, translations
from service.core.clock import Clock
from service.core.settings import Settings
from service.fhir import research_subject as rs
from service.usecases.screener import ScreeningService
from service.usecases.smtp_mailer import Mailer, MailError, SmtpMailer

log = logging.getLogger(__name__)

CANDIDATE_STATUSES = frozenset({"eligible", "potential-candidate"})
DIGEST_SECONDS = 24 * 3600.0
RETRY_SECONDS = 300.0  # a failed email is tried again after this


@dataclass
class Outreach:
    """The sweep's collaborators: the screener's FHIR client and studies, the stores, mail."""

    screener: ScreeningService
    accounts: Accounts
    mailer: Mailer
    public_url: str
    clock: Clock

    def __post_init__(self) -> None:
        self.log = OutreachLog(self.accounts)

    def __call__(self) -> dict[str, int]:
        """One sweep now: find new candidates, send what is due."""
        now = self.clock.now()
        return {"new": self.detect(now), "sent": self.deliver(now)}

    def detect(self, now: datetime) -> int:
        """Record new candidates (and the deliveries they make) from the FHIR server."""
        client = self.screener.client()
        new = 0
        for key, ref in self.screener.research_study_refs().items():
            mark = f"read:{key}"
            since = self.log.mark(mark)
            params = [("study", ref), ("_count", "500")]
            if since:
                # Server time of the newest one read before, a little back for late writes.
                stamp = datetime.fromtimestamp(since - 5, tz=UTC)
                params.append(("_lastUpdated", "ge" + stamp.isoformat(timespec="seconds")))
            tell = self.accounts.subscribers(key) if since is not None else []
            newest = since or 0.0
            for resource in client.search("ResearchSubject", params):
                if resource.get("resourceType") != "ResearchSubject":
                    continue
                updated = str((resource.get("meta") or {}).get("lastUpdated") or "")
                with contextlib.suppress(ValueError):  # no stamp: the next read covers it
                    newest = max(newest, datetime.fromisoformat(updated).timestamp())
                status = rs.computed_status(resource)
                individual = str((resource.get("individual") or {}).get("reference") or "")
                if status not in CANDIDATE_STATUSES or not individual.startswith("Patient/"):
                    continue
                if self.log.note(key, individual.split("/", 1)[1], status, now.timestamp(),
                                 tell) and since is not None:
                    new += 1
            self.log.set_mark(mark, newest)
        return new

    def deliver(self, now: datetime) -> int:
        """Send every email that is due; returns how many went out."""
        ts = now.timestamp()
        sent = 0
        for user, study, mode, oldest in self.log.due(ts):
            email, modes = self.accounts.outreach_of(user)
            if not email or modes.get(study, "none") == "none":
                # Changed their mind, or the account was removed: nothing is sent.
                self.log.drop(user, study)
                continue
            if mode == "digest":
                last = self.log.mark(f"digest:{user}:{study}")
                if ts < (last if last is not None else oldest) + DIGEST_SECONDS:
                    continue
            batch = self.log.claim(user, study, mode, ts)
            if batch is None:
                continue  # another worker took it
            subject, body = self.compose(batch)
            try:
                self.mailer.send(email, subject, body)  # the address as it is now
            except MailError as exc:
                self.log.failed(batch, ts, RETRY_SECONDS)
                log.warning("outreach email to user %s for %s not sent (retry in %.0fs): %s",
                            user, study, RETRY_SECONDS, exc)
                continue
            self.log.sent(batch, ts)
            if mode == "digest":
                self.log.set_mark(f"digest:{user}:{study}", ts)
            sent += 1
            log.info("outreach email (%s) sent to user %s for %s: %d candidate(s)", mode, user,
                     study, len(batch.patients))
        return sent

    def compose(self, batch: Batch) -> tuple[str, str]:
        """Subject and body in the coordinator's language: the study, the counts, the link;
        no patient data at all."""
        language = self.accounts.language(batch.user) or DEFAULT
        t = translations(language)
        study = self.screener.mappings.studies.get(batch.study)
        title = batch.study if study is None else (
            study.title_zh if language == "zh_CN" and study.title_zh else study.title)
        eligible = sum(1 for _, status in batch.patients if status == "eligible")
        potential = len(batch.patients) - eligible
        n = len(batch.patients)
        subject = t.ngettext("Trial eligibility: %(num)d new candidate for %(study)s",
                             "Trial eligibility: %(num)d new candidates for %(study)s",
                             n) % {"num": n, "study": batch.study}
        digest = batch.mode == "digest"
        url = f"{self.public_url}/notifications"
        body = "\n".join([
            f"{title} ({batch.study})",
            "",
            t.gettext("New candidates since your last digest:") if digest
            else t.gettext("New candidates just found:"),
            "  " + t.gettext("eligible: %(count)s") % {"count": eligible},
            "  " + t.gettext("potential candidates: %(count)s") % {"count": potential},
            "",
            t.gettext("Open the worklist: %(url)s")
            % {"url": f"{self.public_url}/?study={batch.study}"},
            "",
            (t.gettext("You receive a daily digest for this study; change it at %(url)s.")
             if digest else
             t.gettext("You receive an email at once for this study; change it at %(url)s."))
            % {"url": url},
        ])
        return subject, body


def outreach_for(settings: Settings, screener: ScreeningService, accounts: Accounts | None,
                 clock: Clock, mailer: Mailer | None = None) -> Callable[[], object] | None:
    """The sweep for these settings, or None when no email is configured (SMTP_URL)."""
    if mailer is None:
        if not settings.smtp_url or not settings.mail_from:
            return None
        mailer = SmtpMailer(settings.smtp_url, settings.mail_from)
    return Outreach(screener, accounts or Accounts(settings.users_db), mailer,
                    settings.public_url, clock)
