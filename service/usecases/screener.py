"""The screening dependency of the HTTP surfaces, queue and CLI: FHIR client + mappings + engine."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from service.core.settings import Settings
from service.fhir.api import ClientFactory, FhirApi
from service.mappings import Mappings, load_mappings

if TYPE_CHECKING:
    from service.engine.results import PatientEvaluation

class ScreeningService(Protocol):
    """What the surfaces (web, queue, CLI) need of the screener: Screener, or a test's fake."""

    mappings: Mappings

    def study_keys(self) -> tuple[str, ...]: ...

    def studies_json(self) -> list[dict[str, Any]]: ...

    def client(self) -> FhirApi: ...

    def research_study_refs(self) -> dict[str, str]: ...

    def evaluate(
        self, patient_id: str, *, as_of: date, studies: Sequence[str] | None = None
    ) -> dict[str, Any]: ...

    def screen(
        self, patient_id: str, *, as_of: date, studies: Sequence[str] | None = None,
        every_patient: bool = False,
    ) -> dict[str, Any]: ...

    def evaluate_resources(
        self,
        resources: list[dict[str, Any]],
        *,
        patient_id: str,
        as_of: date,
        studies: Sequence[str] | None = None,
    ) -> PatientEvaluation: ...


def default_client_factory(settings: Settings) -> FhirApi:
    """A FhirClient for these settings (the only module that talks HTTP to FHIR)."""
    from service.fhir.client import FhirClient

    return FhirClient(settings)


class Screener:
    """Evaluates (read-only) or screens (with write-back) patients for the service surfaces."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_factory: ClientFactory | None = None,
        mappings: Mappings | None = None,
    ) -> None:
        self.settings = settings
        self.client_factory = client_factory or default_client_factory
        self.mappings = mappings if mappings is not None else load_mappings(settings.mappings_dir)
        self._lock = threading.Lock()
        self._research_studies: dict[str, str] | None = None
        self._client: FhirApi | None = None

    # ---------------------------------------------------------------- catalogue

    def study_keys(self) -> tuple[str, ...]:
        """Study keys in the order the mappings define them."""
        return tuple(self.mappings.studies)

    def studies_json(self) -> list[dict[str, Any]]:
        """GET /studies: each study with its criteria (id, text, automatic or manual,
        inclusion or exclusion)."""
        return [
            {
                "study": s.key,
                "title": s.title,
                "registryId": s.registry_id,
                "criteria": [{"id": c.id, "text": c.text, "kind": c.kind, "type": c.type}
                             for c in s.criteria],
            }
            for s in self.mappings.studies.values()
        ]

    def client(self) -> FhirApi:
        """The shared FHIR client for the configured server (thread-safe, made on first use)."""
        with self._lock:
            if self._client is None:
                self._client = self.client_factory(self.settings)
            return self._client

    def requests_sent(self) -> int | None:
        """FHIR requests the client has sent so far (every attempt), where it counts them."""
        count = getattr(self.client(), "request_count", None)
        return count if isinstance(count, int) else None

    def research_study_refs(self) -> dict[str, str]:
        """study key -> 'ResearchStudy/<id>' on the FHIR server (the coordinator pages)."""
        return self._research_study_refs(self.client())

    def _research_study_refs(self, client: FhirApi) -> dict[str, str]:
        """study key -> ResearchStudy reference, found or created once per process."""
        with self._lock:
            if self._research_studies is None:
                from service.usecases.research_studies import ensure_research_studies

                self._research_studies = dict(
                    ensure_research_studies(client, self.mappings, self.settings.seeds_dir)
                )
            return dict(self._research_studies)

    # ---------------------------------------------------------------- screening

    def evaluate(
        self, patient_id: str, *, as_of: date, studies: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The eligibility body (docs/http-api.md); reads only (never writes to the FHIR server)."""
        from service.usecases.screening import screen_patient
        from service.usecases.screening_failures import failures_classified

        with self._lock:
            known = dict(self._research_studies or {})
        with failures_classified():
            outcome = screen_patient(
                self.client(), self.mappings, patient_id, as_of=as_of, studies=studies,
                write=False, research_studies=known or None,
                sledai_window_days=self.settings.sledai_window_days,
                seeds_dir=self.settings.seeds_dir,
            )
        return outcome.evaluation.to_json(outcome.research_studies)

    def screen(
        self, patient_id: str, *, as_of: date, studies: Sequence[str] | None = None,
        every_patient: bool = False,
    ) -> dict[str, Any]:
        """Evaluate and write a candidate's ResearchSubjects; {"result": body (with each
        study's `writeBack`, `not-a-candidate` where nothing was written), "researchSubjects":
        refs}. `every_patient` writes for every living patient (`screen --every-patient`)."""
        from service.usecases.screening import screen_patient
        from service.usecases.screening_failures import failures_classified

        client = self.client()
        with failures_classified():
            outcome = screen_patient(
                client, self.mappings, patient_id, as_of=as_of, studies=studies, write=True,
                research_studies=self._research_study_refs(client), every_patient=every_patient,
                sledai_window_days=self.settings.sledai_window_days,
                seeds_dir=self.settings.seeds_dir,
            )
        return {
            "result": outcome.to_json(),
            "researchSubjects": dict(outcome.research_subjects),
        }

    def evaluate_resources(
        self,
        resources: list[dict[str, Any]],
        *,
        patient_id: str,
        as_of: date,
        studies: Sequence[str] | None = None,
    ) -> Any:
        """Evaluate resources already in hand (CDS Hooks prefetch): a PatientEvaluation."""
        from service.engine.evaluate import evaluate_patient
        from service.usecases.screening_failures import failures_classified

        with failures_classified():
            return evaluate_patient(
                resources, self.mappings, as_of, studies, patient_id=patient_id,
                sledai_window_days=self.settings.sledai_window_days,
            )
