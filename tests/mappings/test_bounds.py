"""The loader refuses nonsense parameters with file and key named (issue 12's cases)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.core.settings import REPO_ROOT
from service.mappings import MappingError, load_mappings


@pytest.fixture()
def copy(tmp_path):
    target = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


SLE, LN = "refractory-sle-cart.toml", "pediatric-ln-cart.toml"


@pytest.mark.parametrize(("file", "old", "new", "message"), [
    (SLE, "steroid_min_days = 90", "steroid_min_days = 0",
     f"{SLE}: criteria[refractory-disease].steroid_min_days: 0 is below the minimum 1"),
    (SLE, "min_dmards = 2", "min_dmards = 0",
     f"{SLE}: criteria[refractory-disease].min_dmards: 0 is below the minimum 1"),
    (SLE, "min_dmards = 2", "min_dmards = 99",
     f"{SLE}: criteria[refractory-disease].min_dmards: 99 is more than the"),
    (SLE, 'steroid_min_mg_per_kg_day = "1"', 'steroid_min_mg_per_kg_day = "0"',
     f"{SLE}: criteria[refractory-disease].steroid_min_mg_per_kg_day: 0 must be above 0"),
    (LN, "max_years = 18", "max_years = 4",
     f"{LN}: criteria[age].min_years: 6 is above max_years = 4"),
    (LN, 'threshold = "60"', 'threshold = "-60"',
     f"{LN}: criteria[hemoglobin].threshold: -60 is below the minimum 0"),
    (LN, 'operator = ">="', 'operator = "=>"',
     f"{LN}: criteria[sledai-2k].operator: must be one of"),
    (LN, 'rule = "positive"\nconcepts = [', 'rule = "positive"\nconcepts = ["ana-presence", ',
     f"{LN}: criteria[cd19-b-cells].concepts: concept 'ana-presence' has no canonical unit"),
    (LN, 'concept = "sle"', 'concept = "hemoglobin"',
     f"{LN}: criteria[sle-diagnosis].concept: concept 'hemoglobin' is a observation; this "
     "rule takes condition concepts"),
    (LN, "min_agents = 2", "min_agents = 0",
     f"{LN}: criteria[refractory-ln].min_agents: 0 is below the minimum 1"),
])
def test_nonsense_parameters_are_refused_with_file_and_key(copy, file, old, new, message):
    _edit(copy / file, old, new)
    with pytest.raises(MappingError) as err:
        load_mappings(copy)
    assert message in str(err.value)


def test_a_duplicate_study_key_names_both_files(copy):
    text = (copy / LN).read_text()
    (copy / "zz-copy.toml").write_text(text)
    with pytest.raises(MappingError) as err:
        load_mappings(copy)
    assert str(err.value) == (
        "zz-copy.toml: study.key: 'pediatric-ln-cart' is already defined in "
        "pediatric-ln-cart.toml")
