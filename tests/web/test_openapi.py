"""The OpenAPI document stays true: every route is documented and every documented route
exists; the document loads as OpenAPI 3.1 and the app answers generated requests without 5xx."""

from __future__ import annotations

import re

import pytest

from service.web.openapi import build_openapi

TOKEN = "api-token-0123456789abcdef0123"
METHODS = {"get", "post", "put", "delete", "patch"}


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("pages."):
            continue  # the coordinator's HTML pages are not part of the JSON API
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


def _documented(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item
            if method in METHODS}


def test_every_route_is_documented_and_vice_versa(make_app):
    app, _ = make_app(api_tokens=(TOKEN,))
    response = app.test_client().get("/openapi.json",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert _routes(app) == _documented(doc)


def test_path_parameters_match_the_template(make_app):
    doc = build_openapi("https://elig.example.org")
    for path, item in doc["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            declared = {p["name"] for p in params if p["in"] == "path"}
            assert declared == names, (path, method)
            assert op.get("operationId") and op.get("responses"), (path, method)


def test_public_endpoints_are_marked_without_security(make_app):
    doc = build_openapi("https://elig.example.org")
    public = {(p, m) for p, item in doc["paths"].items() for m, op in item.items()
              if m in METHODS and op.get("security") == []}
    assert public == {("/healthz", "get"), ("/readyz", "get"), ("/cds-services", "get")}
    app, _ = make_app(api_tokens=(TOKEN,))
    http = app.test_client()
    for path, _method in public:
        assert http.get(path).status_code in (200, 503)


@pytest.mark.slow
def test_generated_requests_never_get_a_server_error(make_app):
    import schemathesis  # a test dependency: its absence is an error, not a skip
    from hypothesis import HealthCheck, given, settings

    app, _ = make_app(api_tokens=(TOKEN,), webhook_secret="w" * 32, notify_secret="n" * 32,
                      cds_jwt_required=False)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app,
                                            headers={"Authorization": f"Bearer {TOKEN}"})
    failures: list[tuple[str, int, str]] = []
    statuses: list[int] = []

    def fuzz(op) -> None:
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            response = case.call(app=app, headers={"Authorization": f"Bearer {TOKEN}"})
            statuses.append(response.status_code)
            if response.status_code >= 500 and response.status_code not in (502, 503):
                failures.append((op.label, response.status_code, response.text[:200]))

        run()

    for operation in schema.get_all_operations():
        fuzz(operation.ok())
    assert failures == []
    assert {200, 400} <= set(statuses)
