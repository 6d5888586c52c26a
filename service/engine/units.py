"""UCUM unit conversion to a concept's canonical unit, as exact Decimal factors.

The UCUM grammar and unit table come from `ucumvert` (a maintained UCUM parser on top of
pint). pint computes in floats, so only the *factor* between two units is taken from it,
rounded to 12 significant digits, cached per unit pair, and applied to the value as a
Decimal: values are never compared across units or in binary floating point.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from decimal import Decimal
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


def canonical_spelling(unit: str | None, aliases: Mapping[str, str]) -> str:
    """The UCUM spelling of a unit as written in a record (aliases applied, blanks removed)."""
    if unit is None:
        return ""
    unit = unit.strip()
    return aliases.get(unit, unit)


def _factor_float(source: str, target: str) -> float:
    src = _quantity(source)
    dst = _quantity(target)
    try:
        return float((src / dst).to("dimensionless").magnitude)
    except Exception:  # noqa: BLE001 - pint's DimensionalityError and friends
        raise UnitError(f"cannot convert {source!r} to {target!r}") from None


def _to_decimal(value: float) -> Decimal:
    return Decimal(f"{value:.12g}")


@lru_cache(maxsize=4096)
def factor(source: str, target: str, molar_mass: Decimal | None = None) -> Decimal:
    """Decimal factor so that value[source] * factor = value[target]; UnitError if impossible.

    With a molar mass (g/mol), amount concentrations (umol/L) convert to mass concentrations
    (mg/dL) and back; nothing else crosses dimensions.
    """
    if source == target:
        return Decimal(1)
    try:
        return _to_decimal(_factor_float(source, target))
    except UnitError:
        if molar_mass is None or molar_mass <= 0:
            raise
    # Amount -> mass: source -> mol/L, x g/mol = g/L, -> target. And the reverse.
    try:
        return (
            _to_decimal(_factor_float(source, "mol/L"))
            * molar_mass
            * _to_decimal(_factor_float("g/L", target))
        )
    except UnitError:
        pass
    try:
        return (
            _to_decimal(_factor_float(source, "g/L"))
            / molar_mass
            * _to_decimal(_factor_float("mol/L", target))
        )
    except UnitError:
        raise UnitError(f"cannot convert {source!r} to {target!r}") from None


def convertible(source: str, target: str, molar_mass: Decimal | None) -> bool:
    """Whether `source` converts to `target` (with the molar mass when given)."""
    try:
        factor(source, target, molar_mass)
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
    spelled = canonical_spelling(source, aliases or {})
    if not spelled and not _is_dimensionless_spelling(target):
        raise UnitError(f"no unit given; cannot compare with {target!r}")
    return value * factor(spelled, target, molar_mass)
