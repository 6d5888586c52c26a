"""The coordinator's funnel in a real browser (Chromium via Playwright) on the seeds.

A coordinator records a 2019 EULAR/ACR classification, withdraws a patient with a reason,
reads the funnel, and is told of a new candidate by email; every step is checked on the page
AND where it is kept (the FHIR server, the mailbox). Each page is checked with axe-core and
saved as screenshots under var/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from service.fhir import research_subject as rs
from tests.support.browser import launch, screenshot, serious_violations
from tests.support.live_app import serve
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.workspace import COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]
LN = "pediatric-ln-cart"
SLE = "refractory-sle-cart"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    with smtp_server() as (box, url):
        yield box, url


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, mailbox) -> Iterator[tuple[Workspace, str]]:
    server = start_local_server()
    try:
        with workspace(server.base_url, tmp_path_factory.mktemp("funnel"),
                       smtp_url=mailbox[1], mail_from="eligibility@hospital.example") as w, \
                serve(w.app) as url:
            yield w, url
    finally:
        server.stop()


def _page(browser: Any, url: str) -> Any:
    # bypass_csp lets the test inject axe-core; the pages themselves run no script.
    page = browser.new_context(viewport={"width": 1280, "height": 800},
                               bypass_csp=True).new_page()
    page.goto(url + "/login")
    page.fill("#username", COORDINATOR[0])
    page.fill("#password", COORDINATOR[2])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def _check(page: Any, name: str) -> None:
    assert serious_violations(page) == [], f"axe-core on {name}"
    screenshot(page, name)


def _criterion(subject: dict, cid: str) -> dict[str, list]:
    for ext in subject["extension"]:
        if ext["url"] != rs.CRITERION_EXTENSION:
            continue
        parts: dict[str, list] = {}
        for p in ext["extension"]:
            parts.setdefault(p["url"], []).append(next(v for k, v in p.items() if k != "url"))
        if parts["id"] == [cid]:
            return parts
    raise AssertionError(cid)


def test_a_saved_classification_worksheet_changes_sle_diagnosis(browser, ws):
    w, url = ws
    page = _page(browser, url)
    page.goto(url + "/patients/seed-ana-low")
    badge = page.locator(f"#{SLE}-sle-diagnosis .badge").first
    assert badge.inner_text() == "met"  # the coded SLE diagnosis, no classification yet
    assert "no 2019 EULAR/ACR classification is recorded" in page.locator(
        f"#{SLE}-sle-diagnosis .reason").inner_text()
    page.locator(f"#{SLE}-sle-diagnosis").get_by_role(
        "link", name="Open the 2019 EULAR/ACR classification worksheet").click()
    page.wait_for_load_state()
    assert page.url.endswith("/patients/seed-ana-low/classification")
    # ANA 1:40 only: entry unticked; class III/IV nephritis and proteinuria pre-ticked
    assert not page.is_checked("#entry")
    assert page.is_checked("#i-renal-biopsy-class-iii-or-iv") and page.is_checked(
        "#i-proteinuria")
    assert page.locator("table.classification tbody tr.domain").count() == 10
    _check(page, "classification")
    page.check("#i-joint-involvement")
    page.get_by_role("button", name="Save the classification").click()
    page.wait_for_load_state()
    flash = page.locator(".flashes").inner_text()
    assert "16 points, not classified as SLE" in flash
    for study in (SLE, LN):
        item = page.locator(f"#{study}-sle-diagnosis")
        assert item.locator(".badge").first.inner_text() == "not-met"
        assert "entry criterion (ANA >= 1:80) is not met" in item.locator(".reason").inner_text()
    _check(page, "classification-saved")
    # ... and on the FHIR server: the ResearchSubject cites the recorded Observation
    parts = _criterion(w.subject(SLE, "seed-ana-low"), "sle-diagnosis")
    assert parts["result"] == ["not-met"]
    (ref,) = [e["reference"] for e in parts["evidence"]]
    recorded = w.client.read(*ref.split("/"))
    assert recorded["code"]["coding"][0]["code"] == "eular-acr-2019"
    assert recorded["valueInteger"] == 16
    assert recorded["performer"][0]["identifier"]["value"] == COORDINATOR[0]


PROGRESS = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchSubject.progress"


def test_a_reasoned_withdrawal_shows_in_the_funnel_and_the_research_subject_history(browser, ws):
    w, url = ws
    page = _page(browser, url)
    page.goto(url + "/patients/seed-ln-eligible")
    ln = page.locator(f"#study-{LN}")
    # approached first, then withdrawn with the family's reason
    ln.locator("select[name=status]").select_option("screening")
    ln.get_by_role("button", name="Set status").click()
    page.wait_for_load_state()
    ln = page.locator(f"#study-{LN}")
    ln.locator("select[name=status]").select_option("withdrawn")
    ln.locator("select[name=reason]").select_option("withdrawn")
    ln.locator("input[name=why]").fill("family moved to another city")
    ln.get_by_role("button", name="Set status").click()
    page.wait_for_load_state()
    assert "Withdrawn: family moved to another city" in page.locator(".flashes").inner_text()
    history = page.locator(f"#study-{LN} details.history")
    history.locator("summary").click()
    items = history.locator("li").all_inner_texts()
    assert "screening" in items[-2] and "withdrawn: Withdrawn: family moved to another city" \
        in items[-1]
    _check(page, "patient-history")
    # the funnel on the log: approached counts them, the reason is listed where they left
    page.goto(url + f"/studies/{LN}/log")
    stages = dict(zip(page.locator("table.funnel td:nth-child(1)").all_inner_texts(),
                      page.locator("table.funnel td:nth-child(2)").all_inner_texts(),
                      strict=True))
    assert int(stages["approached"]) >= 1
    left = page.locator("table.left tbody tr", has_text="family moved to another city")
    # the seed's consent is signed: they left after the consented stage
    assert left.locator("td").first.inner_text() == "consented"
    assert page.locator("svg.chart title", has_text="funnel").count() == 1
    _check(page, "log-funnel")
    # ... and on the FHIR server: the R5 progress entries on the ResearchSubject
    subject = w.subject(LN, "seed-ln-eligible")
    entries = [{p["url"]: p for p in e["extension"]} for e in subject["extension"]
               if e["url"] == PROGRESS]
    last = entries[-1]
    assert last["subjectState"]["valueCodeableConcept"]["coding"][0]["code"] == "withdrawn"
    assert last["reason"]["valueCodeableConcept"]["text"] == "family moved to another city"
    assert entries[-2]["subjectState"]["valueCodeableConcept"]["coding"][0]["code"] == \
        "screening"
    assert subject["status"] == "withdrawn"


def _new_candidate(w: Workspace, pid: str) -> None:
    """A child with a new SLE diagnosis arrives in the hospital record."""
    w.client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": pid, "birthDate": "2015-03-02",
                      "gender": "female", "name": [{"family": "Wang", "given": ["Lan"]}]},
         "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"resource": {"resourceType": "Condition", "id": f"{pid}-sle",
                      "subject": {"reference": f"Patient/{pid}"},
                      "clinicalStatus": {"coding": [{
                          "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                          "code": "active"}]},
                      "code": {"coding": [{"system": "http://snomed.info/sct",
                                           "code": "55464009"}]}},
         "request": {"method": "PUT", "url": f"Condition/{pid}-sle"}},
    ]})


def test_a_new_candidate_produces_exactly_one_email(browser, ws, mailbox):
    w, url = ws
    box, _ = mailbox
    queue = w.app.extensions["eligibility"].queue
    assert queue.outreach is not None  # SMTP_URL and MAIL_FROM set: outreach is on
    queue.sweep_outreach()  # the queue's sweep: learns who is a candidate already
    page = _page(browser, url)
    page.get_by_role("link", name="Email").click()
    page.wait_for_load_state()
    page.fill("#email", "casey@hospital.example")
    page.check(f"input[name=mode-{SLE}][value=immediate]")
    _check(page, "notifications")
    page.get_by_role("button", name="Save email settings").click()
    page.wait_for_load_state()
    assert "Email settings saved" in page.locator(".flashes").inner_text()
    assert page.is_checked(f"input[name=mode-{SLE}][value=immediate]")
    assert page.is_checked(f"input[name=mode-{LN}][value=none]")
    _new_candidate(w, "new-lupus")
    page.goto(url + "/patients/new-lupus")
    page.get_by_role("button", name="Screen again").click()
    page.wait_for_load_state()
    assert "potential-candidate" in page.locator(f"#study-{SLE} .status-line").inner_text()
    queue.sweep_outreach()
    assert len(box.messages) == 1
    (mail,) = box.messages
    body = mail.get_payload(decode=True).decode()
    assert mail["To"] == "casey@hospital.example"
    assert mail["Subject"] == f"Trial eligibility: 1 new candidate for {SLE}"
    assert "potential candidates: 1" in body and f"/?study={SLE}" in body
    for private in ("new-lupus", "Wang", "Lan", "2015-03-02"):
        assert private not in body and private not in mail["Subject"]
    # screened again and swept again: still exactly one email
    page.get_by_role("button", name="Screen again").click()
    page.wait_for_load_state()
    queue.sweep_outreach()
    queue.sweep_outreach()
    assert len(box.messages) == 1
