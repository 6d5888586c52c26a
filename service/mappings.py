"""Load the declarative mappings (TOML) into frozen dataclasses, validating every key."""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from service.engine import units

ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
ICD10 = ICD10_SYSTEMS[0]
WILDCARD = "*"
CALIPER_FILE = Path("reference") / "pediatric_uln_caliper_colantonio2012.csv"


class MappingError(ValueError):
    """A mapping file is wrong; the message names the file and the key."""


def normalise_token(system: str | None, code: str | None) -> str | None:
    """A `system|code` token in the form the index uses (ICD-10 system and code normalised)."""
    if not system or not code or not isinstance(system, str) or not isinstance(code, str):
        return None
    system = system.strip()
    code = code.strip()
    if system in ICD10_SYSTEMS:
        # ICD-10 codes are written with or without the dot and in either case.
        return f"{ICD10}|{code.upper().replace('.', '')}"
    return f"{system}|{code}"


# Parameters each rule accepts: name -> type. Types: concept, concepts, decimal, int, str,
# agents, pairs. `required` lists the ones that must be present.
RULES: dict[str, dict[str, Any]] = {
    "age": {"params": {"min_years": "int", "max_years": "int"}, "required": ()},
    "diagnosis": {
        "params": {"concept": "concept", "exclude": "concepts"}, "required": ("concept",),
    },
    "absence": {"params": {"concepts": "concepts"}, "required": ("concepts",)},
    "threshold": {
        "params": {
            "concept": "concept", "operator": "str", "threshold": "decimal",
            "lookback_days": "int", "washout_concepts": "concepts", "washout_days": "int",
        },
        "required": ("concept", "operator", "threshold"),
    },
    "uln-multiple": {
        "params": {
            "concept": "concept", "max_multiple": "decimal", "lookback_days": "int",
            "review_if": "concepts", "alternative_if": "concepts",
            "alternative_max_multiple": "decimal",
        },
        "required": ("concept", "max_multiple"),
    },
    "egfr": {
        "params": {
            "threshold": "decimal", "schwartz_k": "decimal", "schwartz_max_age": "int",
            "height_window_days": "int", "review_if": "concepts", "lookback_days": "int",
        },
        "required": ("threshold", "schwartz_k"),
    },
    "manual": {
        "params": {
            "lookback_days": "int", "interpretation": "concept", "normal": "concept",
            "abnormal": "concept",
        },
        "required": (),
    },
    "consent": {"params": {}, "required": ()},
    "pregnancy": {
        "params": {"concept": "concept", "min_age_years": "int", "window_days": "int"},
        "required": ("concept",),
    },
    "refractory-sle": {
        "params": {
            "steroid_min_mg_per_kg_day": "decimal", "steroid_min_days": "int",
            "required": "concepts", "dmards": "agents", "min_dmards": "int",
            "glucocorticoids": "concepts", "weight_lookback_days": "int",
        },
        "required": ("steroid_min_mg_per_kg_day", "steroid_min_days", "dmards", "min_dmards",
                     "glucocorticoids"),
    },
    "refractory-ln": {
        "params": {"agents": "agents", "min_agents": "int", "more_than_days": "int"},
        "required": ("agents", "min_agents", "more_than_days"),
    },
    "ln-biopsy": {
        "params": {"classes": "concepts", "biopsy": "concepts", "max_age_days": "int"},
        "required": ("classes", "biopsy", "max_age_days"),
    },
    "proteinuria": {
        "params": {
            "upcr_concept": "concept", "upcr_min": "decimal",
            "protein_24h_concept": "concept", "protein_24h_min": "decimal",
            "lookback_days": "int",
        },
        "required": ("upcr_concept", "upcr_min"),
    },
    "positive": {"params": {"concepts": "concepts", "lookback_days": "int"},
                 "required": ("concepts",)},
    "titer": {
        "params": {"concept": "concept", "presence_concept": "concept",
                   "min_denominator": "decimal", "lookback_days": "int"},
        "required": ("concept", "min_denominator"),
    },
    "ecog": {
        "params": {"concept": "concept", "max_score": "decimal", "equivalents": "concepts",
                   "equivalence": "pairs", "lookback_days": "int"},
        "required": ("concept", "max_score"),
    },
}
CRITERION_KEYS = {"id", "text", "rule", "kind", "type"}
OPERATORS = (">=", "<=", ">", "<")


@dataclass(frozen=True)
class Concept:
    """A clinical concept: the codes that mean it and how its values are compared."""

    name: str
    kind: str
    codes: frozenset[str]
    prefixes: tuple[str, ...] = ()
    unit: str | None = None
    lookback_days: int = 90
    molar_mass: Decimal | None = None
    unit_aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    prednisone_equivalent: Decimal | None = None
    names: tuple[str, ...] = ()
    search: bool = True
    caliper: str | None = None
    wildcard_systems: tuple[str, ...] = ()
    plausible_range: tuple[Decimal, Decimal] | None = None


@dataclass(frozen=True)
class CriterionMapping:
    """One criterion of a study: spec id, seed text, kind, rule and its parameters."""

    id: str
    text: str
    rule: str
    kind: str
    type: str
    params: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class StudyMapping:
    """A study: key, title, registry number and its criteria in spec order."""

    key: str
    title: str
    registry_id: str | None
    seed: str | None
    criteria: tuple[CriterionMapping, ...]
    source: str


@dataclass(frozen=True)
class Product:
    """A product-level medication code resolved to its ingredient and strength."""

    ingredient: str
    strength_mg: Decimal | None


@dataclass(frozen=True)
class UlnRow:
    """One CALIPER row: analyte, sex (M, F or MF), age range [from, until) in its unit, ULN."""

    analyte: str
    unit: str
    sex: str
    age_from: int
    age_until: int
    age_unit: str  # "day" or "year" (whole years, as the table is written)
    upper: Decimal


@dataclass(frozen=True)
class Mappings:
    """Everything loaded from the mappings folder."""

    concepts: Mapping[str, Concept]
    studies: Mapping[str, StudyMapping]
    unit_aliases: Mapping[str, str]
    products: Mapping[str, Product]
    uln_rows: tuple[UlnRow, ...]
    code_index: Mapping[str, tuple[str, ...]]
    prefix_index: tuple[tuple[str, str], ...]
    directory: str

    def concepts_for(self, system: str | None, code: str | None) -> tuple[str, ...]:
        """Concept names a coding belongs to (exact codes, ICD-10 prefixes, wildcard systems)."""
        token = normalise_token(system, code)
        if token is None:
            return ()
        found = self.code_index.get(token, ())
        if self.prefix_index:
            extra = tuple(name for prefix, name in self.prefix_index if token.startswith(prefix))
            if extra:
                found = tuple(dict.fromkeys(found + extra))
        wildcard = self.code_index.get(f"{system}|{WILDCARD}")
        if wildcard:
            found = tuple(dict.fromkeys(found + wildcard))
        return found

    def observation_codes(self) -> tuple[str, ...]:
        """Sorted `system|code` tokens of every Observation concept (for the retrieval search)."""
        return self._observation_codes

    @cached_property
    def _observation_codes(self) -> tuple[str, ...]:
        # Computed once: the mappings never change after loading.
        tokens: set[str] = set()
        for concept in self.concepts.values():
            if concept.kind != "observation" or not concept.search:
                continue
            for token in concept.codes:
                system, _, code = token.partition("|")
                # A wildcard code is searched by system alone (`code=system|`).
                tokens.add(f"{system}|" if code == WILDCARD else token)
        return tuple(sorted(tokens))


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise MappingError(f"{where}: expected a number, got {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"{where}: {value!r} is not a number") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path.name}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise MappingError(f"{path.name}: cannot read: {exc.strerror}") from None


CONCEPT_KEYS = {
    "kind", "codes", "prefixes", "unit", "lookback_days", "molar_mass", "unit_aliases",
    "prednisone_equivalent", "names", "search", "caliper", "plausible_range",
}
CONCEPT_KINDS = ("observation", "condition", "medication", "procedure")


def _parse_codes(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list):
        raise MappingError(f"{where}: expected a list of 'system|code' strings")
    out = []
    for item in raw:
        if not isinstance(item, str) or "|" not in item:
            raise MappingError(f"{where}: {item!r} is not a 'system|code' string")
        system, _, code = item.partition("|")
        if not system or not code:
            raise MappingError(f"{where}: {item!r} is not a 'system|code' string")
        out.append(item if code == WILDCARD else normalise_token(system, code))
    return out


def _parse_concept(
    name: str, raw: Any, file: str, defaults: dict[str, Any], global_aliases: Mapping[str, str]
) -> Concept:
    where = f"{file}: concepts.{name}"
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected a table")
    unknown = set(raw) - CONCEPT_KEYS
    if unknown:
        raise MappingError(f"{where}.{sorted(unknown)[0]}: unknown key")
    kind = raw.get("kind")
    if kind not in CONCEPT_KINDS:
        raise MappingError(f"{where}.kind: must be one of {', '.join(CONCEPT_KINDS)}")
    codes = _parse_codes(raw.get("codes", []), f"{where}.codes")
    prefixes = _parse_codes(raw.get("prefixes", []), f"{where}.prefixes")
    unit = raw.get("unit")
    aliases = raw.get("unit_aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise MappingError(f"{where}.unit_aliases: expected a table of strings")
    if unit is not None:
        if not isinstance(unit, str):
            raise MappingError(f"{where}.unit: expected a UCUM unit string")
        try:
            units.parse(unit)
        except units.UnitError as exc:
            raise MappingError(f"{where}.unit: {exc}") from None
        for alias, target in aliases.items():
            if not units.convertible(target, unit, None) and not units.convertible(
                target, unit, Decimal(1)
            ):
                raise MappingError(
                    f"{where}.unit_aliases.{alias}: {target!r} cannot be converted to {unit!r}"
                )
    lookback = raw.get("lookback_days", defaults.get("lookback_days", 90))
    if not isinstance(lookback, int) or lookback < 0:
        raise MappingError(f"{where}.lookback_days: expected a non-negative integer")
    names = raw.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MappingError(f"{where}.names: expected a list of strings")
    caliper = raw.get("caliper")
    if caliper is not None and not isinstance(caliper, str):
        raise MappingError(f"{where}.caliper: expected an analyte name")
    wildcard_systems = tuple(c.partition("|")[0] for c in codes if c.endswith(f"|{WILDCARD}"))
    plausible = raw.get("plausible_range")
    if plausible is not None:
        if not isinstance(plausible, list) or len(plausible) != 2:
            raise MappingError(f"{where}.plausible_range: expected [low, high]")
        plausible = tuple(_decimal(v, f"{where}.plausible_range") for v in plausible)
    return Concept(
        name=name,
        kind=kind,
        codes=frozenset(codes),
        prefixes=tuple(prefixes),
        unit=unit,
        lookback_days=lookback,
        molar_mass=_decimal(raw["molar_mass"], f"{where}.molar_mass")
        if "molar_mass" in raw else None,
        unit_aliases=MappingProxyType({**global_aliases, **aliases}),
        prednisone_equivalent=_decimal(
            raw["prednisone_equivalent"], f"{where}.prednisone_equivalent"
        ) if "prednisone_equivalent" in raw else None,
        names=tuple(n.lower() for n in names),
        search=bool(raw.get("search", True)),
        caliper=caliper,
        wildcard_systems=wildcard_systems,
        plausible_range=plausible,
    )


def _check_param(
    value: Any, kind: str, where: str, concepts: Mapping[str, Concept]
) -> Any:
    if kind == "concept":
        if value not in concepts:
            raise MappingError(f"{where}: unknown concept {value!r}")
        return value
    if kind == "concepts":
        if not isinstance(value, list):
            raise MappingError(f"{where}: expected a list of concept names")
        for item in value:
            if item not in concepts:
                raise MappingError(f"{where}: unknown concept {item!r}")
        return tuple(value)
    if kind == "decimal":
        return _decimal(value, where)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MappingError(f"{where}: expected a non-negative integer")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise MappingError(f"{where}: expected a string")
        return value
    if kind == "pairs":
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, int) for x in p)
            for p in value
        ):
            raise MappingError(f"{where}: expected a list of [score, equivalent] integer pairs")
        return tuple((Decimal(a), Decimal(b)) for a, b in value)
    if kind == "agents":
        if not isinstance(value, list):
            raise MappingError(f"{where}: expected a list of {{name, concepts}} tables")
        agents = []
        for i, agent in enumerate(value):
            if not isinstance(agent, dict) or set(agent) != {"name", "concepts"}:
                raise MappingError(f"{where}[{i}]: expected a table with name and concepts")
            names = _check_param(agent["concepts"], "concepts", f"{where}[{i}].concepts", concepts)
            agents.append((str(agent["name"]), names))
        return tuple(agents)
    raise AssertionError(kind)


def _parse_study(path: Path, raw: dict[str, Any], concepts: Mapping[str, Concept]) -> StudyMapping:
    file = path.name
    study = raw.get("study")
    if not isinstance(study, dict):
        raise MappingError(f"{file}: study: missing [study] table")
    unknown = set(raw) - {"study", "criteria"}
    if unknown:
        raise MappingError(f"{file}: {sorted(unknown)[0]}: unknown key")
    for key in ("key", "title"):
        if not isinstance(study.get(key), str) or not study[key]:
            raise MappingError(f"{file}: study.{key}: required string")
    unknown = set(study) - {"key", "title", "registry_id", "seed"}
    if unknown:
        raise MappingError(f"{file}: study.{sorted(unknown)[0]}: unknown key")
    criteria_raw = raw.get("criteria")
    if not isinstance(criteria_raw, list) or not criteria_raw:
        raise MappingError(f"{file}: criteria: at least one [[criteria]] table is required")
    criteria = []
    seen: set[str] = set()
    for index, item in enumerate(criteria_raw):
        where = f"{file}: criteria[{index}]"
        if not isinstance(item, dict):
            raise MappingError(f"{where}: expected a table")
        cid = item.get("id")
        if not isinstance(cid, str) or not cid:
            raise MappingError(f"{where}.id: required string")
        where = f"{file}: criteria[{cid}]"
        if cid in seen:
            raise MappingError(f"{where}.id: duplicate criterion id")
        seen.add(cid)
        rule = item.get("rule")
        if rule not in RULES:
            raise MappingError(f"{where}.rule: unknown rule {rule!r}")
        kind = item.get("kind", "automatic")
        if kind not in ("automatic", "manual"):
            raise MappingError(f"{where}.kind: must be automatic or manual")
        ctype = item.get("type", "inclusion")
        if ctype not in ("inclusion", "exclusion"):
            raise MappingError(f"{where}.type: must be inclusion or exclusion")
        text = item.get("text")
        if not isinstance(text, str) or not text:
            raise MappingError(f"{where}.text: required string (the seed text)")
        spec = RULES[rule]
        params: dict[str, Any] = {}
        for key, value in item.items():
            if key in CRITERION_KEYS:
                continue
            if key not in spec["params"]:
                raise MappingError(f"{where}.{key}: unknown key for rule {rule!r}")
            params[key] = _check_param(value, spec["params"][key], f"{where}.{key}", concepts)
        for key in spec["required"]:
            if key not in params:
                raise MappingError(f"{where}.{key}: required for rule {rule!r}")
        if "operator" in params and params["operator"] not in OPERATORS:
            raise MappingError(f"{where}.operator: must be one of {', '.join(OPERATORS)}")
        for key in ("concept", "upcr_concept", "protein_24h_concept"):
            name = params.get(key)
            if name and rule in ("threshold", "uln-multiple", "proteinuria", "ecog") and (
                concepts[name].unit is None
            ):
                raise MappingError(f"{where}.{key}: concept {name!r} has no canonical unit")
        criteria.append(
            CriterionMapping(
                id=cid, text=text, rule=rule, kind=kind, type=ctype,
                params=MappingProxyType(params), source=file,
            )
        )
    return StudyMapping(
        key=study["key"], title=study["title"], registry_id=study.get("registry_id"),
        seed=study.get("seed"), criteria=tuple(criteria), source=file,
    )


def _load_caliper(path: Path) -> tuple[UlnRow, ...]:
    if not path.is_file():
        return ()
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for n, row in enumerate(csv.DictReader(handle), start=2):
            where = f"{path.name}: line {n}"
            try:
                if row["age_unit"] not in ("day", "year"):
                    raise ValueError(f"age_unit {row['age_unit']!r} must be day or year")
                rows.append(UlnRow(
                    analyte=row["analyte"], unit=row["unit"], sex=row["sex"],
                    age_from=int(row["age_from"]), age_until=int(row["age_until_exclusive"]),
                    age_unit=row["age_unit"], upper=Decimal(row["upper_limit"]),
                ))
            except (KeyError, ValueError, InvalidOperation) as exc:
                raise MappingError(f"{where}: {exc}") from None
    return tuple(rows)


def load_mappings(directory: Path | str) -> Mappings:
    """Load and validate every *.toml of a mappings folder; MappingError names file and key."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MappingError(f"{directory}: not a directory")
    files = sorted(directory.glob("*.toml"))
    raw_files = [(path, _read_toml(path)) for path in files]
    defaults: dict[str, Any] = {}
    global_aliases: dict[str, str] = {}
    concept_tables: dict[str, tuple[str, dict[str, Any]]] = {}
    extra_codes: list[tuple[str, str, Any]] = []
    products_raw: dict[str, tuple[str, Any]] = {}
    for path, raw in raw_files:
        if "study" in raw:
            continue
        unknown = set(raw) - {"defaults", "unit_aliases", "concepts", "products"}
        if unknown:
            raise MappingError(f"{path.name}: {sorted(unknown)[0]}: unknown key")
        defaults.update(raw.get("defaults", {}))
        global_aliases.update(raw.get("unit_aliases", {}))
        for name, table in raw.get("concepts", {}).items():
            if name in concept_tables:
                # A second file may only append codes to a concept (site-local codes).
                if not isinstance(table, dict) or set(table) - {"codes", "prefixes"}:
                    raise MappingError(
                        f"{path.name}: concepts.{name}: already defined in "
                        f"{concept_tables[name][0]}; a site file may only add codes"
                    )
                extra_codes.append((path.name, name, table))
            else:
                concept_tables[name] = (path.name, table)
        for token, table in raw.get("products", {}).items():
            products_raw[token] = (path.name, table)
    if set(defaults) - {"lookback_days"}:
        raise MappingError(f"defaults.{sorted(set(defaults) - {'lookback_days'})[0]}: unknown key")
    concepts: dict[str, Concept] = {}
    for name, (file, table) in concept_tables.items():
        concepts[name] = _parse_concept(name, table, file, defaults, global_aliases)
    for file, name, table in extra_codes:
        base = concepts[name]
        codes = _parse_codes(table.get("codes", []), f"{file}: concepts.{name}.codes")
        prefixes = _parse_codes(table.get("prefixes", []), f"{file}: concepts.{name}.prefixes")
        concepts[name] = Concept(**{
            **base.__dict__,
            "codes": base.codes | frozenset(codes),
            "prefixes": base.prefixes + tuple(prefixes),
        })
    products: dict[str, Product] = {}
    for token, (file, table) in products_raw.items():
        where = f"{file}: products.{token}"
        if not isinstance(table, dict) or table.get("ingredient") not in concepts:
            raise MappingError(f"{where}.ingredient: unknown concept")
        system, _, code = token.partition("|")
        key = normalise_token(system, code)
        if key is None:
            raise MappingError(f"{where}: not a 'system|code' key")
        strength = table.get("strength_mg")
        products[key] = Product(
            ingredient=table["ingredient"],
            strength_mg=None if strength is None else _decimal(strength, f"{where}.strength_mg"),
        )
    studies: dict[str, StudyMapping] = {}
    for path, raw in raw_files:
        if "study" not in raw:
            continue
        study = _parse_study(path, raw, concepts)
        if study.key in studies:
            raise MappingError(f"{path.name}: study.key: {study.key!r} defined twice")
        studies[study.key] = study
    studies = dict(sorted(studies.items(), key=lambda kv: (kv[1].seed or "", kv[1].source)))
    if not studies:
        raise MappingError(f"{directory}: no study file (a *.toml with a [study] table)")
    index: dict[str, list[str]] = {}
    prefix_index: list[tuple[str, str]] = []
    for concept in concepts.values():
        for token in concept.codes:
            index.setdefault(token, []).append(concept.name)
        for prefix in concept.prefixes:
            prefix_index.append((prefix, concept.name))
    uln_rows = _load_caliper(directory / CALIPER_FILE)
    analytes = {row.analyte for row in uln_rows}
    for concept in concepts.values():
        if concept.caliper and concept.caliper not in analytes:
            raise MappingError(
                f"{concept.name}: caliper: analyte {concept.caliper!r} not in {CALIPER_FILE}"
            )
    return Mappings(
        concepts=MappingProxyType(concepts),
        studies=MappingProxyType(studies),
        unit_aliases=MappingProxyType(global_aliases),
        products=MappingProxyType(products),
        uln_rows=uln_rows,
        code_index=MappingProxyType({k: tuple(v) for k, v in index.items()}),
        prefix_index=tuple(prefix_index),
        directory=str(directory),
    )
