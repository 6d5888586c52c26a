"""A form that records something is sent once: its one-time token is claimed before the write."""

from __future__ import annotations

from flask import abort, flash, request
from flask_babel import gettext

from service.accounts.form_tokens import TOKEN_RE
from service.web.pages import pages


def claim_form_token(already_sent: str) -> str | None:
    """The form's one-time token, claimed now; None, with `already_sent` flashed, when the same
    form was sent before (double click, reload, back and send). A missing or malformed token is
    a 400: the page must be reloaded. The caller releases the token if nothing was recorded."""
    token = request.form.get("form_token", "")
    if not TOKEN_RE.fullmatch(token):
        abort(400, gettext("The form is incomplete: reload the page and try again."))
    if not pages().form_tokens.claim(token, pages().clock().timestamp()):
        flash(already_sent, "info")
        return None
    return token
