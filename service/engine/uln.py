"""Upper limit of normal for "x ULN" criteria: the result's own range, else the CALIPER table."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from service.engine import units
from service.engine.labs import Measurement, fmt
from service.engine.model import Concept, Mappings
from service.engine.numbers import to_decimal
from service.engine.record import PatientRecord


@dataclass(frozen=True)
class Uln:
    """A ULN in the concept's canonical unit and a sentence saying where it came from."""

    value: Decimal
    unit: str
    source: str


def from_reference_range(concept: Concept, measurement: Measurement, side: str = "high"
                         ) -> Uln | None:
    """The Observation's own referenceRange.high (or .low), converted to the canonical unit."""
    resource = measurement.entry.resource
    ranges = resource.get("referenceRange")
    if not isinstance(ranges, list):
        return None
    value_unit = None
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        value_unit = quantity.get("code") or quantity.get("unit")
    for item in ranges:
        if not isinstance(item, dict) or not isinstance(item.get(side), dict):
            continue
        high = item[side]
        number = to_decimal(high.get("value"))
        if number is None:
            continue
        unit = high.get("code") or high.get("unit") or value_unit
        assert concept.unit is not None
        try:
            value = units.convert(number, unit if isinstance(unit, str) else None, concept.unit,
                                  aliases=concept.unit_aliases, molar_mass=concept.molar_mass)
        except units.UnitError:
            continue
        return Uln(value, concept.unit, f"reference range of {measurement.ref}")
    return None


def from_caliper(
    record: PatientRecord, mappings: Mappings, concept: Concept, measurement: Measurement
) -> tuple[Uln | None, str | None]:
    """ULN from the CALIPER age/sex table at the measurement date; or why there is none."""
    if not concept.caliper:
        return None, "no reference range on the result and no age/sex table for it"
    birth = record.birth_date
    if birth is None:
        return None, "no reference range on the result and no birth date for the age/sex table"
    if birth.precision != "day":
        return None, "no reference range on the result and the birth date is too partial " \
                     "for the age/sex table"
    age_days = (measurement.when - birth.day).days
    years = measurement.when.year - birth.day.year - (
        (measurement.when.month, measurement.when.day) < (birth.day.month, birth.day.day))
    sex = {"male": "M", "female": "F"}.get(record.gender or "")
    rows = [
        row for row in mappings.uln_rows
        if row.analyte == concept.caliper
        and row.age_from <= (age_days if row.age_unit == "day" else years) < row.age_until
    ]
    matching = [row for row in rows if row.sex == "MF" or (sex is not None and row.sex == sex)]
    if not matching:
        if rows and sex is None:
            return None, "no reference range on the result and the age/sex table needs the sex"
        return None, (
            "no reference range on the result and the age/sex table has no row for age "
            f"{years} years"
        )
    row = matching[0]
    assert concept.unit is not None
    try:
        value = units.convert(row.upper, row.unit, concept.unit, aliases=concept.unit_aliases,
                              molar_mass=concept.molar_mass)
    except units.UnitError:
        return None, f"the age/sex table's unit {row.unit} cannot be converted to {concept.unit}"
    sex_text = {"MF": "both sexes", "M": "male", "F": "female"}[row.sex]
    ages = f"age {row.age_from} to <{row.age_until} {row.age_unit}s"
    return (
        Uln(value, concept.unit,
            f"CALIPER pediatric table ({row.analyte}, {sex_text}, {ages}: "
            f"{fmt(row.upper)} {row.unit})"),
        None,
    )


def find_uln(
    record: PatientRecord, mappings: Mappings, concept: Concept, measurement: Measurement
) -> tuple[Uln | None, str | None]:
    """The ULN to use for a measurement, or a reason there is none."""
    own = from_reference_range(concept, measurement)
    if own is not None:
        return own, None
    return from_caliper(record, mappings, concept, measurement)


def find_lln(concept: Concept, measurement: Measurement) -> tuple[Uln | None, str | None]:
    """The lower limit of normal for a measurement (its referenceRange.low), or why none.

    No lower-limit table ships with the mappings (CALIPER here holds upper limits only).
    """
    own = from_reference_range(concept, measurement, "low")
    if own is not None:
        return own, None
    return None, "no reference range low on the result and no table of lower limits for it"
