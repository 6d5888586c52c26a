"""The mappings' dosing tables: which gap joins uses into a course, and frequencies in words."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from service.engine.dosing import PERIOD_DAYS
from service.engine.model import Courses, FrequencyPattern, FrequencyVocabulary
from service.mappings.concepts import decimal, parse_codes
from service.mappings.errors import MappingError

COURSE_KEYS = {"gap_days", "administration_gap_days", "routes"}
FREQUENCY_KEYS = {"phrases", "patterns"}
PATTERN_KEYS = {"regex", "frequency", "period", "unit"}
MAX_GAP_DAYS = 366
_SPACES = re.compile(r"\s+")


def _days(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GAP_DAYS:
        raise MappingError(f"{where}: expected a whole number of days from 0 to {MAX_GAP_DAYS}")
    return value


def parse_courses(tables: Iterable[tuple[str, dict[str, Any]]]) -> Courses:
    """[courses] of the concept files (a later file overrides a key, routes are merged)."""
    gap, administration = Courses().gap_days, Courses().administration_gap_days
    routes: dict[str, int] = {}
    for file, table in tables:
        where = f"{file}: courses"
        unknown = set(table) - COURSE_KEYS
        if unknown:
            raise MappingError(f"{where}.{sorted(unknown)[0]}: unknown key")
        if "gap_days" in table:
            gap = _days(table["gap_days"], f"{where}.gap_days")
        if "administration_gap_days" in table:
            administration = _days(table["administration_gap_days"],
                                   f"{where}.administration_gap_days")
        raw_routes = table.get("routes", {})
        if not isinstance(raw_routes, dict):
            raise MappingError(f"{where}.routes: expected a table of 'system|code' = days")
        for token, days in raw_routes.items():
            parsed = parse_codes([token], f"{where}.routes")[0]
            routes[parsed] = _days(days, f"{where}.routes.{token}")
    return Courses(gap, administration, MappingProxyType(routes))


def normal_text(text: str) -> str:
    """Frequency text as the vocabulary is matched: lower case, spaces collapsed."""
    return _SPACES.sub(" ", text.strip().lower().rstrip(".")).strip()


def _number_or_n(value: Any, where: str) -> Decimal | None:
    if value == "n":
        return None
    number = decimal(value, where)
    if number <= 0:
        raise MappingError(f"{where}: must be above zero, or \"n\" for the captured number")
    return number


def _pattern(item: Any, where: str) -> FrequencyPattern:
    if not isinstance(item, dict):
        raise MappingError(f"{where}: expected a table with regex, frequency, period, unit")
    unknown = set(item) - PATTERN_KEYS
    if unknown:
        raise MappingError(f"{where}.{sorted(unknown)[0]}: unknown key")
    raw = item.get("regex")
    if not isinstance(raw, str):
        raise MappingError(f"{where}.regex: expected a regular expression")
    try:
        regex = re.compile(raw)
    except re.error as exc:
        raise MappingError(f"{where}.regex: {exc}") from None
    frequency = _number_or_n(item.get("frequency", 1), f"{where}.frequency")
    period = _number_or_n(item.get("period", 1), f"{where}.period")
    if (frequency is None or period is None) and "n" not in regex.groupindex:
        raise MappingError(f"{where}.regex: \"n\" is used but the regex has no group (?P<n>...)")
    unit = item.get("unit", "d")
    if unit not in PERIOD_DAYS:
        raise MappingError(f"{where}.unit: must be one of {', '.join(PERIOD_DAYS)}")
    return FrequencyPattern(regex, frequency, period, unit)


def parse_frequencies(tables: Iterable[tuple[str, dict[str, Any]]]) -> FrequencyVocabulary:
    """[frequencies] of the concept files: phrases and patterns (later files add to them)."""
    phrases: dict[str, Decimal] = {}
    patterns: list[FrequencyPattern] = []
    for file, table in tables:
        where = f"{file}: frequencies"
        unknown = set(table) - FREQUENCY_KEYS
        if unknown:
            raise MappingError(f"{where}.{sorted(unknown)[0]}: unknown key")
        raw_phrases = table.get("phrases", {})
        if not isinstance(raw_phrases, dict):
            raise MappingError(f"{where}.phrases: expected a table of phrase = times a day")
        for phrase, per_day in raw_phrases.items():
            number = decimal(per_day, f"{where}.phrases.{phrase}")
            if number <= 0:
                raise MappingError(f"{where}.phrases.{phrase}: must be above zero")
            phrases[normal_text(phrase)] = number
        raw_patterns = table.get("patterns", [])
        if not isinstance(raw_patterns, list):
            raise MappingError(f"{where}.patterns: expected an array of tables")
        patterns += [_pattern(p, f"{where}.patterns[{i}]") for i, p in enumerate(raw_patterns)]
    return FrequencyVocabulary(MappingProxyType(phrases), tuple(patterns))
