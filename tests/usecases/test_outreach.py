"""Outreach against a real SMTP server on loopback (aiosmtpd), with an injected clock.

The FHIR side is a fake holding ResearchSubjects (the sweep only searches them); the mail
side is real: every assertion counts what the SMTP server received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.accounts.store import AccountError, Accounts
from service.core.clock import Clock
from service.core.settings import Settings, SettingsError
from service.fhir import research_subject as rs
from service.mappings import load_mappings
from service.usecases.outreach import Outreach
from service.usecases.smtp_mailer import MailError, SmtpMailer
from tests.support.smtp_server import self_signed, smtp_server

REPO = Path(__file__).resolve().parents[2]
LN, SLE = "pediatric-ln-cart", "refractory-sle-cart"
T0 = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)
NAMES = ("Yutong Lin", "seed-", "2015-", "birth")


class FakeFhir:
    """ResearchSubjects by study reference, stamped with a lastUpdated like a server's."""

    def __init__(self) -> None:
        self.subjects: dict[tuple[str, str], dict[str, Any]] = {}
        self.stamp = datetime(2026, 12, 1, tzinfo=UTC)

    def put(self, study: str, patient: str, status: str) -> None:
        self.stamp += timedelta(seconds=30)
        self.subjects[(study, patient)] = {
            "resourceType": "ResearchSubject", "status": status,
            "study": {"reference": f"ResearchStudy/{study}"},
            "individual": {"reference": f"Patient/{patient}"},
            "meta": {"lastUpdated": self.stamp.isoformat()},
            "extension": [{"url": rs.SCREENING_EXTENSION,
                           "extension": [{"url": "status", "valueCode": status}]}]}

    def search(self, kind: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        assert kind == "ResearchSubject"
        p = dict(params)
        since = p.get("_lastUpdated", "ge1970-01-01T00:00:00+00:00")[2:]
        return [s for (study, _), s in self.subjects.items()
                if f"ResearchStudy/{study}" == p["study"]
                and datetime.fromisoformat(s["meta"]["lastUpdated"])
                >= datetime.fromisoformat(since)]


class FakeScreener:
    def __init__(self, fhir: FakeFhir) -> None:
        self.fhir = fhir
        self.mappings = load_mappings(REPO / "mappings")

    def client(self) -> FakeFhir:
        return self.fhir

    def research_study_refs(self) -> dict[str, str]:
        return {k: f"ResearchStudy/{k}" for k in (LN, SLE)}


class Hands:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def setup(tmp_path):
    with smtp_server() as (box, url):
        accounts = Accounts(tmp_path / "users.sqlite")
        accounts.add("casey", "coordinator", "a long password 1", "Casey Coordinator")
        accounts.add("dana", "coordinator", "a long password 2", "Dana")
        fhir, hands = FakeFhir(), Hands()
        fhir.put(LN, "seed-old", "eligible")  # there before outreach started
        outreach = Outreach(FakeScreener(fhir), accounts,
                            SmtpMailer(url, "eligibility@hospital.example"),
                            "https://elig.hospital.example", Clock(hands))
        yield outreach, fhir, box, accounts, hands


def test_a_new_candidate_produces_exactly_one_email_without_patient_data(setup):
    outreach, fhir, box, accounts, hands = setup
    accounts.set_outreach("casey", "casey@hospital.example", {LN: "immediate", SLE: "none"})
    assert outreach() == {"new": 0, "sent": 0}  # the first sweep learns who is there
    fhir.put(LN, "seed-ln-eligible", "eligible")
    fhir.put(SLE, "seed-ln-eligible", "eligible")  # SLE: this user chose nothing
    fhir.put(LN, "seed-gone", "ineligible")         # not a candidate
    assert outreach() == {"new": 2, "sent": 1}
    (mail,) = box.messages
    assert mail["To"] == "casey@hospital.example" and mail["From"] == "eligibility@hospital.example"
    assert mail["Subject"] == f"Trial eligibility: 1 new candidate for {LN}"
    body = mail.get_payload(decode=True).decode()
    assert "eligible: 1" in body and "potential candidates: 0" in body
    assert f"https://elig.hospital.example/?study={LN}" in body
    assert not [w for w in NAMES if w in body or w in mail["Subject"]]
    # re-screened (a new version of the same candidate), swept again: never a second email
    for _ in range(3):
        fhir.put(LN, "seed-ln-eligible", "eligible")
        hands.now += timedelta(minutes=1)
        outreach()
    fhir.put(LN, "seed-ln-eligible", "potential-candidate")
    outreach()
    assert len(box.messages) == 1
    assert outreach.log.sent_count("casey") == 1


def test_the_daily_digest_goes_once_a_day_with_the_counts(setup):
    outreach, fhir, box, accounts, hands = setup
    accounts.set_outreach("dana", "dana@hospital.example", {LN: "digest"})
    outreach()
    fhir.put(LN, "a", "eligible")
    outreach()
    hands.now += timedelta(hours=2)
    fhir.put(LN, "b", "potential-candidate")
    fhir.put(LN, "c", "potential-candidate")
    outreach()
    hands.now = T0 + timedelta(hours=23, minutes=59)
    outreach()
    assert box.messages == []                         # not a day yet since the first one
    hands.now = T0 + timedelta(hours=24)
    assert outreach()["sent"] == 1
    (digest,) = box.messages
    assert digest["Subject"] == f"Trial eligibility: 3 new candidates for {LN}"
    text = digest.get_payload(decode=True).decode()
    assert "eligible: 1" in text and "potential candidates: 2" in text
    assert "since your last digest" in text
    fhir.put(LN, "d", "eligible")
    hands.now = T0 + timedelta(hours=30)
    outreach()
    assert len(box.messages) == 1                     # the next digest is a day after this one
    hands.now = T0 + timedelta(hours=48)
    outreach()
    assert len(box.messages) == 2 and "1 new candidate " in box.messages[1]["Subject"] + " "


def test_a_refused_email_is_retried_later_and_sent_once(setup):
    outreach, fhir, box, accounts, hands = setup
    accounts.set_outreach("casey", "casey@hospital.example", {LN: "immediate"})
    outreach()
    fhir.put(LN, "new-one", "eligible")
    box.refuse = True
    assert outreach()["sent"] == 0
    box.refuse = False
    hands.now += timedelta(seconds=60)
    assert outreach()["sent"] == 0                    # waits before trying again
    hands.now += timedelta(seconds=300)
    assert outreach()["sent"] == 1 and len(box.messages) == 1
    hands.now += timedelta(seconds=600)
    assert outreach()["sent"] == 0 and len(box.messages) == 1


def test_choices_are_kept_with_the_account_and_checked(tmp_path):
    accounts = Accounts(tmp_path / "users.sqlite")
    accounts.add("casey", "coordinator", "a long password 1")
    accounts.set_outreach("casey", "casey@hospital.example", {LN: "digest", SLE: "none"})
    assert accounts.outreach_of("casey") == ("casey@hospital.example",
                                             {LN: "digest", SLE: "none"})
    assert accounts.subscribers(LN) == [("casey", "digest", "casey@hospital.example")]
    assert accounts.subscribers(SLE) == []
    for email, modes in (("not an address", {LN: "digest"}), ("", {LN: "immediate"}),
                         ("a@b.example", {LN: "hourly"}),
                         ("a@b.example\r\nBcc: x@y.example", {LN: "digest"})):
        with pytest.raises(AccountError):
            accounts.set_outreach("casey", email, modes)
    assert accounts.outreach_of("casey")[1] == {LN: "digest", SLE: "none"}  # unchanged
    accounts.remove("casey")  # a removed account is told of nothing any more
    assert accounts.subscribers(LN) == [] and accounts.outreach_of("casey") == ("", {})


@pytest.mark.parametrize("env,words", [
    ({"SMTP_URL": "http://mail.example"}, "SMTP_URL must be smtp://"),
    ({"SMTP_URL": "smtp://"}, "SMTP_URL must be smtp://"),
    ({"SMTP_URL": "smtp://mail.example:nope"}, "bad port"),
    ({"SMTP_URL": "smtp://mail.example"}, "needs MAIL_FROM"),
    ({"SMTP_URL": "smtps://u:secret@mail.example", "MAIL_FROM": "nobody"}, "not an email"),
    ({"MAIL_FROM": "x@y"}, "not an email"),
])
def test_mail_settings_are_checked_at_start_in_one_line(env, words):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert "secret" not in str(caught.value)


def test_good_mail_settings_and_the_password_stays_out_of_repr():
    s = Settings.from_env({"SMTP_URL": "smtps://u:secret@mail.example:465",
                           "MAIL_FROM": "eligibility@hospital.example"})
    assert s.mail_from == "eligibility@hospital.example" and "secret" not in repr(s)


def test_starttls_is_used_when_the_server_offers_it(tmp_path):
    server_tls, client_tls = self_signed(tmp_path)
    with smtp_server(tls=server_tls) as (box, url):
        # the server refuses mail before STARTTLS: an accepted email went over TLS
        SmtpMailer(url, "eligibility@hospital.example", context=client_tls).send(
            "casey@hospital.example", "subject", "body")
        assert len(box.messages) == 1
        # a client that does not trust the server's certificate sends nothing
        with pytest.raises(MailError, match="127.0.0.1"):
            SmtpMailer(url, "eligibility@hospital.example").send(
                "casey@hospital.example", "subject", "body")
        assert len(box.messages) == 1


def test_nothing_is_sent_to_someone_who_turned_email_off_or_was_removed(setup):
    outreach, fhir, box, accounts, hands = setup
    accounts.set_outreach("casey", "casey@hospital.example", {LN: "digest"})
    accounts.set_outreach("dana", "dana@hospital.example", {LN: "digest"})
    outreach()
    fhir.put(LN, "waiting", "eligible")
    outreach()
    accounts.set_outreach("casey", "casey@hospital.example", {LN: "none"})
    accounts.remove("dana")
    hands.now += timedelta(days=2)
    assert outreach()["sent"] == 0 and box.messages == []
