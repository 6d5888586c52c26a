"""CDS Hooks 2.0 patient-view: discovery, request and card shapes, prefetch, fhirServer
allow-list, and the client JWT (good, alg none, HS256, wrong aud, expired, replayed jti,
unknown issuer)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.core.settings import REPO_ROOT
from service.engine.evaluate import evaluate_patient
from service.fhir.client import FhirClient
from service.fhir.queries import code_token
from service.usecases.screener import Screener
from service.web import cds_hooks
from tests.support.fakes import FakeClient, FakeScreener, real_mappings

PUBLIC = "https://elig.example.org"
AUD = f"{PUBLIC}/cds-services/trial-eligibility"
ISSUER = "https://ehr.example.org"
EHR_FHIR = "https://ehr.example.org/fhir"
SLE, LN = "refractory-sle-cart", "pediatric-ln-cart"  # the seed studies (any others may be loaded)


# ------------------------------------------------------------------------------ keys


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
    }


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.get_algorithm_by_name(alg)
    data = json.loads(algo.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def jwks_file(tmp_path: Path, keys) -> Path:
    path = tmp_path / "ehr-jwks.json"
    path.write_text(json.dumps({"keys": [
        _jwk(keys["rsa"], "rsa-1", "RS384"),
        _jwk(keys["ec256"], "ec-256", "ES256"),
        _jwk(keys["ec384"], "ec-384", "ES384"),
    ]}))
    return path


def token(keys, *, alg: str = "RS384", kid: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUD, "exp": now + 300, "iat": now,
            "jti": uuid.uuid4().hex, "sub": "ehr-client", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    key = {"RS": keys["rsa"], "ES": keys["ec256" if alg == "ES256" else "ec384"]}[alg[:2]]
    default_kid = {"RS": "rsa-1", "ES256": "ec-256", "ES384": "ec-384"}
    kid = kid or default_kid.get(alg, default_kid["RS"] if alg.startswith("RS") else None)
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# ------------------------------------------------------------------------------ requests


def bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def full_prefetch(pid: str = "p1", extra: list[dict] | None = None) -> dict:
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": pid}}
    for key in cds_hooks.prefetch_templates(real_mappings().observation_codes()):
        if key != "patient":
            prefetch[key] = bundle([])
    prefetch["observations"] = bundle(extra or [])
    return prefetch


def hook_request(pid: str = "p1", prefetch: dict | None = None, **extra: Any) -> dict:
    body = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "patient-view",
        "context": {"userId": "Practitioner/doc-1", "patientId": pid},
        **extra,
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


@pytest.fixture
def cds(make_app, jwks_file, keys):
    """(post(body, **headers), screener, app) with the EHR issuer configured."""

    def _make(statuses: dict[str, str] | None = None, **overrides: Any):
        overrides.setdefault("cds_issuers", (f"{ISSUER}|{jwks_file}",))
        app, screener = make_app(**overrides)
        if statuses is not None:
            screener.statuses = statuses
        http = app.test_client()

        def post(body: dict, *, jwt_token: str | None = "auto", path: str = "") -> Any:
            headers = {}
            if jwt_token == "auto":
                jwt_token = token(keys, aud=AUD + path if path else AUD)
            if jwt_token:
                headers["Authorization"] = f"Bearer {jwt_token}"
            return http.post(f"/cds-services/trial-eligibility{path}", json=body,
                             headers=headers)

        return post, screener, app

    return _make


# ------------------------------------------------------------------------------ discovery


def test_discovery_shape_and_prefetch_templates(http):
    response = http.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert len(services) == 1
    service = services[0]
    assert {"hook", "id", "title", "description", "prefetch"} <= set(service)
    assert service["hook"] == "patient-view" and service["id"] == "trial-eligibility"
    prefetch = service["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    for key, template in prefetch.items():
        assert "{{context.patientId}}" in template, key
    observations = unquote(prefetch["observations"])
    assert observations.startswith("Observation?patient={{context.patientId}}&code=")
    codes = set(observations.split("&code=")[1].split("&")[0].split(","))
    assert codes == {code_token(c) for c in real_mappings().observation_codes()}
    for key in ("conditions", "medicationRequests", "medicationStatements", "procedures"):
        assert key in prefetch


# ------------------------------------------------------------------------------ cards


def test_one_card_per_eligible_or_potential_study(cds):
    post, screener, _ = cds({SLE: "eligible", LN: "ineligible"})
    body = hook_request("p1", full_prefetch("p1"))
    response = post(body)
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert {"uuid", "summary", "indicator", "source"} <= set(card)
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] == "info"
    assert card["source"]["label"]
    assert real_mappings().studies[SLE].title[:40] in card["summary"] + card["detail"]
    assert card["links"] == [{
        "label": "Open the patient page", "type": "absolute",
        "url": f"{PUBLIC}/patients/p1#study-{SLE}",
    }]
    assert screener.calls[0][:2] == ("cds", "p1")


def test_potential_candidate_card_lists_unknown_criteria_with_reasons(cds):
    post, _, _ = cds({SLE: "ineligible", LN: "potential-candidate"})
    response = post(hook_request("p1", full_prefetch("p1")))
    cards = response.get_json()["cards"]
    assert len(cards) == 1
    unknown = real_mappings().studies[LN].criteria[1].id
    assert f"`{unknown}`" in cards[0]["detail"]
    assert f"no {unknown} on record" in cards[0]["detail"]
    assert "to confirm" in cards[0]["detail"].lower()
    assert cards[0]["links"][0]["url"].endswith(f"#study-{LN}")  # the patient page, this study


def test_no_cards_when_ineligible_everywhere(cds):
    post, _, _ = cds({SLE: "ineligible", LN: "ineligible"})
    assert post(hook_request("p1", full_prefetch("p1"))).get_json() == {"cards": []}


def test_long_titles_keep_the_summary_under_140(cds, monkeypatch):
    post, screener, _ = cds({SLE: "potential-candidate", LN: "eligible"})
    original = screener.studies_json
    monkeypatch.setattr(screener, "studies_json",
                        lambda: [{**s, "title": "T" * 300} for s in original()])
    cards = post(hook_request("p1", full_prefetch("p1"))).get_json()["cards"]
    assert len(cards) == 2
    assert all(len(c["summary"]) < 140 for c in cards)


def test_prefetch_bundles_are_flattened_to_resources(cds):
    post, screener, _ = cds()
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}
    response = post(hook_request("p1", full_prefetch("p1", [obs])))
    assert response.status_code == 200
    seen = screener.resources_seen[0]
    assert {"resourceType": "Patient", "id": "p1"} in seen
    assert obs in seen
    assert all(r["resourceType"] != "Bundle" for r in seen)


def test_prefetch_for_another_patient_is_refused(cds):
    post, screener, _ = cds()
    response = post(hook_request("p1", full_prefetch("p2")))
    assert response.status_code == 400
    assert screener.calls == []


@pytest.mark.parametrize("body", [
    {"hook": "order-select", "hookInstance": "x", "context": {"patientId": "p1"}},
    {"hook": "patient-view", "context": {"patientId": "p1"}},
    {"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "bad id"}},
    {"hook": "patient-view", "hookInstance": "x"},
])
def test_malformed_hook_requests_are_400(cds, body):
    post, _, _ = cds()
    assert post(body).status_code == 400


# ------------------------------------------------------------------------------ fhirServer


def test_missing_prefetch_without_fhir_server_is_412(cds):
    post, _, _ = cds()
    response = post(hook_request("p1"))
    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"


def test_fhir_server_not_allow_listed_is_refused_with_no_request(make_app, jwks_file, keys):
    made: list[Any] = []

    def factory(s):
        made.append(s)
        return FhirClient(s)

    app, screener = make_app(client_factory=factory, cds_issuers=(f"{ISSUER}|{jwks_file}",),
                             cds_allowed_fhir_servers=("https://other.example/fhir",))
    body = hook_request("p1", fhirServer=EHR_FHIR,
                        fhirAuthorization={"access_token": "tok", "token_type": "Bearer"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        response = app.test_client().post(
            "/cds-services/trial-eligibility", json=body,
            headers={"Authorization": f"Bearer {token(keys)}"})
        assert len(mock.calls) == 0
    assert response.status_code == 412
    assert "allow-list" in response.get_json()["detail"]
    assert made == [] and screener.calls == []


def test_allow_listed_fhir_server_is_read_with_the_access_token(make_app, jwks_file, keys):
    app, screener = make_app(client_factory=FhirClient, cds_issuers=(f"{ISSUER}|{jwks_file}",),
                             cds_allowed_fhir_servers=(EHR_FHIR,))
    prefetch = full_prefetch("p1")
    del prefetch["patient"], prefetch["conditions"]
    prefetch["observations"] = None  # the client could not prefetch it
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}}
    body = hook_request("p1", prefetch, fhirServer=EHR_FHIR,
                        fhirAuthorization={"access_token": "ehr-tok", "token_type": "Bearer",
                                           "expires_in": 300, "scope": "patient/*.read",
                                           "subject": "cds"})
    with responses.RequestsMock() as mock:
        mock.get(f"{EHR_FHIR}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
        mock.get(re.compile(rf"{re.escape(EHR_FHIR)}/Condition\?.*"), json=bundle([condition]))
        mock.get(re.compile(rf"{re.escape(EHR_FHIR)}/Observation\?.*"), json=bundle([]))
        response = app.test_client().post(
            "/cds-services/trial-eligibility", json=body,
            headers={"Authorization": f"Bearer {token(keys)}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert {c.request.headers["Authorization"] for c in mock.calls} == {"Bearer ehr-tok"}
        urls = [unquote(c.request.url) for c in mock.calls]
    assert any("Condition?patient=p1" in u for u in urls)
    assert any("Observation?patient=p1" in u and "718-7" in u for u in urls)
    seen = screener.resources_seen[0]
    assert condition in seen and {"resourceType": "Patient", "id": "p1"} in seen


def test_fhir_server_failure_is_412(make_app, jwks_file, keys):
    app, _ = make_app(client_factory=lambda s: FakeClient(s, up=False),
                      cds_issuers=(f"{ISSUER}|{jwks_file}",),
                      cds_allowed_fhir_servers=(EHR_FHIR,))

    class Failing(FakeClient):
        def read(self, rtype, rid):
            from service.fhir.errors import FhirTemporaryError
            raise FhirTemporaryError("timeout")

    app.extensions["eligibility"].client_factory = lambda s: Failing(s)
    body = hook_request("p1", fhirServer=EHR_FHIR)
    response = app.test_client().post("/cds-services/trial-eligibility", json=body,
                                      headers={"Authorization": f"Bearer {token(keys)}"})
    assert response.status_code == 412


# ------------------------------------------------------------------------------ JWT


def _post_with(cds, jwt_token: str | None, **overrides):
    post, screener, _ = cds(**overrides)
    return post(hook_request("p1", full_prefetch("p1")), jwt_token=jwt_token), screener


@pytest.mark.parametrize("alg", ["RS384", "RS256", "ES256", "ES384"])
def test_good_jwt_of_each_allowed_alg(cds, keys, alg):
    response, _ = _post_with(cds, token(keys, alg=alg))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_alg_none_is_refused(cds, keys):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUD, "exp": now + 300, "iat": now, "jti": "n1"}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    response, screener = _post_with(cds, unsigned)
    assert response.status_code == 401
    assert "alg" in response.get_json()["detail"]
    assert screener.calls == []


def test_hmac_is_refused_even_with_the_public_key_as_secret(cds, keys):
    # The classic confusion attack: HMAC-sign with the issuer's public key as the secret.
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUD, "exp": now + 300, "iat": now, "jti": "h1"}
    public_pem = keys["rsa"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{_b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    response, screener = _post_with(cds, forged)
    assert response.status_code == 401
    assert "HS256" in response.get_json()["detail"]
    assert screener.calls == []


@pytest.mark.parametrize(
    ("claims", "needle"),
    [
        ({"aud": "https://elsewhere.example/cds-services/trial-eligibility"}, "audience"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iss": "https://unknown.example"}, "allow-list"),
        ({"jti": None}, "jti"),
    ],
)
def test_bad_claims_are_refused(cds, keys, claims, needle):
    response, screener = _post_with(cds, token(keys, **claims))
    assert response.status_code == 401
    assert needle in response.get_json()["detail"]
    assert screener.calls == []


def test_replayed_jti_is_refused(cds, keys):
    post, screener, _ = cds()
    once = token(keys)
    body = hook_request("p1", full_prefetch("p1"))
    assert post(body, jwt_token=once).status_code == 200
    replay = post(body, jwt_token=once)
    assert replay.status_code == 401
    assert "jti" in replay.get_json()["detail"]
    assert len(screener.calls) == 1


def test_signature_by_another_key_is_refused(cds, keys):
    stranger = {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                "ec256": keys["ec256"], "ec384": keys["ec384"]}
    response, _ = _post_with(cds, token(stranger))
    assert response.status_code == 401


def test_missing_jwt_is_401_unless_not_required(cds):
    response, _ = _post_with(cds, None)
    assert response.status_code == 401
    response, _ = _post_with(cds, None, cds_jwt_required=False)
    assert response.status_code == 200


def test_jwks_fetched_from_the_issuer_url_once(cds, keys, jwks_file):
    url = f"{ISSUER}/.well-known/jwks.json"
    with responses.RequestsMock() as mock:
        mock.get(url, body=jwks_file.read_text(), content_type="application/json")
        post, _, _ = cds(cds_issuers=(f"{ISSUER}|{url}",))
        body = hook_request("p1", full_prefetch("p1"))
        assert post(body).status_code == 200
        assert post(body).status_code == 200
        assert len(mock.calls) == 1


def test_jku_on_the_issuers_origin_is_used_when_no_keys_are_configured(cds, keys, jwks_file):
    url = f"{ISSUER}/keys.json"
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUD, "exp": now + 300, "iat": now, "jti": "j1"}
    good = jwt.encode(claims, keys["rsa"], algorithm="RS384", headers={"kid": "rsa-1",
                                                                        "jku": url})
    evil = jwt.encode({**claims, "jti": "j2"}, keys["rsa"], algorithm="RS384",
                      headers={"kid": "rsa-1", "jku": "https://evil.example/keys.json"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(url, body=jwks_file.read_text(), content_type="application/json")
        post, _, _ = cds(cds_issuers=(ISSUER,))
        body = hook_request("p1", full_prefetch("p1"))
        assert post(body, jwt_token=good).status_code == 200
        assert post(body, jwt_token=evil).status_code == 401
        assert all(c.request.url == url for c in mock.calls)


def test_with_jwt_optional_the_api_token_guards_the_service(cds):
    api = "api-token-0123456789abcdef0123"
    post, _, app = cds(cds_jwt_required=False, api_tokens=(api,))
    body = hook_request("p1", full_prefetch("p1"))
    assert post(body, jwt_token=None).status_code == 401
    assert post(body, jwt_token=api).status_code == 200


# ------------------------------------------------------------------------------ feedback


def test_feedback_is_accepted_and_logged(cds, caplog):
    caplog.set_level("INFO")
    post, _, _ = cds()
    card = str(uuid.uuid4())
    body = {"feedback": [{"card": card, "outcome": "accepted",
                          "outcomeTimestamp": "2026-11-15T10:00:00Z"}]}
    response = post(body, path="/feedback")
    assert response.status_code == 200
    assert response.get_json() == {}
    assert any(card in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("body", [{}, {"feedback": []}, {"feedback": [{"card": "x"}]},
                                  {"feedback": [{"card": 1, "outcome": "accepted"}]}])
def test_malformed_feedback_is_400(cds, body):
    post, _, _ = cds()
    assert post(body, path="/feedback").status_code == 400


def test_feedback_needs_a_valid_jwt(cds):
    post, _, _ = cds()
    body = {"feedback": [{"card": "x", "outcome": "overridden"}]}
    assert post(body, path="/feedback", jwt_token=None).status_code == 401


# ------------------------------------------------------------------------------ real engine


def _seed_prefetch(name: str) -> tuple[str, dict, list[dict]]:
    seed = json.loads((REPO_ROOT / "seeds" / "patients" / f"{name}.json").read_text())
    resources = [e["resource"] for e in seed["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    keys = {**cds_hooks._PREFETCH_KEYS}
    grouped: dict[str, list[dict]] = {k: [] for k in keys.values()}
    for resource in resources:
        rtype = resource["resourceType"]
        if rtype == "Medication":
            grouped["medicationRequests"].append(resource)  # arrives via _include
        elif rtype in keys:
            grouped[keys[rtype]].append(resource)
    prefetch = {"patient": patient, **{k: bundle(v) for k, v in grouped.items()}}
    return patient["id"], prefetch, resources


@pytest.mark.parametrize("seed", ["seed-potential", "seed-ln-eligible", "seed-sle-eligible",
                                  "seed-hb-59"])
def test_seed_record_cards_match_the_engine(make_app, jwks_file, keys, seed):
    as_of = date.fromisoformat(
        json.loads((REPO_ROOT / "seeds" / "manifest.json").read_text())["asOf"])
    s_app, _ = make_app(cds_issuers=(f"{ISSUER}|{jwks_file}",), screen_as_of=as_of)
    real = Screener(s_app.extensions["eligibility"].settings, mappings=real_mappings(),
                    client_factory=FakeClient)
    s_app.extensions["eligibility"].screener = real
    pid, prefetch, resources = _seed_prefetch(seed)
    response = s_app.test_client().post(
        "/cds-services/trial-eligibility", json=hook_request(pid, prefetch),
        headers={"Authorization": f"Bearer {token(keys)}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    cards = response.get_json()["cards"]
    expected = evaluate_patient(resources, real_mappings(), as_of, patient_id=pid)
    wanted = [s.study for s in expected.studies
              if s.status in ("eligible", "potential-candidate")]
    assert [c["links"][0]["url"].rsplit("#study-", 1)[1] for c in cards] == wanted
    for card, study in zip(cards, [s for s in expected.studies if s.study in wanted],
                           strict=True):
        for crit in study.criteria:
            if crit.result == "unknown":
                assert f"`{crit.id}`" in card["detail"]
            if crit.result == "unknown" and crit.kind == "manual":
                # A manual criterion says what is needed and where: the page the card links.
                assert f"`{crit.id}`: {crit.reason}" in card["detail"]
                assert "on the patient page" in crit.reason and "urn:" not in crit.reason
                assert card["links"][0]["label"] == "Open the patient page"


def test_fake_screener_is_a_screener():
    # The fakes implement the same interface the app uses.
    assert issubclass(FakeScreener, Screener)


# ------------------------------------------------------------------------------ hardening


@pytest.mark.security
@pytest.mark.parametrize("subject", [
    None, "Patient/p2", "https://evil.example/fhir/Patient/p1", "urn:uuid:p1"])
def test_prefetched_resources_of_another_patient_or_none_are_not_used(cds, subject):
    # Issue 13, finding 3: the prefetch is read like a FHIR answer, only this patient's data.
    post, screener, _ = cds()
    foreign = {"resourceType": "Observation", "id": "o-foreign", "status": "final",
               "code": {"text": "x"}}
    if subject is not None:
        foreign["subject"] = {"reference": subject}
    own = {"resourceType": "Observation", "id": "o-own", "status": "final",
           "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}
    assert post(hook_request("p1", full_prefetch("p1", [foreign, own]))).status_code == 200
    ids = {r.get("id") for r in screener.resources_seen[0]}
    assert "o-own" in ids and "o-foreign" not in ids


@pytest.mark.security
@pytest.mark.parametrize("entry", [
    {"resource": {"resourceType": "OperationOutcome",
                  "issue": [{"severity": "error", "code": "exception"}]}},
    {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                  "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}},
     "response": {"status": "200", "outcome": {
         "resourceType": "OperationOutcome", "issue": [{"severity": "fatal",
                                                        "code": "exception"}]}}},
])
def test_a_prefetch_holding_an_error_outcome_is_not_read_as_no_data(cds, entry):
    # Issue 13, finding 2: the EHR's search failed; without a fhirServer to read it from, the
    # hook cannot answer (412), and never with cards computed from "no data".
    post, screener, _ = cds()
    prefetch = full_prefetch("p1")
    prefetch["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": [entry]}
    response = post(hook_request("p1", prefetch))
    assert response.status_code == 412
    assert screener.calls == []
