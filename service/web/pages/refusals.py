"""A use case's refusal in the reader's words, never the text of a layer below it.

The use cases refuse with their own sentences (marked for the catalogue); a refusal that
carries another layer's text (the FHIR layer's, which may follow the FHIR server's answer) is
replaced by a general sentence: the page says what happened and what to do, in the reader's
language.
"""

from __future__ import annotations

from flask_babel import force_locale, gettext

from service.usecases.errors import Refused


def _ours(message: str) -> bool:
    """Whether the message is one of the catalogue's (every use case refusal is)."""
    with force_locale("zh_CN"):
        return gettext(message) != message


def refusal_words(exc: Refused, general: str) -> str:
    """The refusal's own sentence, translated; `general` when it is not one of ours."""
    message = str(exc)
    return gettext(message) if message and _ours(message) else general
