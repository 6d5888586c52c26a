"""Concept names are shared by every mappings folder loaded together: a second folder may
repeat a definition or add codes, never redefine one (the error names both files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.core.settings import REPO_ROOT
from service.mappings import MappingError, load_mappings

HIV = ('[concepts.hiv-test]\nkind = "observation"\ndisplay = "HIV test"\n'
       'codes = ["http://loinc.org|75622-1"]\n')


def folder(tmp_path: Path, name: str, concepts: str) -> str:
    path = tmp_path / name
    path.mkdir()
    (path / f"{name}-concepts.toml").write_text(concepts)
    return str(path)


def test_the_same_definition_in_two_folders_is_one_concept(tmp_path):
    a, b = folder(tmp_path, "a", HIV), folder(tmp_path, "b", HIV)
    mappings = load_mappings(f"{REPO_ROOT / 'mappings'}:{a}:{b}")
    assert mappings.concepts["hiv-test"].codes == frozenset({"http://loinc.org|75622-1"})


def test_a_second_folder_may_add_codes(tmp_path):
    a = folder(tmp_path, "a", HIV)
    b = folder(tmp_path, "b", '[concepts.hiv-test]\ncodes = ["http://loinc.org|7917-8"]\n')
    mappings = load_mappings(f"{REPO_ROOT / 'mappings'}:{a}:{b}")
    assert "http://loinc.org|7917-8" in mappings.concepts["hiv-test"].codes


def test_a_different_definition_is_refused_naming_both_files(tmp_path):
    a = folder(tmp_path, "a", HIV)
    b = folder(tmp_path, "b", HIV.replace('display = "HIV test"', 'display = "HIV Ab"'))
    with pytest.raises(MappingError) as caught:
        load_mappings(f"{REPO_ROOT / 'mappings'}:{a}:{b}")
    message = str(caught.value)
    assert message.startswith("b-concepts.toml: concepts.hiv-test: already defined "
                              "differently in a-concepts.toml")
    assert "concept names are shared by every mappings folder" in message
    assert "site file" not in message
