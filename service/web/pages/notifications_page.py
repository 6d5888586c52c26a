"""`/notifications`: each user chooses, per study, how to be told of new candidates by email."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from service.accounts.store import OUTREACH_MODES, AccountError
from service.web.pages import bp, pages
from service.web.pages.signin import current_user, signed_in
from service.web.services import services

log = logging.getLogger(__name__)
MODE_LABELS = {"immediate": lambda: gettext("an email at once"),
               "digest": lambda: gettext("a daily digest"), "none": lambda: gettext("no email")}


@bp.route("/notifications")
@signed_in
def notifications() -> Any:
    """The user's address and, per study, at once / daily digest / nothing."""
    user = current_user()
    assert user is not None
    email, modes = pages().accounts.outreach_of(user.name)
    studies = [(key, study.title, modes.get(key, "none"))
               for key, study in services().screener.mappings.studies.items()]
    return render_template("notifications.html", email=email, studies=studies,
                           modes=OUTREACH_MODES, labels=MODE_LABELS,
                           configured=bool(pages().settings.smtp_url))


@bp.route("/notifications", methods=["POST"])
@signed_in
def notifications_save() -> Any:
    """Keep the choice with the account (nothing changes when any part is wrong)."""
    user = current_user()
    assert user is not None
    keys = list(services().screener.mappings.studies)
    modes = {key: request.form.get(f"mode-{key}", "none") for key in keys}
    try:
        pages().accounts.set_outreach(user.name, request.form.get("email", "")[:254], modes)
    except AccountError:
        abort(400, gettext("Give a valid email address to be told by email, and choose at "
                           "once, a daily digest or no email for each study."))
    log.info("user %s set outreach: %s", user.name,
             ", ".join(f"{k}={m}" for k, m in modes.items()))
    flash(gettext("Email settings saved."), "success")
    return redirect(url_for("pages.notifications"))
