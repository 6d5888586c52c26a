"""Every entry of the unit synonym table (mappings/units.toml) is UCUM and means what it says."""

from __future__ import annotations

import tomllib
from decimal import Decimal

import pytest

from service.core.settings import REPO_ROOT as REPO
from service.engine import units

TABLE = tomllib.loads((REPO / "mappings" / "units.toml").read_text("utf-8"))["unit_aliases"]


@pytest.mark.parametrize("spelling,target", sorted(TABLE.items()))
def test_synonym_converts_to_its_target(mappings, spelling, target):
    units.parse(target)  # the target is valid UCUM
    got = units.convert(Decimal(1), spelling, target, aliases=mappings.unit_aliases)
    assert got == Decimal(1)
    # Where the spelling is valid UCUM as written, it must mean the same thing: UCUM is tried
    # before the table's case-insensitive matches, so a clash would change a value silently.
    if units.convertible(spelling, target, None):
        assert units.factor(spelling, target) == Decimal(1)


@pytest.mark.parametrize("spelling,expected", [
    ("x10^9/L", "10*9/L"), ("x10E9/L", "10*9/L"), ("X10*3/uL", "10*3/uL"),
    ("\u00d710^9/L", "10*9/L"), ("10E3/\u00b5L", "10*3/uL"), ("x10(9)/L", "10*9/L"),
    ("mg / dL", "mg/dL"), ("10**3/uL", "10*3/uL"),
])
def test_mechanical_normalisation(spelling, expected):
    assert units.normalise_spelling(spelling) == expected


def test_capitals_match_the_table_only_when_ucum_fails(mappings):
    aliases = mappings.unit_aliases
    assert units.convert(Decimal(5), "K/UL", "10*9/L", aliases=aliases) == Decimal(5)
    assert units.convert(Decimal(11), "MG/DL", "mg/dL", aliases=aliases) == Decimal(11)
    # "G/L": giga per litre for a count, grams per litre for a concentration.
    assert units.convert(Decimal(5), "G/L", "10*9/L", aliases=aliases) == Decimal(5)
    assert units.convert(Decimal(100), "G/L", "g/L", aliases=aliases) == Decimal(100)
    assert units.convert(Decimal(100), "g/L", "g/L", aliases=aliases) == Decimal(100)


def test_unknown_spelling_still_raises(mappings):
    with pytest.raises(units.UnitError):
        units.convert(Decimal(1), "furlongs/fortnight", "10*9/L", aliases=mappings.unit_aliases)
