"""Concepts, products and the CALIPER reference table: their TOML/CSV read into the model."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from service.engine import units
from service.engine.model import (
    CONCEPT_KINDS,
    WILDCARD,
    Concept,
    Product,
    UlnRow,
    normalise_token,
)
from service.mappings.errors import MappingError

CONCEPT_KEYS = {
    "kind", "codes", "prefixes", "unit", "lookback_days", "molar_mass", "unit_aliases",
    "prednisone_equivalent", "names", "search", "caliper", "plausible_range", "display",
    "answers", "course_gap_days",
}


def decimal(value: Any, where: str) -> Decimal:
    """A TOML number or numeric string as Decimal; MappingError naming `where` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise MappingError(f"{where}: expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite():
        raise MappingError(f"{where}: {value!r} is not a finite number")
    return number


def parse_codes(raw: Any, where: str) -> list[str]:
    """A list of `system|code` strings, normalised as the code index stores them."""
    if not isinstance(raw, list):
        raise MappingError(f"{where}: expected a list of 'system|code' strings")
    out = []
    for item in raw:
        if not isinstance(item, str) or "|" not in item:
            raise MappingError(f"{where}: {item!r} is not a 'system|code' string")
        system, _, code = item.partition("|")
        token = item if code == WILDCARD else normalise_token(system, code)
        if not system or not code or token is None:
            raise MappingError(f"{where}: {item!r} is not a 'system|code' string")
        out.append(token)
    return out


def _unit(raw: dict[str, Any], where: str) -> tuple[str | None, dict[str, str]]:
    unit = raw.get("unit")
    aliases = raw.get("unit_aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise MappingError(f"{where}.unit_aliases: expected a table of strings")
    if unit is None:
        return None, aliases
    if not isinstance(unit, str):
        raise MappingError(f"{where}.unit: expected a UCUM unit string")
    try:
        units.parse(unit)
    except units.UnitError as exc:
        raise MappingError(f"{where}.unit: {exc}") from None
    for alias, target in aliases.items():
        if not units.convertible(target, unit, None) and not units.convertible(
            target, unit, Decimal(1)
        ):
            raise MappingError(
                f"{where}.unit_aliases.{alias}: {target!r} cannot be converted to {unit!r}"
            )
    return unit, aliases


def _answers(raw: dict[str, Any], where: str) -> Mapping[str, Decimal]:
    """`answers`: coded answers that stand for a number ("system|code" = number)."""
    table = raw.get("answers", {})
    if not isinstance(table, dict):
        raise MappingError(f"{where}.answers: expected a table of 'system|code' = number")
    out: dict[str, Decimal] = {}
    for token, value in table.items():
        parsed = parse_codes([token], f"{where}.answers")[0]
        out[parsed] = decimal(value, f"{where}.answers.{token}")
    return MappingProxyType(out)


def parse_concept(
    name: str, raw: Any, file: str, defaults: Mapping[str, Any],
    global_aliases: Mapping[str, str],
) -> Concept:
    """One [concepts.NAME] table."""
    where = f"{file}: concepts.{name}"
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a table")
    unknown = set(raw) - CONCEPT_KEYS
    if unknown:
        raise MappingError(f"{where}.{sorted(unknown)[0]}: unknown key")
    kind = raw.get("kind")
    if kind not in CONCEPT_KINDS:
        raise MappingError(f"{where}.kind: must be one of {', '.join(CONCEPT_KINDS)}")
    codes = parse_codes(raw.get("codes", []), f"{where}.codes")
    prefixes = parse_codes(raw.get("prefixes", []), f"{where}.prefixes")
    unit, aliases = _unit(raw, where)
    lookback = raw.get("lookback_days", defaults.get("lookback_days", 90))
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        raise MappingError(f"{where}.lookback_days: expected a non-negative integer")
    names = raw.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MappingError(f"{where}.names: expected a list of strings")
    caliper = raw.get("caliper")
    if caliper is not None and not isinstance(caliper, str):
        raise MappingError(f"{where}.caliper: expected an analyte name")
    wildcard_systems = tuple(c.partition("|")[0] for c in codes if c.endswith(f"|{WILDCARD}"))
    display = raw.get("display")
    if display is not None and (not isinstance(display, str) or not display.strip()):
        raise MappingError(f"{where}.display: expected the name reasons use, e.g. 'anti-dsDNA'")
    plausible = raw.get("plausible_range")
    plausible_range = None
    if plausible is not None:
        if not isinstance(plausible, list) or len(plausible) != 2:
            raise MappingError(f"{where}.plausible_range: expected [low, high]")
        low, high = (decimal(v, f"{where}.plausible_range") for v in plausible)
        if low > high:
            raise MappingError(f"{where}.plausible_range: low {low} is above high {high}")
        plausible_range = (low, high)
    return Concept(
        name=name,
        kind=kind,
        codes=frozenset(codes),
        prefixes=tuple(prefixes),
        unit=unit,
        lookback_days=lookback,
        molar_mass=decimal(raw["molar_mass"], f"{where}.molar_mass")
        if "molar_mass" in raw else None,
        unit_aliases=MappingProxyType({**global_aliases, **aliases}),
        prednisone_equivalent=decimal(
            raw["prednisone_equivalent"], f"{where}.prednisone_equivalent"
        ) if "prednisone_equivalent" in raw else None,
        names=tuple(n.lower() for n in names),
        search=bool(raw.get("search", True)),
        caliper=caliper,
        wildcard_systems=wildcard_systems,
        plausible_range=plausible_range,
        display=display.strip() if display else None,
        answers=_answers(raw, where),
        course_gap_days=_course_gap(raw, kind, where),
    )


def _course_gap(raw: dict[str, Any], kind: str, where: str) -> int | None:
    """`course_gap_days` of a medication: the gap that still joins two uses into one course."""
    gap = raw.get("course_gap_days")
    if gap is None:
        return None
    if kind != "medication":
        raise MappingError(f"{where}.course_gap_days: only a medication has courses")
    if isinstance(gap, bool) or not isinstance(gap, int) or not 0 <= gap <= 366:
        raise MappingError(f"{where}.course_gap_days: expected a whole number of days 0-366")
    return gap


def parse_product(token: str, table: Any, file: str, concepts: Mapping[str, Concept]
                  ) -> tuple[str, Product]:
    """One [products."system|code"] table: the normalised token and its Product."""
    where = f"{file}: products.{token}"
    if not isinstance(table, dict) or table.get("ingredient") not in concepts:
        raise MappingError(f"{where}.ingredient: unknown concept")
    system, _, code = token.partition("|")
    key = normalise_token(system, code)
    if key is None:
        raise MappingError(f"{where}: not a 'system|code' key")
    strength = table.get("strength_mg")
    return key, Product(
        ingredient=table["ingredient"],
        strength_mg=None if strength is None else decimal(strength, f"{where}.strength_mg"),
    )


def load_caliper(path: Path) -> tuple[UlnRow, ...]:
    """The pediatric ULN rows of a CALIPER CSV; none when the file is absent."""
    if not path.is_file():
        return ()
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for n, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{path.name}: line {n}"
            try:
                if row["age_unit"] not in ("day", "year"):
                    raise ValueError(f"age_unit {row['age_unit']!r} must be day or year")
                rows.append(UlnRow(
                    analyte=row["analyte"], unit=row["unit"], sex=row["sex"],
                    age_from=int(row["age_from"]), age_until=int(row["age_until_exclusive"]),
                    age_unit=row["age_unit"], upper=Decimal(row["upper_limit"]),
                ))
            except (KeyError, ValueError, InvalidOperation) as exc:
                raise MappingError(f"{where}: {exc}") from None
    return tuple(rows)
