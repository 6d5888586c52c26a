"""One evaluator per mapping rule: decide a criterion as met, not-met or unknown, with evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from service.engine.labs import (
    Lookup,
    Measurement,
    compare,
    fmt,
    in_window,
    label,
    latest_entries,
    latest_quantity,
    ratio_denominator,
)
from service.engine.medications import (
    MedicationUse,
    has_medication_history,
    longest_course,
    medication_uses,
)
from service.engine.record import (
    USABLE_OBSERVATION,
    Entry,
    PatientRecord,
    as_list,
    codings,
    condition_active,
    parse_date,
    ref_key,
)
from service.engine.results import CriterionResult, Value
from service.engine.uln import find_uln
from service.mappings import Concept, CriterionMapping, Mappings

CONSENT_POLICY_PREFIX = "urn:trial-eligibility:study:"
MANUAL_SYSTEM = "urn:trial-eligibility:criterion"
OPERATOR_WORDS = {">=": "at least", "<=": "at most", ">": "above", "<": "below"}
FAIL_WORDS = {">=": "below", "<=": "above", ">": "not above", "<": "not below"}


@dataclass
class Context:
    """What every rule needs: the record, the mappings, the as-of date and the study key."""

    record: PatientRecord
    mappings: Mappings
    as_of: date
    study: str
    _uses: list[MedicationUse] | None = None

    def concept(self, name: str) -> Concept:
        return self.mappings.concepts[name]

    @property
    def uses(self) -> list[MedicationUse]:
        if self._uses is None:
            self._uses = medication_uses(self.record, self.mappings, self.as_of)
        return self._uses


Rule = Callable[[Context, CriterionMapping], CriterionResult]
RULE_FUNCTIONS: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(func: Rule) -> Rule:
        RULE_FUNCTIONS[name] = func
        return func
    return register


def result(crit: CriterionMapping, outcome: str, reason: str, *, value: Value | None = None,
           evidence: tuple[str, ...] | list[str] = (), uln: Value | None = None,
           uln_source: str | None = None) -> CriterionResult:
    """Build a CriterionResult for a mapping criterion."""
    return CriterionResult(
        id=crit.id, result=outcome, reason=reason, kind=crit.kind,  # type: ignore[arg-type]
        value=value, evidence=tuple(dict.fromkeys(evidence)), uln=uln, uln_source=uln_source,
    )


def _day(d: date) -> str:
    return d.isoformat()


def cap(text: str) -> str:
    """First letter upper-cased, the rest untouched (ALT stays ALT)."""
    return text[:1].upper() + text[1:]


def with_unit(number: str, unit: str | None) -> str:
    """A number with its unit for reasons: no unit for '1', no space before '%'."""
    if not unit or unit == "1":
        return number
    if unit == "%":
        return f"{number}%"
    return f"{number} {unit}"


# --------------------------------------------------------------------------- age

def age_range(birth: date, precision: str, as_of: date) -> tuple[int, int]:
    """Youngest and oldest whole-year age a (possibly partial) birth date allows at as_of."""
    def whole_years(born: date) -> int:
        years = as_of.year - born.year
        if (as_of.month, as_of.day) < (born.month, born.day):
            years -= 1
        return years

    if precision == "day":
        age = whole_years(birth)
        return age, age
    if precision == "month":
        last = date(birth.year + (birth.month == 12), birth.month % 12 + 1, 1) - timedelta(days=1)
        return whole_years(last), whole_years(birth)
    return whole_years(date(birth.year, 12, 31)), whole_years(date(birth.year, 1, 1))


@rule("age")
def age(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    birth = ctx.record.birth_date
    ref = f"Patient/{ctx.record.patient_id}"
    low = crit.params.get("min_years")
    high = crit.params.get("max_years")
    bounds = (f"{low}-{high} years" if low is not None and high is not None
              else f"at least {low} years" if low is not None else f"at most {high} years")
    if birth is None:
        return result(crit, "unknown", "No birth date on record, so the age is unknown.",
                      evidence=[ref])
    if birth.day > ctx.as_of:
        return result(crit, "unknown", "The birth date is after the screening date.",
                      evidence=[ref])
    youngest, oldest = age_range(birth.day, birth.precision, ctx.as_of)

    def fits(years: int) -> bool:
        return (low is None or years >= low) and (high is None or years <= high)

    if fits(youngest) and fits(oldest):
        return result(crit, "met", f"Age {oldest} years on {_day(ctx.as_of)} (required: {bounds}).",
                      value=Value(oldest, "a"), evidence=[ref])
    if not fits(youngest) and not fits(oldest) and (
        youngest == oldest or (low is None or oldest < low) or (high is None or youngest > high)
    ):
        return result(crit, "not-met",
                      f"Age {oldest} years on {_day(ctx.as_of)} is outside the required {bounds}.",
                      value=Value(oldest, "a"), evidence=[ref])
    return result(crit, "unknown",
                  f"The birth date is partial ({ctx.record.patient.get('birthDate')}): age is "
                  f"{youngest} or {oldest} years, which may or may not be within {bounds}.",
                  evidence=[ref])


# --------------------------------------------------------------------------- diagnoses

def _conditions(ctx: Context, concept: str) -> list[Entry]:
    return [
        e for e in ctx.record.entries(concept)
        if e.resource.get("resourceType") == "Condition"
        and (e.when is None or e.when.day <= ctx.as_of)
    ]


@rule("diagnosis")
def diagnosis(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    name = crit.params["concept"]
    exclude = crit.params.get("exclude", ())
    excluded_refs = {e.ref for ex in exclude for e in _conditions(ctx, ex)}
    found = [e for e in _conditions(ctx, name) if e.ref not in excluded_refs]
    active = [e for e in found if condition_active(e.resource)]
    if active:
        entry = active[0]
        return result(crit, "met", f"{_display(entry.resource)} is recorded ({entry.ref}).",
                      evidence=[e.ref for e in active])
    if found:
        return result(crit, "met",
                      f"{_display(found[0].resource)} is recorded, though not marked active "
                      f"({found[0].ref}).", evidence=[e.ref for e in found])
    if excluded_refs:
        return result(crit, "not-met",
                      "Only a diagnosis that does not qualify is recorded (e.g. drug-induced "
                      "lupus, which is not SLE).", evidence=sorted(excluded_refs))
    return result(crit, "not-met",
                  f"No {name.upper() if len(name) <= 4 else name} diagnosis is recorded.")


def _display(resource: dict[str, Any]) -> str:
    code = resource.get("code")
    if isinstance(code, dict):
        if isinstance(code.get("text"), str) and code["text"].strip():
            return code["text"].strip()[:80]
        for coding in codings(code):
            if isinstance(coding.get("display"), str):
                return coding["display"].strip()[:80]
            if isinstance(coding.get("code"), str):
                return f"Code {coding['code']}"
    return "A matching diagnosis"


@rule("absence")
def absence(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    found = [e for name in crit.params["concepts"] for e in _conditions(ctx, name)
             if condition_active(e.resource)]
    if found:
        return result(crit, "not-met", f"{_display(found[0].resource)} is recorded.",
                      evidence=[e.ref for e in found])
    return result(crit, "met", "None of the excluding conditions is recorded.")


# --------------------------------------------------------------------------- thresholds

def _lookup_unknown(crit: CriterionMapping, lookup: Lookup) -> CriterionResult:
    text = lookup.problem or "no value"
    return result(crit, "unknown", text[0].upper() + text[1:] + ".", evidence=lookup.evidence)


def _value(m: Measurement) -> Value:
    return Value(m.value, m.unit)


def _washout(ctx: Context, crit: CriterionMapping, m: Measurement) -> CriterionResult | None:
    names = crit.params.get("washout_concepts")
    days = crit.params.get("washout_days")
    if not names or days is None:
        return None
    window_start = m.when - timedelta(days=days)
    for use in ctx.uses:
        if not set(use.concepts) & set(names):
            continue
        start, end = use.start, use.end or use.start
        if start is None:
            return result(
                crit, "unknown",
                f"G-CSF is recorded without a date ({use.ref}), so the {days}-day washout before "
                f"the count on {_day(m.when)} cannot be checked.",
                value=_value(m), evidence=[m.ref, use.ref])
        if start <= m.when and (end or start) >= window_start:
            return result(
                crit, "unknown",
                f"{cap(label(ctx.concept(crit.params['concept'])))} {m.original} on "
                f"{_day(m.when)} was measured within {days} days of G-CSF ({use.ref}); repeat "
                "the count after washout.",
                value=_value(m), evidence=[m.ref, use.ref])
    return None


@rule("threshold")
def threshold(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    concept = ctx.concept(crit.params["concept"])
    lookup = latest_quantity(ctx.record, concept, ctx.as_of, crit.params.get("lookback_days"))
    if lookup.measurement is None:
        return _lookup_unknown(crit, lookup)
    m = lookup.measurement
    washed = _washout(ctx, crit, m)
    if washed is not None:
        return washed
    op, limit = crit.params["operator"], crit.params["threshold"]
    verdict = compare(m.value, m.comparator, op, limit)
    shown = with_unit(f"{m.comparator or ''}{fmt(m.value)}", m.unit)
    name = label(concept)
    limit_text = with_unit(fmt(limit), concept.unit)
    if verdict is None:
        return result(crit, "unknown",
                      f"{cap(name)} {shown} on {_day(m.when)} cannot be compared with "
                      f"{limit_text}.", value=_value(m), evidence=[m.ref])
    if verdict:
        return result(crit, "met",
                      f"{cap(name)} {shown} on {_day(m.when)} is {OPERATOR_WORDS[op]} "
                      f"{limit_text}.", value=_value(m), evidence=[m.ref])
    return result(crit, "not-met",
                  f"{cap(name)} {shown} on {_day(m.when)} is {FAIL_WORDS[op]} "
                  f"{limit_text}.", value=_value(m), evidence=[m.ref])


@rule("uln-multiple")
def uln_multiple(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    concept = ctx.concept(crit.params["concept"])
    name = label(concept)
    lookup = latest_quantity(ctx.record, concept, ctx.as_of, crit.params.get("lookback_days"))
    if lookup.measurement is None:
        return _lookup_unknown(crit, lookup)
    m = lookup.measurement
    uln, problem = find_uln(ctx.record, ctx.mappings, concept, m)
    if uln is None:
        return result(crit, "unknown",
                      f"{cap(name)} {m.original} on {_day(m.when)} has no ULN: {problem}.",
                      value=_value(m), evidence=[m.ref])
    multiple = crit.params["max_multiple"]
    alternative = [e for n in crit.params.get("alternative_if", ()) for e in _conditions(ctx, n)]
    evidence = [m.ref]
    why = ""
    if alternative and "alternative_max_multiple" in crit.params:
        multiple = crit.params["alternative_max_multiple"]
        evidence += [e.ref for e in alternative]
        why = f" (limit for {_display(alternative[0].resource)})"
    limit = uln.value * multiple
    ratio = (m.value / uln.value) if uln.value else None
    ratio_text = f" = {fmt(ratio)} x ULN" if ratio is not None else ""
    shown = with_unit(f"{m.comparator or ''}{fmt(m.value)}", m.unit)
    uln_shown = with_unit(fmt(uln.value), uln.unit)
    text = (f"{cap(name)} {shown} on {_day(m.when)}{ratio_text} (ULN {uln_shown} from "
            f"{uln.source})")
    verdict = compare(m.value, m.comparator, "<=", limit)
    common = {"value": _value(m), "uln": Value(uln.value, uln.unit), "uln_source": uln.source}
    if verdict is None:
        return result(crit, "unknown", f"{text} cannot be compared with {fmt(multiple)} x ULN.",
                      evidence=evidence, **common)
    if verdict:
        return result(crit, "met", f"{text} is at most {fmt(multiple)} x ULN{why}.",
                      evidence=evidence, **common)
    review = [e for n in crit.params.get("review_if", ()) for e in _conditions(ctx, n)]
    if review:
        return result(crit, "unknown",
                      f"{text} is above {fmt(multiple)} x ULN, but {_display(review[0].resource)} "
                      "is recorded: the protocol exempts an elevation from inflammatory myopathy, "
                      "so the investigator must review.",
                      evidence=evidence + [e.ref for e in review], **common)
    return result(crit, "not-met", f"{text} is above {fmt(multiple)} x ULN{why}.",
                  evidence=evidence, **common)


# --------------------------------------------------------------------------- eGFR

@rule("egfr")
def egfr(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    limit = crit.params["threshold"]
    unit = ctx.concept("egfr").unit or "mL/min/{1.73_m2}"
    reported = latest_quantity(ctx.record, ctx.concept("egfr"), ctx.as_of,
                               crit.params.get("lookback_days"))
    evidence: list[str] = []
    how = ""
    if reported.measurement is not None:
        m = reported.measurement
        value, comparator, when = m.value, m.comparator, m.when
        evidence = [m.ref]
        how = f"Reported eGFR {m.comparator or ''}{fmt(m.value)} {unit} on {_day(when)}"
    else:
        schwartz, problem, refs = _schwartz(ctx, crit)
        if schwartz is None:
            missing = reported.problem or "no eGFR"
            return result(crit, "unknown",
                          f"{missing[0].upper() + missing[1:]}, and bedside Schwartz cannot be "
                          f"computed: {problem}.", evidence=refs)
        value, comparator, when, how = schwartz
        evidence = refs
    verdict = compare(value, comparator, ">=", limit)
    # A computed eGFR is shown to one decimal; the comparison above used the exact value.
    shown_value = value if reported.measurement is not None else value.quantize(Decimal("0.1"))
    out_value = Value(shown_value, unit)
    if verdict is None:
        return result(crit, "unknown", f"{how} cannot be compared with {fmt(limit)}.",
                      value=out_value, evidence=evidence)
    if verdict:
        return result(crit, "met", f"{how} is at least {fmt(limit)}.", value=out_value,
                      evidence=evidence)
    review = [e for n in crit.params.get("review_if", ()) for e in _conditions(ctx, n)]
    if review:
        return result(crit, "unknown",
                      f"{how} is below {fmt(limit)}, but lupus nephritis is recorded "
                      f"({review[0].ref}): renal dysfunction from SLE is a protocol exception, "
                      "so the investigator must review.", value=out_value,
                      evidence=evidence + [e.ref for e in review])
    return result(crit, "not-met", f"{how} is below {fmt(limit)}.", value=out_value,
                  evidence=evidence)


def _schwartz(ctx: Context, crit: CriterionMapping
              ) -> tuple[tuple[Decimal, str | None, date, str] | None, str, list[str]]:
    """Bedside Schwartz eGFR from the latest creatinine and a height near it."""
    max_age = crit.params.get("schwartz_max_age")
    birth = ctx.record.birth_date
    if max_age is not None and birth is not None:
        _, oldest = age_range(birth.day, birth.precision, ctx.as_of)
        if oldest > max_age:
            return None, f"the patient is over {max_age}, the pediatric formula does not apply", []
    creat = latest_quantity(ctx.record, ctx.concept("creatinine"), ctx.as_of,
                            crit.params.get("lookback_days"))
    if creat.measurement is None:
        return None, creat.problem or "no creatinine", list(creat.evidence)
    c = creat.measurement
    if c.comparator is not None or c.value <= 0:
        return None, f"creatinine {c.original} is not an exact positive value", [c.ref]
    window = crit.params.get("height_window_days", 180)
    height_concept = ctx.concept("body-height")
    heights, _ = latest_entries(ctx.record, height_concept, ctx.as_of)
    best = None
    for entry in heights:
        assert entry.when is not None
        if abs((entry.when.day - c.when).days) > window:
            continue
        lookup = latest_quantity(_single(ctx.record, entry, height_concept.name), height_concept,
                                 entry.when.day, 0)
        if lookup.measurement is not None:
            best = lookup.measurement
            break
    if best is None:
        return None, f"no body height within {window} days of the creatinine on {_day(c.when)}", [
            c.ref]
    k = crit.params["schwartz_k"]
    # Compared exactly; rounded only where it is shown.
    value = k * best.value / c.value
    shown = fmt(value.quantize(Decimal("0.1")))
    how = (f"Bedside Schwartz eGFR {shown} mL/min/1.73 m2 ({fmt(k)} x height "
           f"{fmt(best.value)} cm on {_day(best.when)} / creatinine {fmt(c.value)} mg/dL on "
           f"{_day(c.when)})")
    return (value, None, c.when, how), "", [c.ref, best.ref]


def _single(record: PatientRecord, entry: Entry, concept: str) -> PatientRecord:
    """A view of the record where a concept has only the given entry (to read one value)."""
    view = PatientRecord(patient=record.patient, patient_id=record.patient_id,
                         mappings=record.mappings, by_type=record.by_type,
                         by_ref=record.by_ref, report_dates=record.report_dates)
    view.by_concept = {concept: [entry]}
    return view


# --------------------------------------------------------------------------- manual

def _manual_observations(ctx: Context, criterion_id: str) -> list[Entry]:
    out = []
    for entry in ctx.record.entries("manual-confirmation"):
        if entry.resource.get("status") not in USABLE_OBSERVATION:
            continue
        if not any(c.get("system") == MANUAL_SYSTEM and c.get("code") == criterion_id
                   for c in codings(entry.resource.get("code"))):
            continue
        if entry.when is None or entry.when.day > ctx.as_of:
            continue
        out.append(entry)
    return out


@rule("manual")
def manual(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    lookback = crit.params.get("lookback_days", 90)
    interpretation = crit.params.get("interpretation")
    if interpretation:
        coded = _coded_interpretation(ctx, crit, interpretation, lookback)
        if coded is not None:
            return coded
    confirmations = _manual_observations(ctx, crit.id)
    for entry in confirmations:
        assert entry.when is not None
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return result(crit, "unknown",
                          f"The confirmation of {entry.when.day.isoformat()} is older than "
                          f"{lookback} days; a person must confirm it again.",
                          evidence=[entry.ref])
        answer = entry.resource.get("valueBoolean")
        if answer is True:
            return result(crit, "met", f"Confirmed by a person on {_day(entry.when.day)}.",
                          evidence=[entry.ref])
        if answer is False:
            return result(crit, "not-met",
                          f"A person recorded on {_day(entry.when.day)} that it is not met.",
                          evidence=[entry.ref])
    return result(crit, "unknown",
                  "Needs confirmation by a person (record an Observation coded "
                  f"{MANUAL_SYSTEM}|{crit.id} with valueBoolean).")


def _coded_interpretation(ctx: Context, crit: CriterionMapping, concept: str, lookback: int
                          ) -> CriterionResult | None:
    entries, _ = latest_entries(ctx.record, ctx.concept(concept), ctx.as_of)
    normal = ctx.concept(crit.params["normal"]).codes if "normal" in crit.params else frozenset()
    abnormal = (ctx.concept(crit.params["abnormal"]).codes if "abnormal" in crit.params
                else frozenset())
    for entry in entries:
        assert entry.when is not None
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return None
        tokens = {f"{c.get('system')}|{c.get('code')}"
                  for c in codings(entry.resource.get("valueCodeableConcept"))}
        if tokens & abnormal:
            return result(crit, "not-met",
                          f"The ECG of {_day(entry.when.day)} is coded abnormal.",
                          evidence=[entry.ref])
        if tokens & normal:
            return result(crit, "met", f"The ECG of {_day(entry.when.day)} is coded normal.",
                          evidence=[entry.ref])
    return None


def _consent_studies(ctx: Context, resource: dict[str, Any]) -> set[str]:
    """Study keys a Consent names: our policy uri, or the key or registry number anywhere."""
    text = json.dumps(resource, ensure_ascii=False)
    named = set()
    for key, study in ctx.mappings.studies.items():
        if key in text or (study.registry_id and study.registry_id in text):
            named.add(key)
    return named


def _research_scope(resource: dict[str, Any]) -> bool:
    codes = {c.get("code") for c in codings(resource.get("scope"))}
    for category in as_list(resource.get("category")):
        codes |= {c.get("code") for c in codings(category)}
    return "research" in codes


@rule("consent")
def consent(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    policy = f"{CONSENT_POLICY_PREFIX}{ctx.study}"
    found = []
    general = []
    for resource in ctx.record.by_type.get("Consent", []):
        # A draft or proposal is not a decision; only signed, refused or withdrawn ones count.
        if resource.get("status") not in ("active", "rejected", "inactive"):
            continue
        when = parse_date(resource.get("dateTime"))
        if when is not None and when.day > ctx.as_of:
            continue
        named = _consent_studies(ctx, resource)
        item = (when.day if when else date.min, resource, when)
        if ctx.study in named:
            found.append(item)
        elif not named and _research_scope(resource):
            general.append(item)
    if not found and general:
        # A research consent that names no study at all: taken as covering this one, and
        # the reason asks the coordinator to check it.
        found = general
    if not found:
        return result(crit, "unknown",
                      f"No active Consent for this study (policy uri {policy}) is recorded.")
    # The newest decision counts: a later withdrawal overrides an earlier signature.
    found.sort(key=lambda item: item[0], reverse=True)
    _, resource, when = found[0]
    status = resource.get("status")
    generic = found is general
    if status == "active":
        return result(crit, "met",
                      ("A research consent naming no particular study is active"
                       if generic else "Informed consent for this study is recorded as active")
                      + (f" (signed {_day(when.day)})" if when else "")
                      + ("; check that it covers this study." if generic else "."),
                      evidence=[ref_key(resource)])
    return result(crit, "unknown",
                  f"The latest Consent for this study is {status or 'without a status'}; an "
                  "active, signed consent is needed.", evidence=[ref_key(resource)])


# --------------------------------------------------------------------------- pregnancy

@rule("pregnancy")
def pregnancy(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    gender = ctx.record.gender
    min_age = crit.params.get("min_age_years", 10)
    ref = f"Patient/{ctx.record.patient_id}"
    if gender == "male":
        return result(crit, "met", "Not applicable: the patient is male.", evidence=[ref])
    if gender != "female":
        return result(crit, "unknown", "The sex is not recorded as female or male, so it is "
                      "unknown whether a pregnancy test is needed.", evidence=[ref])
    birth = ctx.record.birth_date
    if birth is not None:
        youngest, oldest = age_range(birth.day, birth.precision, ctx.as_of)
        if oldest < min_age:
            return result(crit, "met",
                          f"Not applicable: the patient is {oldest} years old (applies from "
                          f"{min_age}).", evidence=[ref])
    window = crit.params.get("window_days", 30)
    concept = ctx.concept(crit.params["concept"])
    entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
    for entry in entries:
        assert entry.when is not None
        if not in_window(entry.when.day, ctx.as_of, window):
            return result(crit, "unknown",
                          f"No pregnancy test within {window} days (latest on "
                          f"{_day(entry.when.day)}).", evidence=[entry.ref])
        outcome = _hcg_result(entry.resource)
        if outcome == "negative":
            return result(crit, "met", f"Negative pregnancy test on {_day(entry.when.day)}.",
                          value=Value("negative"), evidence=[entry.ref])
        if outcome == "positive":
            return result(crit, "not-met", f"Positive pregnancy test on {_day(entry.when.day)}.",
                          value=Value("positive"), evidence=[entry.ref])
    if entries:
        return result(crit, "unknown", "The latest pregnancy test has no readable result.",
                      evidence=[entries[0].ref])
    return result(crit, "unknown", f"No pregnancy test within {window} days.")


# SNOMED negative / not detected / not pregnant; LOINC answers LA6577-6 Negative,
# LA6576-8 Positive; SNOMED positive / detected / pregnant.
NEGATIVE = {"260385009", "neg", "negative", "not detected", "260415000", "60001007",
            "la6577-6", "not pregnant"}
POSITIVE = {"10828004", "pos", "positive", "detected", "260373001", "77386006", "la6576-8",
            "pregnant"}


def _hcg_result(resource: dict[str, Any]) -> str | None:
    value = resource.get("valueCodeableConcept")
    words: set[str] = set()
    for coding in codings(value):
        for key in ("code", "display"):
            if isinstance(coding.get(key), str):
                words.add(coding[key].strip().lower())
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        words.add(value["text"].strip().lower())
    if isinstance(resource.get("valueString"), str):
        words.add(resource["valueString"].strip().lower())
    if isinstance(resource.get("valueBoolean"), bool):
        words.add("positive" if resource["valueBoolean"] else "negative")
    for item in as_list(resource.get("interpretation")):
        for coding in codings(item):
            code = coding.get("code")
            if code == "POS":
                words.add("positive")
            elif code == "NEG":
                words.add("negative")
    if words & POSITIVE and not words & NEGATIVE:
        return "positive"
    if words & NEGATIVE and not words & POSITIVE:
        return "negative"
    return None


# --------------------------------------------------------------------------- medications

def _weight(ctx: Context, lookback: int) -> Measurement | None:
    lookup = latest_quantity(ctx.record, ctx.concept("body-weight"), ctx.as_of, lookback)
    return lookup.measurement


def _intolerances(ctx: Context, concepts: set[str]) -> list[tuple[str, str]]:
    found = []
    for resource in ctx.record.by_type.get("AllergyIntolerance", []):
        verification = {c.get("code") for c in codings(resource.get("verificationStatus"))}
        clinical = {c.get("code") for c in codings(resource.get("clinicalStatus"))}
        if verification & {"refuted", "entered-in-error"} or clinical & {"inactive", "resolved"}:
            continue
        recorded = parse_date(resource.get("recordedDate")) or parse_date(
            resource.get("onsetDateTime"))
        if recorded is not None and recorded.day > ctx.as_of:
            continue  # recorded after the as-of date
        codes = [resource.get("code")] + [
            r.get("substance") for r in as_list(resource.get("reaction")) if isinstance(r, dict)]
        for code in codes:
            for coding in codings(code):
                for name in ctx.mappings.concepts_for(coding.get("system"), coding.get("code")):
                    if name in concepts:
                        found.append((name, ref_key(resource)))
    return found


@rule("refractory-sle")
def refractory_sle(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    p = crit.params
    steroids, required = set(p["glucocorticoids"]), set(p.get("required", ()))
    agent_of = {concept: name for name, concepts in p["dmards"] for concept in concepts}
    dmards = set(agent_of)
    intolerant = _intolerances(ctx, steroids | required | dmards)
    if intolerant:
        names = ", ".join(sorted({n for n, _ in intolerant}))
        return result(crit, "met", f"Intolerant to standard treatment ({names}).",
                      evidence=[r for _, r in intolerant])
    if not has_medication_history(ctx.record):
        return result(crit, "unknown", "No medication history is recorded, so refractoriness "
                      "cannot be judged.")
    uses = ctx.uses
    relevant = [u for u in uses if set(u.concepts) & (steroids | required | dmards)]
    missing: list[str] = []
    gaps: list[str] = []
    evidence: list[str] = []
    # Glucocorticoid: >= threshold mg/kg/day prednisone-equivalent for >= N days.
    steroid_uses = [u for u in relevant if set(u.concepts) & steroids]
    weight = _weight(ctx, p.get("weight_lookback_days", 365))
    high: list[MedicationUse] = []
    for use in steroid_uses:
        per_kg = _prednisone_per_kg(ctx, use, weight)
        if per_kg is None:
            if use.daily_mg is None and use.daily_mg_per_kg is None:
                gaps.append(f"dose of {use.ref} unknown")
            elif weight is None:
                gaps.append("no body weight for mg/kg/day")
            continue
        if per_kg >= p["steroid_min_mg_per_kg_day"]:
            if use.period_known:
                high.append(use)
            else:
                gaps.append(f"period of {use.ref} unknown")
    course, course_refs = longest_course(high)
    steroid_ok = course >= p["steroid_min_days"]
    min_days = p["steroid_min_days"]
    threshold = fmt(p["steroid_min_mg_per_kg_day"])
    if steroid_ok:
        evidence += course_refs
    else:
        missing.append(f"glucocorticoid >= {threshold} mg/kg/day prednisone-equivalent for "
                       f">= {min_days} days (longest high-dose course {course} days)")
    for name in sorted(required):
        found = [u for u in relevant if name in u.concepts]
        if found:
            evidence += [u.ref for u in found]
        else:
            missing.append(name)
    dmard_found: dict[str, list[str]] = {}
    for use in relevant:
        for name in {agent_of[c] for c in set(use.concepts) & dmards}:
            dmard_found.setdefault(name, []).append(use.ref)
    if len(dmard_found) >= p["min_dmards"]:
        evidence += [r for refs in dmard_found.values() for r in refs]
    else:
        missing.append(f"at least {p['min_dmards']} DMARDs (found {len(dmard_found)}"
                       + (f": {', '.join(sorted(dmard_found))})" if dmard_found else ")"))
    if not missing:
        return result(crit, "met",
                      f"High-dose glucocorticoid for {course} days, "
                      f"{', '.join(sorted(required))} and {len(dmard_found)} DMARDs "
                      f"({', '.join(sorted(dmard_found))}) are recorded.",
                      evidence=evidence)
    if gaps:
        return result(crit, "unknown",
                      f"Medication history is partial ({'; '.join(dict.fromkeys(gaps))}); not "
                      f"shown: {'; '.join(missing)}.", evidence=[u.ref for u in relevant])
    return result(crit, "not-met",
                  f"The medication history does not show: {'; '.join(missing)}; no intolerance "
                  "to standard treatment is recorded.", evidence=[u.ref for u in relevant])


def _prednisone_per_kg(ctx: Context, use: MedicationUse, weight: Measurement | None
                       ) -> Decimal | None:
    equivalents = [ctx.concept(n).prednisone_equivalent for n in use.concepts
                   if ctx.concept(n).prednisone_equivalent is not None]
    if not equivalents:
        return None
    factor = equivalents[0]
    if use.daily_mg_per_kg is not None:
        return use.daily_mg_per_kg * factor
    if use.daily_mg is None or weight is None or weight.value <= 0:
        return None
    return use.daily_mg * factor / weight.value


@rule("refractory-ln")
def refractory_ln(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    p = crit.params
    if not has_medication_history(ctx.record):
        return result(crit, "unknown", "No medication history is recorded.")
    taken: list[str] = []
    short: list[str] = []
    partial: list[str] = []
    evidence: list[str] = []
    for agent, concepts in p["agents"]:
        uses = [u for u in ctx.uses if set(u.concepts) & set(concepts)]
        if not uses:
            continue
        days, refs = longest_course(uses)
        if days > p["more_than_days"]:
            taken.append(f"{agent} ({days} days)")
            evidence += refs
        elif any(not u.period_known for u in uses):
            partial.append(agent)
            evidence += [u.ref for u in uses]
        else:
            short.append(f"{agent} ({days} days)")
            evidence += [u.ref for u in uses]
    if len(taken) >= p["min_agents"]:
        return result(crit, "met",
                      f"{len(taken)} immunosuppressants taken for more than "
                      f"{p['more_than_days']} days: {', '.join(taken)}.", evidence=evidence)
    if len(taken) + len(partial) >= p["min_agents"]:
        return result(crit, "unknown",
                      f"Only {len(taken)} immunosuppressant(s) shown for more than "
                      f"{p['more_than_days']} days; the duration of {', '.join(partial)} is not "
                      "recorded.", evidence=evidence)
    listed = ", ".join(taken + short) or "none of the listed agents"
    return result(crit, "not-met",
                  f"Fewer than {p['min_agents']} immunosuppressants taken for more than "
                  f"{p['more_than_days']} days ({listed}).", evidence=evidence)


# --------------------------------------------------------------------------- LN biopsy

@rule("ln-biopsy")
def ln_biopsy(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    p = crit.params
    classes = [
        e for name in p["classes"] for e in ctx.record.entries(name)
        if (e.when is None or e.when.day <= ctx.as_of)
        and (e.resource.get("resourceType") != "Condition" or condition_active(e.resource))
    ]
    if not classes:
        return result(crit, "not-met",
                      "No active class III or IV lupus nephritis is recorded (Condition or "
                      "pathology conclusion).")
    biopsies = [
        e for name in p["biopsy"] for e in ctx.record.entries(name)
        if e.resource.get("resourceType") in ("Procedure", "DiagnosticReport")
    ] + [e for e in classes if e.resource.get("resourceType") == "DiagnosticReport"]
    dated = sorted(
        {e.ref: e for e in biopsies if e.when is not None and e.when.day <= ctx.as_of}.values(),
        key=lambda e: e.when.day, reverse=True)  # type: ignore[union-attr]
    class_refs = [e.ref for e in classes]
    if not dated:
        # Undated biopsies are cited (a date would decide); ones after the as-of date are not.
        return result(crit, "unknown",
                      "Class III/IV lupus nephritis is recorded, but no dated kidney biopsy.",
                      evidence=class_refs + [e.ref for e in biopsies if e.when is None])
    latest = dated[0]
    assert latest.when is not None
    age = (ctx.as_of - latest.when.day).days
    limit = p["max_age_days"]
    if age <= limit:
        return result(crit, "met",
                      f"Class III/IV lupus nephritis with a kidney biopsy on "
                      f"{_day(latest.when.day)}, {age} days before screening (limit {limit}).",
                      value=Value(age, "d"), evidence=class_refs + [latest.ref])
    return result(crit, "not-met",
                  f"The latest kidney biopsy ({_day(latest.when.day)}) is {age} days before "
                  f"screening, more than {limit} days.", value=Value(age, "d"),
                  evidence=class_refs + [latest.ref])


# --------------------------------------------------------------------------- other labs

@rule("proteinuria")
def proteinuria(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    """The most recent proteinuria measure, UPCR or 24 h protein, decides (criteria.md)."""
    p = crit.params
    candidates = []
    problems = []
    evidence: list[str] = []
    for concept_key, min_key in (("upcr_concept", "upcr_min"),
                                 ("protein_24h_concept", "protein_24h_min")):
        if concept_key not in p:
            continue
        concept = ctx.concept(p[concept_key])
        lookup = latest_quantity(ctx.record, concept, ctx.as_of, p.get("lookback_days"))
        if lookup.measurement is None:
            problems.append(lookup.problem or "")
            evidence += lookup.evidence
            continue
        candidates.append((lookup.measurement, p[min_key], concept))
    if not candidates:
        return result(crit, "unknown", cap("; ".join(problems)) + ".", evidence=evidence)
    candidates.sort(key=lambda c: c[0].when, reverse=True)
    m, limit, concept = candidates[0]
    name = label(concept)
    verdict = compare(m.value, m.comparator, ">=", limit)
    text = f"{cap(name)} {with_unit(fmt(m.value), m.unit)} on {_day(m.when)}"
    if verdict is None:
        return result(crit, "unknown", f"{text} cannot be compared with {fmt(limit)}.",
                      value=_value(m), evidence=[m.ref])
    if verdict:
        return result(crit, "met", f"{text} is at least {fmt(limit)} {m.unit}: proteinuria "
                      "persists.", value=_value(m), evidence=[m.ref])
    return result(crit, "not-met", f"{text} is below {fmt(limit)} {m.unit} (renal response).",
                  value=_value(m), evidence=[m.ref])


@rule("positive")
def positive(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    found = []
    problems = []
    for name in crit.params["concepts"]:
        lookup = latest_quantity(ctx.record, ctx.concept(name), ctx.as_of,
                                 crit.params.get("lookback_days"))
        if lookup.measurement is None:
            problems.append(lookup.problem or "")
        else:
            found.append((lookup.measurement, ctx.concept(name)))
    if not found:
        return result(crit, "unknown", cap("; ".join(problems)) + ".")
    found.sort(key=lambda f: f[0].when, reverse=True)
    m, concept = found[0]
    text = f"{cap(label(concept))} {with_unit(fmt(m.value), m.unit)} on {_day(m.when)}"
    verdict = compare(m.value, m.comparator, ">", Decimal(0))
    if verdict is None:
        return result(crit, "unknown", f"{text} cannot be read as positive or not.",
                      value=_value(m), evidence=[m.ref])
    if verdict:
        return result(crit, "met", f"{text}: CD19 is expressed.", value=_value(m),
                      evidence=[m.ref])
    return result(crit, "not-met", f"{text}: no CD19+ B cells.", value=_value(m),
                  evidence=[m.ref])


@rule("titer")
def titer(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    concept = ctx.concept(crit.params["concept"])
    minimum = crit.params["min_denominator"]
    lookback = crit.params.get("lookback_days", concept.lookback_days)
    entries, _ = latest_entries(ctx.record, concept, ctx.as_of)
    for entry in entries:
        assert entry.when is not None
        denominator, shown = ratio_denominator(entry.resource)
        if denominator is None:
            continue
        if not in_window(entry.when.day, ctx.as_of, lookback):
            return result(crit, "unknown", f"No ANA titer within {lookback} days (latest "
                          f"{shown} on {_day(entry.when.day)} is stale).", evidence=[entry.ref])
        value = Value(f"1:{fmt(denominator)}")
        if denominator >= minimum:
            return result(crit, "met", f"ANA titer {shown} on {_day(entry.when.day)} is at least "
                          f"1:{fmt(minimum)}.", value=value, evidence=[entry.ref])
        return result(crit, "not-met", f"ANA titer {shown} on {_day(entry.when.day)} is below "
                      f"1:{fmt(minimum)}.", value=value, evidence=[entry.ref])
    if entries:
        return result(crit, "unknown", "The latest ANA result has no readable titer.",
                      evidence=[entries[0].ref])
    presence = crit.params.get("presence_concept")
    if presence and ctx.record.entries(presence):
        ref = ctx.record.entries(presence)[0].ref
        return result(crit, "unknown", "Only an ANA presence result is recorded; a titer is "
                      f"needed to show >= 1:{fmt(minimum)}.", evidence=[ref])
    return result(crit, "unknown", "No ANA titer on record.")


@rule("ecog")
def ecog(ctx: Context, crit: CriterionMapping) -> CriterionResult:
    p = crit.params
    maximum = p["max_score"]
    candidates: list[tuple[Measurement, Decimal, str]] = []
    problems = []
    lookup = latest_quantity(ctx.record, ctx.concept(p["concept"]), ctx.as_of,
                             p.get("lookback_days"))
    if lookup.measurement is not None:
        candidates.append((lookup.measurement, lookup.measurement.value, "ECOG"))
    else:
        problems.append(lookup.problem or "")
    for name in p.get("equivalents", ()):
        other = latest_quantity(ctx.record, ctx.concept(name), ctx.as_of, p.get("lookback_days"))
        if other.measurement is None:
            continue
        score = other.measurement.value
        for floor, equivalent in p.get("equivalence", ()):
            if score >= floor:
                candidates.append((other.measurement, equivalent,
                                   f"{cap(label(ctx.concept(name)))} "
                                   f"{fmt(score)} (ECOG equivalent"))
                break
    if not candidates:
        return result(crit, "unknown", cap(problems[0] if problems else "no ECOG") + ".",
                      evidence=lookup.evidence)
    candidates.sort(key=lambda c: c[0].when, reverse=True)
    m, score, name = candidates[0]
    shown = f"{name} {fmt(score)}" if name == "ECOG" else f"{name} {fmt(score)})"
    if score <= maximum:
        return result(crit, "met", f"{shown} on {_day(m.when)} is within 0-{fmt(maximum)}.",
                      value=Value(score), evidence=[m.ref])
    return result(crit, "not-met", f"{shown} on {_day(m.when)} is above {fmt(maximum)}.",
                  value=Value(score), evidence=[m.ref])
