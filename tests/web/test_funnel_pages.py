"""The coordinator's funnel pages through Flask's test client on the seeds: the 2019 EULAR/ACR
classification worksheet, workflow reasons and history, the log's funnel and CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest

from localfhir import start_local_server
from service.accounts.form_tokens import new_form_token
from tests.support.workspace import AS_OF, COORDINATOR, VIEWER, Workspace, workspace

pytestmark = pytest.mark.integration
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CLASSIFICATION = "urn:trial-eligibility:score|eular-acr-2019"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    local = start_local_server()
    try:
        with workspace(local.base_url, tmp_path_factory.mktemp("funnel")) as w:
            yield w
    finally:
        local.stop()


def _token(client, path: str = "/login") -> str:
    found = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def _signed_in(ws: Workspace, account=COORDINATOR):
    client = ws.app.test_client()
    answer = client.post("/login", data={
        "username": account[0], "password": account[2], "csrf_token": _token(client)})
    assert answer.status_code == 302
    return client


def _classifications(ws: Workspace, patient: str) -> list[dict]:
    return list(ws.client.search("Observation", {
        "subject": f"Patient/{patient}", "code": CLASSIFICATION}))


def _criterion(subject: dict, cid: str) -> dict[str, list]:
    for ext in subject["extension"]:
        parts: dict[str, list] = {}
        for p in ext.get("extension") or ():
            parts.setdefault(p["url"], []).append(next(v for k, v in p.items() if k != "url"))
        if parts.get("id") == [cid]:
            return parts
    raise AssertionError(cid)


def test_the_worksheet_prefills_the_record_s_lab_and_biopsy_items(ws):
    client = _signed_in(ws)
    page = client.get("/patients/seed-ana-low/classification").get_data(as_text=True)
    # ANA 1:40 only: the entry criterion is not ticked; class III nephritis and UPCR are
    assert re.search(r'id="entry" name="entry" value="yes">', page)
    assert re.search(r'id="i-renal-biopsy-class-iii-or-iv" name="item" '
                     r'value="renal-biopsy-class-iii-or-iv" checked', page)
    assert "Condition/seed-ana-low-ln" in page
    assert re.search(r'id="i-joint-involvement" name="item" value="joint-involvement">', page)
    assert page.count('name="item"') == 21


def test_saving_records_the_observation_of_api_md_and_decides_sle_diagnosis(ws):
    client = _signed_in(ws)
    token = _token(client, "/patients/seed-ana-low/classification")
    form = {"csrf_token": token, "form_token": new_form_token(), "date": AS_OF.isoformat(),
            "item": ["renal-biopsy-class-iii-or-iv", "proteinuria", "joint-involvement"]}
    answer = client.post("/patients/seed-ana-low/classification", data=form)
    assert answer.status_code == 302, answer.get_data(True)[:300]
    # the same form sent twice (a double click, a reload) records once
    assert client.post("/patients/seed-ana-low/classification", data=form).status_code == 302
    (obs,) = _classifications(ws, "seed-ana-low")
    assert obs["valueInteger"] == 16  # renal 10 (highest of the domain) + joints 6
    parts = {c["code"]["coding"][0]["code"]: c for c in obs["component"]}
    assert all(c["code"]["coding"][0]["system"] == "urn:trial-eligibility:eular-acr-2019-item"
               for c in obs["component"])
    assert parts["entry-ana"] == {**parts["entry-ana"], "valueBoolean": False}
    assert parts["proteinuria"]["valueInteger"] == 4 and parts["fever"]["valueInteger"] == 0
    assert len(parts) == 22
    assert {"reference": "Condition/seed-ana-low-ln"} in obs["derivedFrom"]
    assert obs["performer"][0]["identifier"]["value"] == COORDINATOR[0]
    (prov,) = ws.client.search("Provenance", {"target": f"Observation/{obs['id']}"})
    assert prov["agent"][0]["who"]["identifier"]["value"] == COORDINATOR[0]
    # the entry criterion is not met: not classified, whatever the coded SLE diagnosis says
    for study in (SLE, LN):
        parts = _criterion(ws.subject(study, "seed-ana-low"), "sle-diagnosis")
        assert parts["result"] == ["not-met"], parts["reason"]
        assert "entry criterion" in parts["reason"][0]
        assert {"reference": f"Observation/{obs['id']}"} in parts["evidence"]
    page = client.get("/patients/seed-ana-low").get_data(as_text=True)
    assert "Not classified as SLE by the 2019 EULAR/ACR criteria" in page


@pytest.mark.parametrize("data,why", [
    ({"item": ["rash"]}, "unknown item"),
    ({"item": ["fever"], "date": "2099-01-01"}, "future date"),
    ({"item": ["fever"], "date": "yesterday"}, "no date"),
    ({"item": ["fever"], "form_token": ""}, "no form token"),
])
def test_bad_input_is_refused_and_writes_nothing(ws, data, why):
    client = _signed_in(ws)
    token = _token(client, "/patients/seed-hb-59/classification")
    answer = client.post("/patients/seed-hb-59/classification", data={
        "csrf_token": token, "form_token": new_form_token(), "date": AS_OF.isoformat(), **data})
    assert answer.status_code == 400, why
    assert _classifications(ws, "seed-hb-59") == []


def test_a_viewer_sees_the_worksheet_but_cannot_save(ws):
    client = _signed_in(ws, VIEWER)
    page = client.get("/patients/seed-hb-59/classification").get_data(as_text=True)
    assert "Viewers cannot save a classification" in page
    answer = client.post("/patients/seed-hb-59/classification", data={
        "csrf_token": _token(client, "/patients/seed-hb-59"), "form_token": new_form_token(),
        "date": AS_OF.isoformat(),
        "entry": "yes", "item": ["fever"]})
    assert answer.status_code == 403
    assert _classifications(ws, "seed-hb-59") == []


PROGRESS = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchSubject.progress"


def _history(subject: dict) -> list[dict[str, dict]]:
    return [{p["url"]: p for p in e["extension"]} for e in subject["extension"]
            if e["url"] == PROGRESS]


def _workflow(client, ws, patient: str, study: str, **form):
    token = _token(client, f"/patients/{patient}")
    version = ws.subject(study, patient)["meta"]["versionId"]
    return client.post(f"/patients/{patient}/workflow", data={
        "csrf_token": token, "study": study, "version": version, **form})


@pytest.mark.parametrize("form,why", [
    ({"status": "withdrawn"}, "leaving without a reason"),
    ({"status": "withdrawn", "reason": "withdrawn", "why": " "}, "withdrawn without why"),
    ({"status": "not-registered", "reason": "screen-failure"}, "screen failure, no criterion"),
    ({"status": "not-registered", "reason": "screen-failure", "criterion": "not-one"},
     "a criterion of no study"),
])
def test_a_workflow_change_without_its_reason_is_refused_and_writes_nothing(ws, form, why):
    client = _signed_in(ws)
    before = ws.subject(LN, "seed-potential")
    answer = _workflow(client, ws, "seed-potential", LN, **form)
    assert answer.status_code == 400, why
    assert ws.subject(LN, "seed-potential")["meta"]["versionId"] == before["meta"]["versionId"]


def test_each_change_is_kept_as_an_r5_progress_entry_and_a_rescreen_keeps_them(ws):
    client = _signed_in(ws)
    first = len(_history(ws.subject(SLE, "seed-hcg-positive")))
    assert first >= 1  # the screening's own entry
    assert _workflow(client, ws, "seed-hcg-positive", SLE, status="screening").status_code == 302
    answer = _workflow(client, ws, "seed-hcg-positive", SLE, status="not-registered",
                       reason="screen-failure", criterion="pregnancy", why="positive hCG")
    assert answer.status_code == 302
    client.post("/patients/seed-hcg-positive/screen", data={
        "csrf_token": _token(client, "/patients/seed-hcg-positive")})
    subject = ws.subject(SLE, "seed-hcg-positive")
    history = _history(subject)[first:]
    states = [h["subjectState"]["valueCodeableConcept"]["coding"][0]["code"] for h in history]
    assert states == ["screening", "not-registered"]
    reason = history[1]["reason"]["valueCodeableConcept"]
    assert {"system": "urn:trial-eligibility:criterion", "code": "pregnancy"} in reason["coding"]
    assert reason["coding"][0]["code"] == "screen-failure" and reason["text"] == "positive hCG"
    assert history[1]["type"]["valueCodeableConcept"]["coding"][0]["code"] == "Enrollment"
    assert history[1]["startDate"]["valueDateTime"]
    assert subject["status"] == "not-registered"
    page = client.get("/patients/seed-hcg-positive").get_data(as_text=True)
    assert "Screen failure: Pregnancy" in page


def test_the_log_shows_the_funnel_and_the_csv_has_the_enrolment_log_columns(ws):
    client = _signed_in(ws)
    _workflow(client, ws, "seed-hb-59", LN, status="withdrawn", reason="withdrawn",
              why="=HYPERLINK(\"http://x\") family moved")
    page = client.get(f"/studies/{LN}/log").get_data(as_text=True)
    assert 'id="h-funnel"' in page and "Patients reaching each stage of the funnel" in page
    assert "Withdrawn: =HYPERLINK(&#34;http://x&#34;) family moved" in page
    csv_text = client.get(f"/studies/{LN}/log.csv").get_data(as_text=True)
    header, *rows = list(csv.reader(io.StringIO(csv_text)))
    assert header[-5:] == ["date screened", "eligible", "reason not eligible or not enrolled",
                           "consent date", "enrolment date"]
    by_patient = {row[0]: dict(zip(header, row, strict=True)) for row in rows if row}
    hb = by_patient["seed-hb-59"]
    assert hb["reason not eligible or not enrolled"] == (
        'Withdrawn: =HYPERLINK("http://x") family moved')
    # no cell a spreadsheet would run as a formula (formula-injection protection kept)
    cells = [c for row in rows for c in row] + header
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    eligible = by_patient["seed-ln-eligible"]
    assert eligible["eligible"] == "yes"
    assert re.fullmatch(r"20\d\d-\d\d-\d\d", eligible["date screened"])
