"""The `eligibility` command: settings errors, screen (table/JSON/CSV, --all, checkpoint),
serve refusal, subscribe, FHIR wait, seed manifest, gunicorn bind check."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from types import SimpleNamespace

import pytest

from service.cli import main as cli
from service.cli import screen as screen_cmd
from service.core.settings import REPO_ROOT, Settings, is_loopback
from service.fhir.errors import FhirTemporaryError
from service.fhir.subscriptions import SUBSCRIBED_TYPES, subscriptions_transaction
from service.mappings import load_mappings
from service.web import gunicorn_conf
from tests.support.fakes import FakeClient, FakeScreener, real_mappings

SLE, LN = "refractory-sle-cart", "pediatric-ln-cart"  # the seed studies (any others may be loaded)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("FHIR_BASE_URL", "ELIGIBILITY_API_TOKEN", "FHIR_NOTIFY_SECRET", "QUEUE_URL",
                 "FHIR_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path / 'q.sqlite'}")
    return monkeypatch


@pytest.fixture
def screener(env, monkeypatch):
    """The FakeScreener every CLI command gets instead of a real one."""
    fake = FakeScreener(Settings(), statuses={SLE: "potential-candidate", LN: "ineligible"})
    monkeypatch.setattr("service.usecases.screener.Screener", lambda settings, **kw: fake)
    return fake


def test_bad_settings_are_one_line_and_exit_2(env, capsys):
    env.setenv("FHIR_BASE_URL", "ftp://nope")
    assert cli.main(["screen", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("eligibility: bad settings: FHIR_BASE_URL")


def test_malformed_patient_id_exits_2(screener, capsys):
    assert cli.main(["screen", "bad id"]) == 2
    assert "FHIR logical id" in capsys.readouterr().err
    assert screener.calls == []


def test_screen_prints_a_readable_table(screener, capsys):
    assert cli.main(["screen", "p1", "Patient/p2", "--as-of", "2026-11-15"]) == 0
    out = capsys.readouterr().out
    assert [c[:3] for c in screener.calls] == [
        ("screen", "p1", date(2026, 11, 15)), ("screen", "p2", date(2026, 11, 15))]
    first_line = out.splitlines()[0]
    for header in ("PATIENT", "STUDY", "STATUS", "NOT MET OR UNKNOWN"):
        assert header in first_line
    unknown = real_mappings().studies[SLE].criteria[1].id
    failing = real_mappings().studies[LN].criteria[0].id
    assert f"{unknown} (unknown): no {unknown} on record" in out
    assert f"{failing} (not-met): {failing} fails for p1" in out
    assert "potential-candidate" in out and "ineligible" in out
    assert "ResearchSubject written" in out


def test_no_write_evaluates_only(screener, capsys):
    assert cli.main(["screen", "p1", "--no-write", "--study", LN]) == 0
    assert screener.calls[0][0] == "evaluate"
    assert screener.calls[0][3] == (LN,)
    assert SLE not in capsys.readouterr().out


def test_json_and_csv_outputs(screener, capsys):
    assert cli.main(["screen", "p1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["patient"] == "Patient/p1"
    # The seed studies first, in seed order; any other study loaded follows them.
    assert [s["study"] for s in rows[0]["result"]["studies"]][:2] == [SLE, LN]
    assert rows[0]["researchSubjects"][SLE] == f"ResearchSubject/{SLE}-p1"
    assert cli.main(["screen", "p1", "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["patient"], r["study"], r["status"]) for r in table] == [
        ("p1", SLE, "potential-candidate"), ("p1", LN, "ineligible")]
    assert table[1]["not_met"] == real_mappings().studies[LN].criteria[0].id


@pytest.mark.parametrize("args", [["p1", "--study", "nope"], ["p1", "--as-of", "tomorrow"],
                                  [], ["p1", "--all"]])
def test_usage_errors_exit_2(screener, args):
    assert cli.main(["screen", *args]) == 2
    assert screener.calls == []


def test_errors_are_rows_and_exit_1(screener, capsys):
    from service.fhir.errors import FhirNotFound

    screener.errors["gone"] = FhirNotFound("no", status=404)
    assert cli.main(["screen", "p1", "gone"]) == 1
    assert "not found on the FHIR server" in capsys.readouterr().out


def test_all_pages_through_patients_with_progress_summary_and_checkpoint(
        screener, capsys, tmp_path):
    patients = [{"resourceType": "Patient", "id": f"a{i}"} for i in range(5)]
    fake_client = FakeClient(Settings(), resources={"Patient": patients})
    screener.client = lambda: fake_client
    screener.errors["a3"] = FhirTemporaryError("server busy")
    checkpoint = tmp_path / "done.txt"
    code = cli.main(["screen", "--all", "--every-patient", "--workers", "3",
                     "--checkpoint", str(checkpoint)])
    assert code == 1
    captured = capsys.readouterr()
    (kind, (rtype, params)), = fake_client.requests
    assert rtype == "Patient" and params["_elements"] == "id" and int(params["_count"]) > 0
    assert "screened 5/5" in captured.err
    assert "failed Patient/a3: " in captured.err  # as it happens, with its reason
    assert "5 patient(s) screened, 1 error(s)" in captured.out
    assert SLE in captured.out.split("STUDY", 2)[-1]  # the summary table lists the studies
    assert sorted(checkpoint.read_text().split()) == ["a0", "a1", "a2", "a4"]
    # The rerun after the interruption screens only what is not done yet.
    del screener.errors["a3"]
    screener.calls.clear()
    assert cli.main(["screen", "--every-patient", "--checkpoint", str(checkpoint)]) == 0
    assert [c[1] for c in screener.calls] == ["a3"]
    assert "skipping 4 patient(s)" in capsys.readouterr().err
    assert sorted(checkpoint.read_text().split()) == ["a0", "a1", "a2", "a3", "a4"]


def test_serve_refuses_a_public_address_without_token(env, capsys):
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True),
                                                ("::1", True), ("0.0.0.0", False),
                                                ("10.1.2.3", False), ("example.org", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_subscribe_needs_the_notify_secret(env, capsys):
    assert cli.main(["subscribe"]) == 2
    assert "FHIR_NOTIFY_SECRET" in capsys.readouterr().err


def test_subscription_transaction_is_idempotent_by_tag_and_names_the_codes():
    mappings = load_mappings(REPO_ROOT / "mappings")
    bundle = subscriptions_transaction("https://elig.example.org/", "sekrit", mappings)
    assert bundle["type"] == "transaction"
    criteria: dict[str, str] = {}
    for entry in bundle["entry"]:  # the split parts (Observation-2 ...) joined again
        tag = entry["resource"]["meta"]["tag"][0]["code"]
        criteria.setdefault(tag.split("-")[0], "")
        criteria[tag.split("-")[0]] += entry["resource"]["criteria"] + ","
    criteria = {k: v.rstrip(",") for k, v in criteria.items()}
    assert set(criteria) == set(SUBSCRIBED_TYPES)
    # The clinical types name the codes the mappings read; a heart rate (8867-4) is not one.
    assert criteria["Observation"].startswith("Observation?code=")
    assert "http://loinc.org|718-7" in criteria["Observation"].split(",")
    assert "8867-4" not in criteria["Observation"]
    assert "urn:trial-eligibility:criterion|" in criteria["Observation"]
    assert "http://snomed.info/sct|55464009" in criteria["Condition"]
    assert "http://hl7.org/fhir/sid/icd-10-cm|M32.14" in criteria["Condition"]
    assert criteria["Procedure"].startswith("Procedure?code=")
    # A Patient change is notified whole; so are medication uses (named, or by reference).
    assert criteria["Patient"] == "Patient?"
    assert criteria["MedicationRequest"] == "MedicationRequest?"
    for entry in bundle["entry"]:
        tag = entry["resource"]["meta"]["tag"][0]
        assert tag["system"] == "urn:trial-eligibility:subscription"
        assert entry["request"] == {
            "method": "PUT",
            "url": f"Subscription?_tag=urn:trial-eligibility:subscription|{tag['code']}"}
        channel = entry["resource"]["channel"]
        assert channel == {"type": "rest-hook",
                           "endpoint": "https://elig.example.org/fhir-notify",
                           "payload": "application/fhir+json",
                           "header": ["Authorization: Bearer sekrit"]}


def test_long_code_lists_are_split_and_stale_subscriptions_deleted():
    from service.fhir.subscriptions import code_tokens, subscription_criteria

    mappings = load_mappings(REPO_ROOT / "mappings")
    split = subscription_criteria(mappings, max_chars=300)
    observation = [(tag, c) for rtype, tag, c in split if rtype == "Observation"]
    assert len(observation) > 3 and all(len(c) <= 300 for _, c in observation)
    assert [t for t, _ in observation][:2] == ["Observation", "Observation-2"]
    assert ",".join(c.split("=", 1)[1] for _, c in observation) == ",".join(
        code_tokens(mappings, "observation"))
    bundle = subscriptions_transaction("https://e.example", "s", mappings, ["Observation-7"])
    assert bundle["entry"][-1] == {"request": {
        "method": "DELETE",
        "url": "Subscription?_tag=urn:trial-eligibility:subscription|Observation-7"}}


def test_subscriptions_are_valid_r4():
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(subscriptions_transaction(
        "https://e.example", "s", load_mappings(REPO_ROOT / "mappings")))


def test_wait_for_fhir_is_bounded(env):
    settings = Settings().with_overrides(fhir_wait_seconds=0.2)
    with pytest.raises(cli.CliError) as info:
        cli.wait_for_fhir(settings, lambda s: FakeClient(s, up=False), out=io.StringIO())
    assert "FHIR_WAIT_SECONDS" in str(info.value)
    up = FakeClient(settings)
    cli.wait_for_fhir(settings, lambda s: up, out=io.StringIO())
    assert up.requests == [("metadata", None)]
    never = FakeClient(settings)
    cli.wait_for_fhir(Settings(), lambda s: never)  # 0 = do not wait
    assert never.requests == []


def test_seed_manifest_gives_patient_ids_and_as_of():
    ids, as_of = cli._manifest(Settings())
    manifest = json.loads((REPO_ROOT / "seeds" / "manifest.json").read_text())
    assert as_of.isoformat() == manifest["asOf"]
    assert len(ids) == len(manifest["patients"]) == len(set(ids))
    for entry, pid in zip(manifest["patients"], ids, strict=True):
        bundle = json.loads((REPO_ROOT / "seeds" / entry).read_text())
        assert {"resourceType": "Patient", "id": pid}.items() <= next(
            e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Patient").items()


@pytest.mark.parametrize(("bind", "host"), [("127.0.0.1:8000", "127.0.0.1"),
                                            ("[::1]:8000", "::1"), ("0.0.0.0:80", "0.0.0.0"),
                                            ("localhost", "localhost")])
def test_gunicorn_bind_host(bind, host):
    assert gunicorn_conf.bind_host(bind) == host


def test_gunicorn_refuses_public_bind_without_token(env, capsys):
    server = SimpleNamespace(cfg=SimpleNamespace(bind=["0.0.0.0:8000"]))
    with pytest.raises(SystemExit) as info:
        gunicorn_conf.on_starting(server)
    assert info.value.code == 2
    assert "refusing" in capsys.readouterr().err
    env.setenv("ELIGIBILITY_API_TOKEN", "api-token-0123456789abcdef0123")
    gunicorn_conf.on_starting(server)  # with a token: allowed
    gunicorn_conf.on_starting(SimpleNamespace(cfg=SimpleNamespace(bind=["127.0.0.1:1"])))


def test_all_keeps_a_bounded_window_in_flight_and_writes_in_order(screener, capsys, monkeypatch):
    """A population run never queues every patient at once, and streams results in id order."""
    patients = [{"resourceType": "Patient", "id": f"p{i:03d}"} for i in range(60)]
    fake_client = FakeClient(Settings(), resources={"Patient": patients})
    screener.client = lambda: fake_client
    started, written, most = [], [], [0]
    real_screen_one = screen_cmd.screen_one

    def counting(screener_, pid, *rest):
        started.append(pid)
        most[0] = max(most[0], len(started) - len(written))
        return real_screen_one(screener_, pid, *rest)

    real_write = screen_cmd.ResultSink.write

    def recording(self, row):
        written.append(row.patient)
        return real_write(self, row)

    monkeypatch.setattr(screen_cmd, "screen_one", counting)
    monkeypatch.setattr(screen_cmd.ResultSink, "write", recording)
    assert cli.main(["screen", "--all", "--every-patient", "--workers", "2", "--csv"]) == 0
    assert written == [p["id"] for p in patients]
    assert most[0] <= 4 * 2 + 1  # the window, plus the one submitted as a result is taken
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("patient,study,status")
    per_patient = len(real_mappings().studies)  # one CSV row per patient and study
    assert [line.split(",")[0] for line in lines[1::per_patient]] == written
