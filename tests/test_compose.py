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


# ---------------------------------------------------------------- issue 26: nothing is lost

MONITORING = COMPOSE.parent / "monitoring"
CONTRACT = ("eligibility_screenings_total", "eligibility_researchsubject_writes_total",
            "eligibility_fhir_request_seconds", "eligibility_queue_pending",
            "eligibility_signin_failures_total")


def _mounts(service: dict) -> dict[str, str]:
    """container path -> source of a service's volumes ("source:target[:mode]")."""
    return {m.split(":")[1]: m.split(":")[0] for m in service.get("volumes", [])}


def test_accounts_and_session_key_survive_a_recreated_container(compose):
    service, volumes = compose["services"]["service"], compose["volumes"]
    env = service["environment"]
    users_db = Path(env["USERS_DB"])
    mounts = _mounts(service)
    # The accounts database (and session.key beside it) is on a declared named volume...
    assert str(users_db.parent) in mounts and mounts[str(users_db.parent)] in volumes
    # ... not in the image's /app/var, which `up --build` throws away with the container.
    assert not str(users_db).startswith("/app/")
    assert _required(env["SESSION_SECRET"], "SESSION_SECRET")
    for name in ("worker", "subscribe"):
        assert compose["services"][name]["environment"]["SESSION_SECRET"] == env["SESSION_SECRET"]
    # The worker reads the same accounts (outreach email), never a copy of its own.
    worker = compose["services"]["worker"]
    assert _mounts(worker).get(str(users_db.parent)) == mounts[str(users_db.parent)]


def test_the_image_prepares_the_volume_folders_for_its_user():
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text(encoding="utf-8")
    for folder in ("/var/lib/eligibility", "/var/log/eligibility", "/var/lib/eligibility-metrics"):
        assert re.search(rf"mkdir -p [^\n]*{re.escape(folder)}\b", dockerfile), folder
        assert re.search(rf"chown eligibility [^&]*{re.escape(folder)}\b", dockerfile), folder


def test_audit_log_and_metric_files_are_on_named_volumes(compose):
    volumes = compose["volumes"]
    for name in ("service", "worker"):
        env = compose["services"][name]["environment"]
        mounts = _mounts(compose["services"][name])
        folder = env["PROMETHEUS_MULTIPROC_DIR"]
        assert folder in mounts and mounts[folder] in volumes  # one directory for every process
    service = compose["services"]["service"]
    audit = Path(service["environment"]["AUDIT_LOG"])
    assert str(audit.parent) in _mounts(service) and _mounts(service)[str(audit.parent)] in volumes
    assert _mounts(service)[str(audit.parent)] != _mounts(service)[
        service["environment"]["PROMETHEUS_MULTIPROC_DIR"]]


def test_prometheus_is_a_profile_scraping_the_service_with_the_token(compose):
    prometheus = compose["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert prometheus["image"].startswith("prom/prometheus:v")
    mounts = _mounts(prometheus)
    config_file = COMPOSE.parent / mounts["/etc/prometheus/prometheus.yml"]
    rules_file = COMPOSE.parent / mounts["/etc/prometheus/alerts.yml"]
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["service:8000"]
    secret = job["authorization"]["credentials_file"]
    assert secret == "/run/secrets/eligibility_api_token"
    assert "eligibility_api_token" in prometheus["secrets"]
    assert compose["secrets"]["eligibility_api_token"] == {"environment": "ELIGIBILITY_API_TOKEN"}
    assert rules_file.is_file()
    # The other services start without the profile: monitoring is opt-in.
    assert all("profiles" not in s for n, s in compose["services"].items() if n != "prometheus")


def _rules() -> list[dict]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_are_well_formed_and_use_the_contract_names():
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]")
        # Only names the service exports (or Prometheus's own `up`).
        used = set(re.findall(r"\b(eligibility_[a-z_]+)", expr))
        exported = {n.removesuffix("_total") for n in CONTRACT} | {
            "eligibility_fhir_request_errors", "eligibility_audit_fhir_undelivered"}
        assert {u.removesuffix("_total").removesuffix("_count") for u in used} <= exported, used
    exprs = " ".join(r["expr"] for r in rules)
    assert "eligibility_queue_pending" in exprs  # the backlog
    assert "eligibility_fhir_request_errors_total" in exprs  # the FHIR error rate


def test_every_alert_expression_parses_as_promql():
    # Prometheus's grammar (the promql-parser port); promtool, when installed, checks below too.
    import promql_parser

    for rule in _rules():
        promql_parser.parse(rule["expr"])  # raises ValueError on a syntax error
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(eligibility_queue_pending[5m])")


def test_promtool_accepts_the_rules_and_the_config():
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (the structural checks above still run)")
    rules = subprocess.run([promtool, "check", "rules", str(MONITORING / "alerts.yml")],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
