"""The ResearchStudy's criteria for other FHIR tools: a contained Group in `enrollment`.

One `characteristic` per criterion (code text = the criterion text, `exclude` for exclusions,
the criterion id as a coding and an extension), `actual = false`: a definition of who may
enrol, not a list of people. Contained in the ResearchStudy, so the study and its criteria are
created together by the conditional create, and brought up to date by a versioned update.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from service.engine.model import StudyMapping

CRITERION_SYSTEM = "urn:trial-eligibility:criterion"
CRITERION_EXTENSION = "urn:trial-eligibility:extension:criterion-id"
GROUP_ID = "criteria"
GROUP_REFERENCE = f"#{GROUP_ID}"


def criteria_group(study: StudyMapping) -> dict[str, Any]:
    """The study's criteria as an R4 Group (actual = false), to be contained."""
    return {
        "resourceType": "Group",
        "id": GROUP_ID,
        "type": "person",
        "actual": False,
        "name": f"Eligibility criteria: {study.title}"[:250],
        "characteristic": [
            {
                "extension": [{"url": CRITERION_EXTENSION, "valueCode": crit.id}],
                "code": {
                    "coding": [{"system": CRITERION_SYSTEM, "code": crit.id}],
                    "text": crit.text,
                },
                "valueBoolean": True,
                "exclude": crit.type == "exclusion",
            }
            for crit in study.criteria
        ],
    }


def with_enrollment(resource: Mapping[str, Any], study: StudyMapping) -> dict[str, Any] | None:
    """The ResearchStudy with our criteria Group contained and referenced from `enrollment`;
    None when it already carries exactly that (nothing to write). Other content is kept."""
    group = criteria_group(study)
    contained = [c for c in resource.get("contained") or [] if isinstance(c, Mapping)]
    current = next((c for c in contained if c.get("id") == GROUP_ID), None)
    enrollment = [e for e in resource.get("enrollment") or [] if isinstance(e, Mapping)]
    referenced = any(e.get("reference") == GROUP_REFERENCE for e in enrollment)
    if current is not None and referenced and _same(current, group):
        return None
    out = copy.deepcopy(dict(resource))
    out["contained"] = [c for c in contained if c.get("id") != GROUP_ID] + [group]
    if not referenced:
        out["enrollment"] = [*enrollment, {"reference": GROUP_REFERENCE}]
    return out


def _same(stored: Mapping[str, Any], built: Mapping[str, Any]) -> bool:
    # A server may add fields (meta, text) to a contained resource: compare what we write.
    return all(stored.get(key) == value for key, value in built.items())
