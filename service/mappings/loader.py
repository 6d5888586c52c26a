"""load_mappings: every *.toml of a mappings folder into one validated Mappings."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from service.engine.model import Concept, Mappings, Product, StudyMapping
from service.mappings.concepts import (
    load_caliper,
    parse_codes,
    parse_concept,
    parse_product,
)
from service.mappings.errors import MappingError
from service.mappings.studies import parse_study

CALIPER_FILE = Path("reference") / "pediatric_uln_caliper_colantonio2012.csv"
CONCEPT_FILE_KEYS = {"defaults", "unit_aliases", "concepts", "products"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path.name}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise MappingError(f"{path.name}: cannot read: {exc.strerror}") from None


def _concepts(raw_files: list[tuple[Path, dict[str, Any]]]
              ) -> tuple[dict[str, Concept], dict[str, str], dict[str, Product]]:
    """Concepts (site files may add codes), global unit aliases and products."""
    defaults: dict[str, Any] = {}
    global_aliases: dict[str, str] = {}
    concept_tables: dict[str, tuple[str, Any]] = {}
    extra_codes: list[tuple[str, str, Any]] = []
    products_raw: dict[str, tuple[str, Any]] = {}
    for path, raw in raw_files:
        if "study" in raw:
            continue
        unknown = set(raw) - CONCEPT_FILE_KEYS
        if unknown:
            raise MappingError(f"{path.name}: {sorted(unknown)[0]}: unknown key")
        for key in CONCEPT_FILE_KEYS:
            if key in raw and not isinstance(raw[key], dict):
                raise MappingError(f"{path.name}: {key}: expected a table")
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
        concepts[name] = parse_concept(name, table, file, defaults, global_aliases)
    for file, name, table in extra_codes:
        base = concepts[name]
        codes = parse_codes(table.get("codes", []), f"{file}: concepts.{name}.codes")
        prefixes = parse_codes(table.get("prefixes", []), f"{file}: concepts.{name}.prefixes")
        concepts[name] = Concept(**{
            **base.__dict__,
            "codes": base.codes | frozenset(codes),
            "prefixes": base.prefixes + tuple(prefixes),
        })
    products = dict(parse_product(token, table, file, concepts)
                    for token, (file, table) in products_raw.items())
    return concepts, global_aliases, products


def load_mappings(directory: Path | str) -> Mappings:
    """Load and validate every *.toml of a mappings folder; MappingError names file and key."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MappingError(f"{directory}: not a directory")
    files = sorted(directory.glob("*.toml"))
    raw_files = [(path, _read_toml(path)) for path in files]
    concepts, global_aliases, products = _concepts(raw_files)
    studies: dict[str, StudyMapping] = {}
    for path, raw in raw_files:
        if "study" not in raw:
            continue
        study = parse_study(path, raw, concepts)
        if study.key in studies:
            raise MappingError(f"{path.name}: study.key: {study.key!r} is already defined in "
                               f"{studies[study.key].source}")
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
    uln_rows = load_caliper(directory / CALIPER_FILE)
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
