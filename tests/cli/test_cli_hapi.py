"""`eligibility screen --all` against real HAPI (hapi/): it pages through HAPI's listing with
`_getpages`, and every seed patient it screens gets the result seeds/expected.json gives."""

from __future__ import annotations

import json

import pytest

from service.cli import main as cli
from service.settings import REPO_ROOT

pytestmark = pytest.mark.hapi

EXPECTED = json.loads((REPO_ROOT / "seeds" / "expected.json").read_text(encoding="utf-8"))
AS_OF = EXPECTED["asOf"]


def test_population_screen_on_hapi_gives_every_seed_its_expected_result(
        hapi_seeded, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FHIR_BASE_URL", hapi_seeded["base_url"])
    monkeypatch.setenv("QUEUE_URL", f"sqlite:///{tmp_path / 'q.sqlite'}")
    checkpoint = tmp_path / "done.txt"
    code = cli.main(["screen", "--all", "--no-write", "--json", "--as-of", AS_OF,
                     "--workers", "4", "--checkpoint", str(checkpoint)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    rows = json.loads(captured.out)
    by_patient = {row["patient"].split("/", 1)[1]: row for row in rows}
    screened_seeds = set(by_patient) & set(EXPECTED["patients"])
    # Whoever is screened, the seed patients that may join a study are among them (they have
    # the diagnosis a candidate search looks for), each with its expected result.
    hopeful = {pid for pid, p in EXPECTED["patients"].items()
               if any(s["status"] != "ineligible" for s in p["studies"].values())}
    assert hopeful <= screened_seeds
    for pid in screened_seeds:
        assert "error" not in by_patient[pid], by_patient[pid]
        got = {s["study"]: s["status"] for s in by_patient[pid]["result"]["studies"]}
        want = {k: s["status"] for k, s in EXPECTED["patients"][pid]["studies"].items()}
        assert got == want, pid
    assert set(checkpoint.read_text().split()) == set(by_patient)
