"""Exit codes of the `eligibility` command, and its one error: a message printed as one line."""

from __future__ import annotations

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A problem to report as one line on stderr, exiting with `code`."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code
