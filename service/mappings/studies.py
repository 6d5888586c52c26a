"""Study files: [study] and [[criteria]] read into StudyMapping, checked against the registry."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from service.engine.deceased import DECEASED_ID
from service.engine.model import (
    CRITERION_KINDS,
    CRITERION_TYPES,
    DIAGNOSIS_RULES,
    SEXES,
    Applicability,
    Concept,
    CriterionMapping,
    StudyMapping,
)
from service.engine.registry import MAX_YEARS, ParamError
from service.engine.rules import RULES
from service.mappings.errors import MappingError

CRITERION_KEYS = {"id", "text", "rule", "kind", "type", "applies_to", "wording", "name_zh",
                  "text_zh", "shared"}
PART_KEYS = CRITERION_KEYS - {"type"}
# Rules a person answers: their confirmations are recorded under the criterion's (or part's) id.
PERSON_RULES = ("manual", "consent")
STUDY_KEYS = {"key", "title", "registry_id", "seed", "title_zh", "diagnosis_criteria"}
# A criterion id the engine uses itself (the deceased rule): no mapping may take it.
RESERVED_IDS = (DECEASED_ID,)
RESULT_WORDS = ("met", "not-met", "unknown")
# Combinations nest; deeper than this is no longer a criterion a person can read.
MAX_DEPTH = 4


def _params(item: dict[str, Any], rule: str, where: str, concepts: Mapping[str, Concept],
            depth: int, seen: set[str], top: str) -> dict[str, Any]:
    """A criterion's rule parameters, each parsed by the rule's declaration."""
    spec = RULES[rule]
    params: dict[str, Any] = {}
    for key, value in item.items():
        if key in CRITERION_KEYS:
            continue
        if key not in spec.params:
            raise MappingError(f"{where}.{key}: unknown key for rule {rule!r}")

        def read_part(raw: Any, index: int, key: str = key) -> CriterionMapping:
            if depth >= MAX_DEPTH:
                raise MappingError(f"{where}.{key}: nested deeper than {MAX_DEPTH} levels")
            return _criterion(raw, index, f"{where}.{key}", seen, concepts, depth + 1, top)

        try:
            params[key] = spec.params[key].parse(value, concepts, read_part)
        except ParamError as exc:
            raise MappingError(f"{where}.{key}: {exc}") from None
    for key, param in spec.params.items():
        if param.required and key not in params:
            raise MappingError(f"{where}.{key}: required for rule {rule!r}")
    problem = spec.check(params)
    if problem is not None:
        raise MappingError(f"{where}.{problem[0]}: {problem[1]}")
    return params


def _applies(raw: Any, where: str) -> Applicability | None:
    """`applies_to = { sex = "female", min_age = 10, max_age = 55 }`."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw or set(raw) - {"sex", "min_age", "max_age"}:
        raise MappingError(f"{where}: expected a table of sex, min_age and/or max_age")
    sex = raw.get("sex")
    if sex is not None and sex not in SEXES:
        raise MappingError(f"{where}.sex: must be one of {', '.join(SEXES)}")
    ages = {}
    for key in ("min_age", "max_age"):
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_YEARS:
            raise MappingError(f"{where}.{key}: expected whole years 0-{MAX_YEARS}")
        ages[key] = value
    if "min_age" in ages and "max_age" in ages and ages["min_age"] > ages["max_age"]:
        raise MappingError(f"{where}.min_age: {ages['min_age']} is above max_age")
    return Applicability(sex=sex, min_age=ages.get("min_age"), max_age=ages.get("max_age"))


def _wording(raw: Any, where: str) -> Mapping[str, str]:
    """`wording = { met = "CD19 is expressed", not-met = "no CD19+ B cells" }`."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, dict) or not raw or set(raw) - set(RESULT_WORDS) or not all(
            isinstance(v, str) and v.strip() for v in raw.values()):
        raise MappingError(f"{where}: expected phrases for {', '.join(RESULT_WORDS)}")
    return MappingProxyType({k: v.strip() for k, v in raw.items()})


def _criterion(item: Any, index: int, parent: str, seen: set[str],
               concepts: Mapping[str, Concept], depth: int = 0, top: str = ""
               ) -> CriterionMapping:
    """A [[criteria]] table (depth 0) or a part of a combination (depth > 0).

    Ids are unique in the study, parts' explicit ids included: a manual part's confirmations
    are recorded under its id, so it must say one (a positional id such as "2" would let one
    confirmation answer unrelated parts)."""
    cid, where = _criterion_id(item, index, parent, seen, depth)
    if depth and "type" in item:
        raise MappingError(f"{where}.type: only a whole criterion is an inclusion or exclusion")
    rule = item.get("rule")
    if not isinstance(rule, str) or rule not in RULES:
        raise MappingError(f"{where}.rule: unknown rule {rule!r}")
    kind = item.get("kind", "automatic")
    if kind not in CRITERION_KINDS:
        raise MappingError(f"{where}.kind: must be automatic or manual")
    ctype = item.get("type", "inclusion")
    if ctype not in CRITERION_TYPES:
        raise MappingError(f"{where}.type: must be inclusion or exclusion")
    if ctype == "exclusion" and RULES[rule].negated:
        raise MappingError(f"{where}.rule: {rule!r} already means 'not excluded'; write an "
                           "exclusion with the rule for what excludes (e.g. 'event', "
                           "'diagnosis')")
    text = item.get("text")
    if not isinstance(text, str) or not text:
        what = "how reasons name this part" if depth else "the seed text"
        raise MappingError(f"{where}.text: required string ({what})")
    shared = _shared(item, rule, depth, where)
    params = _params(item, rule, where, concepts, depth, seen, top or cid)
    if depth and rule == "manual" and params.get("scope") == "patient" and not shared:
        raise MappingError(f"{where}.scope: a part's confirmations count for its study only: "
                           "write scope = \"study\", or shared = true to let a per-patient "
                           "confirmation count in every study")
    if rule in PERSON_RULES or (not depth and _has_manual_part(params)):
        if item.get("kind") == "automatic":
            raise MappingError(f"{where}.kind: a criterion a person answers (or with a manual "
                               "part) is not automatic")
        kind = "manual"
    name_zh = _optional_text(item, "name_zh", where)
    text_zh = _optional_text(item, "text_zh", where)
    return CriterionMapping(
        id=cid, text=text, rule=rule, kind=kind, type=ctype,
        params=MappingProxyType(params), source=parent.split(":", 1)[0],
        applies=_applies(item.get("applies_to"), f"{where}.applies_to"),
        wording=_wording(item.get("wording"), f"{where}.wording"),
        name_zh=name_zh, text_zh=text_zh,
        part_of=(top or None) if depth else None, shared=shared,
    )


def _optional_text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    """An optional translation (`name_zh`, `text_zh`, `title_zh`): a non-empty string."""
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{where}.{key}: expected a non-empty string")
    return value.strip()



def _criterion_id(item: Any, index: int, parent: str, seen: set[str], depth: int
                  ) -> tuple[str, str]:
    """(id, where errors name it): explicit ids are unique in the study; an automatic part
    without one is named by its position."""
    where = f"{parent}[{index}]"
    if not isinstance(item, dict):
        raise MappingError(f"{where}: expected a table")
    cid = item.get("id")
    if depth > 0 and cid is None:
        if item.get("rule") in PERSON_RULES or item.get("kind") == "manual":
            raise MappingError(f"{where}.id: a manual part needs an explicit id, unique in the "
                               "study (its confirmations are recorded under it)")
        return str(index + 1), f"{parent}[{index + 1}]"
    if not isinstance(cid, str) or not cid:
        raise MappingError(f"{where}.id: required string")
    where = f"{parent}[{cid}]"
    if cid in seen:
        raise MappingError(f"{where}.id: duplicate criterion id (ids of criteria and of "
                           "their parts are unique in a study)")
    if cid in RESERVED_IDS:
        raise MappingError(f"{where}.id: {cid!r} is reserved (the service's own rule)")
    seen.add(cid)
    return cid, where


def _shared(item: dict[str, Any], rule: str, depth: int, where: str) -> bool:
    """`shared = true`: only on a manual part (a whole criterion's `scope` already says it)."""
    if "shared" not in item:
        return False
    if not depth or rule != "manual" or not isinstance(item["shared"], bool):
        raise MappingError(f"{where}.shared: only a manual part says shared = true or false")
    return bool(item["shared"])


def manual_parts(crit: CriterionMapping) -> list[CriterionMapping]:
    """The parts of a criterion a person answers (the criterion itself for a manual one)."""
    if crit.rule in PERSON_RULES:
        return [crit]
    return [found for part in crit.params.get("of", ()) for found in manual_parts(part)]


def _has_manual_part(params: Mapping[str, Any]) -> bool:
    return any(manual_parts(part) or part.kind == "manual" for part in params.get("of", ()))


def parse_study(file: str, raw: dict[str, Any], concepts: Mapping[str, Concept]
                ) -> StudyMapping:
    """One study file (`file` is how errors name it)."""
    study = raw.get("study")
    if not isinstance(study, dict):
        raise MappingError(f"{file}: study: missing [study] table")
    unknown = set(raw) - {"study", "criteria"}
    if unknown:
        raise MappingError(f"{file}: {sorted(unknown)[0]}: unknown key")
    for key in ("key", "title"):
        if not isinstance(study.get(key), str) or not study[key]:
            raise MappingError(f"{file}: study.{key}: required string")
    unknown = set(study) - STUDY_KEYS
    if unknown:
        raise MappingError(f"{file}: study.{sorted(unknown)[0]}: unknown key")
    for key in ("registry_id", "seed"):
        if key in study and not isinstance(study[key], str):
            raise MappingError(f"{file}: study.{key}: expected a string")
    title_zh = _optional_text(study, "title_zh", f"{file}: study")
    criteria_raw = raw.get("criteria")
    if not isinstance(criteria_raw, list) or not criteria_raw:
        raise MappingError(f"{file}: criteria: at least one [[criteria]] table is required")
    seen: set[str] = set()
    criteria = tuple(_criterion(item, index, f"{file}: criteria", seen, concepts)
                     for index, item in enumerate(criteria_raw))
    return StudyMapping(
        key=study["key"], title=study["title"], registry_id=study.get("registry_id"),
        seed=study.get("seed"), criteria=criteria, source=file, title_zh=title_zh,
        diagnosis_criteria=_diagnosis_criteria(file, study, criteria),
    )


def _diagnosis_criteria(file: str, study: dict[str, Any],
                        criteria: tuple[CriterionMapping, ...]) -> tuple[str, ...]:
    """`diagnosis_criteria = ["sle-diagnosis"]`: the inclusion `diagnosis` criteria whose
    result (`met` or `unknown`) makes a patient a candidate, so a ResearchSubject is written.
    Required: who gets a research record is declared, never guessed. An empty list declares a
    study without one (then only `screen --every-patient` writes new ResearchSubjects)."""
    where = f"{file}: study.diagnosis_criteria"
    raw = study.get("diagnosis_criteria")
    if raw is None:
        raise MappingError(f"{where}: required: the ids of the criteria whose diagnosis makes "
                           "a patient a candidate (e.g. [\"sle-diagnosis\"]), or [] for none")
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise MappingError(f"{where}: expected a list of criterion ids")
    by_id = {c.id: c for c in criteria}
    for cid in raw:
        crit = by_id.get(cid)
        if crit is None:
            raise MappingError(f"{where}: {cid!r} is not a criterion of this study")
        # The candidate search (`screen --all`) finds these patients with a Condition search
        # on the criterion's concept: only an inclusion diagnosis rule has one.
        if crit.rule not in DIAGNOSIS_RULES or crit.type != "inclusion" or not crit.params.get(
                "concept"):
            rules = " or ".join(repr(r) for r in sorted(DIAGNOSIS_RULES))
            raise MappingError(f"{where}: {cid!r} must be an inclusion criterion with rule "
                               f"{rules} and a concept (it is {crit.type} {crit.rule!r})")
    if len(set(raw)) != len(raw):
        raise MappingError(f"{where}: an id is named twice")
    return tuple(raw)
