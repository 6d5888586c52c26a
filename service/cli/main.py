"""The `eligibility` command: serve, worker, screen, load-seeds, subscribe, demo, mappings."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from service.cli.exits import EXIT_FAILURES, EXIT_OK, EXIT_USAGE, CliError
from service.cli.screen import cmd_screen, patient_ids, screen_one
from service.core.settings import Settings, SettingsError, is_loopback

log = logging.getLogger("service.cli.main")

# ------------------------------------------------------------------------------ helpers


def wait_for_fhir(
    settings: Settings, client_factory: Any = None, out: TextIO | None = None
) -> None:
    """Wait up to FHIR_WAIT_SECONDS for the FHIR server; a CliError when it never answers."""
    from service.usecases.fhir_readiness import FhirNotReady, wait_for_fhir_server

    try:
        wait_for_fhir_server(settings, client_factory, out=out)
    except FhirNotReady as exc:
        raise CliError(str(exc), EXIT_FAILURES) from None


# ------------------------------------------------------------------------------ commands


def _refuse_open_listen(settings: Settings, host: str) -> None:
    if not settings.api_tokens and not is_loopback(host):
        raise CliError(
            f"refusing to listen on {host} without ELIGIBILITY_API_TOKEN; set a token or "
            "serve on 127.0.0.1"
        )


def _serve_app(settings: Settings, host: str, port: int, app: Any = None) -> int:
    from service.web.app import create_app

    _refuse_open_listen(settings, host)
    app = app or create_app(settings)
    queue = app.extensions["eligibility"].queue
    if settings.embedded_workers:
        queue.start_embedded(settings.embedded_workers)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{port}  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False, debug=False)
    finally:
        queue.stop()
    return EXIT_OK


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the HTTP service (Flask's server; use gunicorn in production, see docs/deployment.md)."""
    _refuse_open_listen(settings, args.host)
    wait_for_fhir(settings)
    return _serve_app(settings, args.host, args.port)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run queue workers in the foreground until Ctrl-C / SIGTERM."""
    from service.queue.jobs import JobQueue
    from service.usecases.screener import Screener

    wait_for_fhir(settings)
    import os

    from service.core.clock import Clock
    from service.core.metrics_files import MULTIPROC_ENV, prepare_directory
    from service.usecases.outreach import outreach_for

    if os.environ.get(MULTIPROC_ENV):
        prepare_directory(os.environ[MULTIPROC_ENV])  # files of this host's dead processes

    screener = Screener(settings)
    queue = JobQueue(settings, screener)
    queue.outreach = outreach_for(settings, screener, None, Clock.from_settings(settings))
    print(f"worker: {args.workers} thread(s) on {_queue_label(settings)}", file=sys.stderr,
          flush=True)
    queue.run_worker(args.workers)
    return EXIT_OK


def _queue_label(settings: Settings) -> str:
    url = settings.queue_url
    # A Redis URL may carry a password: show the scheme and host only.
    if "@" in url:
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://{rest.rpartition('@')[2]}"
    return url


def cmd_load_seeds(settings: Settings, args: argparse.Namespace) -> int:
    """Load the seed studies and patients into the FHIR server (idempotent)."""
    from service.usecases.screener import Screener
    from service.usecases.seeding import load_seeds_into

    wait_for_fhir(settings)
    screener = Screener(settings)
    # With the mappings, studies are found or created the same way screenings do it.
    report = load_seeds_into(screener, settings.seeds_dir)
    print(report)
    return EXIT_OK


def cmd_subscribe(settings: Settings, args: argparse.Namespace) -> int:
    """Create or update the rest-hook Subscriptions (criteria naming the codes the loaded
    mappings read), delete ours no longer wanted, then wait until each is `active`."""
    from service.mappings import load_mappings
    from service.usecases.screener import default_client_factory
    from service.usecases.subscribe import SubscriptionNotActive, await_subscriptions, register

    if not settings.notify_secret:
        raise CliError("subscribe needs FHIR_NOTIFY_SECRET (sent back in the channel header)")
    endpoint = settings.notify_endpoint_base
    if is_loopback(endpoint.split("://", 1)[1].split("/")[0].rsplit(":", 1)[0]):
        print(f"note: the Subscription endpoint {endpoint} is a loopback address; the FHIR "
              "server must run on this host to reach it (set NOTIFY_BASE_URL)", file=sys.stderr)
    mappings = load_mappings(settings.mappings_dir)
    wait_for_fhir(settings)
    client = default_client_factory(settings)
    registered, stale = register(client, mappings, endpoint, settings.notify_secret)
    refs = []
    for item in registered:
        shown = item.criteria if len(item.criteria) <= 60 else item.criteria[:57] + "..."
        print(f"{item.tag:22} {item.status:12} {item.location}  {shown}")
        try:
            refs.append(item.reference)
        except SubscriptionNotActive as exc:
            raise CliError(f"{item.tag}: {exc}", EXIT_FAILURES) from None
    for tag in stale:
        print(f"{tag:22} deleted (no longer needed)")
    if args.no_wait:
        return EXIT_OK
    try:
        await_subscriptions(client, refs, timeout=args.timeout)
    except SubscriptionNotActive as exc:
        raise CliError(str(exc), EXIT_FAILURES) from None
    print(f"{len(refs)} Subscriptions active, delivering to {endpoint}/fhir-notify")
    return EXIT_OK


def cmd_codes_report(settings: Settings, args: argparse.Namespace) -> int:
    """List the FHIR server's codes and units the mappings do not understand (counts only)."""
    from service.mappings import load_mappings
    from service.usecases.codes_report import format_report, run
    from service.usecases.screener import default_client_factory

    if args.max_per_type < 1 or args.page_size < 1:
        raise CliError("--max-per-type and --page-size must be at least 1")
    wait_for_fhir(settings)
    mappings = load_mappings(settings.mappings_dir)
    # The report's own bound ends each read; the client's caps sit just above it.
    bounded = settings.with_overrides(
        fhir_page_size=args.page_size,
        fhir_max_resources=args.max_per_type + args.page_size,
        fhir_max_pages=args.max_per_type // args.page_size + 2,
    )
    report = run(default_client_factory(bounded), mappings, page_size=args.page_size,
                 max_per_type=args.max_per_type)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report))
    return EXIT_OK


def _seed_patient_id(seeds_dir: Path, entry: Any) -> str | None:
    """A manifest entry is a patient id, {"id": ...}, or a seed Bundle file holding one Patient."""
    if isinstance(entry, dict):
        entry = entry.get("id")
    if not isinstance(entry, str) or not entry.endswith(".json"):
        return entry if isinstance(entry, str) else None
    try:
        bundle = json.loads((seeds_dir / entry).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read seed {entry}: {exc}") from None
    for item in bundle.get("entry") or []:
        resource = item.get("resource") or {}
        if resource.get("resourceType") == "Patient":
            return resource.get("id")
    return None


def _manifest(settings: Settings) -> tuple[list[str], date]:
    from service.core.dates import calendar_date

    path = settings.seeds_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    ids = [_seed_patient_id(settings.seeds_dir, entry) for entry in manifest.get("patients") or []]
    if not ids or not all(isinstance(i, str) for i in ids):
        raise CliError(f"{path}: 'patients' must list the seed patients")
    try:
        as_of = calendar_date(manifest["asOf"])
    except (KeyError, TypeError, ValueError):
        raise CliError(f"{path}: 'asOf' must be a date YYYY-MM-DD") from None
    return patient_ids([str(i) for i in ids]), as_of


def _program() -> str:
    """How the operator ran this command, to print commands they can paste (.venv/bin/...)."""
    path = Path(sys.argv[0])
    if path.name != "eligibility":
        return "eligibility"
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return "eligibility"


def _detail_command(settings: Settings, rows: Sequence[Any], as_of: date) -> str:
    """The command that prints the reasons behind one patient's statuses (read-only)."""
    # A potential candidate shows what is missing, the most useful first look.
    shown = next((r.patient for r in rows if r.result and "potential-candidate" in
                  [s["status"] for s in r.result.get("studies", [])]), rows[0].patient)
    env = "" if settings.fhir_base_url == Settings.fhir_base_url else (
        f"FHIR_BASE_URL={settings.fhir_base_url} ")
    return f"{env}{_program()} screen {shown} --as-of {as_of.isoformat()} --no-write"


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Load the seeds, screen every seed patient (write-back), print a summary, then serve."""
    from service.cli.tables import status_grid
    from service.usecases.seeding import load_seeds_into
    from service.web.app import create_app

    _refuse_open_listen(settings, args.host)
    wait_for_fhir(settings)
    ids, as_of = _manifest(settings)
    if settings.screen_as_of is None:
        # The pages screen as of the seeds' date too, so the demo stays consistent.
        settings = settings.with_overrides(screen_as_of=as_of)
    app = create_app(settings)
    screener = app.extensions["eligibility"].screener
    print(load_seeds_into(screener, settings.seeds_dir),
          file=sys.stderr)
    rows = [screen_one(screener, pid, as_of, None, True)[0] for pid in ids]
    # A summary, not every reason of 36 screenings: those are one command away.
    # Only a candidate gets a ResearchSubject (docs/candidates-and-triggers.md): say how many.
    written = sum(1 for row in rows if row.research_subjects)
    print(f"\nSeed patients screened as of {as_of.isoformat()} (ResearchSubject written for "
          f"the {written} candidate(s) of {len(rows)}):\n")
    print(status_grid(rows, screener.study_keys()))
    print(f"\nWhy (every criterion not met or unknown, with its reason):\n"
          f"  {_detail_command(settings, rows, as_of)}", flush=True)
    print(f"Try: curl 'http://{args.host}:{args.port}/patients/{ids[0]}/eligibility"
          f"?asOf={as_of.isoformat()}'", flush=True)
    from service.cli.users import demo_coordinator

    print(demo_coordinator(settings, f"http://{args.host}:{args.port}"), flush=True)
    return _serve_app(settings, args.host, args.port, app=app)


# ------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="eligibility",
        description="Clinical-trial eligibility screening over a FHIR R4 server. "
                    "Settings come from the environment (see docs/configuration.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run job-queue workers")
    worker.add_argument("--workers", type=int, default=1, help="worker threads (default 1)")
    worker.set_defaults(func=cmd_worker)

    screen = sub.add_parser("screen", help="screen patients and print the results")
    screen.add_argument("patients", nargs="*", metavar="PATIENT", help="Patient ids")
    screen.add_argument("--all", action="store_true",
                        help="the candidates: patients with a diagnosis a study looks for, "
                             "or a ResearchSubject of ours")
    screen.add_argument("--every-patient", action="store_true",
                        help="with --all: every Patient of the FHIR server")
    screen.add_argument("--as-of", help="evaluate as of this date (YYYY-MM-DD; default today)")
    screen.add_argument("--study", action="append", help="study key (repeatable; default all)")
    screen.add_argument("--no-write", action="store_true", help="do not write ResearchSubjects")
    fmt = screen.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON on stdout")
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout")
    screen.add_argument("--workers", type=int, default=1, help="parallel screenings (threads)")
    screen.add_argument("--bulk", action="store_true",
                        help="with --all: find and read the candidates from a FHIR Bulk Data "
                        "export ($export), for servers that refuse population searches")
    screen.add_argument("--group", metavar="ID",
                        help="with --bulk: export this Group's patients (Group/ID/$export)")
    screen.add_argument("--since", metavar="DATE|last",
                        help="with --bulk: only patients changed since DATE, or since the last "
                        "successful bulk run (last)")
    screen.add_argument("--checkpoint", metavar="PATH",
                        help="file of finished patient ids; a rerun skips them")
    screen.set_defaults(func=cmd_screen)

    seeds = sub.add_parser("load-seeds", help="load seed studies and patients into FHIR")
    seeds.set_defaults(func=cmd_load_seeds)

    subscribe = sub.add_parser("subscribe", help="register the FHIR rest-hook Subscriptions")
    subscribe.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS",
        help="wait this long for the FHIR server to mark every Subscription active (default 60)",
    )
    subscribe.add_argument(
        "--no-wait", action="store_true",
        help="do not wait for `active` (servers that never change a Subscription's status)",
    )
    subscribe.set_defaults(func=cmd_subscribe)

    codes = sub.add_parser(
        "codes-report",
        help="list the FHIR server's codes and units the mappings do not understand")
    codes.add_argument("--json", action="store_true", help="JSON on stdout")
    codes.add_argument("--page-size", type=int, default=500, help="_count per page (500)")
    codes.add_argument("--max-per-type", type=int, default=100_000,
                       help="stop reading a resource type after this many (100000)")
    codes.set_defaults(func=cmd_codes_report)

    demo = sub.add_parser("demo", help="load seeds, screen the seed patients, then serve")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=cmd_demo)

    from service.cli import mappings_cmd, users

    users.add_parser(sub)
    mappings_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `eligibility` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"eligibility: bad settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from service.core.log_setup import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    from service.core.metrics import set_default_trigger
    from service.fhir.errors import FhirError
    from service.mappings import MappingError

    set_default_trigger("bulk" if getattr(args, "bulk", False) else "cli")
    try:
        return int(args.func(settings, args))
    except CliError as exc:
        print(f"eligibility: {exc}", file=sys.stderr)
        return exc.code
    except MappingError as exc:
        print(f"eligibility: bad mappings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FhirError as exc:
        print(f"eligibility: FHIR server error: {str(exc)[:300]}", file=sys.stderr)
        return EXIT_FAILURES
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
