"""MAPPINGS_DIR takes several folders separated by `:` (docs/configuration.md, MAPPINGS_DIR)."""

from __future__ import annotations

import shutil

import pytest

from service.core.settings import REPO_ROOT, Settings, SettingsError
from service.mappings import MappingError, load_mappings

MAIN, CONFORMANCE = REPO_ROOT / "mappings", REPO_ROOT / "mappings" / "conformance"


def test_settings_accept_several_folders_and_name_a_missing_one(tmp_path):
    Settings.from_env({"MAPPINGS_DIR": f"{MAIN}:{CONFORMANCE}"}).validate()
    with pytest.raises(SettingsError, match=r"'/nowhere' is not a directory"):
        Settings.from_env({"MAPPINGS_DIR": f"{MAIN}:/nowhere"}).validate()


def test_studies_come_from_every_folder_named():
    assert "lupus-conformance" in load_mappings([MAIN, CONFORMANCE]).studies
    assert "lupus-conformance" in load_mappings(f"{MAIN}:{CONFORMANCE}").studies
    with pytest.raises(MappingError, match="not a directory"):
        load_mappings(f"{MAIN}:/nowhere")


def test_the_same_file_name_in_two_folders_is_named_with_its_folder(tmp_path):
    other = tmp_path / "site"
    other.mkdir()
    shutil.copy(MAIN / "pediatric-ln-cart.toml", other / "pediatric-ln-cart.toml")
    with pytest.raises(MappingError) as err:
        load_mappings(f"{MAIN}:{other}")
    assert str(err.value) == ("site/pediatric-ln-cart.toml: study.key: 'pediatric-ln-cart' is "
                              "already defined in mappings/pediatric-ln-cart.toml")
