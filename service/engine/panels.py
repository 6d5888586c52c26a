"""Results sent inside a panel: each component read as an Observation of its own code."""

from __future__ import annotations

from typing import Any


# docs/decisions.md "Records as hospitals send them": a blood count with its WBC, neutrophils,
# lymphocytes and haemoglobin as `component`s counts like Observations of those codes, with
# the panel's date and status. The component keeps the panel's id, so evidence cites the panel.
def component_view(panel: dict[str, Any], component: dict[str, Any]) -> dict[str, Any]:
    """A panel Observation read as one of its components: the panel's id, status, dates and
    subject with the component's code, value, interpretation and reference range."""
    view = {k: v for k, v in panel.items()
            if k not in ("code", "component", "interpretation", "referenceRange",
                         "dataAbsentReason") and not k.startswith("value")}
    view.update({k: v for k, v in component.items() if k != "extension"})
    return view

