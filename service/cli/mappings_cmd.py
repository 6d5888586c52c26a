"""`eligibility mappings check`: validate the mapping folders, no FHIR server needed."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.cli.exits import EXIT_OK
from service.core.settings import Settings
from service.usecases.mappings_check import StudySummary, check_mappings


def add_parser(sub: Any) -> None:
    """Register the `mappings` subcommand on the main parser's subparsers."""
    mappings = sub.add_parser("mappings", help="check the mapping folders (no FHIR server)")
    action = mappings.add_subparsers(dest="mappings_command", required=True, metavar="ACTION")
    check = action.add_parser(
        "check", help="load every mapping folder and list each study's criteria with their kind")
    check.add_argument("folders", nargs="*", metavar="FOLDER",
                       help="folders loaded together (default: MAPPINGS_DIR)")
    check.add_argument("--json", action="store_true", help="JSON on stdout")
    check.set_defaults(func=cmd_mappings_check)


def _text(studies: list[StudySummary]) -> str:
    lines = []
    for study in studies:
        registry = f" ({study.registry_id})" if study.registry_id else ""
        lines.append(f"{study.key}{registry}: {study.title} [{study.source}]")
        for c in study.criteria:
            parts = f"  manual parts: {', '.join(c.parts)}" if c.parts else ""
            lines.append(f"  {c.id:<28} {c.type:<9} {c.kind:<9} {c.rule}{parts}")
    automatic = sum(c.kind == "automatic" for s in studies for c in s.criteria)
    total = sum(len(s.criteria) for s in studies)
    lines.append(f"ok: {len(studies)} studies, {total} criteria ({automatic} automatic, "
                 f"{total - automatic} manual)")
    return "\n".join(lines)


def cmd_mappings_check(settings: Settings, args: argparse.Namespace) -> int:
    """Load the folders (a MappingError becomes one line naming file and key, exit 2)."""
    folders = [Path(f) for f in args.folders] or [
        Path(p) for p in str(settings.mappings_dir).split(":") if p]
    studies = check_mappings(folders)
    if args.json:
        json.dump([asdict(s) for s in studies], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_text(studies))
    return EXIT_OK
