"""How the pages word codes in the reader's language: statuses, criterion names, dates, lists.

English pages show the codes as FHIR has them ('potential-candidate', 'not-met'); the catalogue
gives each code its words in the other languages (msgctxt 'status'). Dates stay ISO 8601 in
English, as the reasons write them, and take the locale's long form in Chinese.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_babel import format_date, format_decimal, gettext, pgettext
from markupsafe import Markup

from service.usecases.subject_rows import label
from service.web.languages import language
from service.web.pages import bp, reason_text
from service.web.pages.worksheet_words import WORKSHEET_TEXTS
from service.web.services import services

# Babel date patterns by locale: ISO in English (what the reasons and FHIR say), 2026年1月5日.
_DATE_PATTERNS = {"en": "yyyy-MM-dd", "zh_CN": "y年M月d日"}

# Every status, result, role and type code a page shows, so extraction finds each one.
STATUS_CODES = {
    # computed statuses (docs/decisions.md) and the criterion results
    "eligible": lambda: pgettext("status", "eligible"),
    "potential-candidate": lambda: pgettext("status", "potential-candidate"),
    "ineligible": lambda: pgettext("status", "ineligible"),
    "candidate": lambda: pgettext("status", "candidate"),
    "met": lambda: pgettext("status", "met"),
    "not-met": lambda: pgettext("status", "not-met"),
    "unknown": lambda: pgettext("status", "unknown"),
    # workflow statuses (R4 ResearchSubject.status) a person sets
    "screening": lambda: pgettext("status", "screening"),
    "pending-on-study": lambda: pgettext("status", "pending-on-study"),
    "on-study": lambda: pgettext("status", "on-study"),
    "on-study-intervention": lambda: pgettext("status", "on-study-intervention"),
    "on-study-observation": lambda: pgettext("status", "on-study-observation"),
    "follow-up": lambda: pgettext("status", "follow-up"),
    "off-study": lambda: pgettext("status", "off-study"),
    "withdrawn": lambda: pgettext("status", "withdrawn"),
    "not-registered": lambda: pgettext("status", "not-registered"),
    # roles and criterion types
    "coordinator": lambda: pgettext("status", "coordinator"),
    "viewer": lambda: pgettext("status", "viewer"),
    "inclusion": lambda: pgettext("status", "inclusion"),
    "exclusion": lambda: pgettext("status", "exclusion"),
    "automatic": lambda: pgettext("status", "automatic"),
    "manual": lambda: pgettext("status", "manual"),
    # the log's counts of rows without a status
    "not known": lambda: pgettext("status", "not known"),
    "none": lambda: pgettext("status", "none"),
    # answers and statuses of what people recorded (confirmations, consents, scores)
    "not met": lambda: pgettext("status", "not met"),
    "signed": lambda: pgettext("status", "signed"),
    "refused": lambda: pgettext("status", "refused"),
    "final": lambda: pgettext("status", "final"),
    "amended": lambda: pgettext("status", "amended"),
    "preliminary": lambda: pgettext("status", "preliminary"),
    "active": lambda: pgettext("status", "active"),
    "rejected": lambda: pgettext("status", "rejected"),
    "entered-in-error": lambda: pgettext("status", "entered-in-error"),
    "completed": lambda: pgettext("status", "completed"),
    "stopped": lambda: pgettext("status", "stopped"),
    "cancelled": lambda: pgettext("status", "cancelled"),
    "on-hold": lambda: pgettext("status", "on-hold"),
    "inactive": lambda: pgettext("status", "inactive"),
    "resolved": lambda: pgettext("status", "resolved"),
}
SEXES = {
    "female": lambda: pgettext("sex", "female"),
    "male": lambda: pgettext("sex", "male"),
    "other": lambda: pgettext("sex", "other"),
    "unknown": lambda: gettext("sex unknown"),
    "sex unknown": lambda: gettext("sex unknown"),
}
# What pages/evidence.py says of a resource that has no code of its own.
EVIDENCE_WORDS = {
    "Patient (birth date, sex)": lambda: gettext("Patient (birth date, sex)"),
    "Consent": lambda: gettext("Consent"),
    "not found on the FHIR server": lambda: gettext("not found on the FHIR server"),
}


@bp.app_template_filter("status")
def status(code: Any) -> str:
    """A status, result, role or type code in the reader's language (unknown codes as they are)."""
    if code is None:
        return ""
    words = STATUS_CODES.get(str(code))
    return words() if words else str(code)


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


@bp.app_template_filter("day")
def day(value: Any) -> str:
    """A date (or the date of an ISO date-time) for the reader's locale; other text unchanged."""
    if value is None or value == "":
        return ""
    found = _as_date(value)
    if found is None or len(str(value)) < 10:
        return str(value)  # a partial date ('2024-05') is shown as recorded
    return format_date(found, format=_DATE_PATTERNS.get(language(), "yyyy-MM-dd"))


@bp.app_template_filter("number")
def number(value: Any) -> str:
    """A count or decimal with the locale's digit grouping."""
    if value is None:
        return ""
    try:
        return format_decimal(value)
    except (TypeError, ValueError, ArithmeticError):
        return str(value)


@bp.app_template_filter("listing")
def listing(items: Any) -> str | Markup:
    """Items joined as the language lists them ('a, b' in English, 'a、b' in Chinese)."""
    parts = [p for p in items]
    separator = gettext(", ")
    if any(isinstance(p, Markup) for p in parts):
        return Markup(separator).join(parts)
    return separator.join(str(p) for p in parts)


def _studies() -> dict[str, Any]:
    try:
        return dict(services().screener.mappings.studies)
    except Exception:  # a page must render even when the screener is a test fake
        return {}


def _chinese_names() -> dict[str, str]:
    """Criterion id and English label -> `name_zh` of the mappings (first study that has one)."""
    names: dict[str, str] = {}
    for study in _studies().values():
        for crit in study.criteria:
            if crit.name_zh:
                names.setdefault(crit.id, crit.name_zh)
                names.setdefault(label(crit.id), crit.name_zh)
    return names


@bp.app_template_filter("criterion")
def criterion(item: Any) -> str | Markup:
    """A criterion's short name (a stored Criterion, its id or its label) for the reader.

    English pages derive it from the id ('ln-biopsy' -> 'LN biopsy'); Chinese ones take the
    mappings' `name_zh`, else show the English name marked as such.
    """
    key = str(getattr(item, "id", item))
    if language() == "en":
        return label(key)
    found = _chinese_names().get(key)
    return found if found else english(label(key))


@bp.app_template_filter("criterion_text")
def criterion_text(mapping: Any) -> str | Markup:
    """A criterion's registry text (the mapping's `text`, or `text_zh` for Chinese readers)."""
    if language() != "en" and getattr(mapping, "text_zh", None):
        return str(mapping.text_zh)
    return english(getattr(mapping, "text", mapping))


@bp.app_template_filter("study_title")
def study_title(key: Any) -> str | Markup:
    """A study's title by its key (the mappings' `title_zh` for Chinese readers)."""
    study = _studies().get(str(key))
    if study is None:
        return str(key)
    if language() != "en" and getattr(study, "title_zh", None):
        return str(study.title_zh)
    return english(study.title)


@bp.app_template_filter("sex")
def sex(code: Any) -> str:
    """Patient.gender in the reader's language ('sex unknown' when not recorded)."""
    words = SEXES.get(str(code or "unknown"))
    return words() if words else str(code)


@bp.app_template_filter("answer")
def answer(text: Any) -> str:
    """A recorded answer as the confirmations table shows it ('met', 'signed', 'score 12')."""
    shown = str(text or "")
    if shown.startswith("score "):
        return gettext("score %(score)s", score=shown.removeprefix("score "))
    return status(shown)




def english(text: Any) -> str | Markup:
    """Text that has no translation, marked as English on a page in another language."""
    shown = str(text or "")
    if not shown or language() == "en":
        return shown
    return Markup('<span lang="en">{}</span>').format(shown)


def _chinese_texts() -> dict[str, str]:
    """Criterion English text -> `text_zh` of the mappings (reasons quote the text; a
    combination's reason quotes its parts' texts)."""
    def with_parts(criteria: Any) -> Any:
        for crit in criteria:
            yield crit
            yield from with_parts(crit.params.get("of", ()))

    return {crit.text: crit.text_zh for study in _studies().values()
            for crit in with_parts(study.criteria) if crit.text_zh}


def reason_words() -> reason_text.Words:
    """How reasons fill their placeholders in the current language."""
    return reason_text.Words(day=day, texts=_chinese_texts() if language() == "zh_CN" else {},
                             comma=gettext(", "), semicolon=gettext("; "), stop=gettext("."))


@bp.app_template_filter("reason")
def reason(text: Any) -> str | Markup:
    """A reason the engine wrote (English, as FHIR keeps it) in the reader's language.

    Matched to the catalogue's sentence templates (pages/reason_text.py); a reason no template
    fits is shown in English, marked as such.
    """
    shown = str(text or "")
    if not shown or language() == "en":
        return shown
    try:
        return reason_text.translate(shown, reason_words())
    except reason_text.Untranslated:
        return english(shown)


def _worksheet(text: str) -> str | Markup:
    if text in WORKSHEET_TEXTS:
        return str(gettext(text))
    return english(text)


@bp.app_template_filter("worksheet_label")
def worksheet_label(part: Any) -> str | Markup:
    """A worksheet item's or domain's name (SLEDAI-2K, EULAR/ACR) in the reader's language."""
    return _worksheet(str(part.label))


@bp.app_template_filter("worksheet_definition")
def worksheet_definition(part: Any) -> str | Markup:
    """A worksheet item's definition in the reader's language."""
    return _worksheet(str(part.definition))


# A value as the use cases spell it ("12 years", "45 days", "yes"), in the reader's words.
VALUE_WORDS = {
    "years": lambda n: gettext("%(n)s years", n=n),
    "months": lambda n: gettext("%(n)s months", n=n),
    "weeks": lambda n: gettext("%(n)s weeks", n=n),
    "days": lambda n: gettext("%(n)s days", n=n),
    "hours": lambda n: gettext("%(n)s hours", n=n),
}
ANSWERS = {"yes": lambda: gettext("yes"), "no": lambda: gettext("no")}


@bp.app_template_filter("value")
def value(text: Any) -> str:
    """A criterion's or evidence's value: numbers and units as written, time units and yes/no
    in the reader's words."""
    shown = str(text or "")
    if shown in ANSWERS:
        return ANSWERS[shown]()
    number, _, unit = shown.partition(" ")
    words = VALUE_WORDS.get(unit)
    return words(number) if words else shown


@bp.app_template_filter("evidence_what")
def evidence_what(text: Any) -> str:
    """What an evidence resource is: our words for it, or the record's own display (in the
    reader's words when it is exactly one of the reasons' terms, 'mycophenolic acid')."""
    words = EVIDENCE_WORDS.get(str(text or ""))
    return words() if words else reason_text.known_term(str(text or ""))


# The reasons a person gives for a workflow change (service/fhir/progress.py), in words.
REASON_CODES = {
    "family-declined": lambda: pgettext("reason", "Declined by the family"),
    "clinician-declined": lambda: pgettext("reason", "Clinician declined"),
    "not-approached": lambda: pgettext("reason", "Not approached"),
    "screen-failure": lambda: pgettext("reason", "Screen failure"),
    "withdrawn": lambda: pgettext("reason", "Withdrawn"),
    "other": lambda: pgettext("reason", "Other"),
    "screened": lambda: pgettext("reason", "Screened"),
}
# The funnel's stages (service/usecases/study_funnel.py), in words.
STAGE_CODES = {
    "screened": lambda: pgettext("stage", "screened"),
    "candidate": lambda: pgettext("stage", "candidate"),
    "eligible": lambda: pgettext("stage", "eligible"),
    "approached": lambda: pgettext("stage", "approached"),
    "consented": lambda: pgettext("stage", "consented"),
    "on study": lambda: pgettext("stage", "on study"),
}


@bp.app_template_filter("reason_code")
def reason_code(code: str) -> str:
    """A workflow reason code in the reader's language."""
    found = REASON_CODES.get(code)
    return found() if found else code


@bp.app_template_filter("progress_reason")
def progress_reason(reason: Any) -> str:
    """A progress.Reason as the pages show it: 'Screen failure: SLEDAI-2K', 'Withdrawn: ...'."""
    if reason is None:
        return ""
    base = reason_code(reason.code)
    detail = criterion(reason.criterion) if reason.criterion else reason.why
    return f"{base}: {detail}" if detail else base


@bp.app_template_filter("stage")
def stage(code: str) -> str:
    """A funnel stage in the reader's language."""
    found = STAGE_CODES.get(code)
    return found() if found else code


@bp.app_template_filter("left_reason")
def left_reason(text: str) -> str:
    """A log line's reason ('Withdrawn: moved', 'Not eligible: age, ana') in words."""
    head, sep, rest = text.partition(": ")
    if head == "Not eligible":
        return gettext("Not eligible: %(criteria)s", criteria=", ".join(
            criterion(c) for c in rest.split(", ") if c)) if sep else gettext("Not eligible")
    code = next((k for k, f in REASON_CODES.items()
                 if k != "screened" and head == _ENGLISH_REASONS.get(k)), None)
    if code is None:
        return text
    return f"{reason_code(code)}{sep}{rest}"


_ENGLISH_REASONS = {
    "family-declined": "Declined by the family", "clinician-declined": "Clinician declined",
    "not-approached": "Not approached", "screen-failure": "Screen failure",
    "withdrawn": "Withdrawn", "other": "Other",
}


def reason_error_words(exc: Any) -> str:
    """Why a workflow change was refused, in the reader's language."""
    kind = getattr(exc, "kind", "")
    if kind == "needs-reason":
        return gettext("Say why the patient leaves: choose a reason.")
    if kind == "needs-why":
        return gettext("Say why in a few words.")
    if kind == "needs-criterion":
        return gettext("Screen failure: choose the criterion that failed.")
    return gettext("Unknown reason.")
