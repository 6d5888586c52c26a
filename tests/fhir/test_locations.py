"""One reader of transaction-response locations: relative, absolute, versioned, or none."""

from __future__ import annotations

import pytest

from service.fhir.locations import location_parts, stored_reference


@pytest.mark.parametrize(("location", "parts"), [
    ("ResearchSubject/7/_history/3", ("ResearchSubject", "7", "3")),
    ("http://fhir.example/base/Observation/a.1/_history/1/", ("Observation", "a.1", "1")),
    ("Consent/9", ("Consent", "9", None)),
    ("Consent/9/", ("Consent", "9", None)),
    ("", None),
    ("just-an-id", None),
])
def test_location_parts(location, parts):
    assert location_parts(location) == parts


def test_stored_reference_prefers_the_location_then_the_returned_resource():
    entry = {"response": {"location": "ResearchStudy/5/_history/1"},
             "resource": {"resourceType": "ResearchStudy", "id": "other"}}
    assert stored_reference(entry, "ResearchStudy") == "ResearchStudy/5"
    assert stored_reference({"response": {}, "resource": {"resourceType": "ResearchStudy",
                                                          "id": "6"}},
                            "ResearchStudy") == "ResearchStudy/6"
    # A location of another type is not taken for this one.
    assert stored_reference({"response": {"location": "Patient/1"}}, "ResearchStudy") is None
