"""Issue 22, hardening round 2: the coordinator pages under attack (Flask test client, seeds).

Each test is the regression test of one finding; the docs' guarantee table names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from localfhir import start_local_server
from service.accounts.form_tokens import new_form_token
from service.core.settings import Settings
from tests.support.workspace import AS_OF, COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.integration, pytest.mark.security]
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECOND = ("sam", "Sam Second", "a second coordinator's passphrase")


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("pages-sec")) as w:
            w.accounts.add(SECOND[0], "coordinator", SECOND[2], display=SECOND[1])
            yield w
    finally:
        server.stop()


def _csrf(client, path: str = "/login") -> str:
    found = _CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def _signed_in(ws: Workspace, account=COORDINATOR):
    client = ws.app.test_client()
    answer = client.post("/login", data={"username": account[0], "password": account[2],
                                         "csrf_token": _csrf(client)})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return client


def _created(ws: Workspace, resource: dict) -> str:
    answer = ws.client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}]})
    location = answer["entry"][0]["response"]["location"]
    return "/".join(location.split("/_history/")[0].split("/")[-2:])


def _read(ws: Workspace, ref: str) -> dict:
    kind, rid = ref.split("/")
    return ws.client.read(kind, rid)


def _undo_forms(page: str) -> set[str]:
    return set(re.findall(r'name="ref" value="([^"]+)"', page))


# ---------------------------------------------------------------- finding 1 (High)

def test_hospital_consents_and_observations_are_read_only_and_never_undone(ws):
    """Only what the service wrote (our policy URI or coding AND our performer system) is ours."""
    pid = "seed-potential"
    hospital_consent = _created(ws, {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "treatment"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2026-10-01",
        "performer": [{"reference": "Organization/hospital", "display": "The hospital"}],
        "policy": [{"uri": "https://hospital.example/policies/treatment"}],
    })
    # Forged halfway: our performer system but the hospital's policy; our code, no performer.
    half_ours = _created(ws, {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2026-10-02",
        "performer": [{"identifier": {"system": "urn:trial-eligibility:user", "value": "x"}}],
        "policy": [{"uri": "https://hospital.example/policies/research"}],
    })
    ehr_observation = _created(ws, {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "urn:trial-eligibility:criterion", "code": "ecg"}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-10-03",
        "valueBoolean": True,
    })
    client = _signed_in(ws)
    token = _csrf(client, f"/patients/{pid}")
    # One of ours, through the page, for contrast.
    answer = client.post(f"/patients/{pid}/confirm", data={
        "csrf_token": token, "form_token": new_form_token(), "study": LN,
        "criterion": "venous-access", "answer": "met", "date": AS_OF.isoformat()})
    assert answer.status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    forms = _undo_forms(page)
    theirs = {hospital_consent, half_ours, ehr_observation}
    assert not forms & theirs, "the hospital's records must not carry an Undo button"
    assert any(ref.startswith("Observation/") for ref in forms), "ours keep their Undo"
    assert page.count("hospital record (read-only)") >= 3
    # The server refuses them too, whatever the page showed.
    for ref in sorted(theirs):
        answer = client.post(f"/patients/{pid}/undo", data={"csrf_token": token, "ref": ref})
        assert answer.status_code == 400, ref
        assert _read(ws, ref)["status"] in ("active", "final"), ref
    ours = sorted(forms)[0]
    assert client.post(f"/patients/{pid}/undo",
                       data={"csrf_token": token, "ref": ours}).status_code == 302
    assert _read(ws, ours)["status"] == "entered-in-error"


# ---------------------------------------------------------------- finding 5

def _version_in_form(page: str, study: str) -> str:
    form = page.split(f'name="study" value="{study}"', 1)[1]
    found = re.search(r'name="version" value="([^"]*)"', form)
    assert found, "the workflow form carries the version it was made from"
    return found.group(1)


def test_a_stale_workflow_form_changes_nothing_and_says_who_changed_what(ws):
    pid = "seed-ln-eligible"
    first, second = _signed_in(ws), _signed_in(ws, SECOND)
    page = first.get(f"/patients/{pid}").get_data(as_text=True)
    seen = _version_in_form(page, LN)
    token = _CSRF.search(page).group(1)
    # Meanwhile the second coordinator records the family's answer.
    other = second.get(f"/patients/{pid}").get_data(as_text=True)
    answer = second.post(f"/patients/{pid}/workflow", data={
        "csrf_token": _CSRF.search(other).group(1), "study": LN, "status": "withdrawn",
        "reason": "family-declined", "version": _version_in_form(other, LN)})
    assert answer.status_code == 302
    after = ws.subject(LN, pid)
    assert after["status"] == "withdrawn"
    # The first one's form is from before: refused with the facts, nothing overwritten.
    answer = first.post(f"/patients/{pid}/workflow", data={
        "csrf_token": token, "study": LN, "status": "on-study", "version": seen})
    assert answer.status_code == 409
    text = answer.get_data(as_text=True)
    assert "Nothing was changed" in text and SECOND[1] in text and "withdrawn" in text
    now = ws.subject(LN, pid)
    assert now["status"] == "withdrawn"
    assert now["meta"]["versionId"] == after["meta"]["versionId"]
    # A form without the version is refused too (no silent "latest wins").
    answer = first.post(f"/patients/{pid}/workflow", data={
        "csrf_token": token, "study": LN, "status": "on-study"})
    assert answer.status_code == 400
    assert ws.subject(LN, pid)["meta"]["versionId"] == after["meta"]["versionId"]


# ---------------------------------------------------------------- finding 8

def test_the_workflow_form_refuses_computed_statuses(ws):
    pid = "seed-potential"
    client = _signed_in(ws)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    before = ws.subject(LN, pid)
    for status in ("eligible", "potential-candidate", "ineligible", "nonsense"):
        answer = client.post(f"/patients/{pid}/workflow", data={
            "csrf_token": _CSRF.search(page).group(1), "study": LN, "status": status,
            "version": _version_in_form(page, LN)})
        assert answer.status_code == 400, status
    assert ws.subject(LN, pid)["meta"]["versionId"] == before["meta"]["versionId"]


# ---------------------------------------------------------------- finding 7

def _criterion_observations(ws: Workspace, pid: str) -> list[dict]:
    return list(ws.client.search("Observation", {"subject": f"Patient/{pid}"}))


def test_confirming_for_a_patient_that_does_not_exist_writes_nothing(ws):
    client = _signed_in(ws)
    token = _csrf(client, "/patients/seed-potential")
    provenances = len(list(ws.client.search("Provenance", {})))
    answer = client.post("/patients/no-such-patient/confirm", data={
        "csrf_token": token, "form_token": new_form_token(), "study": LN,
        "criterion": "venous-access", "answer": "met", "date": AS_OF.isoformat()})
    assert answer.status_code == 404
    assert _criterion_observations(ws, "no-such-patient") == []
    assert len(list(ws.client.search("Provenance", {}))) == provenances


def test_a_failed_rescreen_after_a_confirmation_is_a_message_not_a_500(ws, monkeypatch):
    from service.fhir.errors import FhirProtocolError
    from service.web.services import services

    with ws.app.app_context():
        screener = services().screener

    def broken(*args, **kwargs):
        raise FhirProtocolError("the FHIR server answered nonsense")

    monkeypatch.setattr(screener, "screen", broken)
    client = _signed_in(ws)
    token = _csrf(client, "/patients/seed-age-19")
    answer = client.post("/patients/seed-age-19/confirm", data={
        "csrf_token": token, "form_token": new_form_token(), "study": LN,
        "criterion": "venous-access", "answer": "not-met", "date": AS_OF.isoformat()},
        follow_redirects=True)
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "Recorded:" in text and "Screening again failed" in text


# ---------------------------------------------------------------- finding 9

def test_a_double_submitted_confirmation_is_recorded_once(ws):
    pid = "seed-sledai-6"
    client = _signed_in(ws)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    form = page.split('name="criterion" value="venous-access"', 1)[1]
    once = re.search(r'name="form_token" value="([^"]+)"', form).group(1)
    data = {"csrf_token": _CSRF.search(page).group(1), "form_token": once, "study": LN,
            "criterion": "venous-access", "answer": "met", "date": AS_OF.isoformat()}

    def venous() -> list[dict]:
        return [o for o in _criterion_observations(ws, pid)
                if o["code"]["coding"][0]["code"] == "venous-access"]

    before = len(venous())
    for _ in range(3):
        assert client.post(f"/patients/{pid}/confirm", data=data).status_code == 302
    assert len(venous()) == before + 1
    text = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert "already sent" in text


# ---------------------------------------------------------------- finding 10

HOSTILE = "Anna;=cmd|' /C calc'!A0|+1\t\t-2,@SUM(1)"


def test_the_csv_log_quotes_every_field_and_no_separator_starts_a_formula(ws):
    import csv
    import io

    pid = "seed-potential"
    patient = ws.client.read("Patient", pid)
    patient["name"] = [{"use": "official", "text": HOSTILE}]
    ws.client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient, "request": {"method": "PUT", "url": f"Patient/{pid}"}}]})
    client = _signed_in(ws)
    client.post(f"/patients/{pid}/screen", data={"csrf_token": _csrf(client, f"/patients/{pid}")})
    text = client.get(f"/studies/{LN}/log.csv").get_data(as_text=True)
    row = next(line for line in text.splitlines() if line.startswith(f'"{pid}"'))
    # Every field quoted.
    assert all(field.startswith('"') and field.endswith('"') for field in
               re.findall(r'"(?:[^"]|"")*"|[^,]+', row))
    assert "Anna" in text
    # However a spreadsheet splits it (",", ";", "|", tab), no cell starts a formula.
    for delimiter in (",", ";", "|", "\t"):
        for cells in csv.reader(io.StringIO(text), delimiter=delimiter):
            for cell in cells:
                stripped = cell.lstrip('"')
                assert stripped[:1] not in ("=", "+", "-", "@"), (delimiter, cell)


# ---------------------------------------------------------------- finding 12

def _granted(scope: str, resource_type: str, interaction: str) -> bool:
    """SMART v2 (and v1 `write`) system scopes: may `scope` do `interaction` (c, u) on the type?"""
    for item in scope.split():
        context, _, rest = item.partition("/")
        kind, _, perms = rest.partition(".")
        if context != "system" or kind not in (resource_type, "*"):
            continue
        perms = perms.split("?", 1)[0]
        if perms in ("write", "*") or interaction in perms:
            return True
    return False


def test_the_default_smart_scope_allows_every_write_the_pages_make(ws, monkeypatch):
    from service.fhir.client import FhirClient

    writes: set[tuple[str, str]] = set()
    real = FhirClient._request

    def recording(self, method, url, **kwargs):
        body = kwargs.get("json_body")
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            for entry in body.get("entry") or ():
                request = entry.get("request") or {}
                verb = request.get("method")
                kind = str(request.get("url", "")).split("?")[0].split("/")[0]
                if verb in ("POST", "PUT"):
                    writes.add((kind, "c" if verb == "POST" else "u"))
                    if verb == "PUT" and "?" in str(request.get("url")):
                        writes.add((kind, "c"))  # a conditional update may create
        elif method in ("POST", "PUT") and "/_search" not in url and not url.endswith("/token"):
            kind = url.rstrip("/").split("/")[-1 if method == "POST" else -2]
            writes.add((kind, "c" if method == "POST" else "u"))
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(FhirClient, "_request", recording)
    pid = "seed-age-4"
    client = _signed_in(ws)
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    token = _CSRF.search(page).group(1)
    for criterion in ("venous-access", "consent"):
        assert client.post(f"/patients/{pid}/confirm", data={
            "csrf_token": token, "form_token": new_form_token(), "study": LN,
            "criterion": criterion, "answer": "met", "date": AS_OF.isoformat(),
        }).status_code == 302, criterion
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    for ref in sorted(_undo_forms(page)):
        assert client.post(f"/patients/{pid}/undo",
                           data={"csrf_token": token, "ref": ref}).status_code == 302
    sledai = client.get(f"/patients/{pid}/sledai").get_data(as_text=True)
    once = re.search(r'name="form_token" value="([^"]+)"', sledai).group(1)
    assert client.post(f"/patients/{pid}/sledai", data={
        "csrf_token": token, "form_token": once, "date": AS_OF.isoformat(),
        "descriptor": "rash"}).status_code == 302
    page = client.get(f"/patients/{pid}").get_data(as_text=True)
    if f'name="study" value="{LN}"' in page and 'name="version"' in page:
        client.post(f"/patients/{pid}/workflow", data={
            "csrf_token": token, "study": LN, "status": "screening",
            "version": _version_in_form(page, LN)})
    assert {("Observation", "c"), ("Observation", "u"), ("Consent", "c"), ("Consent", "u"),
            ("Provenance", "c"), ("ResearchSubject", "u")} <= writes, writes
    scope = Settings().smart_scope
    refused = sorted(w for w in writes if not _granted(scope, *w))
    assert refused == [], f"the default FHIR_SMART_SCOPE {scope!r} does not allow {refused}"
