"""Study files: [study] and [[criteria]] read into StudyMapping, checked against the registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from service.engine.model import (
    CRITERION_KINDS,
    CRITERION_TYPES,
    Concept,
    CriterionMapping,
    StudyMapping,
)
from service.engine.registry import ParamError
from service.engine.rules import RULES
from service.mappings.errors import MappingError

CRITERION_KEYS = {"id", "text", "rule", "kind", "type"}
STUDY_KEYS = {"key", "title", "registry_id", "seed"}


def _params(item: dict[str, Any], rule: str, where: str, concepts: Mapping[str, Concept]
            ) -> dict[str, Any]:
    """A criterion's rule parameters, each parsed by the rule's declaration."""
    spec = RULES[rule]
    params: dict[str, Any] = {}
    for key, value in item.items():
        if key in CRITERION_KEYS:
            continue
        if key not in spec.params:
            raise MappingError(f"{where}.{key}: unknown key for rule {rule!r}")
        try:
            params[key] = spec.params[key].parse(value, concepts)
        except ParamError as exc:
            raise MappingError(f"{where}.{key}: {exc}") from None
    for key, param in spec.params.items():
        if param.required and key not in params:
            raise MappingError(f"{where}.{key}: required for rule {rule!r}")
    problem = spec.check(params)
    if problem is not None:
        raise MappingError(f"{where}.{problem[0]}: {problem[1]}")
    return params


def _criterion(item: Any, index: int, file: str, seen: set[str],
               concepts: Mapping[str, Concept]) -> CriterionMapping:
    where = f"{file}: criteria[{index}]"
    if not isinstance(item, dict):
        raise MappingError(f"{where}: expected a table")
    cid = item.get("id")
    if not isinstance(cid, str) or not cid:
        raise MappingError(f"{where}.id: required string")
    where = f"{file}: criteria[{cid}]"
    if cid in seen:
        raise MappingError(f"{where}.id: duplicate criterion id")
    seen.add(cid)
    rule = item.get("rule")
    if not isinstance(rule, str) or rule not in RULES:
        raise MappingError(f"{where}.rule: unknown rule {rule!r}")
    kind = item.get("kind", "automatic")
    if kind not in CRITERION_KINDS:
        raise MappingError(f"{where}.kind: must be automatic or manual")
    ctype = item.get("type", "inclusion")
    if ctype not in CRITERION_TYPES:
        raise MappingError(f"{where}.type: must be inclusion or exclusion")
    text = item.get("text")
    if not isinstance(text, str) or not text:
        raise MappingError(f"{where}.text: required string (the seed text)")
    params = _params(item, rule, where, concepts)
    return CriterionMapping(
        id=cid, text=text, rule=rule, kind=kind, type=ctype,
        params=MappingProxyType(params), source=file,
    )


def parse_study(path: Path, raw: dict[str, Any], concepts: Mapping[str, Concept]
                ) -> StudyMapping:
    """One study file."""
    file = path.name
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
    criteria_raw = raw.get("criteria")
    if not isinstance(criteria_raw, list) or not criteria_raw:
        raise MappingError(f"{file}: criteria: at least one [[criteria]] table is required")
    seen: set[str] = set()
    criteria = tuple(_criterion(item, index, file, seen, concepts)
                     for index, item in enumerate(criteria_raw))
    return StudyMapping(
        key=study["key"], title=study["title"], registry_id=study.get("registry_id"),
        seed=study.get("seed"), criteria=criteria, source=file,
    )
