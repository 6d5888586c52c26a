"""Generic signed webhook: `POST /webhooks/screening` with {"patient": "123"} queues a screening.

Signing recipe (sender side):
    timestamp = str(int(time.time()))
    signed = timestamp.encode() + b"." + raw_body
    X-Timestamp: <timestamp>
    X-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, signed)>
A timestamp more than 5 minutes old, or more than 30 seconds ahead of the service's clock, is
refused; every accepted signature is remembered in the job store until its timestamp is
5 minutes old, so a captured request is refused (409) when it is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time

from flask import Blueprint, Response, jsonify, request, url_for

from service.web import requests_in
from service.web.problems import Problem
from service.web.services import services

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__)

MAX_SKEW_SECONDS = 300  # how old a timestamp may be
MAX_FUTURE_SECONDS = 30  # how far ahead of our clock a sender's clock may run
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Signature value for a body sent at timestamp (unix seconds as text)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def _verify(secret: str | None, body: bytes) -> None:
    if not secret:
        raise Problem(401, "Webhooks are disabled: WEBHOOK_SECRET is not configured.",
                      slug="webhook-disabled")
    timestamp = request.headers.get("X-Timestamp", "").strip()
    signature = request.headers.get("X-Signature", "").strip()
    # ASCII digits only, and few: str.isdigit() accepts '²' and int() refuses very long numbers.
    if not _TIMESTAMP.fullmatch(timestamp) or not signature:
        raise Problem(
            401, "X-Timestamp (unix seconds) and X-Signature (sha256=<hex>) are required.",
            slug="bad-signature",
        )
    now = time.time()
    if now - int(timestamp) > MAX_SKEW_SECONDS or int(timestamp) - now > MAX_FUTURE_SECONDS:
        raise Problem(401, "X-Timestamp is more than 5 minutes old or more than 30 seconds "
                      "ahead; refusing a replay.", slug="stale-signature")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise Problem(401, "X-Signature does not match the body and timestamp.",
                      slug="bad-signature")
    # Remembered for as long as the timestamp would still be accepted: a replay within the
    # window is refused, and after it the timestamp check refuses it.
    ttl = int(timestamp) + MAX_SKEW_SECONDS - now + 1
    if not services().queue.store.remember_once(f"webhook-signature:{expected}", ttl):
        raise Problem(409, "This signed request was already accepted; sign a new one "
                      "(a new X-Timestamp) to send it again.", slug="webhook-replay")


@bp.post("/webhooks/screening")
def screening_webhook() -> tuple[Response, int, dict[str, str]]:
    """Queue a screening for the patient named in a signed body; 202 with the job."""
    svc = services()
    raw = requests_in.raw_body()
    _verify(svc.settings.webhook_secret, raw)
    body = requests_in.json_body()
    if not isinstance(body, dict) or set(body) != {"patient"}:
        raise Problem(400, 'The body must be {"patient": "<Patient id>"}.', slug="invalid-body")
    pid = requests_in.patient_id(body["patient"])
    submitted = svc.queue.enqueue_screening(pid, source="webhook")
    location = url_for("api.get_screening", job=submitted.job_id)
    return (
        jsonify({"job": submitted.job_id, "coalesced": submitted.coalesced,
                 "patient": f"Patient/{pid}"}),
        202,
        {"Location": location},
    )
