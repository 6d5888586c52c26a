"""The language switch: a small form on every page (no JavaScript), kept with the account."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, redirect, request, session

from service.web.languages import LANGUAGES
from service.web.pages import bp, pages
from service.web.pages.signin import current_user, safe_next

log = logging.getLogger(__name__)


@bp.route("/language", methods=["POST"])
def set_language() -> Any:
    """Switch the pages' language; a signed-in person keeps the choice with the account."""
    language = request.form.get("language", "")
    if language not in LANGUAGES:
        abort(400)
    session["language"] = language
    user = current_user()
    if user is not None:
        pages().accounts.set_language(user.name, language)
        log.info("user %s chose the language %s", user.name, language)
    return redirect(safe_next(request.form.get("next")))
