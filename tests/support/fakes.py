"""Fakes for the surfaces tests: a screener with canned evaluations and a recording FHIR client."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Sequence
from datetime import date
from typing import Any

from service.core.settings import REPO_ROOT, Settings
from service.engine.results import CriterionResult, PatientEvaluation, StudyResult, Value
from service.mappings import Mappings, load_mappings
from service.usecases.screener import Screener
from service.usecases.screening_failures import failures_classified
from tests.support.polling import wait_until  # noqa: F401 - re-exported for the web and queue tests


@functools.cache
def real_mappings() -> Mappings:
    return load_mappings(REPO_ROOT / "mappings")


def make_evaluation(
    patient_id: str, as_of: date, statuses: dict[str, str], studies: Sequence[str] | None = None
) -> PatientEvaluation:
    """An evaluation where each study has the wanted status (criteria from the real mappings)."""
    mappings = real_mappings()
    results = []
    for key in studies or mappings.studies:
        study = mappings.studies[key]
        status = statuses.get(key, "ineligible")
        criteria = []
        for i, crit in enumerate(study.criteria):
            if i == 0 and status == "ineligible":
                criteria.append(CriterionResult(
                    crit.id, "not-met", f"{crit.id} fails for {patient_id}", crit.kind,
                    Value(59, "g/L"), (f"Observation/{patient_id}-{i}",)))
            elif i == 1 and status == "potential-candidate":
                criteria.append(CriterionResult(
                    crit.id, "unknown", f"no {crit.id} on record", crit.kind))
            else:
                criteria.append(CriterionResult(crit.id, "met", f"{crit.id} is fine", crit.kind))
        results.append(StudyResult(key, study.title, tuple(criteria)))
    return PatientEvaluation(patient_id, as_of, tuple(results))


class FakeScreener(Screener):
    """The real catalogue (mappings) with canned screenings; records every call."""

    def __init__(self, settings: Settings, statuses: dict[str, str] | None = None) -> None:
        super().__init__(settings, client_factory=self._no_client, mappings=real_mappings())
        self.statuses = statuses or {k: "potential-candidate" for k in real_mappings().studies}
        self.errors: dict[str, Exception] = {}
        self.calls: list[tuple[str, str, date, tuple[str, ...] | None]] = []
        self.resources_seen: list[list[dict[str, Any]]] = []
        self.gate: threading.Event | None = None  # when set, screen() waits for it
        self._calls_lock = threading.Lock()

    @staticmethod
    def _no_client(settings: Settings) -> Any:
        raise AssertionError("the fake screener never talks to a FHIR server")

    def _outcome(self, kind: str, pid: str, as_of: date, studies: Any) -> PatientEvaluation:
        with self._calls_lock:
            self.calls.append((kind, pid, as_of, tuple(studies) if studies else None))
        if self.gate is not None:
            self.gate.wait(30)
        error = self.errors.get(pid)
        if error is not None:
            # As the real Screener does: known failures are classified once, bugs pass through.
            with failures_classified():
                raise error
        return make_evaluation(pid, as_of, self.statuses, studies)

    def refs(self) -> dict[str, str]:
        return {k: f"ResearchStudy/rs-{k}" for k in self.mappings.studies}

    def evaluate(self, patient_id: str, *, as_of: date, studies: Any = None) -> dict[str, Any]:
        return self._outcome("evaluate", patient_id, as_of, studies).to_json(self.refs())

    def screen(self, patient_id: str, *, as_of: date, studies: Any = None,
               every_patient: bool = False) -> dict[str, Any]:
        evaluation = self._outcome("screen", patient_id, as_of, studies)
        return {
            "result": evaluation.to_json(self.refs()),
            "researchSubjects": {
                s.study: f"ResearchSubject/{s.study}-{patient_id}" for s in evaluation.studies
            },
        }

    def evaluate_resources(self, resources: list[dict[str, Any]], *, patient_id: str,
                           as_of: date, studies: Any = None) -> PatientEvaluation:
        self.resources_seen.append(resources)
        return self._outcome("cds", patient_id, as_of, studies)


class FakeClient:
    """Stands in for FhirClient where only capabilities/read/search are needed."""

    def __init__(self, settings: Settings, *, up: bool = True,
                 resources: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.base_url = settings.fhir_base_url.rstrip("/")
        self.page_size = settings.fhir_page_size
        self.up = up
        self.resources = resources or {}
        self.requests: list[tuple[str, Any]] = []

    def capabilities(self) -> dict[str, Any]:
        from service.fhir.errors import FhirTemporaryError

        self.requests.append(("metadata", None))
        if not self.up:
            raise FhirTemporaryError("connection refused")
        return {"resourceType": "CapabilityStatement"}

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        self.requests.append(("read", f"{rtype}/{rid}"))
        return {"resourceType": rtype, "id": rid}

    def search(self, rtype: str, params: Any = None) -> Any:
        self.requests.append(("search", (rtype, params)))
        return iter(self.resources.get(rtype, []))

    def search_population(self, rtype: str, params: Any = None, *, includes: bool = False
                          ) -> Any:
        self.requests.append(("search", (rtype, params)))
        return iter(self.resources.get(rtype, []))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
