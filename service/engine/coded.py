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


def coded_answer(resource: dict[str, Any]) -> str | None:
    """"positive", "negative" or None from a coded, text, boolean or interpreted result."""
    value = resource.get("valueCodeableConcept")
    words: set[str] = set()
    for coding in codings(value):
        for key in ("code", "display"):
            if isinstance(coding.get(key), str):
                words.add(coding[key].strip().lower())
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        words.add(value["text"].strip().lower())
    if isinstance(resource.get("valueString"), str):
        words.add(resource["valueString"].strip().lower())
    if isinstance(resource.get("valueBoolean"), bool):
        words.add("positive" if resource["valueBoolean"] else "negative")
    for item in as_list(resource.get("interpretation")):
        for coding in codings(item):
            code = coding.get("code")
            if code == "POS":
                words.add("positive")
            elif code == "NEG":
                words.add("negative")
    if words & POSITIVE and not words & NEGATIVE:
        return "positive"
    if words & NEGATIVE and not words & POSITIVE:
        return "negative"
    return None
