"""A coordinator workspace for page tests: local FHIR server with the seeds screened, accounts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from service.accounts.store import Accounts
from service.core.settings import Settings
from service.fhir.client import FhirClient
from service.usecases.seeding import load_seeds
from tests.support.apps import app_factory

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
AS_OF = date(2026, 11, 15)
COORDINATOR = ("casey", "Casey Coordinator", "correct horse battery staple")
VIEWER = ("vera", "Vera Viewer", "viewer password 123")


@dataclass
class Workspace:
    """The app, its settings, the FHIR client and the accounts of a page test."""

    app: Any
    settings: Settings
    client: FhirClient
    accounts: Accounts

    def subject(self, study: str, patient: str) -> dict[str, Any]:
        """The stored ResearchSubject of (study, patient), read from the FHIR server."""
        token = f"urn:trial-eligibility:research-subject|{study}/{patient}"
        (found,) = list(self.client.search("ResearchSubject", {"identifier": token}))
        return found


def seed_patient_ids() -> list[str]:
    """The seed patients' ids in manifest order."""
    manifest = json.loads((SEEDS / "manifest.json").read_text(encoding="utf-8"))
    out = []
    for entry in manifest["patients"]:
        bundle = json.loads((SEEDS / entry).read_text(encoding="utf-8"))
        out += [e["resource"]["id"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Patient"]
    return out


@contextmanager
def workspace(base_url: str, tmp: Path, **overrides: Any) -> Iterator[Workspace]:
    """Seeds loaded and screened as of 2026-11-15 (pages pinned to that date), two accounts."""
    settings = Settings().with_overrides(
        fhir_base_url=base_url, queue_url=f"sqlite:///{tmp / 'queue.sqlite'}",
        users_db=tmp / "users.sqlite", screen_as_of=AS_OF, embedded_workers=0,
        session_secret="test-session-secret-" + "x" * 32, **overrides,
    )
    # The same factory as the `make_app` fixture, entered here because the workspace is
    # module-scoped: seeding and screening 18 patients once per module, not per test.
    with app_factory(settings) as make_app:
        app, screener = make_app(settings)
        load_seeds(screener.client(), SEEDS, mappings=screener.mappings)
        for pid in seed_patient_ids():
            screener.screen(pid, as_of=AS_OF)
        accounts = app.extensions["pages"].accounts
        accounts.add(COORDINATOR[0], "coordinator", COORDINATOR[2], display=COORDINATOR[1])
        accounts.add(VIEWER[0], "viewer", VIEWER[2], display=VIEWER[1])
        with FhirClient(settings) as client:
            yield Workspace(app=app, settings=settings, client=client, accounts=accounts)
