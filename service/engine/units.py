"""UCUM unit conversion to a concept's canonical unit, as exact Decimal factors.

The UCUM grammar and unit table come from `ucumvert` (a maintained UCUM parser on top of
pint). pint computes in floats, so only the *factor* between two units is taken from it,
rounded to 12 significant digits, cached per unit pair, and applied to the value as a
Decimal: values are never compared across units or in binary floating point. Units on an
offset scale (Cel, [degF]) convert by a slope and an offset taken the same way.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any

_ANNOTATION = re.compile(r"\{[^{}]*\}")
_registry: Any = None
_registry_lock = threading.Lock()


class UnitError(ValueError):
    """A unit is not valid UCUM or cannot be converted to the unit asked for."""


def _ureg() -> Any:
    # The registry takes ~0.3 s to build: build it lazily, once per process, not at import.
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                from ucumvert import PintUcumRegistry

                _registry = PintUcumRegistry()
    return _registry


def _is_dimensionless_spelling(unit: str) -> bool:
    # "", "1" and pure annotations such as "{score}" or "{INR}" mean a plain number.
    return unit in ("", "1") or _ANNOTATION.fullmatch(unit) is not None


@lru_cache(maxsize=1024)
def _quantity(unit: str) -> Any:
    registry = _ureg()
    if _is_dimensionless_spelling(unit):
        return registry.Quantity(1, "dimensionless")
    try:
        return registry.from_ucum(unit)
    except Exception:  # noqa: BLE001 - the parser raises lark and pint errors of many kinds
        stripped = _ANNOTATION.sub("", unit)
        if stripped != unit and stripped:
            try:
                return registry.from_ucum(stripped)
            except Exception:  # noqa: BLE001
                pass
        raise UnitError(f"{unit!r} is not a valid UCUM unit") from None


def parse(unit: str) -> Any:
    """Parse a UCUM unit string; UnitError when it is not valid UCUM."""
    return _quantity(unit)


# Mechanical rewrites of how lab systems print a unit, applied before the synonym table
# (mappings/units.toml) and UCUM: micro signs, blanks, and powers of ten written x10^9, x10E9,
# X10*9, ×10^9 or 10E9 (all "10*9" in UCUM).
_MICRO = str.maketrans({"\u00b5": "u", "\u03bc": "u"})
_POWER_OF_TEN = re.compile(
    r"^(?:[xX\u00d7*]\s*)?10\s*(?:(?:\*\*|\^|\*|[eE])\s*\+?(\d{1,2})|\((\d{1,2})\))(?=\D|$)")
_BLANKS = re.compile(r"\s+")


def normalise_spelling(unit: str) -> str:
    """A unit as a lab printed it, rewritten mechanically (not yet through the synonym table)."""
    text = unit.strip().translate(_MICRO)
    text = _BLANKS.sub("", text)
    return _POWER_OF_TEN.sub(lambda m: f"10*{m.group(1) or m.group(2)}", text)


def _folded(spelling: str, aliases: Mapping[str, str]) -> list[str]:
    # Lab systems often print units in capitals ("MG/DL", "K/UL"): a synonym matches in any
    # case, but only after the spelling failed as written (UCUM is case-sensitive: "G/L" is
    # giga per litre in some labs' tables, "g/L" grams per litre in UCUM).
    folded = spelling.casefold()
    return [target for key, target in aliases.items() if key.casefold() == folded]


def spellings(unit: str | None, aliases: Mapping[str, str]) -> tuple[str, ...]:
    """Candidate UCUM spellings of a unit as written in a record, most literal first.

    The synonym table (mappings/units.toml and a concept's own) as written, then after
    mechanical normalisation; the unit itself as UCUM; then the table in any case. A
    conversion uses the first candidate that converts to the unit asked for.
    """
    if unit is None:
        return ("",)
    text = unit.strip()
    normal = normalise_spelling(text)
    candidates = [aliases.get(text), aliases.get(normal), text, normal,
                  *_folded(text, aliases), *_folded(normal, aliases)]
    return tuple(dict.fromkeys(c for c in candidates if c is not None))


def _factor_float(source: str, target: str) -> float:
    src = _quantity(source)
    dst = _quantity(target)
    try:
        return float((src / dst).to("dimensionless").magnitude)
    except Exception:  # noqa: BLE001 - pint's DimensionalityError and friends
        raise UnitError(f"cannot convert {source!r} to {target!r}") from None


def _to_decimal(value: float) -> Decimal:
    return Decimal(f"{value:.12g}")


# Microscope fields: a count per high power field is not a count per low power field, but the
# UCUM table gives both fields no dimension, so pint would convert them into each other and into
# plain numbers ("%" to "/[HPF]"). A unit with a field converts only to the same unit.
_FIELDS = ("[HPF]", "[LPF]")


def _field_check(source: str, target: str) -> bool:
    """True when both are the same per-field unit (annotations aside); UnitError when a field
    unit would be converted to anything else; False when no field unit is involved."""
    if not any(f in source or f in target for f in _FIELDS):
        return False
    if _ANNOTATION.sub("", source) == _ANNOTATION.sub("", target):
        return True
    raise UnitError(f"cannot convert {source!r} to {target!r} (counts per microscope field)")


@lru_cache(maxsize=4096)
def factor(source: str, target: str, molar_mass: Decimal | None = None) -> Decimal:
    """Decimal factor so that value[source] * factor = value[target]; UnitError if impossible.

    With a molar mass (g/mol), units that differ by amount of substance versus mass convert:
    umol/L to mg/dL, mmol/L to g/L (haemoglobin), mg/mmol to g/g (a ratio to creatinine, whose
    molar mass the concept then carries). Nothing else crosses dimensions.
    """
    if source == target or _field_check(source, target):
        return Decimal(1)
    try:
        return _to_decimal(_factor_float(source, target))
    except UnitError:
        if molar_mass is None or molar_mass <= 0:
            raise
    per_mole = _quantity("g/mol")
    try:
        # source/target is mol per g: times M (g/mol) is a pure number.
        ratio = _quantity(source) / _quantity(target)
        return _to_decimal(float((ratio * per_mole).to("dimensionless").magnitude)) * molar_mass
    except Exception:  # noqa: BLE001 - pint's DimensionalityError and friends
        pass
    try:
        # source/target is g per mol: divided by M it is a pure number.
        ratio = _quantity(source) / _quantity(target)
        return _to_decimal(float((ratio / per_mole).to("dimensionless").magnitude)) / molar_mass
    except Exception:  # noqa: BLE001
        raise UnitError(f"cannot convert {source!r} to {target!r}") from None


# Significant digits an offset-scale conversion is rounded to: the slope and offset come from
# pint in binary floating point (as factors do), so 100.4 [degF] gives 38.0000000000224 Cel
# before rounding and exactly 38 after, and a boundary is decided on the value, not float noise.
_OFFSET_DIGITS = Context(prec=12)


@lru_cache(maxsize=256)
def offset_scale(source: str, target: str) -> tuple[Decimal, Decimal]:
    """(slope, offset) so that value[source] * slope + offset = value[target], for units on an
    offset scale (UCUM's Cel and [degF]); UnitError if impossible."""
    registry = _ureg()
    try:
        src, dst = _quantity(source), _quantity(target)
        zero = registry.Quantity(0.0 * src.magnitude, src.units).to(dst.units).magnitude
        one = registry.Quantity(1.0 * src.magnitude, src.units).to(dst.units).magnitude
    except UnitError:
        raise
    except Exception:  # noqa: BLE001 - pint's DimensionalityError and friends
        raise UnitError(f"cannot convert {source!r} to {target!r}") from None
    scale = float(dst.magnitude)
    return _to_decimal((one - zero) / scale), _to_decimal(zero / scale)


def _convert_one(value: Decimal, source: str, target: str, molar_mass: Decimal | None
                 ) -> Decimal:
    """One spelling converted: by a factor, else (offset scales) by slope and offset."""
    if _field_check(source, target):
        return value
    try:
        return value * factor(source, target, molar_mass)
    except UnitError:
        slope, offset = offset_scale(source, target)
        return _OFFSET_DIGITS.plus(value * slope + offset)


def convertible(source: str, target: str, molar_mass: Decimal | None) -> bool:
    """Whether `source` converts to `target` (with the molar mass when given)."""
    try:
        _convert_one(Decimal(1), source, target, molar_mass)
    except UnitError:
        return False
    return True


def convert(
    value: Decimal,
    source: str | None,
    target: str,
    *,
    aliases: Mapping[str, str] | None = None,
    molar_mass: Decimal | None = None,
) -> Decimal:
    """Convert a value written in `source` (a record's unit) into `target`; UnitError if not."""
    candidates = spellings(source, aliases or {})
    if candidates == ("",) and not _is_dimensionless_spelling(target):
        raise UnitError(f"no unit given; cannot compare with {target!r}")
    for spelled in candidates:
        try:
            return _convert_one(value, spelled, target, molar_mass)
        except UnitError:
            continue
    raise UnitError(f"cannot convert {source!r} to {target!r}")


def understood(source: str | None, target: str, *, aliases: Mapping[str, str] | None = None,
               molar_mass: Decimal | None = None) -> bool:
    """Whether a unit as written converts to `target` (what the codes report checks)."""
    try:
        convert(Decimal(1), source, target, aliases=aliases, molar_mass=molar_mass)
    except UnitError:
        return False
    return True
