"""load_mappings: every *.toml of a mappings folder into one validated Mappings."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import replace
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
from service.mappings.dosing_tables import parse_courses, parse_frequencies
from service.mappings.errors import MappingError
from service.mappings.studies import parse_study

CALIPER_FILE = Path("reference") / "pediatric_uln_caliper_colantonio2012.csv"
CONCEPT_FILE_KEYS = {"defaults", "unit_aliases", "concepts", "products", "courses",
                     "frequencies"}


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{label}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise MappingError(f"{label}: cannot read: {exc.strerror}") from None


def _check_concept_file(file: str, raw: dict[str, Any]) -> None:
    unknown = set(raw) - CONCEPT_FILE_KEYS
    if unknown:
        raise MappingError(f"{file}: {sorted(unknown)[0]}: unknown key")
    for key in CONCEPT_FILE_KEYS:
        if key in raw and not isinstance(raw[key], dict):
            raise MappingError(f"{file}: {key}: expected a table")


def _with_site_codes(concepts: dict[str, Concept], extra: list[tuple[str, str, Any]]) -> None:
    """Codes and prefixes a later file adds to an already defined concept."""
    for file, name, table in extra:
        base = concepts[name]
        codes = parse_codes(table.get("codes", []), f"{file}: concepts.{name}.codes")
        prefixes = parse_codes(table.get("prefixes", []), f"{file}: concepts.{name}.prefixes")
        concepts[name] = replace(base, codes=base.codes | frozenset(codes),
                                 prefixes=base.prefixes + tuple(prefixes))


def _folder_prefix(file: str) -> str:
    """A suggested prefix for a concept of `file` ("examples/autograph.toml" -> "autograph-")."""
    return Path(file).stem.split("-")[0] + "-"


def _concepts(raw_files: list[tuple[str, dict[str, Any]]]
              ) -> tuple[dict[str, Concept], dict[str, str], dict[str, Product]]:
    """Concepts (site files may add codes), global unit aliases and products."""
    defaults: dict[str, Any] = {}
    global_aliases: dict[str, str] = {}
    concept_tables: dict[str, tuple[str, Any]] = {}
    extra_codes: list[tuple[str, str, Any]] = []
    products_raw: dict[str, tuple[str, Any]] = {}
    for file, raw in raw_files:
        if "study" in raw:
            continue
        _check_concept_file(file, raw)
        defaults.update(raw.get("defaults", {}))
        global_aliases.update(raw.get("unit_aliases", {}))
        for name, table in raw.get("concepts", {}).items():
            if name not in concept_tables:
                concept_tables[name] = (file, table)
            elif table == concept_tables[name][1]:
                continue  # the same definition in two folders (e.g. two studies' files)
            elif isinstance(table, dict) and not set(table) - {"codes", "prefixes"}:
                extra_codes.append((file, name, table))
            else:
                # Concept names are shared by every folder loaded together (docs: "Concept
                # names"): a second file may repeat a definition or add codes, not redefine.
                raise MappingError(
                    f"{file}: concepts.{name}: already defined differently in "
                    f"{concept_tables[name][0]}; concept names are shared by every mappings "
                    "folder loaded together: another concepts file may repeat the same "
                    "definition or add only `codes`/`prefixes`, so give this one its own name "
                    f"(e.g. '{_folder_prefix(file)}{name}')")
        products_raw.update({token: (file, table)
                             for token, table in raw.get("products", {}).items()})
    if set(defaults) - {"lookback_days"}:
        raise MappingError(f"defaults.{sorted(set(defaults) - {'lookback_days'})[0]}: unknown key")
    concepts = {name: parse_concept(name, table, source, defaults, global_aliases)
                for name, (source, table) in concept_tables.items()}
    _with_site_codes(concepts, extra_codes)
    products = dict(parse_product(token, table, file, concepts)
                    for token, (file, table) in products_raw.items())
    return concepts, global_aliases, products


def folders(directories: Path | str | Sequence[Path | str]) -> list[Path]:
    """The folders named: a path, a `:`-separated list of paths (MAPPINGS_DIR), or a list."""
    items = [directories] if isinstance(directories, (str, Path)) else list(directories)
    out: list[Path] = []
    for item in items:
        out += [Path(part) for part in str(item).split(":") if part]
    if not out:
        raise MappingError("no mappings folder given")
    return out


def load_mappings(directories: Path | str | Sequence[Path | str]) -> Mappings:
    """Load and validate every *.toml of one or more mappings folders (MAPPINGS_DIR takes
    several, separated by `:`); MappingError names file and key."""
    dirs = folders(directories)
    for directory in dirs:
        if not directory.is_dir():
            raise MappingError(f"{directory}: not a directory")
    files = [path for directory in dirs for path in sorted(directory.glob("*.toml"))]
    names = [path.name for path in files]
    # Errors name the file; the same file name in two folders is named with its folder.
    labels = [name if names.count(name) == 1 else f"{path.parent.name}/{name}"
              for name, path in zip(names, files, strict=True)]
    raw_files = [(label, _read_toml(path, label)) for label, path in zip(labels, files,
                                                                          strict=True)]
    concepts, global_aliases, products = _concepts(raw_files)
    studies: dict[str, StudyMapping] = {}
    for file, raw in raw_files:
        if "study" not in raw:
            continue
        study = parse_study(file, raw, concepts)
        if study.key in studies:
            raise MappingError(f"{file}: study.key: {study.key!r} is already defined in "
                               f"{studies[study.key].source}")
        studies[study.key] = study
    # Seed studies first (in seed order), then the others by file name.
    studies = dict(sorted(studies.items(),
                          key=lambda kv: (kv[1].seed is None, kv[1].seed or "", kv[1].source)))
    if not studies:
        raise MappingError(f"{':'.join(map(str, dirs))}: no study file (a *.toml with a "
                           "[study] table)")
    index: dict[str, list[str]] = {}
    prefix_index: list[tuple[str, str]] = []
    for concept in concepts.values():
        for token in concept.codes:
            index.setdefault(token, []).append(concept.name)
        for prefix in concept.prefixes:
            prefix_index.append((prefix, concept.name))
    # The reference table of the first folder that has one.
    uln_rows = next((rows for rows in (load_caliper(d / CALIPER_FILE) for d in dirs) if rows),
                    ())
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
        directory=":".join(map(str, dirs)),
        frequencies=parse_frequencies((f, raw["frequencies"]) for f, raw in raw_files
                                      if "study" not in raw and "frequencies" in raw),
        courses=parse_courses((f, raw["courses"]) for f, raw in raw_files
                              if "study" not in raw and "courses" in raw),
    )
