"""The pages' languages: English and Simplified Chinese (Flask-Babel), chosen per person.

The user's choice (kept with the account, carried in the session) decides, else the browser's
Accept-Language. The gettext catalogues are the `.po` files of service/web/translations; they are
compiled in memory when the app is built, so a fresh clone, the tests and the image need no
compile step and a changed `.po` shows at the next start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel.support import NullTranslations, Translations
from flask import Flask, request, session
from flask_babel import Babel, Domain, get_locale

from service.core.catalogues import DEFAULT, LANGUAGES, TRANSLATIONS, catalogues

__all__ = ["DEFAULT", "LANGUAGES", "TRANSLATIONS", "install_languages"]

# Each language's name in itself, as the language switch offers it.
NATIVE_NAMES = {"en": "English", "zh_CN": "中文"}


def name_of(locale: Any) -> str:
    """The LANGUAGES name of a babel Locale ('zh_Hans_CN' -> 'zh_CN'), else the default."""
    if locale is None:
        return DEFAULT
    language, territory = locale.language, locale.territory
    name = f"{language}_{territory}" if territory else language
    if name in LANGUAGES:
        return name
    return language if language in LANGUAGES else DEFAULT


def language() -> str:
    """This request's language as a LANGUAGES name ('en', 'zh_CN')."""
    return name_of(get_locale())


class _Catalogues(Domain):
    """A domain serving catalogues compiled at start instead of `.mo` files on disk."""

    def __init__(self, by_locale: Mapping[str, Translations]) -> None:
        super().__init__(domain="messages")
        self._by_locale = dict(by_locale)

    def get_translations(self) -> Any:
        return self._by_locale.get(language(), NullTranslations())


class _Babel(Babel):
    def __init__(self, domain: _Catalogues) -> None:
        super().__init__()
        self._domain = domain

    @property
    def domain_instance(self) -> _Catalogues:
        return self._domain


def choose(value: str | None) -> str | None:
    """The Babel locale name for a language tag ('zh-CN', 'zh_Hans', 'en-GB'), else None."""
    tag = (value or "").strip().replace("_", "-").lower()
    if not tag:
        return None
    primary = tag.split("-", 1)[0]
    if primary == "en":
        return "en"
    # Every Chinese variant gets Simplified Chinese: for zh-TW or zh-HK readers it is still
    # closer than English (no Traditional catalogue is kept).
    if primary == "zh":
        return "zh_CN"
    return None


def from_browser() -> str:
    """The first language of Accept-Language (by quality) that the pages speak, else English."""
    for tag, _quality in request.accept_languages:
        chosen = choose(tag)
        if chosen:
            return chosen
    return DEFAULT


def current() -> str:
    """This request's locale name: the person's choice, else the browser's."""
    chosen = session.get("language") if request else None
    if isinstance(chosen, str) and chosen in LANGUAGES:
        return chosen
    return from_browser()


def html_lang() -> str:
    """The BCP 47 tag of the page's language, for <html lang>."""
    return LANGUAGES[language()]


def install_languages(app: Flask) -> None:
    """Flask-Babel on the app: the catalogues, the locale choice, the template helpers."""
    babel = _Babel(_Catalogues(catalogues()))
    babel.init_app(app, default_locale=DEFAULT, locale_selector=current)

    @app.context_processor
    def _language() -> dict[str, Any]:
        return {"html_lang": html_lang, "languages": NATIVE_NAMES,
                "current_language": language}
