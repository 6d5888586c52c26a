"""docker-compose.yml works as shipped next to HAPI: each setting the trigger path and the
write-back depend on is there (issue 16), checked by parsing the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _required(value: str, name: str) -> bool:
    # ${NAME:?message}: compose refuses to start when NAME is unset or empty.
    return re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value) is not None


def test_hapi_delivers_rest_hook_subscriptions(compose):
    env = compose["services"]["hapi"]["environment"]
    assert env["hapi.fhir.subscription.resthook_enabled"] == "true"


def test_hapi_reuses_no_cached_search(compose):
    env = compose["services"]["hapi"]["environment"]
    assert env["hapi.fhir.reuse_cached_search_results_millis"] == "0"


def test_hapi_keeps_its_data_in_postgresql_on_a_named_volume(compose):
    services, volumes = compose["services"], compose["volumes"]
    env = services["hapi"]["environment"]
    assert env["spring.datasource.url"] == "jdbc:postgresql://hapi-db:5432/hapi"
    assert env["spring.datasource.driverClassName"] == "org.postgresql.Driver"
    assert env["spring.jpa.properties.hibernate.dialect"] == (
        "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect")
    assert _required(env["spring.datasource.password"], "HAPI_DB_PASSWORD")
    db = services["hapi-db"]
    assert db["image"].startswith("postgres:")
    assert db["environment"]["POSTGRES_PASSWORD"] == env["spring.datasource.password"]
    assert db["environment"]["POSTGRES_DB"] == "hapi"
    mounts = dict(m.split(":", 1) for m in db["volumes"])
    named = {name for name, target in mounts.items() if target == "/var/lib/postgresql/data"}
    assert named and named <= set(volumes), "the database lives on a declared named volume"
    assert services["hapi"]["depends_on"]["hapi-db"]["condition"] == "service_healthy"
    # The image's in-memory H2 is gone: nothing else points HAPI at a database.
    assert not any("h2" in str(v).lower() for v in env.values())


@pytest.mark.parametrize("name", ["service", "worker", "subscribe"])
def test_notify_secret_is_required_and_hapi_calls_the_service_by_its_compose_name(compose, name):
    env = compose["services"][name]["environment"]
    assert _required(env["FHIR_NOTIFY_SECRET"], "FHIR_NOTIFY_SECRET")
    assert _required(env["ELIGIBILITY_API_TOKEN"], "ELIGIBILITY_API_TOKEN")
    # HAPI reaches the service inside the compose network; browsers keep PUBLIC_URL.
    assert env["NOTIFY_BASE_URL"] == "${NOTIFY_BASE_URL:-http://service:8000}"
    assert env["PUBLIC_URL"] == "${PUBLIC_URL:-http://localhost:8000}"
    assert env["FHIR_BASE_URL"] == "http://hapi:8080/fhir"


def test_a_one_shot_subscribe_service_runs_once_hapi_is_up(compose):
    subscribe = compose["services"]["subscribe"]
    assert subscribe["command"] == ["eligibility", "subscribe"]
    assert subscribe["build"] == compose["services"]["service"]["build"]
    assert "hapi" in subscribe["depends_on"]
    # One shot: it is not restarted after it succeeded (only a bounded retry on failure).
    assert subscribe["restart"] in ("no", "on-failure") or subscribe["restart"].startswith(
        "on-failure:")
    # HAPI has no healthcheck (distroless image): subscribe waits for /fhir/metadata itself.
    assert int(subscribe["environment"]["FHIR_WAIT_SECONDS"]) >= 120
