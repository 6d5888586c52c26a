"""`eligibility` with proposed changes applied in memory, to measure them before they land.

    python -m tests.benchmarks.whatif_cli --what-if CHANGE[,CHANGE] screen --all ...

Changes (each names the function a real fix would edit):
  no-rs-model-validation  service.fhir.research_subject.validate_research_subject keeps its R4
                          status check but skips the fhir.resources (pydantic) model validation of
                          every ResearchSubject written; the test suite checks the builder instead.
  switch-interval-1ms     sys.setswitchinterval(0.001) in the CLI, so a worker thread whose FHIR
                          answer arrived waits less for the GIL held by an evaluating thread.
The benchmark reports the population run with and without them, side by side.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from service.cli.main import main as cli
from service.fhir import research_subject as rs

CHANGES = ("no-rs-model-validation", "switch-interval-1ms")


def _status_only(resource: Mapping[str, Any]) -> None:
    status = resource.get("status")
    if status not in rs.R4_RESEARCH_SUBJECT_STATUSES:
        raise rs.WriteBackError(f"ResearchSubject.status {status!r} is not an R4 status")


def apply(change: str) -> None:
    """Apply one change to the imported modules."""
    if change == "no-rs-model-validation":
        rs.validate_research_subject = _status_only  # screening.py looks it up at call time
    elif change == "switch-interval-1ms":
        sys.setswitchinterval(0.001)
    else:
        raise ValueError(change)


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the --what-if changes, then run the real CLI with the remaining arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    changes = args[1].split(",") if len(args) >= 2 and args[0] == "--what-if" else []
    if not changes or any(c not in CHANGES for c in changes):
        print(f"usage: --what-if {{{','.join(CHANGES)}}}[,...] <eligibility arguments>",
              file=sys.stderr)
        return 2
    for change in changes:
        apply(change)
    return cli.main(args[2:])


if __name__ == "__main__":
    sys.exit(main())
