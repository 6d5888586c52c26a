"""What a log line may never hold: the seed Patients' names, birth dates, record numbers, and
the secrets a test configured, each as the pattern that finds it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from tests.support.seed_population import SEED_FILES


def seed_patients() -> list[dict[str, Any]]:
    """The Patient resources of every seed file."""
    patients = []
    for path in SEED_FILES:
        bundle = json.loads(path.read_text())
        patients += [e["resource"] for e in bundle["entry"]
                     if e["resource"]["resourceType"] == "Patient"]
    return patients


def forbidden(secrets: Mapping[str, str]) -> dict[str, re.Pattern[str]]:
    """Every seed Patient's name parts, birth date (as labs and EHRs print it) and record
    numbers, and each of `secrets` (label -> value), by what it is."""
    needles: dict[str, re.Pattern[str]] = {}
    for patient in seed_patients():
        for name in patient.get("name") or ():
            parts = [*(name.get("given") or ()), name.get("family"), name.get("text"),
                     *(name.get("prefix") or ())]
            for part in filter(None, parts):
                # Whole words, so "Xu" does not match inside an unrelated word.
                needles[f"name {part}"] = re.compile(rf"\b{re.escape(part)}\b")
        born = date.fromisoformat(patient["birthDate"])
        for shown in (born.isoformat(), born.strftime("%Y%m%d"), born.strftime("%d/%m/%Y"),
                      born.strftime("%m/%d/%Y"), born.strftime("%d.%m.%Y")):
            needles[f"birth date {shown}"] = re.compile(re.escape(shown))
        for ident in patient.get("identifier") or ():
            needles[f"record number {ident['value']}"] = re.compile(re.escape(ident["value"]))
    for label, value in secrets.items():
        needles[label] = re.compile(re.escape(value))
    return needles
