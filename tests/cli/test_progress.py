"""Long runs a person can follow: progress with rate, time left and failures; fitting tables."""

from __future__ import annotations

import io

from service.cli.progress import ScreeningProgress
from service.cli.tables import PatientRow, SummaryCounter, TableWriter, results_table

LONG_REASON = ("No SLEDAI-2K score within 90 days before the as-of date [2026-11-15]; "
               "record one with urn:trial-eligibility:score|sledai-2k")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _row(patient: str = "p-1", written: bool = True) -> PatientRow:
    study = {"study": "refractory-sle-cart", "status": "potential-candidate", "criteria": [
        {"id": "sledai-2k", "result": "unknown", "reason": LONG_REASON},
        {"id": "age", "result": "met", "reason": "12 years"}]}
    return PatientRow(patient, {"studies": [study]},
                      {"refractory-sle-cart": "ResearchSubject/1"} if written else {})


def test_plain_lines_give_rate_time_left_and_failures_as_they_happen():
    out, clock = io.StringIO(), Clock()
    progress = ScreeningProgress(40, out, clock=clock)
    for i in range(40):
        clock.now += 0.25
        progress.step(failed=i == 5, patient=f"p{i}", reason="FHIR server unavailable: 503")
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "screened 1/40 (2%), 4.0/s, 0:00:00 elapsed, 0:00:10 left, 0 failed"
    failure = lines.index("failed Patient/p5: FHIR server unavailable: 503")
    assert lines[failure - 1].startswith("screened 4/40")  # shown before the next tenth
    assert lines[-1] == "screened 40/40 (100%), 4.0/s, 0:00:10 elapsed, 0:00:00 left, 1 failed"
    assert len(lines) == 1 + 10 + 1  # first patient, every tenth, the failure


def test_a_slow_run_still_prints_every_thirty_seconds():
    out, clock = io.StringIO(), Clock()
    progress = ScreeningProgress(1000, out, clock=clock)
    progress.step()
    clock.now += 31
    progress.step()
    assert out.getvalue().splitlines()[-1].startswith("screened 2/1000 (0%), 0.1/s, 0:00:31")


def test_on_a_terminal_a_rich_bar_with_rate_time_left_and_failures(monkeypatch):
    out = io.StringIO()
    progress = ScreeningProgress(3, out, terminal=True)
    progress.step(failed=True, patient="gone", reason="not found on the FHIR server")
    progress.step()
    progress.step()
    progress.close()
    text = out.getvalue()
    assert "failed Patient/gone: not found on the FHIR server" in text
    assert "3/3" in text and "/s" in text and "left" in text and "1 failed" in text


def test_tables_fit_the_given_width_and_wrap_the_reasons():
    for width in (60, 100, 140):
        table = results_table([_row()], width=width)
        assert max(len(line) for line in table.splitlines()) <= width
        assert "NOT MET" in table.splitlines()[0]  # a narrow terminal wraps the header too
        # The whole reason is there, wrapped, none of it cut.
        assert "".join(table.split()).count("".join(LONG_REASON.split())) == 1
        assert "(* ResearchSubject written)" in table


def test_into_a_file_rows_are_plain_lines():
    out = io.StringIO()  # not a terminal
    writer = TableWriter(out, ["p-1"], ["refractory-sle-cart"])
    writer.write(_row())
    writer.finish()
    text = out.getvalue()
    assert "\x1b[" not in text and "─" not in text  # no colours, no box drawing
    assert text.splitlines()[1].startswith("-------")
    assert "sledai-2k (unknown): No SLEDAI-2K score" in text


def test_summary_counts_per_study_and_status():
    counter = SummaryCounter()
    counter.add(_row("a"))
    counter.add(PatientRow("b", error="not found on the FHIR server"))
    text = counter.render(width=80)
    lines = text.splitlines()
    assert lines[0].split() == ["STUDY", "ELIGIBLE", "POTENTIAL-CANDIDATE", "INELIGIBLE"]
    assert lines[2].split() == ["refractory-sle-cart", "0", "1", "0"]
    assert lines[-1] == "2 patient(s) screened, 1 error(s)"
