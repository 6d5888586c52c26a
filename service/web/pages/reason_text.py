"""Reasons in the reader's language: the engine's English sentences matched to catalogue templates.

The engine writes its reasons in English and FHIR keeps them so (the pages read them back from
the ResearchSubjects). Each sentence shape the engine writes is listed here once as an English
template, which is also its msgid; the catalogue gives the other language's sentence with the
same placeholders. A reason is matched against the templates (a placeholder matches any text,
a `date` one only a date); placeholders are then filled by kind, from their name:

- `date...`: formatted for the locale;
- `what...` / `term...`: a record or medicine term of TERMS (the template only matches when it
  is one), in the reader's words;
- `reason...`, `source`, `range`, `clauses`, `detail`: a phrase translated the same way;
- `list...`: a comma list whose items are translated the same way;
- `text`: a criterion's registry text (the study file's `text_zh`);
- `items`: classification items with their points (pages/worksheet_words.py);
- `record`: a record's own words as written (one of TERMS in the reader's words);
- anything else (values, units, references): as written.

A reason no template matches is shown in English, marked as such (pages/wording.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask_babel import get_translations, gettext


def N_(message: str) -> str:  # noqa: N802  (gettext's name for "extract, translate later")
    """Mark a string for the catalogue without translating it here."""
    return message


# Every sentence shape of the engine's reasons (no final full stop: it is added back).
TEMPLATES = (
    # decide.py: exclusions and who a criterion applies to
    N_("Excluded: %(reason)s"),
    N_("Not excluded: %(reason)s"),
    N_("Not applicable: %(reason)s"),
    N_("the patient is %(term)s"),
    N_("the patient is %(term)s (applies to %(term2)ss only)"),
    N_("the patient is %(years)s years old (applies from %(low)s)"),
    N_("the patient is %(years)s years old (applies up to %(high)s)"),
    # ages
    N_("Age %(years)s years on %(date)s (required: %(range)s)"),
    N_("Age %(years)s years on %(date)s is outside the required %(range)s"),
    N_("%(low)s-%(high)s years"),
    N_("at least %(low)s years"),
    N_("at most %(high)s years"),
    # measurements against a threshold
    N_("%(what)s %(value)s on %(date)s is at least %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is at most %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is above %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is below %(limit)s"),
    N_("%(what)s %(value)s on %(date)s is within %(limit)s"),
    N_("%(what)s %(value)s on %(date)s"),
    N_("Bedside Schwartz eGFR %(value)s (%(factor)s x height %(height)s on %(date)s / "
       "creatinine %(creatinine)s on %(date2)s) is at least %(limit)s"),
    N_("Bedside Schwartz eGFR %(value)s (%(factor)s x height %(height)s on %(date)s / "
       "creatinine %(creatinine)s on %(date2)s) is below %(limit)s"),
    N_("%(reason)s, and bedside Schwartz cannot be computed: %(reason2)s"),
    # multiples of the upper limit of normal
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is at "
       "most %(limit)s x ULN"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is "
       "above %(limit)s x ULN"),
    N_("%(what)s %(value)s on %(date)s = %(ratio)s x ULN (ULN %(uln)s from %(source)s) is at "
       "most %(limit)s x ULN (limit for Gilbert syndrome)"),
    N_("reference range of %(ref)s"),
    N_("CALIPER pediatric table (%(detail)s)"),
    N_("%(what)s, %(term)s, age %(low)s to <%(high)s years: %(value)s"),
    N_("%(reason)s, but %(record)s is recorded: the protocol makes an exception for it, so the "
       "investigator must review"),
    N_("%(reason)s, but %(record)s is recorded (%(ref)s): the protocol makes an exception for "
       "it, so the investigator must review"),
    N_("%(what)s %(value)s on %(date)s was measured within %(days)s days of G-CSF (%(ref)s); "
       "repeat the count after washout"),
    # missing and stale results
    N_("No %(what)s within %(days)s days (latest %(value)s on %(date)s is stale)"),
    N_("No %(what)s on record under the codes searched (%(codes)s)"),
    N_("No pregnancy test within %(days)s days (latest on %(date)s)"),
    N_("%(what)s: %(reason)s"),
    N_("no result on record"),
    N_("no result in the window"),
    N_("not shown by %(count)s result(s)"),
    N_("not shown by %(count)s result(s) in the window"),
    # SLEDAI-2K
    N_("%(reason)s; lab items alone score %(score)s (results of the last %(days)s days; score "
       "the clinical items with the SLEDAI-2K worksheet)"),
    # diagnoses and the 2019 EULAR/ACR classification
    N_("%(record)s is recorded (%(ref)s)"),
    N_("Only drug-induced lupus is recorded, which does not count as SLE"),
    N_("%(reason)s; no 2019 EULAR/ACR classification is recorded; the laboratory and biopsy "
       "items alone reach %(score)s of the 10 2019 EULAR/ACR points (entry criterion ANA >= "
       "1:80 %(term)s)"),
    N_("%(reason)s; no 2019 EULAR/ACR classification is recorded; the laboratory and biopsy "
       "items alone reach %(score)s of the 10 2019 EULAR/ACR points (entry criterion ANA >= "
       "1:80 %(term)s): %(items)s"),
    N_("no ANA titre of 1:80 or more (latest %(value)s on %(date)s); an ANA result without a "
       "titre is recorded: tick the entry criterion only if that test is equivalent to HEp-2 "
       "at 1:80"),
    N_("the laboratory and biopsy items alone reach %(score)s of the 10 2019 EULAR/ACR points "
       "(entry criterion ANA >= 1:80 %(term)s)"),
    N_("the laboratory and biopsy items alone reach %(score)s of the 10 2019 EULAR/ACR points "
       "(entry criterion ANA >= 1:80 %(term)s): %(items)s"),
    N_("Classified as SLE by the 2019 EULAR/ACR criteria on %(date)s: entry criterion met, "
       "%(total)s points (at least %(threshold)s); %(reason)s"),
    N_("Not classified as SLE by the 2019 EULAR/ACR criteria recorded on %(date)s: "
       "%(reason)s; %(reason2)s"),
    N_("the entry criterion (ANA >= 1:80) is not met"),
    N_("%(total)s points, below %(threshold)s"),
    N_("no clinical item counts (at least one is required)"),
    N_("The 2019 EULAR/ACR classification recorded on %(date)s (%(ref)s) has no readable total "
       "or entry criterion; record it again with the worksheet; %(reason)s"),
    N_("class recorded on %(date)s"),
    N_("no such class recorded"),
    # kidney biopsy and proteinuria
    N_("Class III/IV lupus nephritis with a kidney biopsy on %(date)s, %(days)s days before "
       "screening (limit %(limit)s)"),
    N_("The latest kidney biopsy (%(date)s) is %(days)s days before screening, more than "
       "%(limit)s days"),
    N_("No active class III or IV lupus nephritis is recorded (Condition or pathology "
       "conclusion)"),
    # medicines
    N_("%(count)s of the listed agents taken for more than %(days)s days: %(list)s"),
    N_("Fewer than %(count)s of the listed agents taken for more than %(days)s days (%(list)s)"),
    N_("%(what)s (%(days)s days)"),
    N_("High-dose glucocorticoid for %(days)s days, hydroxychloroquine and %(count)s DMARDs "
       "(%(list)s) are recorded"),
    N_("Intolerant to standard treatment (%(list)s)"),
    N_("The medication history does not show: %(clauses)s"),
    N_("glucocorticoid >= %(dose)s mg/kg/day prednisone-equivalent for >= %(days)s days "
       "(longest high-dose course %(longest)s days)"),
    N_("at least %(count)s DMARDs (found %(found)s: %(list)s)"),
    N_("no intolerance to standard treatment is recorded"),
    N_("No medication history is recorded"),
    N_("No medication history is recorded, so refractoriness cannot be judged"),
    # deceased patients (engine/deceased.py)
    N_("deceased"),
    N_("deceased on %(date)s"),
    N_("deceased (the date of death cannot be read)"),
    # demographics, diagnoses, more results
    N_("No birth date on record, so the age is unknown"),
    N_("The birth date is after the screening date"),
    N_("The sex is not recorded as female or male, so it is unknown whether a pregnancy test is "
       "needed"),
    N_("The latest pregnancy test has no readable result"),
    N_("The latest %(what)s result has no readable titer"),
    N_("ANA reported negative on %(date)s: below %(limit)s"),
    N_("ANA reported negative on %(date)s, without the screening dilution; %(limit)s cannot be "
       "judged"),
    N_("ANA titer %(value)s on %(date)s may or may not reach %(limit)s"),
    N_("No %(record)s diagnosis is recorded"),
    N_("%(record)s is recorded"),
    N_("%(record)s is recorded (%(ref)s), but %(reason)s"),
    N_("a person recorded on %(date)s that it is present: %(record)s"),
    N_("a person recorded on %(date)s that it is absent: %(record)s"),
    # confirmations, consent, pregnancy
    N_("Confirmed by a person on %(date)s"),
    N_("Needs a person to confirm: %(text)s. Record it with the confirmation form on the "
       "patient page"),
    N_("No signed informed consent for this study is recorded: %(text)s. Record it with the "
       "confirmation form on the patient page once it is signed"),
    N_("Informed consent for this study is recorded as active (signed %(date)s)"),
    N_("Negative pregnancy test on %(date)s"),
    N_("Positive pregnancy test on %(date)s"),
)

# Record and medicine terms the templates' `what` and `term` placeholders accept.
TERMS = (
    N_("ALT"), N_("AST"), N_("ALT (no P5P)"), N_("AST (no P5P)"), N_("INR"), N_("PT"),
    N_("WBC"), N_("LVEF"), N_("SpO2"), N_("ECOG"), N_("ECOG score"), N_("eGFR"), N_("C3"),
    N_("C4"), N_("Reported eGFR"), N_("ANA titer"), N_("ANA titre"), N_("SLEDAI-2K score"),
    N_("Haemoglobin"), N_("haemoglobin"), N_("Total bilirubin"), N_("total bilirubin"),
    N_("Lymphocytes"), N_("lymphocytes"), N_("Neutrophils"), N_("neutrophils"),
    N_("creatinine"), N_("Urine protein/creatinine ratio"), N_("urine protein/creatinine ratio"),
    N_("24 h urine protein"), N_("CD19+ B cell percentage"), N_("CD19+ B cell count"),
    N_("male"), N_("female"), N_("both sexes"), N_("met"), N_("not shown"),
    N_("glucocorticoids"), N_("mycophenolic acid analogues"), N_("tacrolimus"),
    N_("cyclosporine"), N_("leflunomide"), N_("cyclophosphamide"), N_("azathioprine"),
    N_("mycophenolate"), N_("methotrexate"), N_("hydroxychloroquine"),
    # concept names the engine writes in its own words (a record's own words stay as written)
    N_("lupus nephritis"), N_("systemic lupus erythematosus"), N_("SLE"),
    N_("drug-induced lupus"),
    # the study files' `wording` phrases (what a result means for a criterion)
    N_("CD19 is expressed"), N_("proteinuria persists"),
)
_TERMS = frozenset(TERMS)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_DATE = r"\d{4}(?:-\d{2}(?:-\d{2})?)?"
_RECURSIVE = ("reason", "source", "range", "clauses", "detail")


@dataclass(frozen=True)
class _Template:
    msgid: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]


def _group(name: str) -> str:
    if name.startswith("date"):
        return _DATE
    if name.startswith(("what", "term")):  # longest first: "ALT (no P5P)" before "ALT"
        return "|".join(re.escape(t) for t in sorted(_TERMS, key=len, reverse=True))
    if name.startswith(_RECURSIVE) or name.startswith(("list", "text", "items")):
        return ".+?"
    # A value, unit or reference never holds ": " or "; " (1:160 does not): those end it.
    return r"(?:(?!: |; ).)+?"


def _compile(msgid: str) -> _Template:
    parts = _PLACEHOLDER.split(msgid)
    regex, names = "", []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        else:
            names.append(part)
            regex += f"(?P<{part}>{_group(part)})"
    return _Template(msgid, re.compile(regex, re.S), tuple(names))


# The most literal text first: a specific shape wins over a general one.
_COMPILED = tuple(sorted((_compile(t) for t in TEMPLATES),
                         key=lambda t: -len(_PLACEHOLDER.sub("", t.msgid))))


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
    for candidate in dict.fromkeys((text, text[:1].upper() + text[1:])):
        for template in _COMPILED:
            found = template.pattern.fullmatch(candidate)
            if found is None:
                continue
            try:
                filled = {name: _fill(name, found.group(name), words) for name in template.names}
            except Untranslated:
                continue
            if get_translations().ugettext(template.msgid) == template.msgid:
                raise Untranslated(text)  # the catalogue has no sentence for this shape
            return str(gettext(template.msgid, **filled) if filled else gettext(template.msgid))
    if "; " in text:  # clauses joined by the engine: each is a sentence of its own
        return words.semicolon.join(_phrase(part, words) for part in text.split("; "))
    head, sep, tail = text.rpartition(": ")
    if sep and tail in _TERMS:  # a study file's wording added after the rule's reason
        return _phrase(head, words) + gettext(": ") + gettext(tail)
    raise Untranslated(text)


def _fill(name: str, value: str, words: Words) -> str:
    if name.startswith("date"):
        return words.day(value)
    if name.startswith(("what", "term")):
        if value not in _TERMS:
            raise Untranslated(value)
        return str(gettext(value))
    if name.startswith(_RECURSIVE):
        return _phrase(value, words)
    if name.startswith("list"):
        return words.comma.join(_phrase(item, words) if item not in _TERMS else gettext(item)
                                for item in value.split(", "))
    if name.startswith("record"):  # a record's own words, or one of our terms
        return str(gettext(value)) if value in _TERMS else value
    if name == "items":  # classification items with their points: "Low C3 or low C4 3, ..."
        return words.comma.join(f"{_worksheet_text(m.group(1))} {m.group(2)}"
                                for m in re.finditer(r"(.+?) (\d+)(?=, |$)", value))
    if name == "text":
        if value not in words.texts:
            raise Untranslated(value)
        return words.texts[value]
    return value


def _worksheet_text(text: str) -> str:
    from service.web.pages.worksheet_words import WORKSHEET_TEXTS  # it imports N_ from here

    if text not in WORKSHEET_TEXTS:
        raise Untranslated(text)
    return str(gettext(text))
