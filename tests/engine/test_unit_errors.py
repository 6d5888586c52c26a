"""What the unit conversion says when it cannot convert, the candidate spellings it tries in
order, counts per microscope field, and whether a unit converts with a molar mass."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.engine import units


@pytest.mark.parametrize(("source", "target", "message"), [
    (None, "mg/dL", "no unit given; cannot compare with 'mg/dL'"),
    ("kg", "mg/dL", "cannot convert 'kg' to 'mg/dL'"),
    ("/[HPF]", "/[LPF]", "cannot convert '/[HPF]' to '/[LPF]'"),
], ids=["no unit", "another dimension", "another field"])
def test_a_unit_that_does_not_convert_is_refused_in_these_words(source, target, message):
    with pytest.raises(units.UnitError) as refused:
        units.convert(Decimal(5), source, target)
    assert str(refused.value) == message


@pytest.mark.parametrize(("source", "target", "message"), [
    ("kg", "L", "cannot convert 'kg' to 'L'"),
    ("/[HPF]", "%", "cannot convert '/[HPF]' to '%' (counts per microscope field)"),
])
def test_a_factor_that_does_not_exist_is_refused_in_these_words(source, target, message):
    with pytest.raises(units.UnitError) as refused:
        units.factor(source, target)
    assert str(refused.value) == message


@pytest.mark.parametrize(("source", "target"), [
    ("/[HPF]", "/[HPF]{RBC}"), ("/[HPF]{RBC}", "/[HPF]"), ("/[LPF]{casts}", "/[LPF]{hyaline}"),
])
def test_a_count_per_field_converts_to_the_same_field_whatever_its_annotation(source, target):
    assert units.convert(Decimal(7), source, target) == Decimal(7)


@pytest.mark.parametrize(("written", "aliases", "tried"), [
    # a synonym of the text as written comes first, then the text, then its normal form
    ("mg / dl", {"mg / dl": "mg/dL"}, ("mg/dL", "mg / dl", "mg/dl")),
    # a synonym of the normal form, before the text itself
    ("mg / dl", {"mg/dl": "mg/dL"}, ("mg/dL", "mg / dl", "mg/dl")),
    # a synonym in another case only after the spelling as written
    ("MG/DL", {"mg/dl": "mg/dL"}, ("MG/DL", "mg/dL")),
    ("x10^9/L", {}, ("x10^9/L", "10*9/L")),
])
def test_the_spellings_a_written_unit_is_tried_as_in_order(written, aliases, tried):
    assert units.spellings(written, aliases) == tried


def test_a_mass_and_an_amount_convert_only_with_a_molar_mass():
    assert units.convertible("umol/L", "mg/dL", Decimal(1))
    assert not units.convertible("umol/L", "mg/dL", None)
