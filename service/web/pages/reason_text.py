"""Reasons in the reader's language: the engine's English sentences matched to catalogue templates.

The engine writes its reasons in English and FHIR keeps them so (the pages read them back from
the ResearchSubjects). Each sentence shape the engine writes is listed once as an English
template (pages/reason_templates.py), which is also its msgid; the catalogue gives the other
language's sentence with the same placeholders. A reason is matched against the templates; what
a placeholder matches and how it is filled follow from its name:

- `date...`: a date, formatted for the locale;
- `what...` / `term...`: a record or medicine term of TERMS, in the reader's words; failing
  that, a name the catalogue does not know (a hospital's own mapping) kept as written;
- `value...`, `limit...`, `low`, `high`, `count`, `days`, ... (NUMBERS): a number, with its
  comparator and unit as written;
- `reason...`, `source`, `range`, `clauses`, `detail`, `gap...`: a phrase translated the same way;
- `list...`: a comma list whose items are translated the same way (or kept as written);
- `text...`: a criterion's registry text (the study file's `text_zh`), else as written;
- `parts`: a combination's parts, `text: reason; text: reason`;
- `items`: classification or SLEDAI-2K items with their points (pages/worksheet_words.py);
- `record`: a record's own words as written (one of TERMS in the reader's words);
- anything else (references, codes, units): as written.

Templates are tried the most literal first, each first with `what` and `text` only matching
known terms and texts, then with any name there. A reason no template matches is shown in
English, marked as such (pages/wording.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

from flask_babel import get_translations, gettext, pgettext


def N_(message: str) -> str:  # noqa: N802  (gettext's name for "extract, translate later")
    """Mark a string for the catalogue without translating it here."""
    return message


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_DATE = r"\d{4}(?:-\d{2}(?:-\d{2})?)?"
_RECURSIVE = ("reason", "source", "range", "clauses", "detail", "gap")
_FREE = ("what", "term", "text")  # known words in the first pass, any name in the second
NUMBERS = ("value", "limit", "low", "high", "count", "days", "score", "total", "threshold",
           "years", "ratio", "uln", "dose", "found", "longest", "factor", "height",
           "creatinine", "need", "amount", "age", "multiple", "bound", "number")
# A number as reasons write it: an optional comparator, then digits; then its unit, which never
# holds ": " or "; " (1:160 does not; a unit as badly written as ";" just before " on " may)
# nor " on " (the date follows).
_NUMBER = r"(?:[<>]=?|=)?-?\d(?:(?!: |; (?!on )| on ).)*?"
# A name the catalogue does not know: no clause separators, no date, no full stop.
_NAME = r"[^\s;:](?:(?!: |; | on |\. ).)*?"


@dataclass(frozen=True)
class _Template:
    msgid: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]


def _terms() -> frozenset[str]:
    from service.web.pages.reason_templates import TERMS

    return frozenset(TERMS)


@cache
def _known() -> dict[str, str]:
    """Every term as reasons write it (also capitalised, as a sentence starts) -> its msgid."""
    known: dict[str, str] = {}
    for term in sorted(_terms()):
        known.setdefault(term, term)
        known.setdefault(term[:1].upper() + term[1:], term)
    return known


def _group(name: str, loose: bool) -> str:
    if name.startswith("date"):
        return _DATE
    if name.startswith(("what", "term")):
        if loose:
            return _NAME
        # longest first: "ALT (no P5P)" before "ALT"
        return "|".join(re.escape(t) for t in sorted(_known(), key=len, reverse=True))
    if name.startswith(NUMBERS):
        return _NUMBER
    if name.startswith(_RECURSIVE) or name.startswith(("list", "text", "items", "parts")):
        return ".+?"
    # A reference, code or unit never holds ": " or "; ": those end it.
    return r"(?:(?!: |; ).)+?"


def _compile(msgid: str, loose: bool) -> _Template:
    parts = _PLACEHOLDER.split(msgid)
    regex, names = "", []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        else:
            names.append(part)
            regex += f"(?P<{part}>{_group(part, loose)})"
    return _Template(msgid, re.compile(regex, re.S), tuple(names))


@cache
def _compiled() -> tuple[tuple[_Template, bool], ...]:
    """Every template, the most literal text first (a specific shape wins over a general one);
    each strict, then (when it names a `what` or `text`) loose."""
    from service.web.pages.reason_templates import STRICT_ONLY, TEMPLATES

    ordered = sorted(TEMPLATES, key=lambda t: -len(_PLACEHOLDER.sub("", t)))
    out: list[tuple[_Template, bool]] = []
    for msgid in ordered:
        out.append((_compile(msgid, False), False))
        if msgid not in STRICT_ONLY and any(
                n.startswith(_FREE) for n in _PLACEHOLDER.findall(msgid)):
            out.append((_compile(msgid, True), True))
    return tuple(out)


class Untranslated(Exception):
    """No template fits a phrase (the page shows the English)."""


@dataclass(frozen=True)
class Words:
    """How the reader's language fills placeholders: dates, criterion texts."""

    day: Callable[[str], str]
    texts: Mapping[str, str]  # a criterion's English text -> its text in this language
    comma: str  # how the language lists items
    semicolon: str  # how it separates clauses
    stop: str  # how it ends a sentence


def translate(reason: str, words: Words) -> str:
    """The reason in the current language; Untranslated when a part has no template."""
    text = reason.strip()
    ends = text.endswith(".")
    body = _phrase(text[:-1] if ends else text, words)
    return body + (words.stop if ends else "")


def _phrase(text: str, words: Words) -> str:
    found = _match(tuple(dict.fromkeys((text, text[:1].upper() + text[1:]))), words)
    if found is not None:
        return found
    if "; " in text:  # clauses joined by the engine: each is a sentence (or a term) of its own
        return words.semicolon.join(_term(part) if part in _known() else _phrase(part, words)
                                    for part in re.split(r"; (?!on )", text))  # "; on": a bad unit
    head, sep, tail = text.rpartition(": ")
    if sep and _wording(tail):  # a study file's wording added after the rule's reason
        return _phrase(head, words) + gettext(": ") + _term(tail)
    raise Untranslated(text)


def _match(candidates: tuple[str, ...], words: Words) -> str | None:
    """The first template (most literal first) that fits the text as written or capitalised."""
    for template, free in _compiled():
        found = next(filter(None, (template.pattern.fullmatch(c) for c in candidates)), None)
        if found is None:
            continue
        try:
            filled = {name: _fill(name, found.group(name), words, free)
                      for name in template.names}
        except Untranslated:
            continue
        if get_translations().ugettext(template.msgid) == template.msgid:
            raise Untranslated(candidates[0])  # the catalogue has no sentence for this shape
        return str(gettext(template.msgid, **filled) if filled else gettext(template.msgid))
    return None


def _wording(tail: str) -> bool:
    """A study file's wording ('renal response'): a known term, or a short phrase of words."""
    return tail in _known() or re.fullmatch(r"[a-z][\w+/-]*(?: [\w+/-]+){0,5}", tail) is not None


def _term(value: str) -> str:
    """A known term in the reader's words; a name the catalogue does not know as written."""
    msgid = _known().get(value)
    if msgid:
        return str(gettext(msgid))
    code = re.fullmatch(r"Code (\S+)", value)  # a diagnosis without a display (engine's words)
    if code:
        return str(gettext("Code %(code)s", code=code.group(1)))
    parts = value.split(" or ")
    if len(parts) > 1 and all(part in _known() for part in parts):
        # names the engine joined ("anti-dsDNA or anti-Smith"); a record's words stay whole
        return str(gettext(" or ")).join(_term(part) for part in parts)
    return value


def is_term(value: str) -> bool:
    """Whether the catalogue knows a name (as written or capitalised) as one of TERMS."""
    return value in _known()


def known_term(value: str) -> str:
    """A record's words in the reader's language when they are exactly one of TERMS."""
    msgid = _known().get(value)
    return str(gettext(msgid)) if msgid else value


def _known_name(value: str) -> bool:
    """Whether every name of a (possibly joined) name is a known term."""
    return all(part in _known() for part in value.split(" or "))


def _fill(name: str, value: str, words: Words, free: bool) -> str:
    if name.startswith("date"):
        return words.day(value)
    if name.startswith(("what", "term")):
        if not free and not _known_name(value):
            raise Untranslated(value)
        return _term(value)
    if name.startswith("text"):
        if value not in words.texts and not free:
            raise Untranslated(value)
        return words.texts.get(value, value)
    if name.startswith(_RECURSIVE):
        return _phrase(value, words)
    if name.startswith("record"):  # a record's own words, or one of our terms
        return _term(value)
    filler = _FILLERS.get(name.rstrip("0123456789"))
    return filler(value, words) if filler else value


def _items(value: str, words: Words) -> str:
    """Items with their points: 'Low C3 or low C4 3, proteinuria 4' (worksheet words)."""
    found = list(re.finditer(r"(?:^|, )(.+?) (\d+)(?=, |$)", value))
    if "".join(m.group(0) for m in found) != value:
        raise Untranslated(value)
    return words.comma.join(f"{_worksheet_text(m.group(1))} {m.group(2)}" for m in found)


def _statuses(value: str, words: Words) -> str:
    """ResearchSubject or Consent status codes, as the pages word them."""
    return words.comma.join(str(pgettext("status", code)) for code in value.split(", "))


def _list(value: str, words: Words) -> str:
    return words.comma.join(_item(item, words) for item in value.split(", "))


def _item(item: str, words: Words) -> str:
    if item in _known():
        return _term(item)
    try:
        return _phrase(item, words)
    except Untranslated:
        pass
    try:  # a SLEDAI-2K item's id ('mucosal-ulcers')
        return _worksheet_text(item.replace("-", " "))
    except Untranslated:
        if re.fullmatch(_NAME, item) and not re.search(r"\d", item):
            return item  # a medicine or agent name the catalogue does not know
        raise


def _parts(value: str, words: Words) -> str:
    """A combination's parts, 'text: reason; text: reason' (texts and reasons may hold ': ' and
    '; ' themselves): the first split whose every piece translates."""
    pieces = value.split("; ")

    def split(start: int) -> list[str] | None:
        if start == len(pieces):
            return []
        for end in range(len(pieces), start, -1):  # the longest reason first
            chunk = "; ".join(pieces[start:end])
            for at in [m.start() for m in re.finditer(": ", chunk)]:
                text, reason = chunk[:at], chunk[at + 2:]
                if "; " in text:
                    break
                try:
                    said = _phrase(reason, words)
                except Untranslated:
                    continue
                rest = split(end)
                if rest is not None:
                    return [gettext("%(text)s: %(reason)s", text=_part_text(text, words),
                                    reason=said), *rest]
        return None

    found = split(0)
    if found is None:
        raise Untranslated(value)
    return words.semicolon.join(found)


def _part_text(text: str, words: Words) -> str:
    return words.texts.get(text, text)


_FILLERS: dict[str, Callable[[str, Words], str]] = {
    "list": _list, "items": _items, "parts": _parts, "status": _statuses, "statuses": _statuses,
    "normlimit": lambda value, words: value.replace(" x ", " × "),  # "2 x ULN", as the others
}


def _worksheet_text(text: str) -> str:
    from service.web.pages.worksheet_words import WORKSHEET_TEXTS  # it imports N_ from here

    for candidate in (text, text[:1].upper() + text[1:]):
        if candidate in WORKSHEET_TEXTS:
            return str(gettext(candidate))
    by_case = {t.lower(): t for t in WORKSHEET_TEXTS}
    if text.lower() in by_case:
        return str(gettext(by_case[text.lower()]))
    raise Untranslated(text)
