"""`screen --every-patient` takes its Patient ids from the server (issue 13, finding 8): an id
that is not a FHIR id is a failed row, shown escaped, and the run goes on; a rerun with
--checkpoint does not crash on it either, and it never enters the checkpoint file. `--as-of` is
YYYY-MM-DD only, like the API's `asOf`."""

from __future__ import annotations

import json

import pytest

from service.cli import main as cli
from service.core.settings import Settings
from tests.support.fakes import FakeClient, FakeScreener, real_mappings

pytestmark = pytest.mark.reliability

SLE, LN = list(real_mappings().studies)
BAD = ["..", ".", "a b", "x" * 65, "evil\n2026-11-30 INFO forged", "p\x1b[2J"]


@pytest.fixture
def screener(monkeypatch, tmp_path):
    for name in ("FHIR_BASE_URL", "ELIGIBILITY_API_TOKEN", "FHIR_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path / 'q.sqlite'}")
    fake = FakeScreener(Settings(), statuses={SLE: "eligible", LN: "ineligible"})

    def screen_like_the_real_one(pid, **kwargs):
        # The real Screener refuses a malformed id with ValueError (what crashed the run).
        from service.fhir.queries import normalize_patient_id

        normalize_patient_id(pid)
        return real_screen(pid, **kwargs)

    real_screen = fake.screen
    fake.screen = screen_like_the_real_one
    patients = [{"resourceType": "Patient", "id": pid} for pid in ["a0", *BAD, "a1"]]
    fake_client = FakeClient(Settings(), resources={"Patient": patients})
    fake.client = lambda: fake_client
    monkeypatch.setattr("service.usecases.screener.Screener", lambda settings, **kw: fake)
    return fake


def test_a_bad_id_from_the_server_is_a_failed_row_and_the_run_goes_on(screener, capsys,
                                                                       tmp_path):
    checkpoint = tmp_path / "done.txt"
    code = cli.main(["screen", "--every-patient", "--json", "--checkpoint", str(checkpoint)])
    out = capsys.readouterr().out
    rows = json.loads(out)
    assert code == 1  # some rows failed
    assert [c[1] for c in screener.calls] == ["a0", "a1"]  # both good ids screened
    failed = [r for r in rows if "error" in r]
    assert len(failed) == len(BAD)
    assert all("not a valid FHIR Patient id" in r["error"] for r in failed)
    assert "\x1b" not in out and "forged" not in out.replace("\\n2026-11-30 INFO forged", "")
    assert checkpoint.read_text().split() == ["a0", "a1"]

    # The rerun skips what is done and reports the bad ids again; it does not crash.
    screener.calls.clear()
    code = cli.main(["screen", "--every-patient", "--json", "--checkpoint", str(checkpoint)])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert screener.calls == []
    assert len(rows) == len(BAD)
    assert checkpoint.read_text().split() == ["a0", "a1"]


@pytest.mark.parametrize("value", ["2026-W46-7", "20261115", "2026-320", "２０２６-11-15"])
def test_as_of_on_the_command_line_is_yyyy_mm_dd_only(screener, capsys, value):
    assert cli.main(["screen", "p1", "--as-of", value]) == 2
    assert "is not a date YYYY-MM-DD" in capsys.readouterr().err
    assert screener.calls == []
