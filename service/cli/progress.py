"""Progress of a long `screen --all` on stderr: a rich bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# Plain mode (not a terminal: a log file, CI, a pipe): a line after the first patient and at
# every tenth of the run, and at least every PLAIN_EVERY_SECONDS so a slow run shows it moves.
PLAIN_EVERY_SECONDS = 30.0


class RateColumn(ProgressColumn):
    """Patients a second, over rich's recent-speed window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


class FailureColumn(ProgressColumn):
    """How many screenings failed so far (red when any did)."""

    def render(self, task: Task) -> Text:
        failed = int(task.fields.get("failed", 0))
        return Text(f"{failed} failed", style="red" if failed else "dim")


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    return str(timedelta(seconds=round(seconds)))


class ScreeningProgress:
    """Counts finished screenings and shows rate, time left and failures as they happen."""

    def __init__(self, total: int, stream: TextIO | None = None, *,
                 what: str = "screened", clock: Callable[[], float] = time.monotonic,
                 terminal: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.what, self.clock = total, what, clock
        self.done = self.failed = 0
        self.started = clock()
        self._lock = threading.Lock()
        self.terminal = _is_terminal(self.stream) if terminal is None else terminal
        self._next_tenth = 1
        self._last_line = self.started
        self._bar: Progress | None = None
        if self.terminal:
            self._bar = Progress(
                TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(),
                TextColumn("left,"),
                FailureColumn(),
                console=Console(file=self.stream), get_time=clock, transient=False,
                speed_estimate_period=60.0,
                # Table rows on the same terminal print above the bar; stdout sent to a file
                # (`> results.csv`) must stay in that file, untouched.
                redirect_stdout=_is_terminal(sys.stdout),
            )
            self._task = self._bar.add_task(what, total=total, failed=0)
            self._bar.start()

    def __enter__(self) -> ScreeningProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step(self, *, failed: bool = False, patient: str | None = None,
             reason: str | None = None) -> None:
        """One screening finished; a failure is shown at once with its patient and reason."""
        with self._lock:
            self.done += 1
            self.failed += bool(failed)
            if failed:
                self._say(f"failed Patient/{patient or '?'}: {reason or 'error'}", style="red")
            if self._bar is not None:
                self._bar.update(self._task, completed=self.done, failed=self.failed)
                return
            now = self.clock()
            tenth = self.done * 10 // self.total if self.total else 10
            if (tenth >= self._next_tenth or self.done in (1, self.total)
                    or now - self._last_line >= PLAIN_EVERY_SECONDS):
                self._next_tenth = tenth + 1
                self._last_line = now
                self.stream.write(self.line(now) + "\n")
                self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """`screened 500/2000 (25%), 83.1/s, 0:00:06 elapsed, 0:00:18 left, 0 failed`."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else None
        share = 100 * self.done // self.total if self.total else 100
        return (f"{self.what} {self.done}/{self.total} ({share}%), {rate:.1f}/s, "
                f"{_clock_text(elapsed)} elapsed, {_clock_text(left)} left, "
                f"{self.failed} failed")

    def _say(self, text: str, style: str = "") -> None:
        if self._bar is not None:
            self._bar.console.print(Text(text, style=style))  # above the bar
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Stop the bar (it stays on screen with the final figures)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
