"""Reading a coded result as positive or negative: answers, text, booleans, interpretation."""

from __future__ import annotations

from typing import Any

from service.engine.record import as_list, codings

# SNOMED negative / not detected / not pregnant; LOINC answers LA6577-6 Negative,
# LA6576-8 Positive; SNOMED positive / detected / pregnant.
NEGATIVE = {"260385009", "neg", "negative", "not detected", "260415000", "60001007",
            "la6577-6", "not pregnant"}
POSITIVE = {"10828004", "pos", "positive", "detected", "260373001", "77386006", "la6576-8",
            "pregnant"}


def _words(resource: dict[str, Any]) -> set[str]:
    """Every code, display and text a result's value and interpretation carry, lower-cased."""
    value = resource.get("valueCodeableConcept")
    words: set[str] = set()
    for coding in codings(value):
        words |= {coding[k].strip().lower() for k in ("code", "display")
                  if isinstance(coding.get(k), str)}
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        words.add(value["text"].strip().lower())
    if isinstance(resource.get("valueString"), str):
        words.add(resource["valueString"].strip().lower())
    if isinstance(resource.get("valueBoolean"), bool):
        words.add("positive" if resource["valueBoolean"] else "negative")
    for item in as_list(resource.get("interpretation")):
        # v3-ObservationInterpretation POS / NEG.
        codes = {coding.get("code") for coding in codings(item)}
        words |= {"positive"} if "POS" in codes else set()
        words |= {"negative"} if "NEG" in codes else set()
    return words


def coded_answer(resource: dict[str, Any]) -> str | None:
    """"positive", "negative" or None from a coded, text, boolean or interpreted result."""
    words = _words(resource)
    if words & POSITIVE and not words & NEGATIVE:
        return "positive"
    if words & NEGATIVE and not words & POSITIVE:
        return "negative"
    return None
