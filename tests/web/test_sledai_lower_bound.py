"""SLEDAI-2K lab lower bound end to end: local FHIR server, screening, ResearchSubject reason,
worklist order and the worksheet, on seed-like patients without a recorded score."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.core.settings import Settings
from service.fhir import research_subject as rs
from service.fhir.client import FhirClient
from service.usecases.subject_rows import criteria_of
from tests.support.seed_population import AS_OF, SEEDS_DIR, clone_seed

pytestmark = pytest.mark.integration
LN, SLE = "pediatric-ln-cart", "refractory-sle-cart"
SEED = SEEDS_DIR / "patients" / "seed-potential.json"
UCUM = "http://unitsofmeasure.org"
# Ids sort the patient WITHOUT the extra labs first: only the lower bound can put B before A.
PLAIN, WITH_LABS = "sledai-a-plain", "sledai-b-labs"
USER = ("sam", "correct horse battery staple")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _lab(pid: str, name: str, code: str, value: float, unit: str, when: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"{pid}-{name}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def _seed_like(pid: str, labs: list[dict[str, Any]]) -> dict[str, Any]:
    """seed-potential under another id, its SLEDAI-2K score left out, plus `labs`."""
    bundle = clone_seed(SEED, pid)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["id"] != f"{pid}-sledai"]
    bundle["entry"] += [{"resource": r, "request": {"method": "PUT",
                                                   "url": f"Observation/{r['id']}"}}
                        for r in labs]
    return bundle


LABS = [
    _lab(WITH_LABS, "plt", "777-3", 80, "10*3/uL", "2026-11-10T08:00:00Z"),
    _lab(WITH_LABS, "temp", "8310-5", 101.3, "[degF]", "2026-11-12T20:00:00Z"),
    _lab(WITH_LABS, "urine-rbc", "13945-1", 12, "/[HPF]", "2026-11-10T08:00:00Z"),
    _lab(WITH_LABS, "plt-old", "777-3", 20, "10*9/L", "2026-09-01T08:00:00Z"),  # > 30 days
]


@pytest.fixture(params=[30], ids=["window-30-days"])
def app(request, fresh_fhir_server, tmp_path: Path) -> Iterator[Any]:
    from service.web.app import create_app

    settings = Settings().with_overrides(
        fhir_base_url=fresh_fhir_server.base_url, queue_url=f"sqlite:///{tmp_path / 'q.sqlite'}",
        users_db=tmp_path / "users.sqlite", screen_as_of=AS_OF, embedded_workers=0,
        session_secret="test-session-secret-" + "x" * 32, sledai_window_days=request.param)
    application = create_app(settings)
    screener = application.extensions["eligibility"].screener
    for pid, labs in ((PLAIN, []), (WITH_LABS, LABS)):
        screener.client().transaction(_seed_like(pid, labs))
        screener.screen(pid, as_of=AS_OF)
    application.extensions["pages"].accounts.add(USER[0], "coordinator", USER[1])
    yield application


def _sledai_criterion(app: Any, study: str, pid: str) -> Any:
    token = f"{rs.RESEARCH_SUBJECT_SYSTEM}|{study}/{pid}"
    with FhirClient(app.extensions["eligibility"].screener.settings) as client:
        (subject,) = list(client.search("ResearchSubject", {"identifier": token}))
    (found,) = [c for c in criteria_of(subject) if c.id == "sledai-2k"]
    return found


def _signed_in(app: Any) -> Any:
    client = app.test_client()
    token = _TOKEN.search(client.get("/login").get_data(as_text=True))
    assert token
    answer = client.post("/login", data={"username": USER[0], "password": USER[1],
                                         "csrf_token": token.group(1)})
    assert answer.status_code == 302
    return client


def test_the_reason_counts_platelets_and_temperature_and_the_worklist_ranks_by_it(app):
    for study in (LN, SLE):
        criterion = _sledai_criterion(app, study, WITH_LABS)
        assert criterion.result == "unknown"
        assert ("lab items alone score 10: haematuria 4, proteinuria 4, fever 1, "
                "thrombocytopenia 1") in criterion.reason
        for name in ("plt", "temp", "urine-rbc", "uprot24"):
            assert f"Observation/{WITH_LABS}-{name}" in criterion.evidence
        assert f"Observation/{WITH_LABS}-plt-old" not in criterion.evidence
        plain = _sledai_criterion(app, study, PLAIN)
        assert "lab items alone score 4: proteinuria 4 " in plain.reason

    client = _signed_in(app)
    for study in (LN, SLE):
        page = client.get(f"/?study={study}").get_data(as_text=True)
        assert page.index(WITH_LABS) < page.index(PLAIN), study
        assert "SLEDAI-2K labs alone: 10" in page


def test_the_worksheet_and_the_engine_agree_on_the_same_record(app):
    client = _signed_in(app)
    for pid in (PLAIN, WITH_LABS):
        reason = _sledai_criterion(app, LN, pid).reason
        engine = int(re.search(r"lab items alone score (\d+)", reason).group(1))  # type: ignore[union-attr]
        page = client.get(f"/patients/{pid}/sledai").get_data(as_text=True)
        worksheet = int(re.search(r"alone score <strong>(\d+)</strong>", page).group(1))  # type: ignore[union-attr]
        assert worksheet == engine
    page = client.get(f"/patients/{WITH_LABS}/sledai").get_data(as_text=True)
    for key in ("fever", "thrombocytopenia", "hematuria", "proteinuria"):
        assert re.search(rf'value="{key}" checked', page), key
    assert not re.search(r'value="leukopenia" checked', page)


@pytest.mark.parametrize("app", [4], ids=["window-4-days"], indirect=True)
def test_sledai_window_days_sets_the_window_of_the_engine_and_the_worksheet_alike(app):
    """SLEDAI_WINDOW_DAYS=4: the fever of 3 days ago counts, the platelets and urine of 5 days
    ago do not, on the ResearchSubject and on the worksheet alike."""
    criterion = _sledai_criterion(app, LN, WITH_LABS)
    assert "lab items alone score 1: fever 1 (results of the last 4 days;" in criterion.reason
    assert f"Observation/{WITH_LABS}-plt" not in criterion.evidence
    page = _signed_in(app).get(f"/patients/{WITH_LABS}/sledai").get_data(as_text=True)
    assert re.search(r"alone score <strong>1</strong>", page)
    assert re.search(r'value="fever" checked', page)
    assert not re.search(r'value="thrombocytopenia" checked', page)
