"""Every unit conversion the mappings rely on, checked against hand-computed factors."""

from decimal import Decimal

import pytest

from service.core.settings import REPO_ROOT
from service.engine import units
from service.mappings import load_mappings

MAPPINGS = load_mappings(REPO_ROOT / "mappings")


@pytest.mark.parametrize(
    ("value", "source", "concept", "expected"),
    [
        ("5.9", "g/dL", "hemoglobin", "59"),            # docs/decisions.md: g/dL x 10 = g/L
        ("60", "g/L", "hemoglobin", "60"),
        ("4.2", "10*3/uL", "wbc", "4.2"),               # 10*3/uL = 10*9/L
        ("1500", "/uL", "neutrophils", "1.5"),          # /uL / 1000 = 10*9/L
        ("1.1", "K/uL", "lymphocytes", "1.1"),          # alias
        ("1.1", "x10*9/L", "lymphocytes", "1.1"),       # corpus spelling
        ("88.42", "umol/L", "creatinine", "1"),         # docs/decisions.md: umol/L / 88.42 = mg/dL
        ("0.08842", "mmol/L", "creatinine", "1"),
        ("17.1", "umol/L", "bilirubin", "1"),           # CALIPER: divide by 17.1
        ("40", "IU/L", "alt", "40"),                    # docs/decisions.md: also written IU/L
        ("40", "[IU]/L", "ast", "40"),
        ("50", "[in_i]", "body-height", "127"),
        ("100", "[lb_av]", "body-weight", "45.359237"),
        ("500", "mg/g", "upcr", "0.5"),
        ("500", "mg/(24.h)", "urine-protein-24h", "0.5"),
        ("0.5", "g/d", "urine-protein-24h", "0.5"),
        ("1.2", "{INR}", "inr", "1.2"),
        ("95", "%", "spo2", "95"),
        ("7", "{score}", "sledai-2k", "7"),
        ("45", "mL/min/{1.73_m2}", "egfr", "45"),
        ("12.5", "s", "pt", "12.5"),
        ("8.0", "mmol/L", "hemoglobin", "128.916"),     # monomer: 8.0 / 0.6206 x 10 g/L
        ("50", "mg/mmol", "upcr", "0.442100"),          # 50 / 113.0966 g/g
    ],
)
def test_conversion_to_canonical(value, source, concept, expected):
    c = MAPPINGS.concepts[concept]
    got = units.convert(Decimal(value), source, c.unit, aliases=c.unit_aliases,
                        molar_mass=c.molar_mass)
    assert got == pytest.approx(Decimal(expected), rel=Decimal("1e-6"))
    assert isinstance(got, Decimal)


@pytest.mark.parametrize(
    ("source", "concept"),
    [("U/L", "hemoglobin"), ("bogus-unit", "alt"), ("mmol", "hemoglobin"), ("kg", "pt"),
     (None, "hemoglobin"), ("%", "wbc")],
)
def test_unconvertible_units_raise(source, concept):
    c = MAPPINGS.concepts[concept]
    with pytest.raises(units.UnitError):
        units.convert(Decimal(1), source, c.unit, aliases=c.unit_aliases, molar_mass=c.molar_mass)


def test_factors_are_exact_decimals_for_simple_prefixes():
    assert units.factor("g/dL", "g/L") == Decimal(10)
    assert units.factor("10*3/uL", "10*9/L") == Decimal(1)
    assert units.factor("/uL", "10*9/L") == Decimal("0.001")


@pytest.mark.parametrize(
    ("source", "concept", "expected"),
    [
        ("g/dL", "hemoglobin", True),
        ("mmol/L", "hemoglobin", True),     # through the concept's molar mass
        ("K/uL", "lymphocytes", True),      # through the concept's unit aliases
        ("U/L", "hemoglobin", False),
        ("bogus-unit", "alt", False),
        (None, "hemoglobin", False),
        (None, "sledai-2k", True),          # a score's unit "1": no unit written is understood
    ],
)
def test_understood_says_whether_a_unit_converts(source, concept, expected):
    # What the codes report tells a site about its units (service/usecases/codes_report.py).
    c = MAPPINGS.concepts[concept]
    assert units.understood(source, c.unit, aliases=c.unit_aliases,
                            molar_mass=c.molar_mass) is expected


def test_understood_needs_the_aliases_and_the_molar_mass_it_is_given():
    assert not units.understood("K/uL", MAPPINGS.concepts["lymphocytes"].unit)
    assert not units.understood("mmol/L", MAPPINGS.concepts["hemoglobin"].unit)
