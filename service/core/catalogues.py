"""The gettext catalogues of service/web/translations, compiled in memory (pages and emails).

Compiled when first asked for, so a fresh clone, the tests and the image need no compile step
and an edited `.po` shows at the next start. Babel's locale names: 'en', 'zh_CN'.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parents[1] / "web" / "translations"
# Babel's locale names, and the BCP 47 tag each has in <html lang> and in the language switch.
LANGUAGES = {"en": "en", "zh_CN": "zh-CN"}
DEFAULT = "en"


def compiled(po_path: Path, locale: str) -> Translations:
    """The catalogue of one `.po` file as gettext translations (fuzzy entries left out)."""
    with po_path.open("rb") as source:
        catalog = read_po(source, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


@lru_cache(maxsize=1)
def catalogues() -> dict[str, Translations]:
    """Every language's compiled catalogue but English (the msgids), by locale name."""
    return {
        locale: compiled(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale)
        for locale in LANGUAGES if locale != DEFAULT
    }


def translations(language: str | None) -> NullTranslations:
    """The gettext translations of a locale name; English (the msgids) for any other."""
    return catalogues().get(language or DEFAULT) or NullTranslations()
