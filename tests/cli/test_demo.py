"""`eligibility demo` (what `./dev start` runs) prints a short summary: each seed patient's
status in each study and the counts, not every reason; the reasons are one printed command
away. Against a local FHIR server of the test's own; serving is left out."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Iterator

import pytest

from localfhir import LocalFhirError, NodeNotFoundError, start_local_server
from service.cli import main as cli
from service.core.settings import REPO_ROOT
from tests.support.ci import unavailable

pytestmark = pytest.mark.integration

SEEDS = REPO_ROOT / "seeds"
EXPECTED = json.loads((SEEDS / "expected.json").read_text(encoding="utf-8"))["patients"]
STUDIES = ("refractory-sle-cart", "pediatric-ln-cart")


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """stdout and stderr of one `eligibility demo` against an empty local FHIR server."""
    try:
        server = start_local_server()
    except (NodeNotFoundError, LocalFhirError) as exc:
        unavailable(f"local FHIR server unavailable: {exc}")
    tmp = tmp_path_factory.mktemp("demo")
    served: list[object] = []
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FHIR_BASE_URL", server.base_url)
        env.setenv("QUEUE_URL", f"sqlite:///{tmp / 'q.sqlite'}")
        env.setenv("USERS_DB", str(tmp / "users.sqlite"))
        for name in ("ELIGIBILITY_API_TOKEN", "SCREEN_AS_OF", "MAPPINGS_DIR", "SEEDS_DIR",
                     "FHIR_WAIT_SECONDS"):
            env.delenv(name, raising=False)
        env.setattr(cli, "_serve_app", lambda *args, **kwargs: served.append(args) or 0)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                assert cli.main(["demo", "--port", "8765"]) == 0
            assert served  # it goes on to serve once the summary is printed
            yield out.getvalue(), err.getvalue()
        finally:
            server.stop()


def test_the_summary_gives_each_seed_patients_status_per_study(demo_output):
    out, _ = demo_output
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.startswith("seed-")}
    assert set(rows) == set(EXPECTED)
    for patient, statuses in rows.items():
        expected = EXPECTED[patient]["studies"]
        assert statuses == [expected[study]["status"] for study in STUDIES], patient


def test_the_counts_add_up_per_study(demo_output):
    out, _ = demo_output
    for study in STUDIES:
        line = next(line for line in out.splitlines() if line.startswith(f"{study} "))
        counts = [int(n) for n in line.split()[1:]]
        statuses = [p["studies"][study]["status"] for p in EXPECTED.values()]
        assert counts == [statuses.count(s)
                          for s in ("eligible", "potential-candidate", "ineligible")]
    assert f"{len(EXPECTED)} patient(s) screened, 0 error(s)" in out


def test_it_is_short_and_holds_no_reasons(demo_output):
    out, _ = demo_output
    assert len(out.splitlines()) < 40  # the full table of reasons was about 480 lines
    assert "(not-met):" not in out and "(unknown):" not in out


def test_no_terminal_escapes_in_what_it_prints(demo_output):
    out, err = demo_output
    assert "\x1b" not in out and "\x1b" not in err
    assert "\\x1b" not in err  # nor colours escaped into log lines


def test_the_reasons_are_one_printed_command_away(demo_output, monkeypatch, capsys):
    out, _ = demo_output
    command = re.search(r"^  (FHIR_BASE_URL=\S+ )?(\S*eligibility) (screen .*)$", out, re.M)
    assert command, out
    args = shlex.split(command.group(3))
    assert "--no-write" in args and "--as-of" in args
    assert command.group(1), "the demo's FHIR server is not the default one: say which"
    monkeypatch.setenv(*command.group(1).strip().split("=", 1))
    assert cli.main(args) == 0
    reasons = capsys.readouterr().out
    patient = args[1]
    assert patient in EXPECTED
    assert "(unknown):" in reasons  # the potential candidate's open criteria, with reasons
