"""Validate FHIR JSON against the R4 JSON Schema, compiled once into plain Python checks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

# The R4 ResearchSubject cut from HL7's fhir.schema.json (tests/support/research_subject_schema.py
# regenerates it; a test checks it against the full schema).
RESEARCH_SUBJECT_SCHEMA = Path(__file__).with_name("research_subject.schema.json")

Check = Callable[[Any], None]
_ANY = re.compile("")
# Not JSON Schema: primitive elements of minimum cardinality 1 (tests/support cuts them in).
REQUIRED_PRIMITIVES = "x-fhir-required-primitives"


class SchemaError(ValueError):
    """The value breaks the schema; `path` says where (e.g. `extension[3].valueCode`)."""

    def __init__(self, problem: str, path: tuple[str, ...] = ()) -> None:
        self.problem = problem
        self.path = path
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = "".join(p if p.startswith("[") else f".{p}" for p in self.path).lstrip(".")
        return f"{where or 'resource'}: {self.problem}"

    def under(self, segment: str) -> SchemaError:
        return SchemaError(self.problem, (segment, *self.path))


def _string(schema: dict[str, Any]) -> Check:
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    enum = frozenset(schema["enum"]) if "enum" in schema else None

    def check_string(value: Any) -> None:
        if type(value) is not str:
            raise SchemaError("must be a string")
        if pattern is not None and pattern.search(value) is None:
            # The value is not quoted: error messages reach logs, values may be record data.
            raise SchemaError("is not a valid FHIR value of this type")
        if enum is not None and value not in enum:
            raise SchemaError(f"is not one of {', '.join(sorted(enum))}")
    if enum is None:
        # Objects check such strings inline with this pattern (no call per string).
        check_string.pattern = pattern or _ANY  # type: ignore[attr-defined]
    return check_string


def _number(schema: dict[str, Any]) -> Check:
    text = schema.get("pattern", "")
    integer = bool(text) and "." not in text  # integer, positiveInt, unsignedInt
    # positiveInt starts at 1, unsignedInt at 0 (their patterns say so).
    least = 1 if text.startswith("^[1-9]") else 0 if text.startswith("^[0]") else None

    def check_number(value: Any) -> None:
        if integer:
            if type(value) is not int:
                raise SchemaError("must be an integer")
            if least is not None and value < least:
                raise SchemaError(f"must be at least {least}")
        elif type(value) not in (int, float) or not math.isfinite(value):
            raise SchemaError("must be a finite number")
    return check_number


def _boolean(schema: dict[str, Any]) -> Check:
    def check_boolean(value: Any) -> None:
        if type(value) is not bool:
            raise SchemaError("must be true or false")
    return check_boolean


def _loose_object(schema: dict[str, Any]) -> Check:
    # A contained resource: an object with the required keys (the model checks the rest).
    required = tuple(schema.get("required", ()))

    def check_loose_object(value: Any) -> None:
        if type(value) is not dict:
            raise SchemaError("must be an object")
        for key in required:
            if key not in value:
                raise SchemaError(f"{key} is required")
    return check_loose_object


def _enum_or_const(schema: dict[str, Any]) -> Check:
    if "enum" in schema:  # a code with a required value set (e.g. ResearchSubject.status)
        enum = frozenset(schema["enum"])

        def check_enum(value: Any) -> None:
            if type(value) is not str or value not in enum:
                raise SchemaError(f"is not one of {', '.join(sorted(enum))}")
        return check_enum
    if "const" in schema:
        constant = schema["const"]

        def check_const(value: Any) -> None:
            if value != constant:
                raise SchemaError(f"must be {constant!r}")
        return check_const
    return lambda value: None  # no constraint


# JSON Schema: "pattern" applies to strings only, so only the string check uses it.
_BY_TYPE: dict[str, Callable[[dict[str, Any]], Check]] = {
    "string": _string, "number": _number, "boolean": _boolean, "object": _loose_object,
}


def _primitive(schema: dict[str, Any]) -> Check:
    return _BY_TYPE.get(schema.get("type", ""), _enum_or_const)(schema)


def _missing(value: dict[str, Any], required: tuple[str, ...],
             primitives: tuple[tuple[str, str], ...]) -> None:
    for key in required:
        if key not in value:
            raise SchemaError(f"{key} is required")
    for key, extended in primitives:
        if key not in value and extended not in value:
            raise SchemaError(f"{key} is required")


def _extension_rule(value: dict[str, Any]) -> None:
    # ext-1 and value[x]: one value, or nested extensions, never both. url + one more key
    # cannot break it, so only larger extensions are counted.
    if len(value) > 2:
        values = sum(1 for key in value if key.startswith("value"))
        if values > 1 or (values and "extension" in value):
            raise SchemaError("an extension has one value[x] or nested extensions, not both")


def _compiling(value: Any) -> None:
    raise AssertionError("schema definition used before it was compiled")


class _Compiler:
    """Turns each definition into a closure once; $ref cycles (Extension) resolve lazily."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.compiled: dict[str, Check] = {}

    def ref(self, name: str) -> Check:
        if name not in self.compiled:
            self.compiled[name] = _compiling  # a cycle back here is resolved at call time
            self.compiled[name] = self.node(self.definitions[name], name)
        return self.compiled[name]

    def node(self, schema: dict[str, Any], name: str = "") -> Check:
        if "$ref" in schema:
            target = schema["$ref"].rsplit("/", 1)[-1]
            done = self.ref(target)
            if done is not _compiling:
                return done
            compiled = self.compiled
            # A cycle (Extension.extension): looked up at call time, when it is compiled.
            return lambda value: compiled[target](value)
        if schema.get("type") == "array":
            item = self.node(schema.get("items", {}))

            def check_array(value: Any) -> None:
                if type(value) is not list:
                    raise SchemaError("must be an array")
                if not value:
                    raise SchemaError("must not be an empty array (FHIR: no empty elements)")
                for index, element in enumerate(value):
                    try:
                        item(element)
                    except SchemaError as exc:
                        raise exc.under(f"[{index}]") from None
            return check_array
        if "properties" in schema:
            return self.object(schema, name)
        return _primitive(schema)

    def object(self, schema: dict[str, Any], name: str) -> Check:
        properties = {key: self.node(sub) for key, sub in schema["properties"].items()}
        required = tuple(schema.get("required", ()))
        # 1..1 primitives: the value, or its `_name` extensions standing in for it.
        primitives = tuple((key, f"_{key}") for key in schema.get(REQUIRED_PRIMITIVES, ()))
        closed = schema.get("additionalProperties") is False
        strings = {key: check.pattern for key, check in properties.items()
                   if hasattr(check, "pattern")}
        extension = name == "Extension"

        def check_object(value: Any) -> None:
            if type(value) is not dict:
                raise SchemaError("must be an object")
            if not value:
                raise SchemaError("must not be empty (FHIR: no empty elements)")
            _missing(value, required, primitives)
            for key, element in value.items():
                pattern = strings.get(key)
                if pattern is not None and type(element) is str and pattern.search(element):
                    continue  # the common case, a valid string, without a call
                check = properties.get(key)
                if check is None:
                    if closed:
                        raise SchemaError(f"{key} is not an element of this type")
                    continue
                if element is None:
                    raise SchemaError("must not be null", (key,))
                try:
                    check(element)
                except SchemaError as exc:
                    raise exc.under(key) from None
            if extension:
                _extension_rule(value)
        return check_object


def compile_schema(schema: dict[str, Any]) -> Check:
    """A check raising SchemaError for anything the schema's root definition refuses."""
    compiler = _Compiler(schema["definitions"])
    root = schema["$ref"].rsplit("/", 1)[-1]
    return compiler.ref(root)


@cache
def research_subject_check() -> Check:
    """The compiled R4 ResearchSubject check (compiled on first use, about 5 ms)."""
    return compile_schema(json.loads(RESEARCH_SUBJECT_SCHEMA.read_text(encoding="utf-8")))
