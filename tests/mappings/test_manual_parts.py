"""Manual parts of combinations and manual exclusions: explicit unique ids, confirmations
scoped to their study unless shared, reported as manual, exclusions answered as "present"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.mappings import MappingError, load_mappings
from service.mappings.studies import manual_parts
from tests.support.builders import AS_OF, birth_for, confirmation, patient, sledai


def folder(tmp_path: Path, files: dict[str, str]) -> str:
    extra = tmp_path / "extra"
    extra.mkdir(exist_ok=True)
    for name, body in files.items():
        (extra / name).write_text(body)
    return f"{REPO_ROOT / 'mappings'}:{extra}"


def study(key: str, body: str) -> str:
    return f'[study]\nkey = "{key}"\ntitle = "Study {key}"\ndiagnosis_criteria = []\n{body}'


SLEDAI_PART = ('  [[criteria.of]]\n  text = "SLEDAI-2K at least 8"\n  rule = "threshold"\n'
               '  concept = "sledai-2k"\n  operator = ">="\n  threshold = "8"\n')


def activity(part_id: str | None, scope: str = "study", shared: str = "") -> str:
    """A criterion: SLEDAI >= 8 or a person's confirmation of BILAG A (a manual part)."""
    ident = f'  id = "{part_id}"\n' if part_id else ""
    return ('\n[[criteria]]\nid = "activity"\ntext = "Active disease"\nrule = "any-of"\n'
            + SLEDAI_PART + '  [[criteria.of]]\n' + ident
            + f'  text = "BILAG A in a major organ"\n  rule = "manual"\n  scope = "{scope}"\n'
            + shared)


REFUSED = [
    ("manual part without an id", activity(None),
     "a.toml: criteria[activity].of[1].id: a manual part needs an explicit id"),
    ("part id equal to a criterion id", activity("activity"),
     "a.toml: criteria[activity].of[activity].id: duplicate criterion id"),
    ("per-patient part not declared shared", activity("bilag-a", scope="patient"),
     "a.toml: criteria[activity].of[bilag-a].scope: a part's confirmations count for its "
     "study only"),
    ("a whole criterion says shared", '\n[[criteria]]\nid = "x"\ntext = "X"\nrule = "manual"\n'
     'scope = "study"\nshared = true\n', "a.toml: criteria[x].shared: only a manual part"),
    ("a criterion with a manual part said automatic",
     activity("bilag-a").replace('rule = "any-of"', 'rule = "any-of"\nkind = "automatic"'),
     "a.toml: criteria[activity].kind: a criterion a person answers (or with a manual "
     "part) is not automatic"),
]


@pytest.mark.parametrize("body,message", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_unsafe_manual_parts_are_refused_with_file_and_key(tmp_path, body, message):
    with pytest.raises(MappingError) as caught:
        load_mappings(folder(tmp_path, {"a.toml": study("a", body)}))
    assert message in str(caught.value)


def test_a_criterion_with_a_manual_part_is_reported_manual(tmp_path):
    mappings = load_mappings(folder(tmp_path, {"a.toml": study("a", activity("bilag-a"))}))
    [crit] = mappings.studies["a"].criteria
    assert crit.kind == "manual"
    [part] = manual_parts(crit)
    assert (part.id, part.part_of) == ("bilag-a", "activity")
    result = evaluate_patient([patient(birth_for(30))], mappings, AS_OF, ["a"], strict=True)
    assert result.studies[0].criteria[0].kind == "manual"


def confirm(code: str, study_key: str | None) -> dict[str, Any]:
    res = confirmation(code)
    if study_key is not None:
        res["focus"] = [{"identifier": {"system": "urn:trial-eligibility:study",
                                        "value": study_key}}]
    return res


# Two studies whose parts carry the same id: a confirmation counts only in its study, unless
# the part is declared shared (then one without a study counts in both).
SCOPES = [
    ("names study a", "study", "", "a", {"a": "met", "b": "unknown"}),
    ("names no study", "study", "", None, {"a": "unknown", "b": "unknown"}),
    ("shared, names no study", "patient", "  shared = true\n", None, {"a": "met", "b": "met"}),
    ("shared, names study b", "patient", "  shared = true\n", "b",
     {"a": "unknown", "b": "met"}),
]


@pytest.mark.parametrize("scope,shared,named,expected", [r[1:] for r in SCOPES],
                         ids=[r[0] for r in SCOPES])
def test_a_parts_confirmation_counts_in_its_study(tmp_path, scope, shared, named, expected):
    body = activity("bilag-a", scope, shared)
    mappings = load_mappings(folder(tmp_path, {"a.toml": study("a", body),
                                               "b.toml": study("b", body)}))
    record = [patient(birth_for(30)), sledai(4), confirm("bilag-a", named)]
    result = evaluate_patient(record, mappings, AS_OF, ["a", "b"], strict=True)
    found = {s.study: s.criteria[0].result for s in result.studies}
    assert found == expected


MANUAL_EXCLUSION = ('\n[[criteria]]\nid = "acute-flare"\ntype = "exclusion"\n'
                    'text = "Acute, severe lupus flare needing immediate treatment"\n'
                    'rule = "manual"\nscope = "study"\n')


@pytest.mark.parametrize("present,expected,prefix", [(True, "not-met", "Excluded"),
                                                     (False, "met", "Not excluded")])
def test_a_manual_exclusion_reads_present_as_excluded(tmp_path, present, expected, prefix):
    mappings = load_mappings(folder(tmp_path, {"a.toml": study("a", MANUAL_EXCLUSION)}))
    answer = confirm("acute-flare", "a")
    answer["valueBoolean"] = present
    result = evaluate_patient([patient(birth_for(30)), answer], mappings, AS_OF, ["a"],
                              strict=True)
    [crit] = result.studies[0].criteria
    assert (crit.result, crit.type) == (expected, "exclusion")
    assert crit.reason.startswith(prefix), crit.reason
