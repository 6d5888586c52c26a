"""No page runs script: every HTML page the app serves, found by walking its routes (a new page
is covered without editing this test), signed out and signed in, in English and Chinese, plus
the error pages. A `<script>`, an event-handler attribute, a `javascript:` URL or a resource
from another origin anywhere fails it, as does a CSP that would allow script."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from localfhir import start_local_server
from tests.support.workspace import COORDINATOR, Workspace, workspace

pytestmark = [pytest.mark.integration, pytest.mark.security]
LN = "pediatric-ln-cart"
# Values for the routes' path parameters: a seed patient and a study of the seeds.
PATH_VALUES = {"raw_id": "seed-potential", "key": LN}
# Not pages: the stylesheet and images, and the OpenID redirect endpoints (tested with the
# provider in tests/web/test_pages_oidc.py; without one configured they answer an error page,
# which is walked like any other).
NOT_HTML = {"pages.static"}
LANGUAGES = ("en", "zh-CN")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SCRIPT = [
    (re.compile(r"<\s*script", re.I), "a <script> element"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event-handler attribute"),
    (re.compile(r"javascript\s*:", re.I), "a javascript: URL"),
    (re.compile(r"<\s*(iframe|object|embed)\b", re.I), "an embedded document"),
    (re.compile(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", re.I),
     "a resource or form target on another origin"),
]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    local = start_local_server()
    try:
        with workspace(local.base_url, tmp_path_factory.mktemp("no-script")) as made:
            yield made
    finally:
        local.stop()


def page_paths(app: Any) -> list[tuple[str, str]]:
    """(endpoint, path) of every GET route of the pages, path parameters filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("pages.") or rule.endpoint in NOT_HTML:
            continue
        if "GET" not in (rule.methods or ()):
            continue
        missing = set(rule.arguments) - set(PATH_VALUES)
        assert not missing, f"{rule.rule}: give PATH_VALUES a value for {sorted(missing)}"
        found.append((rule.endpoint, rule.build({k: PATH_VALUES[k] for k in rule.arguments},
                                                append_unknown=False)[1]))
    return sorted(found)


def assert_no_script(answer: Any, where: str) -> None:
    if not answer.mimetype.startswith("text/html"):
        return  # JSON problems and CSV: nothing a browser runs
    csp = answer.headers.get("Content-Security-Policy", "")
    assert "default-src 'none'" in csp and "script-src" not in csp, where
    html = answer.get_data(as_text=True)
    for pattern, what in SCRIPT:
        hit = pattern.search(html)
        assert hit is None, f"{where}: {what}: ...{html[max(0, hit.start() - 60):hit.end() + 60]}"


def sign_in(client: Any) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = _TOKEN.search(page)
    assert token, "no CSRF token on /login"
    answer = client.post("/login", data={"username": COORDINATOR[0], "password": COORDINATOR[2],
                                         "csrf_token": token.group(1)})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_page_runs_script(ws, language):
    paths = page_paths(ws.app)
    assert {"pages.worklist", "pages.patient_page", "pages.login"} <= {e for e, _ in paths}
    headers = {"Accept-Language": language}
    signed_out = ws.app.test_client()
    for endpoint, path in paths:
        assert_no_script(signed_out.get(path, headers=headers), f"{endpoint} signed out")
    signed_in = ws.app.test_client()
    sign_in(signed_in)
    for endpoint, path in paths:
        answer = signed_in.get(path, headers=headers)
        assert answer.status_code < 500, f"{endpoint}: {answer.status_code}"
        assert_no_script(answer, f"{endpoint} ({language})")
    # The error pages: an unknown patient, an unknown study, an unknown page.
    for path in ("/patients/no-such-patient-zz", "/studies/no-such-study/log", "/no-such-page"):
        answer = signed_in.get(path, headers=headers)
        assert 400 <= answer.status_code < 500, path
        assert_no_script(answer, f"error page {path} ({language})")

