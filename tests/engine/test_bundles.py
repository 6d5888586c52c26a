"""Bundles flattened into resources and each patient's share, on small Bundles built here.

The corpus test reads real Bundles from outside the repository (and skips without them); these
cases hold the same guarantees on Bundles of every shape the slicer must survive."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.bundles import check_bundle_version, iter_resources, patient_slices
from service.engine.record import RecordError


def bundle(*entries: Any, btype: str = "collection") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": btype, "entry": list(entries)}


def entry(resource: Any, full_url: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resource": resource}
    if full_url is not None:
        out["fullUrl"] = full_url
    return out


PAT = {"resourceType": "Patient", "id": "p1"}
OBS = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}


def nested(depth: int) -> dict[str, Any]:
    """A Bundle holding an Observation `depth` Bundles down."""
    inner = bundle(entry(OBS))
    for _ in range(depth):
        inner = bundle(entry(inner))
    return inner


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (bundle(entry(PAT, "urn:uuid:1"), entry(OBS)), [("urn:uuid:1", PAT), (None, OBS)]),
        # A non-string fullUrl is dropped, the resource kept.
        (bundle(entry(PAT, 7)), [(None, PAT)]),
        # Entries without a resource, a resource without a type, non-dict entries: skipped.
        (bundle("text", entry(None), entry({"id": "x"}), entry({"resourceType": 3}), entry(OBS)),
         [(None, OBS)]),
        # Nested Bundles are descended into (a Bundle of Bundles: searchset in a transaction).
        (bundle(entry(bundle(entry(PAT, "urn:uuid:1"))), entry(OBS)),
         [("urn:uuid:1", PAT), (None, OBS)]),
        (nested(8), [(None, OBS)]),
        # Deeper than 8 Bundles: not followed (a guard against absurd nesting).
        (nested(9), []),
        (bundle(), []),
        ({"resourceType": "Bundle", "entry": {"resource": PAT}}, []),
        ("not a bundle", []),
    ],
    ids=["flat", "bad-fullurl", "skipped-entries", "nested", "depth-8", "depth-9", "empty",
         "entry-not-a-list", "not-a-dict"],
)
def test_iter_resources(given, expected):
    assert list(iter_resources(given)) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("text", "not a FHIR Bundle (resourceType must be 'Bundle')"),
        ({"resourceType": "Patient", "id": "p1"}, "not a FHIR Bundle"),
        (bundle(entry({"resourceType": "Observation", "id": "o9", "context": {}})),
         "Observation/o9 is not FHIR R4 (Observation.context exists only in STU3)"),
        # The version markers are looked for in nested Bundles too.
        (bundle(entry(bundle(entry({"resourceType": "Condition", "id": "c1",
                                    "clinicalStatus": "active"})))),
         "Condition/c1 is not FHIR R4"),
    ],
    ids=["string", "patient", "stu3", "stu3-nested"],
)
def test_a_bundle_that_is_not_r4_is_refused(given, message):
    with pytest.raises(RecordError) as err:
        check_bundle_version(given)
    assert str(err.value).startswith(message)


def test_an_r4_bundle_passes_the_version_check():
    assert check_bundle_version(bundle(entry(PAT), entry(OBS))) is None


def test_each_patient_gets_every_resource_and_its_full_url_as_alias():
    other = {"resourceType": "Patient", "id": "p2"}
    given = bundle(entry(PAT, "urn:uuid:1"), entry(OBS), entry(other),
                   entry({"resourceType": "Patient", "id": 5}))   # no string id: no slice
    slices = patient_slices(given)
    assert [(s.patient_id, s.aliases) for s in slices] == [("p1", ("urn:uuid:1",)), ("p2", ())]
    numbered = {"resourceType": "Patient", "id": 5}
    assert all(s.resources == (PAT, OBS, other, numbered) for s in slices)


def test_patients_only_referenced_get_a_bare_patient_when_asked():
    given = bundle(
        entry(PAT, "urn:uuid:1"),
        entry(OBS),                                                           # carried: p1
        entry({"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p9"}}),
        entry({"resourceType": "AllergyIntolerance", "id": "a1",
               "patient": {"reference": "Patient/p8"}}),
        entry({"resourceType": "Observation", "id": "o3", "subject": {"reference": "Patient/p9"}}),
        # a version-specific reference means the same patient (not one named "p9/_history/2")
        entry({"resourceType": "Observation", "id": "o7",
               "subject": {"reference": "Patient/p9/_history/2"}}),
        entry({"resourceType": "Observation", "id": "o8",
               "subject": {"reference": "Patient/p1/_history/4"}}),  # carried: p1
        entry({"resourceType": "Observation", "id": "o4", "subject": {"reference": "urn:uuid:1"}}),
        entry({"resourceType": "Observation", "id": "o5", "subject": "Patient/p7"}),
        entry({"resourceType": "Observation", "id": "o6", "subject": {"reference": "Group/g"}}),
        # no patient's reference: no stub "a/b" or ""
        entry({"resourceType": "Observation", "id": "o9", "subject": {"reference": "Patient/a/b"}}),
        entry({"resourceType": "Observation", "id": "o10", "subject": {"reference": "Patient/"}}),
    )
    assert [s.patient_id for s in patient_slices(given)] == ["p1"]
    slices = patient_slices(given, include_referenced=True)
    assert [(s.patient_id, s.aliases) for s in slices] == [
        ("p1", ("urn:uuid:1",)), ("p9", ()), ("p8", ())]
    carried = tuple(e["resource"] for e in given["entry"])
    assert slices[0].resources == carried
    for piece in slices[1:]:
        assert piece.resources == (*carried, {"resourceType": "Patient", "id": piece.patient_id})


def test_slicing_refuses_a_bundle_that_is_not_r4():
    with pytest.raises(RecordError, match="this service reads R4 only"):
        patient_slices(bundle(entry(PAT), entry({"resourceType": "MedicationStatement",
                                                  "id": "m1", "taken": "y"})))
